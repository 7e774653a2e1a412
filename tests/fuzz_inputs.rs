//! Fuzzing every input format (CSV, pcap, pcapng, model files) with
//! proptest: valid inputs mutated by bit flips, truncations, inserted and
//! removed bytes and huge length fields go through the same readers the
//! commands use, and beyond them (features of a table read, records of a
//! capture through the parser and the flow table, a loaded model applied
//! to rows). Each must give a result or a clean error, never a panic.
//!
//! 1,000 cases per format by default (seconds); `PROPTEST_CASES=100000` fuzzes
//! longer.

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use ml_sniffing::capture::pcap::{self, CaptureReader};
use ml_sniffing::capture::state::StateTables;
use ml_sniffing::features::{self, FeatureSet, Selection};
use ml_sniffing::io::csv_input::read_csv_from;
use ml_sniffing::io::Table;
use ml_sniffing::model_file::SavedModel;
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use proptest::prelude::*;
use proptest::sample::Index;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

// ---- Mutations ----

/// Lengths a corrupt field is most likely to hold.
const HUGE: [u32; 6] = [u32::MAX, u32::MAX - 3, 0x8000_0000, 0x0100_0000, 262_145, 0];

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// A 4-byte field set to a huge length, in either byte order.
    HugeLength(Index, u32, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<Index>(), 1usize..32).prop_map(|(i, n)| Mutation::Remove(i, n)),
        2 => (any::<Index>(), prop::sample::select(HUGE.to_vec()), any::<bool>())
            .prop_map(|(i, v, little)| Mutation::HugeLength(i, v, little)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..5)
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        if bytes.is_empty() {
            return;
        }
        match m {
            Mutation::FlipBit(i, bit) => {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Insert(i, v) => {
                let i = i.index(bytes.len() + 1);
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let i = i.index(bytes.len());
                bytes.drain(i..(i + n).min(bytes.len()));
            }
            Mutation::HugeLength(i, v, little) => {
                if bytes.len() >= 4 {
                    let i = i.index(bytes.len() - 3);
                    let v = if *little {
                        v.to_le_bytes()
                    } else {
                        v.to_be_bytes()
                    };
                    bytes[i..i + 4].copy_from_slice(&v);
                }
            }
        }
    }
}

// ---- Valid inputs ----

fn frames() -> Vec<Vec<u8>> {
    let ip = |s: &str| s.parse().unwrap();
    let v4 = |t| FrameSpec::new(ip("192.0.2.1"), ip("198.51.100.7"), t);
    let v6 = |t| FrameSpec::new(ip("2001:db8::1"), ip("fd00::2"), t);
    vec![
        v4(Transport::Tcp {
            src: 40000,
            dst: 443,
            flags: tcp_flags::SYN,
        })
        .build(),
        v4(Transport::Udp { src: 53, dst: 4000 })
            .payload(60)
            .build(),
        v6(Transport::Udp { src: 9, dst: 10 })
            .ipv6_extension(0)
            .vlan(7)
            .build(),
        v4(Transport::Icmp { kind: 8, code: 0 }).payload(20).build(),
    ]
}

fn classic(endianness: Endianness, resolution: TsResolution) -> Vec<u8> {
    let header = PcapHeader {
        endianness,
        ts_resolution: resolution,
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, f) in frames().iter().enumerate() {
        let ts = Duration::from_micros(1_700_000_000_000_000 + i as u64 * 250);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
    w.into_writer()
}

fn pcapng(endianness: Endianness) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
    w.write_block(&Block::InterfaceDescription(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![
            InterfaceDescriptionOption::IfTsResol(9),
            InterfaceDescriptionOption::IfTsOffset(10),
        ],
    }))
    .unwrap();
    for (i, f) in frames().iter().enumerate() {
        w.write_block(&Block::EnhancedPacket(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(1_700_000_000_000_000_000 + i as u64 * 250_000),
            original_len: f.len() as u32,
            data: Cow::Borrowed(f),
            options: vec![],
        }))
        .unwrap();
    }
    w.into_inner()
}

