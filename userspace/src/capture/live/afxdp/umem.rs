//! The UMEM of one AF_XDP socket: an anonymous memory mapping cut into
//! equal chunks, each holding one frame at a time, and the list of chunks
//! userspace owns (free to give to the kernel through the fill ring).
//!
//! A chunk belongs to exactly one party at a time: the free list, the fill
//! ring (the kernel may write it), the receive ring, or the code handling
//! the frame. [`UmemArea::frame`] is therefore only called for a chunk that
//! came out of the receive ring and has not been given back yet.

use std::ptr::NonNull;

use anyhow::{bail, Result};
use ml_sniffing_common::maps::xsk::META_LEN;

/// An anonymous, page-aligned mapping of `chunks * chunk_size` bytes,
/// unmapped on drop.
pub struct UmemArea {
    base: NonNull<u8>,
    len: usize,
    chunk_size: u32,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to
// another thread moves that ownership (nothing is tied to the creating
// thread).
unsafe impl Send for UmemArea {}

impl UmemArea {
    /// Maps `chunks` chunks of `chunk_size` bytes (a power of two between
    /// 2048 and the page size, as the kernel requires of aligned chunks).
    pub fn new(chunks: u32, chunk_size: u32) -> Result<Self> {
        if !chunk_size.is_power_of_two() || !(2048..=4096).contains(&chunk_size) {
            bail!("the AF_XDP chunk size must be 2048 or 4096 bytes, not {chunk_size}");
        }
        if chunks == 0 {
            bail!("an AF_XDP UMEM needs at least one chunk");
        }
        let len = chunks as usize * chunk_size as usize;
        // SAFETY: an anonymous private mapping; no file, no fixed address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            bail!(
                "cannot map {} MiB for the AF_XDP frames: {}",
                len >> 20,
                std::io::Error::last_os_error()
            );
        }
        let base = NonNull::new(ptr.cast::<u8>()).expect("mmap never returns null on success");
        Ok(UmemArea {
            base,
            len,
            chunk_size,
        })
    }

    /// The whole area, for registering it with the kernel.
    pub fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.base, self.len)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub fn chunks(&self) -> u32 {
        (self.len / self.chunk_size as usize) as u32
    }

    /// The start of the chunk holding `addr`.
    #[inline(always)]
    pub fn chunk_of(&self, addr: u64) -> u64 {
        addr & !(self.chunk_size as u64 - 1)
    }

    /// Whether `len` bytes at `addr` lie inside one chunk of the area.
    #[inline(always)]
    fn in_one_chunk(&self, addr: u64, len: usize) -> bool {
        let Some(end) = addr.checked_add(len as u64) else {
            return false;
        };
        end <= self.len as u64 && (len == 0 || self.chunk_of(addr) == self.chunk_of(end - 1))
    }

    /// The `len` bytes at `addr` (a receive descriptor), or `None` when a
    /// descriptor points outside the area or across chunks (never trusted
    /// blindly).
    ///
    /// The chunk must be one userspace owns (taken from the receive ring,
    /// not yet returned), so the kernel does not write it while the slice
    /// lives.
    #[inline(always)]
    pub fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let len = len as usize;
        if !self.in_one_chunk(addr, len) {
            return None;
        }
        // SAFETY: `addr..addr + len` is inside the mapping (checked above),
        // which lives as long as `self`; the chunk is owned by userspace
        // (see above), so nothing writes it while the slice is borrowed.
        Some(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(addr as usize), len) })
    }

    /// The kernel timestamp the XDP program put in front of the frame at
    /// `addr` (`META_LEN` bytes), cleared so that a chunk reused for a frame
    /// without metadata reads 0 next time. 0 when there is none.
    #[inline(always)]
    pub fn take_timestamp(&self, addr: u64) -> u64 {
        let Some(at) = addr.checked_sub(META_LEN as u64) else {
            return 0;
        };
        // The metadata must be in the frame's own chunk.
        if self.chunk_of(at) != self.chunk_of(addr) || !self.in_one_chunk(at, META_LEN) {
            return 0;
        }
        // SAFETY: `at..at + META_LEN` is inside the mapping and in a chunk
        // userspace owns (checked above); unaligned access is allowed.
        unsafe {
            let p = self.base.as_ptr().add(at as usize).cast::<u64>();
            let value = p.read_unaligned();
            p.write_unaligned(0);
            value
        }
    }

    /// Writes `bytes` at `addr` (tests stand in for the kernel with it).
    #[cfg(test)]
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> bool {
        if !self.in_one_chunk(addr, bytes.len()) {
            return false;
        }
        // SAFETY: inside the mapping (checked), exclusively borrowed.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.as_ptr().add(addr as usize),
                bytes.len(),
            )
        };
        true
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once. The sockets that
        // registered it are dropped before (they are declared after it in
        // their owner) or keep their own page references in the kernel.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Chunks userspace owns and may give to the fill ring (their start
/// addresses).
#[derive(Debug, Default)]
pub struct FreeList {
    chunks: Vec<u64>,
}

