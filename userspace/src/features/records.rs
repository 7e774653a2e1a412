//! Every feature a model can see of a packet, computed from its record:
//! the one definition of the packet features, whatever the input (capture
//! files, CSV rows, kernel records, AF_XDP frames all become records first,
//! see [`super::table_records`]).
//!
//! Two named sets choose among them: [`DEFAULT_FEATURES`] (behaviour over
//! time, `--features default`) and [`PACKET_FEATURES`] (the first
//! version's per-packet fields and 5-tuple counters, `--features packet`).
//! Rates are per second, estimated from the decayed counts of
//! [`ml_sniffing_common::behaviour`]; rates, counts and ages are given as
//! `log2(1 + x)`, so that an Isolation Forest, which splits uniformly
//! between a feature's minimum and maximum, sees orders of magnitude.

use std::sync::OnceLock;

use anyhow::{bail, Result};
use ml_sniffing_common::behaviour::{
    HostView, AGE_SHIFT, HALF_LIFE_SHIFT, PAIR_BYTE_SCALES, SCALES,
};
use ml_sniffing_common::record::PacketRecord;

use super::cells;

/// The default set: how the packet's hosts and pair behave over time (scale
/// names are the half-lives, rounded: 1.07 s, 8.6 s, 69 s). Floods show in
/// the destination's rates of packets and new flows, scans in the source's
/// new flows and destination ports, amplification in the bytes each way;
/// three time scales tell a burst from a sustained rate from a host's
/// baseline. Left out because ordinary traffic varies over their whole
/// range: packet lengths, protocol and port numbers, flow counters and
/// gaps, ages; SYN shares (every handshake starts with one) and fan-out of
/// peers (peer-to-peer clients) measured worse on `cargo xtask eval`.
pub const DEFAULT_FEATURES: &[&str] = &[
    "src_packets_1s",
    "src_packets_10s",
    "src_packets_1m",
    "src_new_flows_1s",
    "src_new_flows_10s",
    "src_new_flows_1m",
    "src_ports",
    "dst_packets_1s",
    "dst_packets_10s",
    "dst_packets_1m",
    "dst_new_flows_1s",
    "dst_new_flows_10s",
    "dst_new_flows_1m",
    "pair_byte_ratio_1s",
];

/// The first version's default set (`--features packet`). Those from
/// [`OPTIONAL_COLUMNS`] are only used when a CSV input has the column.
pub const PACKET_FEATURES: [&str; 11] = [
    "length",
    "ip_protocol",
    "source_port",
    "destination_port",
    "ttl",
    "tcp_flags",
    "source_is_private",
    "destination_is_private",
    "flow_packets",
    "flow_mean_length",
    "flow_gap",
];

/// Capture columns that the packet set uses only when a CSV has them.
pub const OPTIONAL_COLUMNS: [&str; 4] = ["source_port", "destination_port", "ttl", "tcp_flags"];

/// The IP protocol of a protocol name no table knows.
pub const UNKNOWN_PROTOCOL: u8 = 255;

/// The scales' names, as features are named.
pub const SCALE_NAMES: [&str; SCALES] = ["1s", "10s", "1m"];

/// Which host of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Src,
    Dst,
}

/// A decayed count of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Packets,
    NewFlows,
}

/// Where one feature comes from in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
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
    /// `log2(flow packets)`.
    FlowPacketsLog,
    /// `log2(1 + ms since the flow's previous packet)`.
    FlowGapLog,
    /// `log2(1 + per-second rate)` of a count at a scale.
    Rate(Host, Count, usize),
    /// New flows among the host's packets at a scale (0 to 1).
    NewFlowShare(Host, usize),
    /// `log2(1 + distinct peers)` over the last 8.6 to 17 s (estimated).
    Peers(Host),
    /// `log2(1 + distinct destination ports)`, same window.
    Ports(Host),
    /// `log2(1 + seconds since first seen)`.
    Age(Host),
    PairAge,
    /// `log2((bytes this way + 1) / (bytes back + 1))` at a pair scale.
    PairByteRatio(usize),
}

