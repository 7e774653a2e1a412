//! `sniff --read` and capture inputs, end to end: captures the tests write
//! themselves (every kind of frame the parser handles, in every container
//! variant) read back to exactly the expected rows; the real captures in
//! `../shared/data/pcap` (when present) against tcpdump's packet counts;
//! bad inputs give one sentence and no output file.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod support;

use assert_cmd::Command;
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::{Block, PcapNgWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use support::data::shared_data;

fn ml_sniffing() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ml-sniffing"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every packet's time: `BASE_NS` plus whole microseconds, so that micro-
/// and nanosecond captures give the same rows.
const BASE_NS: u64 = 1_712_589_010_595_727_000 + 123;

/// One packet to write: microseconds after `BASE_NS`, the captured bytes,
/// the length on the wire.
struct Packet {
    after_us: u64,
    data: Vec<u8>,
    wire_len: u32,
}

fn packet(after_us: u64, data: Vec<u8>) -> Packet {
    let wire_len = data.len() as u32;
    Packet {
        after_us,
        data,
        wire_len,
    }
}

/// Every kind of Ethernet frame the parser handles, and three it does not
/// turn into rows (ARP, a truncated IP header, a bad TCP header length).
fn ethernet_packets() -> Vec<Packet> {
    let v4 = |t| FrameSpec::new(ip("192.0.2.1"), ip("198.51.100.7"), t);
    let v4_back = |t| FrameSpec::new(ip("198.51.100.7"), ip("192.0.2.1"), t);
    let v6 = |t| FrameSpec::new(ip("2001:db8::1"), ip("fd00::2"), t);
    let tcp = |src, dst, flags| Transport::Tcp { src, dst, flags };
    let syn_ack = tcp_flags::SYN | tcp_flags::ACK;

    let mut first_fragment = v4(Transport::Udp { src: 53, dst: 4000 })
        .payload(100)
        .build();
    first_fragment[20] = 0x20; // more fragments, offset 0
    let mut later_fragment = first_fragment.clone();
    later_fragment[20] = 0x00;
    later_fragment[21] = 0x10; // offset 16 * 8 bytes, last fragment
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    let truncated_ip = v4(tcp(1, 2, 0)).build()[..24].to_vec();
    let mut bad_tcp = v4(tcp(1, 2, 0)).build();
    bad_tcp[14 + 20 + 12] = 4 << 4;
    let big = v4(tcp(40000, 443, tcp_flags::ACK)).payload(1000).build();
    let snapped = Packet {
        after_us: 9_000,
        data: big[..60].to_vec(),
        wire_len: big.len() as u32,
    };

    vec![
        packet(0, v4(tcp(40000, 443, tcp_flags::SYN)).ttl(63).build()),
        packet(250, v4_back(tcp(443, 40000, syn_ack)).ttl(57).build()),
        packet(1_750, v4(tcp(40000, 443, tcp_flags::ACK)).ttl(63).build()),
        packet(
            2_000,
            v4(Transport::Udp { src: 5353, dst: 53 })
                .payload(30)
                .build(),
        ),
        packet(
            2_001,
            v4(Transport::Icmp { kind: 8, code: 0 }).payload(56).build(),
        ),
        packet(
            2_002,
            v4(Transport::Other {
                protocol: 47,
                header: vec![0; 4],
            })
            .build(),
        ),
        packet(
            3_000,
            v6(tcp(1, 22, tcp_flags::FIN | tcp_flags::PSH | tcp_flags::URG))
                .ttl(255)
                .build(),
        ),
        packet(
            3_001,
            v6(Transport::Udp { src: 9, dst: 10 })
                .ipv6_extension(0)
                .ipv6_extension(60)
                .build(),
        ),
        packet(3_002, v6(Transport::Icmp { kind: 128, code: 0 }).build()),
        packet(
            4_000,
            v4(Transport::Udp { src: 7, dst: 8 }).vlan(100).build(),
        ),
        packet(
            4_001,
            v6(tcp(3, 4, tcp_flags::RST)).vlan(4094).vlan(5).build(),
        ),
        packet(5_000, arp),
        packet(5_001, truncated_ip),
        packet(5_002, bad_tcp),
        packet(6_000, first_fragment),
        packet(6_500, later_fragment),
        snapped,
    ]
}

/// The rows `ethernet_packets` must give, written by hand: lengths are
/// header sizes added up (Ethernet 14, VLAN tag 4, IPv4 20, IPv6 40, IPv6
/// extension 8, TCP 20, UDP 8, ICMP 8, GRE 4, payload), flow counters are
/// counted by hand (only the 40000 -> 443 TCP flow has several packets).
const EXPECTED_ROWS: &[&str] = &[
    "1712589010.595727,192.0.2.1,198.51.100.7,tcp,54,40000,443,63,2,0,1,54,0.000000,4,0",
    "1712589010.595977,198.51.100.7,192.0.2.1,tcp,54,443,40000,57,18,0,1,54,0.000000,4,0",
    "1712589010.597477,192.0.2.1,198.51.100.7,tcp,54,40000,443,63,16,0,2,108,0.001750,4,0",
    "1712589010.597727,192.0.2.1,198.51.100.7,udp,72,5353,53,64,0,0,1,72,0.000000,4,0",
    "1712589010.597728,192.0.2.1,198.51.100.7,icmp,98,8,0,64,0,0,1,98,0.000000,4,0",
    "1712589010.597729,192.0.2.1,198.51.100.7,gre,38,0,0,64,0,0,1,38,0.000000,4,0",
    "1712589010.598727,2001:db8::1,fd00::2,tcp,74,1,22,255,41,0,1,74,0.000000,6,0",
    "1712589010.598728,2001:db8::1,fd00::2,udp,78,9,10,64,0,0,1,78,0.000000,6,0",
    "1712589010.598729,2001:db8::1,fd00::2,ipv6-icmp,62,128,0,64,0,0,1,62,0.000000,6,0",
    "1712589010.599727,192.0.2.1,198.51.100.7,udp,46,7,8,64,0,100,1,46,0.000000,4,0",
    "1712589010.599728,2001:db8::1,fd00::2,tcp,82,3,4,64,4,4094,1,82,0.000000,6,0",
    "1712589010.601727,192.0.2.1,198.51.100.7,udp,142,53,4000,64,0,0,1,142,0.000000,4,1",
    "1712589010.602227,192.0.2.1,198.51.100.7,udp,142,0,0,64,0,0,1,142,0.000000,4,2",
    "1712589010.604727,192.0.2.1,198.51.100.7,tcp,1054,40000,443,64,16,0,3,1162,0.007250,4,0",
];

const HEADER: &str = "timestamp,source_ip,destination_ip,protocol,length,source_port,\
                      destination_port,ttl,tcp_flags,vlan_id,flow_packets,flow_bytes,flow_gap,\
                      ip_version,fragment";

fn classic(packets: &[Packet], endianness: Endianness, resolution: TsResolution) -> Vec<u8> {
    classic_with_link(packets, endianness, resolution, DataLink::ETHERNET)
}

fn classic_with_link(
    packets: &[Packet],
    endianness: Endianness,
    resolution: TsResolution,
    datalink: DataLink,
) -> Vec<u8> {
    let header = PcapHeader {
        endianness,
        ts_resolution: resolution,
        datalink,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for p in packets {
        let ts = Duration::from_nanos(BASE_NS + p.after_us * 1_000);
        w.write_packet(&PcapPacket::new(ts, p.wire_len, &p.data))
            .unwrap();
    }
    w.into_writer()
}

fn idb(linktype: DataLink, options: Vec<InterfaceDescriptionOption<'static>>) -> Block<'static> {
    Block::InterfaceDescription(InterfaceDescriptionBlock {
        linktype,
        snaplen: 0,
        options,
    })
}

/// Packets of `ethernet_packets` that the pcapng capture sends over its
/// Linux cooked (SLL) interface: all are alone in their flow, so their rows
/// differ from the Ethernet ones only by the 2 bytes the SLL header adds to
/// `length` and `flow_bytes`.
const ON_SLL: [usize; 8] = [1, 3, 4, 6, 7, 9, 10, 15];

/// An Ethernet frame as Linux cooked capture v1 sees it: the 12 bytes of
/// MAC addresses become packet type, ARPHRD_ETHER, address length, and the
/// 8-byte (padded) source address; the EtherType and all after it stay.
fn to_sll(frame: &[u8]) -> Vec<u8> {
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&frame[6..12]);
    sll.extend_from_slice(&[0, 0]);
    sll.extend_from_slice(&frame[12..]);
    sll
}

/// The packets over two sections (little- then big-endian), each with two
/// interfaces of different link types: Ethernet with the default
/// microsecond ticks, and Linux SLL with nanosecond ticks and a timestamp
/// offset of 1,000,000,000 s. Packets whose index is in `on_sll` go over
/// the SLL interface.
fn pcapng(packets: &[Packet], on_sll: &[usize]) -> Vec<u8> {
    const OFFSET_S: u64 = 1_000_000_000;
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    let half = packets.len() / 2;
    for (section, range) in [0..half, half..packets.len()].into_iter().enumerate() {
        if section == 1 {
            w.write_block(&Block::SectionHeader(SectionHeaderBlock {
                endianness: Endianness::Big,
                ..SectionHeaderBlock::default()
            }))
            .unwrap();
        }
        w.write_block(&idb(DataLink::ETHERNET, vec![])).unwrap();
        w.write_block(&idb(
            DataLink::LINUX_SLL,
            vec![
                InterfaceDescriptionOption::IfTsResol(9),
                InterfaceDescriptionOption::IfTsOffset(OFFSET_S),
            ],
        ))
        .unwrap();
        for i in range {
            let p = &packets[i];
            let ns = BASE_NS + p.after_us * 1_000;
            // pcap-file writes the Duration's nanoseconds as the raw ticks.
            let (interface_id, ticks, data, wire_len) = if on_sll.contains(&i) {
                let sll = to_sll(&p.data);
                (1, ns - OFFSET_S * 1_000_000_000, sll, p.wire_len + 2)
            } else {
                (0, ns / 1_000, p.data.clone(), p.wire_len)
            };
            w.write_block(&Block::EnhancedPacket(EnhancedPacketBlock {
                interface_id,
                timestamp: Duration::from_nanos(ticks),
                original_len: wire_len,
                data: Cow::Owned(data),
                options: vec![],
            }))
            .unwrap();
        }
    }
    w.into_inner()
}

/// Runs `sniff OUT --read CAPTURE ARGS`, returning stdout and the CSV.
fn sniff(capture: &Path, args: &[&str]) -> (String, String) {
    let dir = capture.parent().unwrap();
    let out = dir.join("out.csv");
    let assert = ml_sniffing()
        .arg("sniff")
        .arg(&out)
        .arg("--read")
        .arg(capture)
        .args(args)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let csv = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    (stdout, csv)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn expected_csv(rows: &[&str]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

#[test]
fn every_kind_of_frame_reads_back_to_its_row_in_every_container() {
    let dir = tempfile::tempdir().unwrap();
    let packets = ethernet_packets();
    let captures = [
        (
            "le-micro.pcap",
            classic(&packets, Endianness::Little, TsResolution::MicroSecond),
        ),
        (
            "be-nano.pcap",
            classic(&packets, Endianness::Big, TsResolution::NanoSecond),
        ),
        ("two-sections.pcapng", pcapng(&packets, &ON_SLL)),
    ];
    // The rows of the packets sent over SLL, 2 bytes longer.
    let row_of_packet: Vec<Option<usize>> = {
        let mut row = 0;
        packets
            .iter()
            .enumerate()
            .map(|(i, _)| match i {
                11..=13 => None, // ARP, truncated IP, bad TCP header
                _ => {
                    row += 1;
                    Some(row - 1)
                }
            })
            .collect()
    };
    let sll_rows: Vec<usize> = ON_SLL.iter().filter_map(|&i| row_of_packet[i]).collect();
    let on_sll: Vec<String> = EXPECTED_ROWS
        .iter()
        .enumerate()
        .map(|(row, line)| {
            if !sll_rows.contains(&row) {
                return line.to_string();
            }
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            for c in [4, 11] {
                cells[c] = (cells[c].parse::<u32>().unwrap() + 2).to_string();
            }
            cells.join(",")
        })
        .collect();
    for (name, bytes) in captures {
        let path = write(dir.path(), name, &bytes);
        let (stdout, csv) = sniff(&path, &[]);
        let expected = if name.ends_with(".pcapng") {
            on_sll.iter().map(String::as_str).collect::<Vec<_>>()
        } else {
            EXPECTED_ROWS.to_vec()
        };
        assert_eq!(csv, expected_csv(&expected), "{name}");
        assert!(
            stdout.starts_with(&format!(
                "Captured packets saved to {}\n",
                dir.path().join("out.csv").display()
            )),
            "{stdout}"
        );
        for line in [
            "  frames read      17\n",
            "  rows written     14\n",
            "  not IP           1\n",
            "  malformed        2 (1 IP header cut short, 1 TCP header length below 20 bytes)\n",
            "  cut short        1 (",
        ] {
            assert!(
                stdout.contains(line),
                "{name}: {line:?} missing from\n{stdout}"
            );
        }
    }
}

#[test]
fn ipv4_only_and_packet_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.pcap",
        &classic(
            &ethernet_packets(),
            Endianness::Little,
            TsResolution::MicroSecond,
        ),
    );
    let (stdout, csv) = sniff(&path, &["--ipv4-only"]);
    let v4: Vec<&str> = EXPECTED_ROWS
        .iter()
        .copied()
        .filter(|r| r.ends_with(",4,0") || r.ends_with(",4,1") || r.ends_with(",4,2"))
        .collect();
    assert_eq!(csv, expected_csv(&v4));
    assert!(
        stdout.contains("  IPv6 skipped     4 (--ipv4-only)\n"),
        "{stdout}"
    );

    let (stdout, csv) = sniff(&path, &["-c", "3"]);
    assert_eq!(csv, expected_csv(&EXPECTED_ROWS[..3]));
    assert!(
        stdout.contains("  stopped after --packet-count 3\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  frames read      3\n"), "{stdout}");
}

/// `-` as the output: rows on stdout (as live `sniff -`), the report on
/// stderr, and no file named `-`.
#[test]
fn dash_writes_the_rows_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.pcap",
        &classic(
            &ethernet_packets(),
            Endianness::Little,
            TsResolution::MicroSecond,
        ),
    );
    let out = ml_sniffing()
        .current_dir(dir.path())
        .args(["sniff", "-", "-c", "2", "--read"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        expected_csv(&EXPECTED_ROWS[..2])
    );
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("  rows written     2\n"));
    assert!(!dir.path().join("-").exists());
}