impl FreeList {
    /// Every chunk of an area of `chunks` chunks of `chunk_size` bytes.
    pub fn all(chunks: u32, chunk_size: u32) -> Self {
        FreeList {
            chunks: (0..chunks as u64)
                .rev()
                .map(|i| i * chunk_size as u64)
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    #[inline(always)]
    pub fn push(&mut self, chunk: u64) {
        self.chunks.push(chunk);
    }

    /// Offers the free chunks (most recently freed first, still warm in the
    /// cache) to `give`, which returns how many it took; those leave the
    /// list. Returns how many were taken.
    pub fn give(&mut self, give: impl FnOnce(&mut dyn Iterator<Item = u64>) -> u32) -> u32 {
        let mut offered = self.chunks.iter().rev().copied();
        let taken = (give(&mut offered) as usize).min(self.chunks.len());
        self.chunks.truncate(self.chunks.len() - taken);
        taken as u32
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// `frame` and `take_timestamp` against a plain `Vec<u8>` standing for
    /// the area, on random descriptors, valid or not.
    #[test]
    fn frames_and_timestamps_match_a_plain_vector() {
        const CHUNKS: u32 = 8;
        const CHUNK: u32 = 2048;
        let mut area = UmemArea::new(CHUNKS, CHUNK).unwrap();
        assert_eq!(
            (area.len(), area.chunks(), area.chunk_size()),
            (8 * 2048, 8, 2048)
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut reference: Vec<u8> = (0..area.len()).map(|_| rng.gen()).collect();
        assert!(area.write(0, &reference[..2048]));
        for c in 1..CHUNKS as usize {
            assert!(area.write((c * 2048) as u64, &reference[c * 2048..(c + 1) * 2048]));
        }
        let plain_frame = |r: &[u8], addr: u64, len: u32| -> Option<Vec<u8>> {
            let (start, end) = (addr as usize, addr as usize + len as usize);
            let same_chunk = len == 0 || start / 2048 == (end - 1) / 2048;
            (end <= r.len() && same_chunk).then(|| r[start..end].to_vec())
        };
        let mut valid = 0;
        for _ in 0..20_000 {
            let addr = rng.gen_range(0..(CHUNKS as u64 + 1) * 2048);
            let len = rng.gen_range(0..2100);
            let got = area.frame(addr, len).map(<[u8]>::to_vec);
            assert_eq!(got, plain_frame(&reference, addr, len), "{addr} {len}");
            valid += got.is_some() as u32;

            let has_ts = addr >= 8 && (addr - 8) / 2048 == addr / 2048 && addr <= area.len() as u64;
            let want_ts = if has_ts {
                let at = (addr - 8) as usize;
                let v = u64::from_ne_bytes(reference[at..at + 8].try_into().unwrap());
                reference[at..at + 8].fill(0);
                v
            } else {
                0
            };
            assert_eq!(area.take_timestamp(addr), want_ts, "timestamp at {addr}");
        }
        assert!(valid > 5_000, "the random descriptors were mostly invalid");
        // Huge or wrapping descriptors.
        assert!(area.frame(u64::MAX - 3, 10).is_none());
        assert!(area.frame(u64::MAX, 0).is_none());
        assert_eq!(area.take_timestamp(u64::MAX), 0);
        assert_eq!(area.take_timestamp(3), 0);
    }

    #[test]
    fn chunk_sizes_are_checked() {
        assert!(UmemArea::new(4, 1000).is_err());
        assert!(UmemArea::new(4, 8192).is_err());
        assert!(UmemArea::new(0, 2048).is_err());
        let area = UmemArea::new(3, 4096).unwrap();
        assert_eq!(area.chunk_of(4096 + 300), 4096);
        assert_eq!(area.chunk_of(4095), 0);
    }

    /// Chunks leave the free list only when taken, most recent first, and
    /// none is lost or duplicated across any sequence of gives and pushes.
    #[test]
    fn the_free_list_keeps_every_chunk_once() {
        let mut free = FreeList::all(16, 2048);
        assert_eq!(free.len(), 16);
        let mut kernel: Vec<u64> = Vec::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let room = rng.gen_range(0..6u32);
            let before = free.len();
            let taken = free.give(|offered| {
                let mut n = 0;
                for chunk in offered.take(room as usize) {
                    kernel.push(chunk);
                    n += 1;
                }
                n
            });
            assert_eq!(taken as usize, room.min(before as u32) as usize);
            assert_eq!(free.len(), before - taken as usize);
            // The kernel hands some back (in any order).
            for _ in 0..rng.gen_range(0..=kernel.len()) {
                let i = rng.gen_range(0..kernel.len());
                free.push(kernel.swap_remove(i));
            }
            let mut all: Vec<u64> = free.chunks.iter().chain(&kernel).copied().collect();
            all.sort();
            assert_eq!(all, (0..16).map(|i| i * 2048).collect::<Vec<u64>>());
        }
        // A giver claiming more than offered cannot underflow the list.
        let mut free = FreeList::all(2, 2048);
        assert_eq!(free.give(|_| 10), 2);
        assert!(free.is_empty());
    }
}