/// Every feature by name, with what it means (for `--help` and errors).
pub fn catalogue() -> &'static [(String, Field)] {
    static ALL: OnceLock<Vec<(String, Field)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<(String, Field)> = [
            ("length", Field::Length),
            ("ip_protocol", Field::IpProtocol),
            ("source_port", Field::SrcPort),
            ("destination_port", Field::DstPort),
            ("ttl", Field::Ttl),
            ("tcp_flags", Field::TcpFlags),
            ("source_is_private", Field::SrcPrivate),
            ("destination_is_private", Field::DstPrivate),
            ("flow_packets", Field::FlowPackets),
            ("flow_mean_length", Field::FlowMeanLength),
            ("flow_gap", Field::FlowGap),
            ("flow_packets_log", Field::FlowPacketsLog),
            ("flow_gap_log", Field::FlowGapLog),
            ("pair_age", Field::PairAge),
        ]
        .into_iter()
        .map(|(n, f)| (n.to_string(), f))
        .collect();
        for (host, h) in [(Host::Src, "src"), (Host::Dst, "dst")] {
            for (k, scale) in SCALE_NAMES.iter().enumerate() {
                for (count, c) in [(Count::Packets, "packets"), (Count::NewFlows, "new_flows")] {
                    all.push((format!("{h}_{c}_{scale}"), Field::Rate(host, count, k)));
                }
                all.push((
                    format!("{h}_new_flow_share_{scale}"),
                    Field::NewFlowShare(host, k),
                ));
            }
            all.push((format!("{h}_peers"), Field::Peers(host)));
            all.push((format!("{h}_ports"), Field::Ports(host)));
            all.push((format!("{h}_age"), Field::Age(host)));
        }
        for (i, &k) in PAIR_BYTE_SCALES.iter().enumerate() {
            all.push((
                format!("pair_byte_ratio_{}", SCALE_NAMES[k]),
                Field::PairByteRatio(i),
            ));
        }
        all
    })
}

impl Field {
    pub fn of(name: &str) -> Option<Field> {
        catalogue().iter().find(|(n, _)| n == name).map(|&(_, f)| f)
    }

    fn name(self) -> &'static str {
        catalogue()
            .iter()
            .find(|&&(_, f)| f == self)
            .map(|(n, _)| n.as_str())
            .expect("every field has a name")
    }
}

/// A feature in words, and its value in natural units (rates per second,
/// counts, ratios rather than their `log2`), for alert reasons.
pub fn describe(name: &str, v: f32) -> (String, f64) {
    let un_log = |x: f32| 2f64.powf(x as f64) - 1.0;
    let scale = |k: usize| match k {
        0 => "1 s",
        1 => "10 s",
        _ => "1 min",
    };
    let host = |h: Host| match h {
        Host::Src => "from the source",
        Host::Dst => "to the destination",
    };
    match Field::of(name) {
        Some(Field::Rate(h, Count::Packets, k)) => (
            format!("packets per second {} ({})", host(h), scale(k)),
            un_log(v),
        ),
        Some(Field::Rate(h, Count::NewFlows, k)) => (
            format!("new flows per second {} ({})", host(h), scale(k)),
            un_log(v),
        ),
        Some(Field::Ports(Host::Src)) => ("destination ports per source (10 s)".into(), un_log(v)),
        Some(Field::Ports(Host::Dst)) => ("ports hit on the destination (10 s)".into(), un_log(v)),
        Some(Field::Peers(Host::Src)) => ("destinations per source (10 s)".into(), un_log(v)),
        Some(Field::Peers(Host::Dst)) => ("sources per destination (10 s)".into(), un_log(v)),
        Some(Field::PairByteRatio(i)) => (
            format!(
                "bytes this way per byte back ({})",
                scale(PAIR_BYTE_SCALES[i])
            ),
            2f64.powf(v as f64),
        ),
        Some(Field::Age(h)) => (format!("seconds since first seen ({})", host(h)), un_log(v)),
        _ => (name.to_string(), v as f64),
    }
}

