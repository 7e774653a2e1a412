//! A model's default features computed straight from packet records, with
//! exactly the values the CSV path gives for the same packets once `sniff`
//! has written them (a test checks the two paths against each other).

use anyhow::{bail, Result};
use ml_sniffing_common::record::PacketRecord;

use crate::features::{cells, default_set};

/// Where one feature comes from in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Length,
    IpProtocol,
    SourcePort,
    DestinationPort,
    Ttl,
    TcpFlags,
    SourcePrivate,
    DestinationPrivate,
    FlowPackets,
    FlowMeanLength,
    FlowGap,
}

impl Source {
    fn of(name: &str) -> Option<Source> {
        Some(match name {
            "length" => Source::Length,
            "ip_protocol" => Source::IpProtocol,
            "source_port" => Source::SourcePort,
            "destination_port" => Source::DestinationPort,
            "ttl" => Source::Ttl,
            "tcp_flags" => Source::TcpFlags,
            "source_is_private" => Source::SourcePrivate,
            "destination_is_private" => Source::DestinationPrivate,
            "flow_packets" => Source::FlowPackets,
            "flow_mean_length" => Source::FlowMeanLength,
            "flow_gap" => Source::FlowGap,
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
    sources: Vec<Source>,
}

impl RecordFeatures {
    /// Maps a model's feature names to record fields; every name must be a
    /// default feature (the seed set and arbitrary columns need whole files).
    pub fn for_model(names: &[String]) -> Result<Self> {
        let mut sources = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match Source::of(name) {
                Some(s) => sources.push(s),
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            bail!(
                "the model uses {} that live packets do not have ({}); live scoring needs a model \
                 fitted with the default feature set (`detect --features default --save-model`), \
                 whose features are: {}",
                if unknown.len() == 1 { "a feature" } else { "features" },
                unknown.join(", "),
                default_set::ALL_FEATURES.join(", ")
            );
        }
        Ok(RecordFeatures { sources })
    }

    /// Every default feature, for fitting on live records.
    pub fn all() -> Self {
        RecordFeatures {
            sources: default_set::ALL_FEATURES
                .iter()
                .map(|n| Source::of(n).expect("every default feature has a source"))
                .collect(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let all = default_set::ALL_FEATURES;
        self.sources
            .iter()
            .map(|s| {
                all.iter()
                    .find(|n| Source::of(n) == Some(*s))
                    .expect("every source has a name")
                    .to_string()
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Feature `f` of a record (its timestamp in epoch ns).
    #[inline]
    pub fn value(&self, f: usize, r: &PacketRecord) -> f32 {
        match self.sources[f] {
            Source::Length => r.frame_len as f32,
            Source::IpProtocol => r.protocol as f32,
            Source::SourcePort => r.src_port as f32,
            Source::DestinationPort => r.dst_port as f32,
            Source::Ttl => r.ttl as f32,
            Source::TcpFlags => r.tcp_flags as f32,
            Source::SourcePrivate => cells::is_private(Some(r.source())) as u8 as f32,
            Source::DestinationPrivate => cells::is_private(Some(r.destination())) as u8 as f32,
            Source::FlowPackets => r.flow_packets as f32,
            Source::FlowMeanLength => {
                if r.flow_packets == 0 {
                    0.0
                } else {
                    (r.flow_bytes as f64 / r.flow_packets as f64) as f32
                }
            }
            Source::FlowGap => csv_seconds(r.flow_gap_ns) as f32,
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

    #[test]
    fn gaps_are_whole_microseconds() {
        assert_eq!(csv_seconds(1_999), 0.000001);
        assert_eq!(csv_seconds(2_500_000_999), 2.500_000);
        assert_eq!(csv_seconds(0), 0.0);
    }
}