#[test]
fn cooked_and_raw_ip_link_types() {
    let dir = tempfile::tempdir().unwrap();
    let ip_packet = FrameSpec::new(
        ip("10.9.8.7"),
        ip("10.0.0.1"),
        Transport::Udp { src: 123, dst: 456 },
    )
    .ttl(3)
    .ip_packet();
    // SLL: packet type, ARPHRD, address length, 8 address bytes, protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip_packet);
    // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address
    // length, 8 address bytes.
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    sll2.extend_from_slice(&ip_packet);
    for (name, link, frame, length) in [
        ("sll.pcap", DataLink::LINUX_SLL, sll, 16 + 28),
        ("sll2.pcap", DataLink::LINUX_SLL2, sll2, 20 + 28),
        ("raw.pcap", DataLink::RAW, ip_packet.clone(), 28),
    ] {
        let bytes = classic_with_link(
            &[packet(0, frame)],
            Endianness::Little,
            TsResolution::MicroSecond,
            link,
        );
        let path = write(dir.path(), name, &bytes);
        let (_, csv) = sniff(&path, &[]);
        assert_eq!(
            csv,
            expected_csv(&[&format!(
                "1712589010.595727,10.9.8.7,10.0.0.1,udp,{length},123,456,3,0,0,1,{length},0.000000,4,0"
            )]),
            "{name}"
        );
    }
}