/// Seconds from nanoseconds as the capture CSV writes them: whole
/// microseconds (truncated), read back as the nearest double.
pub fn csv_seconds(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1e6
}

/// `log2(1 + x)`.
#[inline]
fn log1p2(x: f64) -> f32 {
    (x.max(0.0) + 1.0).log2() as f32
}

/// Per second, from a decayed count in 1/16 at scale `k` of a state first
/// seen `age_s` seconds ago. A steady rate `r` held for `a` seconds holds
/// `r * W` with `W = H / ln 2 * (1 - 2^(-a / H))`: dividing by `W` rather
/// than by its limit `H / ln 2` reads the rate right from a host's first
/// seconds, so that traffic seen in a short warm-up (while the minute's
/// count is still growing) reads the same later. `a` counts as at least
/// 1 s: a host's first packet reads about one packet a second.
#[inline]
fn per_second(sixteenths: u32, k: usize, age_s: f64) -> f64 {
    let h = (1u64 << HALF_LIFE_SHIFT[k]) as f64 / 1e9;
    let window = h / std::f64::consts::LN_2 * (1.0 - (-age_s.max(1.0) / h).exp2());
    sixteenths as f64 / 16.0 / window
}

/// An age of the records in seconds.
fn age_seconds(age: u32) -> f64 {
    ((age as u64) << AGE_SHIFT) as f64 / 1e9
}

/// Distinct values behind `bits` of a 64-bit bitmap (linear counting; a
/// full bitmap reads as 63.5 bits).
#[inline]
pub fn distinct(bits: u16) -> f64 {
    let z = (bits.min(64) as f64).min(63.5);
    -64.0 * (1.0 - z / 64.0).ln()
}

fn host(r: &PacketRecord, h: Host) -> &HostView {
    match h {
        Host::Src => &r.behaviour.src,
        Host::Dst => &r.behaviour.dst,
    }
}

fn ratio(a: u32, b: u32) -> f32 {
    if b == 0 {
        0.0
    } else {
        (a as f64 / b as f64).min(1.0) as f32
    }
}

/// The features a model expects, in its order, computed from records.
#[derive(Debug, Clone)]
pub struct RecordFeatures {
    fields: Vec<Field>,
}

