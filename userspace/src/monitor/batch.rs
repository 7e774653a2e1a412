//! One batch's features, computed once and read by every model: the
//! detector's features first, then the classifier's that the detector does
//! not use. A classifier on the same features (the usual case) reads the
//! detector's columns as they are.

use ml_sniffing_common::record::PacketRecord;

use crate::features::records::RecordFeatures;
use ml_sniffing_forest::Block;

pub struct BatchFeatures {
    all: RecordFeatures,
    detector: usize,
    /// The classifier's features among `all`'s columns, when there is one.
    classifier: Option<Vec<usize>>,
    columns: Vec<f32>,
    /// The classifier's columns, copied in its order when they are not the
    /// leading columns of `all`.
    gathered: Vec<f32>,
    rows: usize,
}

impl BatchFeatures {
    pub fn new(detector: &RecordFeatures, classifier: Option<&RecordFeatures>) -> Self {
        let (all, classifier) = match classifier {
            Some(c) => {
                let (all, positions) = detector.union(c);
                (all, Some(positions))
            }
            None => (detector.clone(), None),
        };
        BatchFeatures {
            all,
            detector: detector.len(),
            classifier,
            columns: Vec::new(),
            gathered: Vec::new(),
            rows: 0,
        }
    }

    /// Computes the features of `records`.
    pub fn fill(&mut self, records: &[PacketRecord]) {
        self.rows = records.len();
        self.all.fill_columns(records, &mut self.columns);
        let n = self.rows;
        if let Some(positions) = &self.classifier {
            if !positions.iter().enumerate().all(|(i, &p)| i == p) {
                self.gathered.clear();
                for &p in positions {
                    self.gathered
                        .extend_from_slice(&self.columns[p * n..(p + 1) * n]);
                }
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The detector's features of the batch.
    pub fn detector(&self) -> Block<'_> {
        Block::contiguous(
            &self.columns[..self.detector * self.rows],
            self.rows,
            self.detector,
        )
    }

    /// The classifier's features of the batch (none without a classifier).
    pub fn classifier(&self) -> Option<Block<'_>> {
        let positions = self.classifier.as_ref()?;
        let k = positions.len();
        Some(if positions.iter().enumerate().all(|(i, &p)| i == p) {
            Block::contiguous(&self.columns[..k * self.rows], self.rows, k)
        } else {
            Block::contiguous(&self.gathered, self.rows, k)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> RecordFeatures {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        RecordFeatures::for_model(&list).unwrap()
    }

    fn records() -> Vec<PacketRecord> {
        (0..5u32)
            .map(|i| PacketRecord {
                frame_len: 60 + i * 100,
                src_port: 1000 + i as u16,
                dst_port: 53,
                ttl: 64 - i as u8,
                ..PacketRecord::default()
            })
            .collect()
    }

    /// Each model reads exactly what computing its own features gives,
    /// whether the classifier shares the detector's features, a subset in
    /// another order, or features of its own.
    #[test]
    fn each_model_reads_its_own_features() {
        let records = records();
        let detector = names(&["length", "source_port", "ttl"]);
        for classifier in [
            names(&["length", "source_port", "ttl"]),
            names(&["length", "source_port"]),
            names(&["ttl", "length"]),
            names(&["destination_port", "length"]),
        ] {
            let mut batch = BatchFeatures::new(&detector, Some(&classifier));
            batch.fill(&records);
            for (model, block) in [
                (&detector, batch.detector()),
                (&classifier, batch.classifier().unwrap()),
            ] {
                let mut alone = Vec::new();
                model.fill_columns(&records, &mut alone);
                let n = records.len();
                assert_eq!(block.n_features(), model.len());
                for f in 0..model.len() {
                    assert_eq!(
                        block.column(f),
                        &alone[f * n..(f + 1) * n],
                        "{:?}",
                        model.names()
                    );
                }
            }
        }
        let mut alone = BatchFeatures::new(&detector, None);
        alone.fill(&records);
        assert!(alone.classifier().is_none());
        assert_eq!(alone.detector().len(), records.len());
    }
}
