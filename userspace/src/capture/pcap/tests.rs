//! Reader tests on captures written with pcap-file's writers, on damaged
//! captures, and on arbitrary bytes.

use std::borrow::Cow;
use std::time::Duration;

use ml_sniffing_common::build::{FrameSpec, Transport};
use ml_sniffing_common::parser::Link;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsBlock;
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::{Block, PcapNgWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use proptest::prelude::*;

use super::*;

/// What a frame read back must be.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Read {
    data: Vec<u8>,
    wire_len: u32,
    timestamp_ns: u64,
    link: Link,
}

fn read_all(bytes: &[u8]) -> Result<(Vec<Read>, Option<Truncation>)> {
    let mut reader = CaptureReader::new(bytes, "test.cap")?;
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame()? {
        frames.push(Read {
            data: f.data.to_vec(),
            wire_len: f.wire_len,
            timestamp_ns: f.timestamp_ns,
            link: f.link,
        });
    }
    assert_eq!(reader.frames(), frames.len() as u64);
    Ok((frames, reader.truncation().cloned()))
}

fn error(bytes: &[u8]) -> String {
    match read_all(bytes) {
        Ok((frames, _)) => panic!("read {} frames, expected an error", frames.len()),
        Err(e) => format!("{e:#}"),
    }
}

fn frames() -> Vec<Vec<u8>> {
    let v4 = |t| FrameSpec::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), t);
    vec![
        v4(Transport::Tcp {
            src: 1,
            dst: 2,
            flags: 2,
        })
        .build(),
        v4(Transport::Udp { src: 3, dst: 4 }).payload(33).build(),
        FrameSpec::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            Transport::Icmp { kind: 128, code: 0 },
        )
        .vlan(9)
        .build(),
    ]
}

/// (epoch ns, captured bytes, length on the wire) of the test packets; the
/// second one is cut to 20 bytes as with a snap length.
fn packets() -> Vec<(u64, Vec<u8>, u32)> {
    frames()
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let wire = f.len() as u32;
            let kept = if i == 1 { f[..20].to_vec() } else { f };
            (
                1_700_000_000_123_456_789 + i as u64 * 1_000_001_001,
                kept,
                wire,
            )
        })
        .collect()
}

fn classic(endianness: Endianness, resolution: TsResolution, link: DataLink) -> Vec<u8> {
    let header = PcapHeader {
        endianness,
        ts_resolution: resolution,
        datalink: link,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ns, data, wire) in packets() {
        w.write_packet(&PcapPacket::new(Duration::from_nanos(ns), wire, &data))
            .unwrap();
    }
    w.into_writer()
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions() {
    for endianness in [Endianness::Little, Endianness::Big] {
        for resolution in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
            let bytes = classic(endianness, resolution, DataLink::ETHERNET);
            let format = CaptureReader::new(&bytes[..], "x").unwrap().format();
            assert_eq!(
                format,
                Format::Pcap {
                    little_endian: endianness == Endianness::Little,
                    nanosecond: resolution == TsResolution::NanoSecond
                }
            );
            assert_eq!(detect(&bytes[..4]), Some(format));
            let (got, truncation) = read_all(&bytes).unwrap();
            assert_eq!(truncation, None);
            let expected: Vec<Read> = packets()
                .into_iter()
                .map(|(ns, data, wire)| Read {
                    data,
                    wire_len: wire,
                    // A microsecond file keeps microseconds.
                    timestamp_ns: match resolution {
                        TsResolution::MicroSecond => ns / 1_000 * 1_000,
                        TsResolution::NanoSecond => ns,
                    },
                    link: Link::Ethernet,
                })
                .collect();
            assert_eq!(got, expected, "{endianness:?} {resolution:?}");
        }
    }
}

#[test]
fn classic_link_types_map_to_parser_framings() {
    for (link, framing) in [
        (DataLink::LINUX_SLL, Link::LinuxSll),
        (DataLink::LINUX_SLL2, Link::LinuxSll2),
        (DataLink::RAW, Link::RawIp),
        (DataLink::IPV4, Link::RawIp),
        (DataLink::from(12), Link::RawIp),
    ] {
        let bytes = classic(Endianness::Little, TsResolution::MicroSecond, link);
        let (got, _) = read_all(&bytes).unwrap();
        assert!(got.iter().all(|f| f.link == framing), "{link:?}");
    }
}