/// Runs `sniff` expecting failure; returns stderr and checks that no output
/// file (not even a partial one) was left.
fn sniff_fails(capture: &Path) -> String {
    let dir = capture.parent().unwrap();
    let out = dir.join("never.csv");
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let assert = ml_sniffing()
        .arg("sniff")
        .arg(&out)
        .arg("-r")
        .arg(capture)
        .assert()
        .failure()
        .code(1);
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "sniff left a file behind");
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

#[test]
fn bad_inputs_give_one_sentence_and_no_csv() {
    let dir = tempfile::tempdir().unwrap();
    let packets = ethernet_packets();
    let good = classic(&packets, Endianness::Little, TsResolution::MicroSecond);
    let shown = |name: &str| dir.path().join(name).display().to_string();

    let path = write(dir.path(), "empty.pcap", b"");
    assert_eq!(
        sniff_fails(&path),
        format!(
            "Error: {} is empty (0 bytes): expected a pcap or pcapng capture\n",
            shown("empty.pcap")
        )
    );

    let path = write(dir.path(), "table.pcap", b"timestamp,source_ip\n1,2\n");
    assert_eq!(
        sniff_fails(&path),
        format!(
            "Error: {} is not a pcap or pcapng capture: it starts with the bytes 74 69 6d 65 (text)\n",
            shown("table.pcap")
        )
    );

    let wifi = classic_with_link(
        &packets,
        Endianness::Little,
        TsResolution::MicroSecond,
        DataLink::IEEE802_11_RADIOTAP,
    );
    let path = write(dir.path(), "wifi.pcap", &wifi);
    assert_eq!(
        sniff_fails(&path),
        format!(
            "Error: {} uses link type 127 (IEEE802_11_RADIOTAP), which ml-sniffing cannot read; \
             supported link types: Ethernet (1), Linux cooked capture SLL (113) and SLL2 (276), \
             raw IP (101, and 12, 14, 228, 229)\n",
            shown("wifi.pcap")
        )
    );

    // The length field of the first record set to 3 GB: nothing to keep
    // (a later one keeps the packets before it, see below).
    let mut corrupt = good.clone();
    corrupt[24 + 8..24 + 12].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    let path = write(dir.path(), "corrupt.pcap", &corrupt);
    assert_eq!(
        sniff_fails(&path),
        format!(
            "Error: {} is corrupt at byte offset 24: the record header announces \
             3000000000 captured bytes, more than the 262144 a capture can hold (0 packets were \
             read before it)\n",
            shown("corrupt.pcap")
        )
    );

    let path = write(dir.path(), "same.pcap", &good);
    let assert = ml_sniffing()
        .arg("sniff")
        .arg(&path)
        .arg("-r")
        .arg(&path)
        .assert()
        .failure()
        .code(1);
    assert_eq!(
        String::from_utf8(assert.get_output().stderr.clone()).unwrap(),
        format!(
            "Error: {} is the capture being read: choose another output file\n",
            shown("same.pcap")
        )
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the capture was changed"
    );

    let arp_only = classic(
        &packets[11..12],
        Endianness::Little,
        TsResolution::MicroSecond,
    );
    let path = write(dir.path(), "arp.pcap", &arp_only);
    assert_eq!(
        sniff_fails(&path),
        format!(
            "Error: No packets were captured: none of the 1 frames in {} is an IP packet to keep \
             (1 not IP)\n",
            shown("arp.pcap")
        )
    );
}

