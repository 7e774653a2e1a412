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

use aya::maps::{MapData, RingBuf};
use ml_sniffing_common::record::PacketRecord;
use tokio::io::unix::AsyncFd;

const RECORD_SIZE: usize = std::mem::size_of::<PacketRecord>();

/// The ring buffer of records.
pub struct RecordRing {
    ring: AsyncFd<RingBuf<MapData>>,
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
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
        Ok(RecordRing { ring, malformed: 0 })
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
