//! Draining packet records from the program's ring buffer.

use std::io;

use aya::maps::{MapData, RingBuf};
use ml_sniffing_common::record::PacketRecord;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

const RECORD_SIZE: usize = std::mem::size_of::<PacketRecord>();

/// The ring buffer, readable from a tokio runtime.
pub struct RecordRing {
    ring: AsyncFd<RingBuf<MapData>>,
    /// Items of an unexpected size (a program/loader mismatch): counted,
    /// never misread.
    malformed: u64,
}

impl RecordRing {
    /// Must be called inside a tokio runtime (it registers the map's fd).
    pub fn new(ring: RingBuf<MapData>) -> io::Result<Self> {
        // SAFETY: the fd is the ring buffer map's, owned by `ring`, which
        // the AsyncFd owns: it stays open and the same for its lifetime.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(RecordRing { ring, malformed: 0 })
    }

    /// Moves up to `max` waiting records into `out` without blocking;
    /// returns how many.
    pub fn drain(&mut self, out: &mut Vec<PacketRecord>, max: usize) -> usize {
        drain_ring(self.ring.get_mut(), out, max, &mut self.malformed)
    }

    /// Waits until records are waiting, then drains up to `max` of them.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<PacketRecord>,
        max: usize,
    ) -> io::Result<usize> {
        loop {
            let mut guard = self.ring.readable_mut().await?;
            let n = drain_ring(guard.get_inner_mut(), out, max, &mut self.malformed);
            if n < max {
                // Emptied: wait for the next wakeup. (Records written
                // without one, or between the last read and this line, wait
                // for the caller's next periodic `drain`.)
                guard.clear_ready();
            }
            if n > 0 {
                return Ok(n);
            }
        }
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