#[test]
fn a_truncated_final_record_keeps_the_rows_before_it_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let packets = ethernet_packets();
    let good = classic(&packets, Endianness::Big, TsResolution::NanoSecond);
    let last = good.len() - 16 - packets.last().unwrap().data.len();
    let path = write(dir.path(), "cut.pcap", &good[..good.len() - 7]);
    let out = dir.path().join("out.csv");
    let assert = ml_sniffing()
        .arg("sniff")
        .arg(&out)
        .arg("-r")
        .arg(&path)
        .assert()
        .success();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr,
        format!(
            "Warning: {} ends inside a record at byte offset {last} ({} of its {} bytes are \
             present): the capture is truncated; the 16 packets before it were read and the \
             partial record was dropped\n",
            path.display(),
            good.len() - 7 - last,
            good.len() - last,
        )
    );
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains(&format!(
            "  truncated        the partial final record at byte offset {last} was dropped\n"
        )),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv, expected_csv(&EXPECTED_ROWS[..EXPECTED_ROWS.len() - 1]));
}

/// `packets` then 200 UDP packets, so that `detect` has rows to fit on.
fn many_packets() -> Vec<Packet> {
    let mut packets = ethernet_packets();
    for i in 0..200u64 {
        let spec = FrameSpec::new(
            ip("10.0.0.1"),
            ip(&format!("10.0.1.{}", i % 50)),
            Transport::Udp {
                src: 1000 + (i % 7) as u16,
                dst: 53,
            },
        )
        .payload((i % 30) as usize);
        packets.push(packet(10_000 + i * 10, spec.build()));
    }
    packets
}

