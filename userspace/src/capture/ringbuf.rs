//! Draining packet records from the program's ring buffer.
//!
//! The program wakes readers once every `WAKEUP_EVERY` records (see
//! `ml_sniffing_common::maps`): [`RecordRing::readable`] waits for such a
//! wakeup (tokio `AsyncFd` on the ring's descriptor), and a reader also
//! drains on a timer for the records written since the last wakeup.
//!
//! Records can be copied out in batches ([`RecordRing::drain`]) or read in
//! place, straight from the ring's memory ([`RecordRing::drain_in_place`]),
//! so that a consumer building its own batches needs no copy per record.

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::{MapData, RingBuf};
use ml_sniffing_common::record::PacketRecord;
use tokio::io::unix::AsyncFd;

const RECORD_SIZE: usize = std::mem::size_of::<PacketRecord>();

/// The ring buffer of records.
pub struct RecordRing {
    ring: AsyncFd<RingBuf<MapData>>,
    positions: Positions,
    /// Items of an unexpected size (a program/loader mismatch): counted,
    /// never misread.
    malformed: u64,
}

impl RecordRing {
    /// Must be called inside a tokio runtime (the descriptor is registered
    /// with its reactor).
    pub fn new(ring: RingBuf<MapData>) -> io::Result<Self> {
        // SAFETY: the ring buffer owns its map's descriptor, which stays
        // open and unchanged for as long as the AsyncFd holds the ring (it
        // is closed only when both are dropped). Exercised by every live
        // capture test (tests/kernel_capture.rs).
        let positions = Positions::map(&ring)?;
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
        Ok(RecordRing {
            ring,
            positions,
            malformed: 0,
        })
    }

    /// Bytes written by the program and not yet read (records waiting, with
    /// their 8-byte headers).
    pub fn waiting_bytes(&self) -> u64 {
        self.positions.waiting()
    }

    /// Waits until the program woke readers (records are waiting).
    pub async fn readable(&self) -> io::Result<()> {
        let mut guard = self.ring.readable().await?;
        // Edge-triggered: the next wakeup comes with the next batch of
        // records the program writes, whether or not this one is drained.
        guard.clear_ready();
        Ok(())
    }

    /// Moves up to `max` waiting records into `out` without blocking;
    /// returns how many.
    pub fn drain(&mut self, out: &mut Vec<PacketRecord>, max: usize) -> usize {
        let mut n = 0;
        self.drain_in_place(max, |record| {
            out.push(*record);
            n += 1;
            ControlFlow::Continue(())
        });
        n
    }

    /// Hands up to `max` waiting records to `each` where they lie in the
    /// ring (timestamps still kernel time), each released as soon as `each`
    /// returns; stops early when `each` breaks. Returns how many were read.
    pub fn drain_in_place(
        &mut self,
        max: usize,
        each: impl FnMut(&PacketRecord) -> ControlFlow<()>,
    ) -> usize {
        for_each_record(self.ring.get_mut(), max, &mut self.malformed, each)
    }

    /// Ring items whose size was not a record's.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

/// A read-only view of the ring's consumer and producer positions (its two
/// metadata pages), to tell how full it is: the reader's own count of what
/// one drain found says nothing once a drain stops early to let the tick
/// run.
struct Positions {
    base: *mut libc::c_void,
    page: usize,
}

// SAFETY: the mapping is read-only and only read through atomics.
unsafe impl Send for Positions {}

impl Positions {
    fn map(ring: &RingBuf<MapData>) -> io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: maps the ring buffer map's first two pages (consumer then
        // producer position) read-only, which the kernel allows for any
        // process holding the map's fd; unmapped on drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ,
                libc::MAP_SHARED,
                ring.as_fd().as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Positions { base, page })
    }

    fn waiting(&self) -> u64 {
        // SAFETY: both positions are 8-byte aligned u64 at the start of
        // their page, inside the mapping, and written atomically.
        let (consumer, producer) = unsafe {
            let consumer = &*(self.base as *const AtomicU64);
            let producer = &*((self.base as *const u8).add(self.page) as *const AtomicU64);
            (
                consumer.load(Ordering::Acquire),
                producer.load(Ordering::Acquire),
            )
        };
        producer.saturating_sub(consumer)
    }
}

impl Drop for Positions {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.base, 2 * self.page) };
    }
}

/// Moves up to `max` records from `ring` into `out` (for synchronous
/// readers: benchmarks, tests); returns how many.
pub fn drain_ring(
    ring: &mut RingBuf<MapData>,
    out: &mut Vec<PacketRecord>,
    max: usize,
    malformed: &mut u64,
) -> usize {
    for_each_record(ring, max, malformed, |record| {
        out.push(*record);
        ControlFlow::Continue(())
    })
}

fn for_each_record(
    ring: &mut RingBuf<MapData>,
    max: usize,
    malformed: &mut u64,
    mut each: impl FnMut(&PacketRecord) -> ControlFlow<()>,
) -> usize {
    let mut n = 0;
    while n < max {
        let Some(item) = ring.next() else { break };
        if item.len() != RECORD_SIZE {
            *malformed += 1;
            continue;
        }
        // Samples are 8-byte aligned in the ring, as a record needs; should
        // one not be, it is copied out instead of misread.
        let flow = match bytemuck::try_from_bytes::<PacketRecord>(&item) {
            Ok(record) => each(record),
            Err(_) => each(&bytemuck::pod_read_unaligned(&item)),
        };
        n += 1;
        if flow.is_break() {
            break;
        }
    }
    n
}