impl RecordFeatures {
    /// Maps a model's feature names to record fields; every name must be a
    /// packet feature (the seed set and arbitrary columns need whole files).
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
                 fitted on packet features (`detect --features default --save-model`), whose \
                 features are: {}",
                if unknown.len() == 1 {
                    "a feature"
                } else {
                    "features"
                },
                unknown.join(", "),
                DEFAULT_FEATURES.join(", ")
            );
        }
        Ok(RecordFeatures { fields })
    }

    /// The default set, for fitting on live records.
    pub fn default_set() -> Self {
        let names: Vec<String> = DEFAULT_FEATURES.iter().map(|n| n.to_string()).collect();
        RecordFeatures::for_model(&names).expect("every default feature has a source")
    }

    pub fn names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name().to_string()).collect()
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
            Field::FlowPacketsLog => (r.flow_packets.max(1) as f64).log2() as f32,
            Field::FlowGapLog => log1p2(r.flow_gap_ns as f64 / 1e6),
            Field::Rate(h, c, k) => {
                let v = host(r, h);
                let n = match c {
                    Count::Packets => v.packets[k],
                    Count::NewFlows => v.new_flows[k],
                };
                log1p2(per_second(n, k, age_seconds(v.age)))
            }
            Field::NewFlowShare(h, k) => ratio(host(r, h).new_flows[k], host(r, h).packets[k]),
            Field::Peers(h) => log1p2(distinct(host(r, h).peers)),
            Field::Ports(h) => log1p2(distinct(host(r, h).ports)),
            Field::Age(h) => log1p2(age_seconds(host(r, h).age)),
            Field::PairAge => log1p2(age_seconds(r.behaviour.pair.age)),
            Field::PairByteRatio(i) => {
                let p = &r.behaviour.pair;
                ((p.bytes_out[i] as f64 + 1.0) / (p.bytes_back[i] as f64 + 1.0)).log2() as f32
            }
        }
    }

    /// These features followed by those of `other` not among them, and
    /// where each of `other`'s features sits in that list.
    pub fn union(&self, other: &RecordFeatures) -> (RecordFeatures, Vec<usize>) {
        let mut fields = self.fields.clone();
        let positions = other
            .fields
            .iter()
            .map(|f| match fields.iter().position(|g| g == f) {
                Some(p) => p,
                None => {
                    fields.push(*f);
                    fields.len() - 1
                }
            })
            .collect();
        (RecordFeatures { fields }, positions)
    }

    /// The features of `records`, column after column, into `out`.
    pub fn fill_columns(&self, records: &[PacketRecord], out: &mut Vec<f32>) {
        let n = records.len();
        out.clear();
        out.resize(self.len() * n, 0.0);
        for f in 0..self.len() {
            let column = &mut out[f * n..(f + 1) * n];
            for (slot, record) in column.iter_mut().zip(records) {
                *slot = self.value(f, record);
            }
        }
    }

    /// The features of `records` as a matrix.
    pub fn matrix(&self, records: &[PacketRecord]) -> super::FeatureMatrix {
        let mut m = super::FeatureMatrix::zeros(self.names(), records.len());
        for (row, r) in records.iter().enumerate() {
            self.set_row(r, &mut m, row);
        }
        m
    }

    /// Writes the features of `r` into row `row` of `m` (whose columns are
    /// these features).
    #[inline]
    pub fn set_row(&self, r: &PacketRecord, m: &mut super::FeatureMatrix, row: usize) {
        for f in 0..self.len() {
            m.set(row, f, self.value(f, r));
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
        assert_eq!(RecordFeatures::default_set().names(), DEFAULT_FEATURES);
        // Every catalogued name maps back to itself.
        for (name, field) in catalogue() {
            assert_eq!(Field::of(name), Some(*field));
            assert_eq!(field.name(), name);
        }
    }

    /// The live path (features from records) against the file path (the
    /// records written as `sniff` rows, then read back as records and
    /// counted again): the same values, for every feature of the catalogue.
    /// Timestamps are whole microseconds, as the CSV keeps them (a live
    /// record's nanoseconds would move a decay tick now and then).
    #[test]
    fn records_give_the_features_their_csv_rows_give() {
        use crate::capture::csv_rows::{new_table, push_record, RowFormatter};
        use crate::capture::state::StateTables;
        use crate::features::cells::PacketColumns;
        use crate::features::from_records;
        use crate::features::original::OriginalContext;
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
            // Bursts and pauses, in whole microseconds.
            now += if rng.gen_bool(0.05) {
                rng.gen_range(0..20_000_000u64) * 1000
            } else {
                rng.gen_range(0..20_000u64) * 1000
            };
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
        let names: Vec<String> = catalogue().iter().map(|(n, _)| n.clone()).collect();
        let cols = PacketColumns::find(&table).unwrap();
        let original = OriginalContext::new(&table, cols).unwrap();
        let from_csv = from_records(&table, &cols, &original, &names).unwrap();
        let live = RecordFeatures::for_model(&names).unwrap();
        // Enough traffic that decayed rates are far from a first packet's.
        assert!(
            records
                .iter()
                .filter(|r| r.behaviour.dst.packets[1] > 48)
                .count()
                > 500
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