/// Rows as `sniff` writes them, and a labelled CSV of other columns.
fn csvs() -> [&'static str; 2] {
    [
        "timestamp,source_ip,destination_ip,protocol,length,source_port,destination_port,ttl,\
         tcp_flags,vlan_id,flow_packets,flow_bytes,flow_gap,ip_version,fragment\n\
         1712589010.595727,192.0.2.1,198.51.100.7,tcp,54,40000,443,63,2,0,1,54,0.000000,4,0\n\
         1712589010.595977,198.51.100.7,192.0.2.1,tcp,54,443,40000,57,18,0,1,54,0.000000,4,0\n\
         1712589010.598728,2001:db8::1,fd00::2,udp,78,9,10,64,0,0,1,78,0.000000,6,0\n\
         1712589010.601727,192.0.2.1,198.51.100.7,udp,142,53,4000,64,0,0,1,142,0.000000,4,1\n",
        "size,port,name,label\n60,53,\"a,b\",usual\n960,6000,x,odd\n61,,\"q\"\"\",usual\n",
    ]
}

// ---- Targets ----

/// A table read from `bytes`, then the features `detect` would compute.
fn csv_target(bytes: &[u8]) {
    let Ok(table) = read_csv_from(bytes, Path::new("fuzz.csv"), |_| {}) else {
        return;
    };
    assert!(!table.is_empty());
    for selection in [
        Selection::Set(FeatureSet::Default),
        Selection::Set(FeatureSet::Seed),
        Selection::Columns(vec!["size".into(), "port".into()]),
    ] {
        let _ = features::engineer(&table, &selection);
    }
}

/// Every record of the capture, through the parser and the flow table.
fn capture_target(bytes: &[u8]) {
    let Ok(mut reader) = CaptureReader::new(bytes, "fuzz.pcap") else {
        return;
    };
    let mut flows = StateTables::with_capacity(64);
    let mut records = 0u64;
    if let Ok(summary) = pcap::read_records(
        &mut reader,
        &mut flows,
        pcap::Options::default(),
        |_| {
            records += 1;
            Ok(())
        },
        |_| {},
    ) {
        assert_eq!(summary.records, records);
        assert!(summary.records <= summary.frames);
        // Damage after the first frame is salvaged, never both kinds.
        assert!(summary.truncation.is_none() || summary.corruption.is_none());
    }
}

/// Model files saved by `detect` and `classify` on `csvs()[1]`, and a
/// table to apply them to.
fn models() -> &'static (Vec<Vec<u8>>, Table) {
    static MODELS: OnceLock<(Vec<Vec<u8>>, Table)> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = String::from("size,port,name,label\n");
        for i in 0..60 {
            let odd = i % 6 == 0;
            rows.push_str(&format!(
                "{},{},{},{}\n",
                60 + i % 7 + odd as usize * 900,
                if odd { 6000 } else { 53 },
                ["a", "b", "c"][i % 3],
                if odd { "odd" } else { "usual" }
            ));
        }
        let input = dir.path().join("rows.csv");
        std::fs::write(&input, &rows).unwrap();
        let run = |args: &[&str]| {
            let status = std::process::Command::new(env!("CARGO_BIN_EXE_ml-sniffing"))
                .args(args)
                .current_dir(dir.path())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{args:?}");
        };
        run(&[
            "detect",
            "rows.csv",
            "--feature-columns",
            "size,port",
            "--n-estimators",
            "4",
            "--top-n",
            "0",
            "--save-model",
            "if.model",
        ]);
        run(&[
            "classify",
            "rows.csv",
            "--label-column",
            "label",
            "--n-estimators",
            "4",
            "--save-model",
            "rf.model",
        ]);
        let bytes = ["if.model", "rf.model"].map(|m| std::fs::read(dir.path().join(m)).unwrap());
        let table = read_csv_from(rows.as_bytes(), Path::new("rows.csv"), |_| {}).unwrap();
        (bytes.to_vec(), table)
    })
}

/// A model file read, then applied to rows (walking every tree).
fn model_target(bytes: &[u8]) {
    let Ok(saved) = SavedModel::from_bytes(bytes, "fuzz.model") else {
        return;
    };
    let Ok(data) = saved.plan().apply(&models().1) else {
        return;
    };
    match &saved {
        SavedModel::IsolationForest { model, .. } => {
            let scores = model.decision_function(&data);
            assert_eq!(scores.len(), data.n_rows());
        }
        SavedModel::RandomForest { model, .. } => {
            let proba =
                ml_sniffing_forest::score::ForestScorer::new(model.clone()).probabilities(&data);
            assert_eq!(proba.len(), data.n_rows() * model.n_classes());
        }
    }
}