fn idb(link: DataLink, options: Vec<InterfaceDescriptionOption<'static>>) -> Block<'static> {
    Block::InterfaceDescription(InterfaceDescriptionBlock {
        linktype: link,
        snaplen: 0,
        options,
    })
}

fn epb(interface_id: u32, ticks: u64, data: &[u8], wire: u32) -> Block<'_> {
    Block::EnhancedPacket(EnhancedPacketBlock {
        interface_id,
        // pcap-file writes the Duration's nanoseconds as the raw ticks.
        timestamp: Duration::from_nanos(ticks),
        original_len: wire,
        data: Cow::Borrowed(data),
        options: vec![],
    })
}

/// Two sections of different byte orders; the first with an Ethernet
/// interface (default microsecond ticks) and a raw-IP one (nanosecond ticks,
/// 100 s offset), the second with a Linux SLL2 interface (2^-10 s ticks).
fn pcapng() -> (Vec<u8>, Vec<Read>) {
    let eth = frames()[0].clone();
    let ip = frames()[1][14..].to_vec();
    let sll2 = {
        let mut f = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        f.extend_from_slice(&frames()[0][14..]);
        f
    };
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    w.write_block(&idb(DataLink::ETHERNET, vec![])).unwrap();
    w.write_block(&idb(
        DataLink::RAW,
        vec![
            InterfaceDescriptionOption::IfTsResol(9),
            InterfaceDescriptionOption::IfTsOffset(100),
        ],
    ))
    .unwrap();
    w.write_block(&epb(0, 1_600_000_000_000_001, &eth, eth.len() as u32))
        .unwrap();
    w.write_block(&epb(1, 5, &ip, ip.len() as u32)).unwrap();
    w.write_block(&Block::InterfaceStatistics(InterfaceStatisticsBlock {
        interface_id: 0,
        timestamp: 0,
        options: vec![],
    }))
    .unwrap();
    w.write_block(&epb(0, 1_600_000_000_000_002, &eth[..30], 1000))
        .unwrap();
    w.write_block(&Block::SectionHeader(SectionHeaderBlock {
        endianness: Endianness::Big,
        ..SectionHeaderBlock::default()
    }))
    .unwrap();
    w.write_block(&idb(
        DataLink::LINUX_SLL2,
        vec![InterfaceDescriptionOption::IfTsResol(0x80 | 10)],
    ))
    .unwrap();
    w.write_block(&epb(0, 3 * 1024 + 512, &sll2, sll2.len() as u32))
        .unwrap();
    w.write_block(&Block::SimplePacket(SimplePacketBlock {
        original_len: sll2.len() as u32 - 1,
        data: Cow::Borrowed(&sll2),
    }))
    .unwrap();
    let expected = vec![
        Read {
            data: eth.clone(),
            wire_len: eth.len() as u32,
            timestamp_ns: 1_600_000_000_000_001_000,
            link: Link::Ethernet,
        },
        Read {
            data: ip.clone(),
            wire_len: ip.len() as u32,
            timestamp_ns: 100_000_000_005,
            link: Link::RawIp,
        },
        Read {
            data: eth[..30].to_vec(),
            wire_len: 1000,
            timestamp_ns: 1_600_000_000_000_002_000,
            link: Link::Ethernet,
        },
        Read {
            data: sll2.clone(),
            wire_len: sll2.len() as u32,
            timestamp_ns: 3_500_000_000,
            link: Link::LinuxSll2,
        },
        // A simple packet block: the original length cut off the padding.
        Read {
            data: sll2[..sll2.len() - 1].to_vec(),
            wire_len: sll2.len() as u32 - 1,
            timestamp_ns: 0,
            link: Link::LinuxSll2,
        },
    ];
    (w.into_inner(), expected)
}

#[test]
fn pcapng_sections_interfaces_resolutions_and_offsets() {
    let (bytes, expected) = pcapng();
    assert_eq!(detect(&bytes), Some(Format::PcapNg));
    let mut reader = CaptureReader::new(&bytes[..], "x").unwrap();
    let mut n = 0;
    while reader.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!((n, reader.sections()), (5, 2));
    let (got, truncation) = read_all(&bytes).unwrap();
    assert_eq!(truncation, None);
    assert_eq!(got, expected);
}