/// A corrupt record header in the middle of a capture used to discard every
/// packet before it; now they are kept, as tcpdump keeps them, with a
/// warning naming the count and the offset, in `sniff --read`, `detect`
/// and `run --read`: each gives what the capture cut just before the
/// corrupt record gives.
#[test]
fn a_corrupt_record_keeps_the_packets_before_it_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let packets = many_packets();
    let good = classic(&packets, Endianness::Little, TsResolution::MicroSecond);
    let kept = 150;
    let at = 24
        + packets[..kept]
            .iter()
            .map(|p| 16 + p.data.len())
            .sum::<usize>();
    let mut corrupt = good.clone();
    corrupt[at + 8..at + 12].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    let path = write(dir.path(), "corrupt.pcap", &corrupt);
    let prefix = write(dir.path(), "prefix.pcap", &good[..at]);
    let warning = format!(
        "Warning: {} is corrupt at byte offset {at}: the record header announces 3000000000 \
         captured bytes, more than the 262144 a capture can hold; the {kept} packets before it \
         were read and the rest of the file was skipped\n",
        path.display()
    );

    let out = dir.path().join("salvaged.csv");
    let assert = ml_sniffing()
        .arg("sniff")
        .arg(&out)
        .arg("-r")
        .arg(&path)
        .assert()
        .success();
    let output = assert.get_output();
    assert_eq!(String::from_utf8_lossy(&output.stderr), warning);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "  corrupt          reading stopped at the corrupt record at byte offset {at}; \
             the rest of the file was skipped\n"
        )),
        "{stdout}"
    );
    let salvaged = std::fs::read_to_string(&out).unwrap();
    let (_, from_prefix) = sniff(&prefix, &[]);
    assert_eq!(salvaged, from_prefix);
    assert_eq!(
        from_prefix.lines().count(),
        1 + kept - 3,
        "3 frames are no rows"
    );

    let detect = |capture: &Path| {
        let scores = dir.path().join("scores.csv");
        let output = ml_sniffing()
            .arg("detect")
            .arg(capture)
            .arg("--output")
            .arg(&scores)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        (
            String::from_utf8(output.stderr).unwrap(),
            std::fs::read_to_string(&scores).unwrap(),
        )
    };
    let (stderr, scores) = detect(&path);
    assert_eq!(stderr, warning);
    assert_eq!((String::new(), scores), detect(&prefix));

    let output = ml_sniffing()
        .args(["run", "--quiet", "--warmup", "100", "-r"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&warning), "{stdout}");
}

