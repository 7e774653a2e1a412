//! A model's default features computed straight from packet records, with
//! exactly the values the CSV path gives for the same packets once `sniff`
//! has written them (a test checks the two paths against each other).

use anyhow::{bail, Result};
use ml_sniffing_common::record::PacketRecord;

use crate::features::{cells, default_set};

/// Where one feature comes from in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Length,
    IpProtocol,
    SrcPort,
    DstPort,
    Ttl,
    TcpFlags,
    SrcPrivate,
    DstPrivate,
    FlowPackets,
    FlowMeanLength,
    FlowGap,
}

impl Field {
    fn of(name: &str) -> Option<Field> {
        Some(match name {
            "length" => Field::Length,
            "ip_protocol" => Field::IpProtocol,
            "source_port" => Field::SrcPort,
            "destination_port" => Field::DstPort,
            "ttl" => Field::Ttl,
            "tcp_flags" => Field::TcpFlags,
            "source_is_private" => Field::SrcPrivate,
            "destination_is_private" => Field::DstPrivate,
            "flow_packets" => Field::FlowPackets,
            "flow_mean_length" => Field::FlowMeanLength,
            "flow_gap" => Field::FlowGap,
            _ => return None,
        })
    }
}

/// Seconds from nanoseconds as the capture CSV writes them: whole
/// microseconds (truncated), read back as the nearest double.
pub fn csv_seconds(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1e6
}

/// The features a model expects, in its order, computed from records.
#[derive(Debug, Clone)]
pub struct RecordFeatures {
    fields: Vec<Field>,
}

impl RecordFeatures {
    /// Maps a model's feature names to record fields; every name must be a
    /// default feature (the seed set and arbitrary columns need whole files).
    pub fn for_model(names: &[String]) -> Result<Self> {
        let mut fields = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match Field::of(name) {
                Some(s) => fields.push(s),
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            bail!(
                "the model uses {} that live packets do not have ({}); live scoring needs a model \
                 fitted with the default feature set (`detect --features default --save-model`), \
                 whose features are: {}",
                if unknown.len() == 1 {
                    "a feature"
                } else {
                    "features"
                },
                unknown.join(", "),
                default_set::ALL_FEATURES.join(", ")
            );
        }
        Ok(RecordFeatures { fields })
    }

    /// Every default feature, for fitting on live records.
    pub fn all() -> Self {
        RecordFeatures {
            fields: default_set::ALL_FEATURES
                .iter()
                .map(|n| Field::of(n).expect("every default feature has a source"))
                .collect(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let all = default_set::ALL_FEATURES;
        self.fields
            .iter()
            .map(|s| {
                all.iter()
                    .find(|n| Field::of(n) == Some(*s))
                    .expect("every source has a name")
                    .to_string()
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Feature `f` of a record (its timestamp in epoch ns).
    #[inline]
    pub fn value(&self, f: usize, r: &PacketRecord) -> f32 {
        match self.fields[f] {
            Field::Length => r.frame_len as f32,
            Field::IpProtocol => r.protocol as f32,
            Field::SrcPort => r.src_port as f32,
            Field::DstPort => r.dst_port as f32,
            Field::Ttl => r.ttl as f32,
            Field::TcpFlags => r.tcp_flags as f32,
            Field::SrcPrivate => cells::is_private(Some(r.source())) as u8 as f32,
            Field::DstPrivate => cells::is_private(Some(r.destination())) as u8 as f32,
            Field::FlowPackets => r.flow_packets as f32,
            Field::FlowMeanLength => {
                if r.flow_packets == 0 {
                    0.0
                } else {
                    (r.flow_bytes as f64 / r.flow_packets as f64) as f32
                }
            }
            Field::FlowGap => csv_seconds(r.flow_gap_ns) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_sources_and_others_are_refused() {
        let f = RecordFeatures::for_model(&["flow_gap".into(), "length".into()]).unwrap();
        assert_eq!(f.names(), ["flow_gap", "length"]);
        let e = RecordFeatures::for_model(&["length".into(), "hour".into(), "flow_id".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("(hour, flow_id)"), "{e}");
        assert_eq!(RecordFeatures::all().names(), default_set::ALL_FEATURES);
    }

    /// The live path (features from records) against the file path (the
    /// records written as `sniff` rows, then the default feature set read
    /// from those rows): the same values, feature by feature.
    #[test]
    fn records_give_the_features_their_csv_rows_give() {
        use crate::capture::csv_rows::{new_table, push_record, RowFormatter};
        use crate::capture::state::StateTables;
        use crate::features::{engineer, FeatureSet, Selection};
        use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
        use ml_sniffing_common::parser::{parse, Link, Outcome};
        use rand::{Rng, SeedableRng};

        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let hosts = [
            "10.0.0.1",
            "10.0.0.2",
            "192.0.2.7",
            "fd00::1",
            "2001:db8::9",
        ];
        let mut flows = StateTables::default();
        let mut records = Vec::new();
        let mut now = 1_712_589_010_000_000_000u64;
        for _ in 0..2000 {
            let v6 = rng.gen_bool(0.3);
            let pick = |rng: &mut rand_chacha::ChaCha8Rng| {
                let i = rng.gen_range(0..3);
                hosts[if v6 { 3 + i % 2 } else { i }].parse().unwrap()
            };
            let (src, dst) = (pick(&mut rng), pick(&mut rng));
            let transport = match rng.gen_range(0..3) {
                0 => Transport::Tcp {
                    src: rng.gen_range(1000..1004),
                    dst: 80,
                    flags: [tcp_flags::SYN, tcp_flags::ACK, tcp_flags::FIN][rng.gen_range(0..3)],
                },
                1 => Transport::Udp {
                    src: 53,
                    dst: rng.gen_range(5000..5003),
                },
                _ => Transport::Icmp { kind: 8, code: 0 },
            };
            let frame = FrameSpec::new(src, dst, transport)
                .ttl(rng.gen_range(1..255))
                .payload(rng.gen_range(0..400))
                .build();
            let mut r = PacketRecord::default();
            assert_eq!(
                parse(&frame[..], Link::Ethernet, frame.len(), &mut r),
                Outcome::Ip
            );
            // Gaps with nanoseconds that the CSV's microseconds drop.
            now += rng.gen_range(0..5_000_000_000u64) + rng.gen_range(0..1000);
            r.timestamp_ns = now;
            r.frame_len = frame.len() as u32;
            flows.count(&mut r);
            records.push(r);
        }
        let mut table = new_table();
        let mut formatter = RowFormatter::new();
        for r in &records {
            push_record(&mut table, &mut formatter, r).unwrap();
        }
        let from_csv = engineer(&table, &Selection::Set(FeatureSet::Default))
            .unwrap()
            .matrix;
        let live = RecordFeatures::for_model(from_csv.names()).unwrap();
        assert_eq!(
            live.len(),
            default_set::ALL_FEATURES.len(),
            "every feature is compared"
        );
        for (row, r) in records.iter().enumerate() {
            for f in 0..live.len() {
                assert_eq!(
                    live.value(f, r).to_bits(),
                    from_csv.get(row, f).to_bits(),
                    "row {row}, feature {}",
                    from_csv.names()[f]
                );
            }
        }
    }

    #[test]
    fn gaps_are_whole_microseconds() {
        assert_eq!(csv_seconds(1_999), 0.000001);
        assert_eq!(csv_seconds(2_500_000_999), 2.500_000);
        assert_eq!(csv_seconds(0), 0.0);
    }
}