#[test]
fn empty_and_foreign_files_are_refused_in_one_sentence() {
    assert_eq!(
        error(b""),
        "test.cap is empty (0 bytes): expected a pcap or pcapng capture"
    );
    assert_eq!(
        error(b"timestamp,source_ip\n1,2\n"),
        "test.cap is not a pcap or pcapng capture: it starts with the bytes 74 69 6d 65 (text)"
    );
    assert!(error(b"\xd4\xc3").contains("is not a pcap or pcapng capture"));
    // A pcapng type without the byte-order magic is not a capture either.
    assert!(error(b"\n\r\r\n\n\nabcdefgh").contains("(text)"));
    let bytes = classic(
        Endianness::Little,
        TsResolution::MicroSecond,
        DataLink::ETHERNET,
    );
    assert_eq!(
        error(&bytes[..10]),
        "test.cap ends inside its pcap file header (10 of 24 bytes): the capture is truncated"
    );
}

#[test]
fn unsupported_link_types_are_named() {
    let bytes = classic(
        Endianness::Big,
        TsResolution::MicroSecond,
        DataLink::IEEE802_11,
    );
    assert_eq!(
        error(&bytes),
        "test.cap uses link type 105 (IEEE802_11), which ml-sniffing cannot read; supported \
         link types: Ethernet (1), Linux cooked capture SLL (113) and SLL2 (276), raw IP (101, \
         and 12, 14, 228, 229)"
    );
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_block(&idb(DataLink::ETHERNET, vec![])).unwrap();
    w.write_block(&idb(DataLink::from(147), vec![])).unwrap();
    w.write_block(&epb(0, 1, &frames()[0], 54)).unwrap();
    w.write_block(&epb(1, 2, &frames()[0], 54)).unwrap();
    let e = error(&w.into_inner());
    assert!(
        e.starts_with(
            "test.cap: interface 1 of section 1 uses link type 147 (USER0), which ml-sniffing \
             cannot read"
        ),
        "{e}"
    );
}

/// Offset of record `i` (0-based) in the classic capture from `classic()`.
fn record_offset(i: usize) -> usize {
    24 + packets()[..i]
        .iter()
        .map(|(_, d, _)| 16 + d.len())
        .sum::<usize>()
}

#[test]
fn a_truncated_final_record_keeps_what_came_before() {
    let bytes = classic(
        Endianness::Little,
        TsResolution::MicroSecond,
        DataLink::ETHERNET,
    );
    let last = record_offset(2);
    // Cut inside the last record's data, then inside its header.
    for cut in [bytes.len() - 1, last + 16, last + 3] {
        let (got, truncation) = read_all(&bytes[..cut]).unwrap();
        assert_eq!(got.len(), 2, "cut at {cut}");
        let t = truncation.expect("a truncation");
        assert_eq!((t.offset, t.have, t.frames), (last as u64, cut - last, 2));
        assert_eq!(
            t.need,
            if cut - last < 16 {
                16
            } else {
                bytes.len() - last
            }
        );
        assert!(t.warning("f.pcap").starts_with(&format!(
            "f.pcap ends inside a record at byte offset {last} ("
        )));
    }
    let (got, truncation) = read_all(&bytes[..last]).unwrap();
    assert_eq!((got.len(), truncation), (2, None));
}

/// Reads a capture that must end at a corrupt record or block.
fn read_salvaged(bytes: &[u8]) -> (Vec<Read>, Corruption) {
    let mut reader = CaptureReader::new(bytes, "test.cap").unwrap();
    let mut n = 0;
    while reader.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert!(reader.truncation().is_none());
    let corruption = reader.corruption().expect("a corruption").clone();
    let (frames, _) = read_all(bytes).unwrap();
    assert_eq!(frames.len(), n);
    (frames, corruption)
}

/// A corrupt record header keeps every packet before it, as tcpdump does
/// (it used to discard them all); a corrupt first record is an error.
#[test]
fn a_corrupt_record_length_keeps_the_packets_before_it() {
    for little in [true, false] {
        let endianness = if little {
            Endianness::Little
        } else {
            Endianness::Big
        };
        let good = classic(endianness, TsResolution::NanoSecond, DataLink::ETHERNET);
        let (all, _) = read_all(&good).unwrap();
        let bad = if little {
            0xffff_fff0u32.to_le_bytes()
        } else {
            0xffff_fff0u32.to_be_bytes()
        };
        for record in [1, 2] {
            let at = record_offset(record);
            let mut bytes = good.clone();
            bytes[at + 8..at + 12].copy_from_slice(&bad);
            let (got, c) = read_salvaged(&bytes);
            assert_eq!(got, all[..record]);
            assert_eq!((c.offset, c.frames), (at as u64, record as u64));
            assert_eq!(
                c.warning("f.pcap"),
                format!(
                    "f.pcap is corrupt at byte offset {at}: the record header announces \
                     4294967280 captured bytes, more than the 262144 a capture can hold; the \
                     {record} packets before it were read and the rest of the file was skipped"
                )
            );
        }
        let mut bytes = good.clone();
        bytes[24 + 8..24 + 12].copy_from_slice(&bad);
        assert_eq!(
            error(&bytes),
            "test.cap is corrupt at byte offset 24: the record header announces 4294967280 \
             captured bytes, more than the 262144 a capture can hold (0 packets were read \
             before it)"
        );
    }
}