/// The same for a corrupt pcapng block (here a block length that is not a
/// multiple of 4).
#[test]
fn a_corrupt_pcapng_block_keeps_the_packets_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let packets = ethernet_packets();
    // Packets 0 and 1 in a little-endian section, 2 and 3 in a big-endian
    // one, after its section header and two interface descriptions.
    let good = pcapng(&packets[..4], &[]);
    let (mut at, mut blocks, mut little) = (0, Vec::new(), true);
    while at < good.len() {
        if good[at..at + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            little = good[at + 8] == 0x4d;
        }
        let len: [u8; 4] = good[at + 4..at + 8].try_into().unwrap();
        blocks.push(at);
        at += if little {
            u32::from_le_bytes(len)
        } else {
            u32::from_be_bytes(len)
        } as usize;
    }
    assert_eq!(blocks.len(), 10);
    let last = blocks[9];
    let mut corrupt = good.clone();
    corrupt[last + 4..last + 8].copy_from_slice(&1_001u32.to_be_bytes());
    let path = write(dir.path(), "corrupt.pcapng", &corrupt);
    let out = dir.path().join("salvaged.csv");
    let assert = ml_sniffing()
        .arg("sniff")
        .arg(&out)
        .arg("-r")
        .arg(&path)
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&assert.get_output().stderr),
        format!(
            "Warning: {} is corrupt at byte offset {}: the block header announces a length of \
             1001 bytes (a multiple of 4 from 12 to 16777216 expected); the 3 packets before \
             it were read and the rest of the file was skipped\n",
            path.display(),
            last
        )
    );
    let prefix = write(dir.path(), "prefix.pcapng", &good[..last]);
    let salvaged = std::fs::read_to_string(&out).unwrap();
    let (_, from_prefix) = sniff(&prefix, &[]);
    assert_eq!(salvaged, from_prefix);
    assert_eq!(from_prefix, expected_csv(&EXPECTED_ROWS[..3]));
}

#[test]
fn interface_and_read_are_exclusive_and_one_is_required() {
    let assert = ml_sniffing()
        .args(["sniff", "o.csv", "-i", "lo", "-r", "x.pcap"])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let assert = ml_sniffing()
        .args(["sniff", "o.csv"])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("--interface") && stderr.contains("--read"),
        "{stderr}"
    );
}

#[test]
fn a_device_output_is_written_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.pcap",
        &classic(
            &ethernet_packets(),
            Endianness::Little,
            TsResolution::MicroSecond,
        ),
    );
    ml_sniffing()
        .args(["sniff", "/dev/null", "-r"])
        .arg(&path)
        .assert()
        .success();
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null must still be a device");
}