/// Sets the trailing CRC-32 right again, so that a mutation reaches the
/// parsing behind the checksum.
fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() >= 4 {
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Numbers a corrupt header is most likely to hold.
const HUGE_JSON: [&str; 7] = [
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "9007199254740993",
    "-1",
    "1e308",
    "0",
];

/// Replaces the `which`-th number of the JSON header by `number`, with the
/// header length and the checksum made right again: a valid file whose
/// fields (array lengths, depth, feature counts...) lie.
fn replace_header_number(bytes: &[u8], which: Index, number: &str) -> Vec<u8> {
    let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let header = &bytes[20..20 + header_len];
    let numbers: Vec<(usize, usize)> = {
        let mut spans = Vec::new();
        let mut i = 0;
        while i < header.len() {
            if header[i].is_ascii_digit() && (i == 0 || !header[i - 1].is_ascii_alphanumeric()) {
                let start = i;
                while i < header.len() && (header[i].is_ascii_digit() || header[i] == b'.') {
                    i += 1;
                }
                spans.push((start, i));
            } else {
                i += 1;
            }
        }
        spans
    };
    let (start, end) = numbers[which.index(numbers.len())];
    let mut new_header = header[..start].to_vec();
    new_header.extend_from_slice(number.as_bytes());
    new_header.extend_from_slice(&header[end..]);
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(new_header.len() as u64).to_le_bytes());
    out.extend_from_slice(&new_header);
    out.extend_from_slice(&bytes[20 + header_len..]);
    fix_checksum(&mut out);
    out
}

proptest! {
    // No regression files: a failure prints its minimal input, which goes
    // into a unit test next to the parser.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_csv_never_panics(which in 0usize..2, edits in mutations()) {
        let mut bytes = csvs()[which].as_bytes().to_vec();
        apply(&mut bytes, &edits);
        csv_target(&bytes);
    }

    #[test]
    fn mutated_pcap_never_panics(which in 0usize..4, edits in mutations()) {
        let mut bytes = match which {
            0 => classic(Endianness::Little, TsResolution::MicroSecond),
            1 => classic(Endianness::Big, TsResolution::MicroSecond),
            2 => classic(Endianness::Little, TsResolution::NanoSecond),
            _ => classic(Endianness::Big, TsResolution::NanoSecond),
        };
        apply(&mut bytes, &edits);
        capture_target(&bytes);
    }

    #[test]
    fn mutated_pcapng_never_panics(little in any::<bool>(), edits in mutations()) {
        let mut bytes = pcapng(if little { Endianness::Little } else { Endianness::Big });
        apply(&mut bytes, &edits);
        capture_target(&bytes);
    }

    #[test]
    fn mutated_model_files_never_panic(
        which in 0usize..2,
        edits in mutations(),
        checksum_fixed in any::<bool>(),
    ) {
        let mut bytes = models().0[which].clone();
        apply(&mut bytes, &edits);
        if checksum_fixed {
            fix_checksum(&mut bytes);
        }
        model_target(&bytes);
    }

    #[test]
    fn model_files_whose_header_lies_never_panic(
        which in 0usize..2,
        number in any::<Index>(),
        value in prop::sample::select(HUGE_JSON.to_vec()),
    ) {
        let bytes = replace_header_number(&models().0[which], number, value);
        model_target(&bytes);
    }
}

/// The valid inputs are valid: the targets read them whole, so mutations
/// start from inputs that reach every stage.
#[test]
fn the_inputs_mutated_are_valid() {
    for csv in csvs() {
        let table = read_csv_from(csv.as_bytes(), Path::new("x.csv"), |_| {}).unwrap();
        assert!(table.len() >= 3);
    }
    for bytes in [
        classic(Endianness::Little, TsResolution::MicroSecond),
        pcapng(Endianness::Big),
    ] {
        let mut reader = CaptureReader::new(&bytes[..], "x").unwrap();
        let mut flows = StateTables::default();
        let summary = pcap::read_records(
            &mut reader,
            &mut flows,
            pcap::Options::default(),
            |_| Ok(()),
            |_| {},
        )
        .unwrap();
        assert_eq!(summary.records, frames().len() as u64);
    }
    for bytes in &models().0 {
        let saved = SavedModel::from_bytes(bytes, "x").unwrap();
        saved.plan().apply(&models().1).unwrap();
    }
}