/// Offset of every block of the capture from `pcapng()`.
fn block_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let (mut at, mut little) = (0, true);
    while at < bytes.len() {
        if bytes[at..at + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            little = bytes[at + 8] == 0x4d;
        }
        let len: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap();
        offsets.push(at);
        at += if little {
            u32::from_le_bytes(len)
        } else {
            u32::from_be_bytes(len)
        } as usize;
    }
    offsets
}

#[test]
fn a_corrupt_pcapng_block_keeps_the_packets_before_it() {
    let (bytes, expected) = pcapng();
    let blocks = block_offsets(&bytes);
    // SHB, IDB, IDB, EPB, EPB, ISB, EPB, SHB (big-endian), IDB, EPB, SPB.
    assert_eq!(blocks.len(), 11);
    // A length that is no block length, in the first section (after 2
    // packets), then one that disagrees with the trailing copy in the
    // second (after 4).
    let mut bad = bytes.clone();
    bad[blocks[5] + 4..blocks[5] + 8].copy_from_slice(&13u32.to_le_bytes());
    let (got, c) = read_salvaged(&bad);
    assert_eq!(got, expected[..2]);
    assert_eq!((c.offset, c.frames), (blocks[5] as u64, 2));
    assert!(
        c.what
            .starts_with("the block header announces a length of 13 bytes"),
        "{}",
        c.what
    );
    let mut bad = bytes.clone();
    bad[blocks[10] + 4..blocks[10] + 8].copy_from_slice(&12u32.to_be_bytes());
    let (got, c) = read_salvaged(&bad);
    assert_eq!(got, expected[..4]);
    assert_eq!((c.offset, c.frames), (blocks[10] as u64, 4));
    // A packet on an interface the section does not describe.
    let mut bad = bytes.clone();
    bad[blocks[6] + 8..blocks[6] + 12].copy_from_slice(&7u32.to_le_bytes());
    let (got, c) = read_salvaged(&bad);
    assert_eq!(got, expected[..2]);
    assert!(
        c.what.starts_with("a packet refers to interface 7"),
        "{}",
        c.what
    );
}

#[test]
fn damaged_pcapng_blocks_stop_with_their_offset() {
    let (bytes, _) = pcapng();
    // The first block is the section header; the second the first IDB.
    let shb_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let mut bad = bytes.clone();
    bad[shb_len + 4..shb_len + 8].copy_from_slice(&13u32.to_le_bytes());
    let e = error(&bad);
    assert!(
        e.starts_with(&format!(
            "test.cap is corrupt at byte offset {shb_len}: the block header announces a length \
             of 13 bytes"
        )),
        "{e}"
    );
    // A length that stays plausible but disagrees with the trailing copy.
    let mut bad = bytes.clone();
    bad[shb_len + 4..shb_len + 8].copy_from_slice(&24u32.to_le_bytes());
    let e = error(&bad);
    assert!(
        e.starts_with(&format!("test.cap is corrupt at byte offset {shb_len}: ")),
        "{e}"
    );
    // A packet on an interface the section does not describe.
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_block(&idb(DataLink::ETHERNET, vec![])).unwrap();
    let at = w.get_ref().len();
    w.write_raw_block(&pcap_file::pcapng::RawBlock {
        type_: 6,
        initial_len: 32 + 20 - 8,
        body: Cow::Owned({
            let mut body = vec![0u8; 20];
            body[0] = 7; // interface 7, in native (little) order
            body.extend_from_slice(&[0; 12]);
            body
        }),
        trailer_len: 32 + 20 - 8,
    })
    .unwrap();
    let e = error(&w.into_inner());
    assert!(
        e.contains(&format!(
            "corrupt at byte offset {at}: a packet refers to interface 7"
        )),
        "{e}"
    );
    // A truncated final block keeps the packets before it.
    let (got, truncation) = read_all(&bytes[..bytes.len() - 5]).unwrap();
    assert_eq!(got.len(), 4);
    assert!(truncation.is_some());
}