/// `detect CAPTURE` gives what `detect` on the CSV `sniff` wrote gives.
#[test]
fn detect_reads_a_capture_like_the_csv_sniff_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut packets = ethernet_packets();
    // More rows, so that the forest has something to isolate.
    for i in 0..200u64 {
        let spec = FrameSpec::new(
            ip("10.0.0.1"),
            ip(&format!("10.0.1.{}", i % 50)),
            Transport::Udp {
                src: 1000 + (i % 7) as u16,
                dst: 53,
            },
        )
        .payload((i % 30) as usize);
        packets.push(packet(10_000 + i * 10, spec.build()));
    }
    let capture = write(
        dir.path(),
        "capture.csv.is.not.its.format",
        &pcapng(&packets, &[0, 2, 5, 20, 21, 100, 150, 215]),
    );
    let (_, csv) = sniff(&capture, &[]);
    let csv_path = write(dir.path(), "rows.csv", csv.as_bytes());
    let run = |input: &Path, output: &str| {
        let assert = ml_sniffing()
            .arg("detect")
            .arg(input)
            .args(["--top-n", "10", "--output"])
            .arg(dir.path().join(output))
            .assert()
            .success();
        let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
        let scores = std::fs::read_to_string(dir.path().join(output)).unwrap();
        (
            stdout.lines().skip(1).collect::<Vec<_>>().join("\n"),
            scores,
        )
    };
    let (from_capture, scores_capture) = run(&capture, "a.csv");
    let (from_csv, scores_csv) = run(&csv_path, "b.csv");
    assert_eq!(from_capture, from_csv);
    assert_eq!(scores_capture, scores_csv);
    assert!(
        from_capture.contains("Most anomalous packets:"),
        "{from_capture}"
    );
}

// ---- The real captures in ../shared/data/pcap ----

#[track_caller]
fn data_dir() -> Option<PathBuf> {
    let pcap = shared_data()?.join("pcap");
    if pcap.is_dir() {
        Some(pcap)
    } else {
        eprintln!("skipped: {} not found", pcap.display());
        None
    }
}

/// Packets per file as counted by Debian's tcpdump 4.99.3 (libpcap 1.10.3):
/// `tcpdump -nr FILE | wc -l` (-n only avoids name look-ups; the count is
/// the same without it).
const TCPDUMP_COUNTS: &[(&str, u64)] = &[
    ("WebattackSQLinj.pcap", 94),
    ("amp.TCP.syn.optionallyACK.optionallysamePort.pcapng", 896),
    ("amp.dns.RRSIG.fragmented.pcap", 4_412),
    ("dns-tunnel-iodine.pcap", 438),
    ("ftp.pcap", 209),
    ("pkt.TCP.synflood.spoofed.pcap", 37_841),
    ("ssh.pcap", 295),
    ("synscan.pcap", 2_011),
];

#[test]
fn real_captures_read_whole_with_tcpdumps_packet_counts() {
    let Some(pcap) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, count) in TCPDUMP_COUNTS {
        let path = pcap.join(name);
        if !path.exists() {
            eprintln!("skipped: {} not found", path.display());
            continue;
        }
        let out = dir.path().join("out.csv");
        let assert = ml_sniffing()
            .arg("sniff")
            .arg(&out)
            .arg("-r")
            .arg(&path)
            .assert()
            .success();
        let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert_eq!(stderr, "", "{name}");
        assert!(
            stdout.contains(&format!("  frames read      {count}\n")),
            "{name}: expected {count} frames\n{stdout}"
        );
        // Every frame is a row or counted as not IP / malformed.
        let rows = std::fs::read_to_string(&out).unwrap().lines().count() as u64 - 1;
        let field = |label: &str| -> u64 {
            let line = stdout
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap();
            line[label.len() + 2..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(field("rows written"), rows, "{name}");
        assert_eq!(
            rows + field("not IP") + field("malformed"),
            *count,
            "{name}"
        );
    }
}

/// The fragmented DNS capture: ports only on first fragments (and whole
/// packets), checked against an independent reading of each IP header.
#[test]
fn fragmented_dns_has_ports_only_on_first_fragments() {
    let Some(pcap) = data_dir() else { return };
    let path = pcap.join("amp.dns.RRSIG.fragmented.pcap");
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    // (later fragment, protocol) of every frame, read with pcap-file and a
    // few byte offsets (all frames are untagged Ethernet).
    let mut independent = Vec::new();
    let mut reader = PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    while let Some(p) = reader.next_packet() {
        let d = p.unwrap().data.into_owned();
        let ethertype = u16::from_be_bytes([d[12], d[13]]);
        independent.push(match ethertype {
            0x0800 => {
                let offset = u16::from_be_bytes([d[20], d[21]]) & 0x1fff;
                (offset != 0, d[23])
            }
            0x86dd => {
                let next = d[14 + 6];
                if next == 44 {
                    let frag = &d[14 + 40..];
                    let offset = u16::from_be_bytes([frag[2], frag[3]]) >> 3;
                    (offset != 0, frag[0])
                } else {
                    (false, next)
                }
            }
            other => panic!("unexpected EtherType {other:#06x}"),
        });
    }
    let later = independent.iter().filter(|(l, _)| *l).count();
    assert!(later > 700, "expected many later fragments, found {later}");
    let first_udp = independent.iter().filter(|(l, p)| !l && *p == 17).count();
    assert!(
        first_udp > 400,
        "expected many whole or first UDP fragments, found {first_udp}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (_, csv) = sniff(
        &{
            let p = dir.path().join("f.pcap");
            std::fs::copy(&path, &p).unwrap();
            p
        },
        &[],
    );
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), independent.len());
    for (i, (row, (later, protocol))) in rows.iter().zip(&independent).enumerate() {
        let has_ports = row[5] != "0" || row[6] != "0";
        // TCP and UDP (ICMP rows carry type and code, which may be 0).
        if *later || matches!(protocol, 6 | 17) {
            assert_eq!(has_ports, !later, "frame {}: {row:?}", i + 1);
        }
        assert_eq!(row[14] == "2", *later, "frame {}: {row:?}", i + 1);
    }
}

