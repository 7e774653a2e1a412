//! Draining packet records from the program's ring buffer.
//!
//! The program never wakes readers (see
//! `ml_sniffing_common::maps::DRAIN_EVERY_MS`): readers call
//! [`RecordRing::drain`] on a timer.

use aya::maps::{MapData, RingBuf};
use ml_sniffing_common::record::PacketRecord;

const RECORD_SIZE: usize = std::mem::size_of::<PacketRecord>();

/// The ring buffer of records.
pub struct RecordRing {
    ring: RingBuf<MapData>,
    /// Items of an unexpected size (a program/loader mismatch): counted,
    /// never misread.
    malformed: u64,
}

impl RecordRing {
    pub fn new(ring: RingBuf<MapData>) -> Self {
        RecordRing { ring, malformed: 0 }
    }

    /// Moves up to `max` waiting records into `out` without blocking;
    /// returns how many.
    pub fn drain(&mut self, out: &mut Vec<PacketRecord>, max: usize) -> usize {
        drain_ring(&mut self.ring, out, max, &mut self.malformed)
    }

    /// Ring items whose size was not a record's.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

/// Moves up to `max` records from `ring` into `out`.
pub fn drain_ring(
    ring: &mut RingBuf<MapData>,
    out: &mut Vec<PacketRecord>,
    max: usize,
    malformed: &mut u64,
) -> usize {
    let mut n = 0;
    while n < max {
        let Some(item) = ring.next() else { break };
        match item.get(..RECORD_SIZE) {
            Some(bytes) if item.len() == RECORD_SIZE => {
                out.push(bytemuck::pod_read_unaligned(bytes));
                n += 1;
            }
            _ => *malformed += 1,
        }
    }
    n
}