#[test]
fn is_capture_reads_only_the_magic() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("a.csv");
    std::fs::write(
        &pcap,
        classic(
            Endianness::Big,
            TsResolution::MicroSecond,
            DataLink::ETHERNET,
        ),
    )
    .unwrap();
    let csv = dir.path().join("b.pcap");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let short = dir.path().join("c");
    std::fs::write(&short, "a").unwrap();
    assert!(is_capture(&pcap).unwrap());
    assert!(!is_capture(&csv).unwrap());
    assert!(!is_capture(&short).unwrap());
}

/// Reads everything, returning the frame count, the truncation or the
/// error; must never panic.
fn consume(bytes: &[u8]) -> std::result::Result<(usize, bool), String> {
    let mut reader = CaptureReader::new(bytes, "fuzz").map_err(|e| e.to_string())?;
    let mut n = 0;
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => {
                assert!(f.data.len() <= f.wire_len as usize);
                assert!(f.data.len() <= MAX_BLOCK as usize);
                n += 1;
            }
            Ok(None) => return Ok((n, reader.truncation().is_some())),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn valid_captures() -> Vec<Vec<u8>> {
    vec![
        classic(
            Endianness::Little,
            TsResolution::MicroSecond,
            DataLink::ETHERNET,
        ),
        classic(Endianness::Big, TsResolution::NanoSecond, DataLink::RAW),
        pcapng().0,
    ]
}

/// 2,000 cases each by default; set `PROPTEST_CASES` to fuzz longer.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = consume(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_magic_never_panic(
        magic in prop::sample::select(vec![
            vec![0xd4, 0xc3, 0xb2, 0xa1],
            vec![0xa1, 0xb2, 0x3c, 0x4d],
            vec![0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a],
            vec![0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x1c, 0x1a, 0x2b, 0x3c, 0x4d],
        ]),
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let _ = consume(&[magic, rest].concat());
    }

    #[test]
    fn mutated_captures_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = valid_captures().swap_remove(which);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = consume(&bytes);
    }

    /// Cutting a capture anywhere after its header loses only the records
    /// the cut reaches, with a warning unless the cut falls between records.
    #[test]
    fn a_cut_capture_keeps_every_whole_record(which in 0usize..3, cut in any::<prop::sample::Index>()) {
        let bytes = valid_captures().swap_remove(which);
        let (all, _) = consume(&bytes).unwrap();
        let first_record = if which == 2 { 28 } else { 24 };
        let cut = first_record + cut.index(bytes.len() - first_record + 1);
        let (n, truncated) = consume(&bytes[..cut]).unwrap();
        prop_assert!(n <= all);
        if cut == bytes.len() {
            prop_assert_eq!((n, truncated), (all, false));
        }
        if which < 2 {
            let whole = (0..=3).filter(|&i| record_offset(i) <= cut).count() - 1;
            prop_assert_eq!(n, whole);
            prop_assert_eq!(truncated, record_offset(whole) != cut);
        }
    }
}

/// The pcapng specification tells readers not to rely on the end-of-options
/// marker; pcap-file does, so the reader adds it back.
#[test]
fn interface_options_without_an_end_marker() {
    let frame = frames()[0].clone();
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    w.write_block(&idb(
        DataLink::ETHERNET,
        vec![InterfaceDescriptionOption::IfTsResol(9)],
    ))
    .unwrap();
    w.write_block(&epb(0, 1_234_567_891, &frame, frame.len() as u32))
        .unwrap();
    let bytes = w.into_inner();
    let at = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    // Drop the 4-byte end-of-options marker before the trailing length.
    let mut cut = bytes[..at].to_vec();
    cut.extend_from_slice(&bytes[at..at + len - 8]);
    cut.extend_from_slice(&bytes[at + len - 4..]);
    cut[at + 4..at + 8].copy_from_slice(&((len - 4) as u32).to_le_bytes());
    cut[at + len - 8..at + len - 4].copy_from_slice(&((len - 4) as u32).to_le_bytes());
    assert!(
        pcap_file::pcapng::PcapNgReader::new(&cut[..])
            .unwrap()
            .next_block()
            .unwrap()
            .is_err(),
        "pcap-file now reads it: the guard can go"
    );
    let (got, _) = read_all(&cut).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp_ns, 1_234_567_891);
}