#[test]
fn detect_takes_a_real_capture_in_one_step() {
    let Some(pcap) = data_dir() else { return };
    let path = pcap.join("synscan.pcap");
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let assert = ml_sniffing()
        .arg("detect")
        .arg(&path)
        .args(["--top-n", "10"])
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.starts_with("Most anomalous packets:"), "{stdout}");
    assert!(
        stdout.contains("of 2011 packets flagged as anomalous"),
        "{stdout}"
    );
}

/// The flow counters `sniff --read` writes are the ones `detect`'s default
/// features compute from the rows when the counters are absent: both run
/// `FlowState::record` over the same flow keys (the kernel runs it too).
#[test]
fn written_flow_counters_equal_the_ones_features_recompute() {
    use ml_sniffing::features::{engineer, FeatureSet, Selection};
    use ml_sniffing::io::Table;

    let dir = tempfile::tempdir().unwrap();
    let mut captures = vec![write(
        dir.path(),
        "generated.pcap",
        &classic(
            &ethernet_packets(),
            Endianness::Little,
            TsResolution::MicroSecond,
        ),
    )];
    if let Some(pcap) = data_dir() {
        for name in [
            "pkt.TCP.synflood.spoofed.pcap",
            "amp.dns.RRSIG.fragmented.pcap",
            "ssh.pcap",
        ] {
            if pcap.join(name).exists() {
                captures.push(pcap.join(name));
            }
        }
    }
    for path in captures {
        let table = ml_sniffing::capture::pcap::read_table(&path).unwrap();
        let keep: Vec<usize> = (0..table.headers().len())
            .filter(|&c| !table.headers()[c].starts_with("flow_"))
            .collect();
        let mut without = Table::new(keep.iter().map(|&c| table.headers()[c].clone()).collect());
        for row in 0..table.len() {
            without
                .push_row(keep.iter().map(|&c| table.cell(row, c)), row as u64 + 2)
                .unwrap();
        }
        let selection = Selection::Set(FeatureSet::Packet);
        let written = engineer(&table, &selection).unwrap().matrix;
        let recomputed = engineer(&without, &selection).unwrap().matrix;
        assert_eq!(written.names(), recomputed.names());
        let column = |m: &ml_sniffing::features::FeatureMatrix, name: &str| {
            let f = m.names().iter().position(|n| n == name).unwrap();
            m.column(f).to_vec()
        };
        for name in ["flow_packets", "flow_mean_length"] {
            assert_eq!(
                column(&written, name),
                column(&recomputed, name),
                "{}: {name}",
                path.display()
            );
        }
        // The recomputation reads epoch seconds as f64 (about 0.24 us apart
        // near 1.7e9), so its gaps may be off by under a microsecond (plus
        // the f32 rounding of the feature, 2 ulp).
        for (row, (w, r)) in column(&written, "flow_gap")
            .iter()
            .zip(column(&recomputed, "flow_gap"))
            .enumerate()
        {
            let tolerance = 1e-6 + 2.0 * f32::EPSILON * w.abs();
            assert!(
                (w - r).abs() <= tolerance,
                "{}: row {row}: {w} vs {r}",
                path.display()
            );
        }
    }
}
