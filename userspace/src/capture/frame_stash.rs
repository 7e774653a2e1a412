//! Copies of whole frames kept until the records made of them are decided
//! on. AF_XDP hands a frame to [`RecordSink::frame`] only for the duration
//! of the call; a sink that scores records later (the monitor's batches)
//! pushes the frames of the records it keeps here, at the same positions,
//! and writes out the ones it wants afterwards (e.g. those scored as
//! anomalies, with [`PcapNgWriter`](super::pcap::writer::PcapNgWriter)),
//! then clears the stash with its batch.
//!
//! All frames share one growing byte buffer: no allocation per frame once
//! the buffer has grown to a batch's worth.
//!
//! [`RecordSink::frame`]: super::live::RecordSink::frame

/// Frames in push order, each with its timestamp.
#[derive(Clone, Debug, Default)]
pub struct FrameStash {
    bytes: Vec<u8>,
    /// (start in `bytes`, length, epoch ns) per frame.
    frames: Vec<(usize, usize, u64)>,
}

impl FrameStash {
    pub fn new() -> Self {
        FrameStash::default()
    }

    /// Keeps a copy of `data`; returns its index.
    #[inline]
    pub fn push(&mut self, timestamp_ns: u64, data: &[u8]) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.frames.push((start, data.len(), timestamp_ns));
        self.frames.len() - 1
    }

    /// The frame at `index` (its timestamp and bytes).
    #[inline]
    pub fn get(&self, index: usize) -> Option<(u64, &[u8])> {
        let &(start, len, ts) = self.frames.get(index)?;
        Some((ts, &self.bytes[start..start + len]))
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes held by the frames.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Forgets every frame (keeps the memory for the next batch).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The stash gives back what a plain list of owned frames holds, across
    /// clears.
    #[test]
    fn matches_a_list_of_owned_frames() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut stash = FrameStash::new();
        let mut plain: Vec<(u64, Vec<u8>)> = Vec::new();
        for round in 0..20 {
            for _ in 0..rng.gen_range(0..50) {
                let len = rng.gen_range(0..300);
                let frame: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                let ts = rng.gen();
                assert_eq!(stash.push(ts, &frame), plain.len());
                plain.push((ts, frame));
            }
            assert_eq!(stash.len(), plain.len(), "round {round}");
            assert_eq!(
                stash.bytes(),
                plain.iter().map(|(_, f)| f.len()).sum::<usize>()
            );
            for (i, (ts, f)) in plain.iter().enumerate() {
                assert_eq!(stash.get(i), Some((*ts, &f[..])));
            }
            assert_eq!(stash.get(plain.len()), None);
            stash.clear();
            plain.clear();
            assert!(stash.is_empty());
        }
    }
}
