//! Parser tests on frames built by `crate::build`.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::build::{tcp_flags, FrameSpec, Transport};
use crate::record::{addr, PacketRecord};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse_full(frame: &[u8], link: Link) -> (Outcome, PacketRecord) {
    let mut r = PacketRecord::default();
    let o = parse(frame, link, frame.len(), &mut r);
    (o, r)
}

/// What a frame must yield: protocol, src port, dst port, ttl, tcp flags,
/// vlan, flags.
type Expected = (u8, u16, u16, u8, u8, u16, u8);

/// Every kind of frame the parser knows, with what it must yield.
fn catalogue() -> Vec<(Vec<u8>, Expected)> {
    let v4 = |t| FrameSpec::new(ip("192.0.2.1"), ip("198.51.100.7"), t);
    let v6 = |t| FrameSpec::new(ip("2001:db8::1"), ip("fd00::2"), t);
    let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
    let fin_psh_urg = tcp_flags::FIN | tcp_flags::PSH | tcp_flags::URG;
    let tcp = |src, dst, flags| Transport::Tcp { src, dst, flags };
    let udp = |src, dst| Transport::Udp { src, dst };
    let icmp = |kind| Transport::Icmp { kind, code: 0 };
    let gre = Transport::Other {
        protocol: 47,
        header: vec![0; 4],
    };
    vec![
        (
            v4(tcp(40000, 443, syn_ack)).ttl(63).build(),
            (6, 40000, 443, 63, syn_ack, 0, 0),
        ),
        (
            v4(udp(5353, 53)).payload(30).build(),
            (17, 5353, 53, 64, 0, 0, 0),
        ),
        (v4(icmp(8)).payload(56).build(), (1, 8, 0, 64, 0, 0, 0)),
        (v4(gre).build(), (47, 0, 0, 64, 0, 0, 0)),
        (
            v6(tcp(1, 22, fin_psh_urg)).ttl(255).build(),
            (6, 1, 22, 255, 0x29, 0, 0),
        ),
        (v6(udp(546, 547)).build(), (17, 546, 547, 64, 0, 0, 0)),
        (v6(icmp(128)).build(), (58, 128, 0, 64, 0, 0, 0)),
        (
            v6(udp(9, 10)).ipv6_extension(0).ipv6_extension(60).build(),
            (17, 9, 10, 64, 0, 0, 0),
        ),
        (
            v4(udp(7, 8)).vlan(100).build(),
            (17, 7, 8, 64, 0, 100, FLAG_VLAN),
        ),
        (
            v6(tcp(3, 4, tcp_flags::RST)).vlan(4094).vlan(5).build(),
            (6, 3, 4, 64, tcp_flags::RST, 4094, FLAG_VLAN),
        ),
    ]
}

#[test]
fn every_header_kind_yields_its_fields() {
    for (i, (frame, (proto, sport, dport, ttl, flags, vlan, rflags))) in
        catalogue().into_iter().enumerate()
    {
        let (o, r) = parse_full(&frame, Link::Ethernet);
        assert_eq!(o, Outcome::Ip, "frame {i}");
        assert_eq!(
            (
                r.protocol,
                r.src_port,
                r.dst_port,
                r.ttl,
                r.tcp_flags,
                r.vlan_id,
                r.flags
            ),
            (proto, sport, dport, ttl, flags, vlan, rflags),
            "frame {i}"
        );
        let v4 = r.ip_version == 4;
        assert_eq!(
            addr(r.src_addr, r.ip_version),
            if v4 {
                ip("192.0.2.1")
            } else {
                ip("2001:db8::1")
            }
        );
        assert_eq!(
            addr(r.dst_addr, r.ip_version),
            if v4 {
                ip("198.51.100.7")
            } else {
                ip("fd00::2")
            }
        );
    }
}

#[test]
fn ipv4_options_are_skipped() {
    let mut frame = FrameSpec::new(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        Transport::Udp {
            src: 1000,
            dst: 2000,
        },
    )
    .build();
    // Insert 8 bytes of options (NOPs) after the 20-byte header: IHL 7.
    frame.splice(34..34, [1u8; 8]);
    frame[14] = 0x47;
    let total = u16::from_be_bytes([frame[16], frame[17]]) + 8;
    frame[16..18].copy_from_slice(&total.to_be_bytes());
    let (o, r) = parse_full(&frame, Link::Ethernet);
    assert_eq!(o, Outcome::Ip);
    assert_eq!((r.src_port, r.dst_port), (1000, 2000));
}

#[test]
fn only_first_ipv4_fragments_have_ports() {
    let mut first = FrameSpec::new(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        Transport::Udp { src: 53, dst: 4000 },
    )
    .payload(100)
    .build();
    first[20] = 0x20; // MF, offset 0
    let (o, r) = parse_full(&first, Link::Ethernet);
    assert_eq!(o, Outcome::Ip);
    assert_eq!((r.src_port, r.dst_port, r.flags), (53, 4000, FLAG_FRAGMENT));

    let mut later = first.clone();
    later[20] = 0x00;
    later[21] = 0x10; // offset 16 * 8 bytes, last fragment
    let (o, r) = parse_full(&later, Link::Ethernet);
    assert_eq!(o, Outcome::Ip);
    assert_eq!((r.protocol, r.src_port, r.dst_port), (17, 0, 0));
    assert_eq!(r.flags, FLAG_FRAGMENT | FLAG_LATER_FRAGMENT);
}

#[test]
fn ipv6_fragment_headers() {
    // Build UDP over IPv6 with a fragment header by hand: next header 44.
    let spec = FrameSpec::new(
        ip("2001:db8::1"),
        ip("2001:db8::2"),
        Transport::Udp { src: 5, dst: 6 },
    );
    let full = spec.build();
    let mut frame = full[..14 + 40].to_vec();
    frame[14 + 6] = 44;
    let l4 = &full[14 + 40..];
    let payload_len = (8 + l4.len()) as u16;
    frame[14 + 4..14 + 6].copy_from_slice(&payload_len.to_be_bytes());
    frame.extend_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 1]); // offset 0, M=1
    frame.extend_from_slice(l4);
    let (o, r) = parse_full(&frame, Link::Ethernet);
    assert_eq!(o, Outcome::Ip);
    assert_eq!(
        (r.protocol, r.src_port, r.dst_port, r.flags),
        (17, 5, 6, FLAG_FRAGMENT)
    );

    frame[14 + 40 + 2..14 + 40 + 4].copy_from_slice(&0x0100u16.to_be_bytes()); // offset 32
    let (o, r) = parse_full(&frame, Link::Ethernet);
    assert_eq!(o, Outcome::Ip);
    assert_eq!((r.protocol, r.src_port, r.dst_port), (17, 0, 0));
    assert_eq!(r.flags, FLAG_FRAGMENT | FLAG_LATER_FRAGMENT);
}

#[test]
fn non_ip_frames_are_not_records() {
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&0x0806u16.to_be_bytes());
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(
        parse_full(&arp, Link::Ethernet).0,
        Outcome::NotIp { ethertype: 0x0806 }
    );
}

#[test]
fn vlan_stacks() {
    let base = FrameSpec::new(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        Transport::Udp { src: 1, dst: 2 },
    );
    let (o, r) = parse_full(&base.clone().vlan(7).vlan(8).build(), Link::Ethernet);
    assert_eq!(o, Outcome::Ip);
    assert_eq!(r.vlan_id, 7, "the outer tag's id");
    let three = base.vlan(1).vlan(2).vlan(3).build();
    assert_eq!(
        parse_full(&three, Link::Ethernet).0,
        Outcome::Malformed(Malformed::TooManyVlanTags)
    );
}

#[test]
fn other_link_types() {
    let spec = FrameSpec::new(
        ip("10.1.1.1"),
        ip("10.2.2.2"),
        Transport::Tcp {
            src: 80,
            dst: 5000,
            flags: tcp_flags::ACK,
        },
    );
    let (_, want) = parse_full(&spec.build(), Link::Ethernet);
    let ip_packet = spec.ip_packet();

    let (o, r) = parse_full(&ip_packet, Link::RawIp);
    assert_eq!((o, r), (Outcome::Ip, want));

    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip_packet);
    assert_eq!(parse_full(&sll, Link::LinuxSll), (Outcome::Ip, want));

    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip_packet);
    assert_eq!(parse_full(&sll2, Link::LinuxSll2), (Outcome::Ip, want));
}

#[test]
fn bogus_lengths_are_malformed() {
    let frame = FrameSpec::new(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        Transport::Udp { src: 1, dst: 2 },
    )
    .payload(20)
    .build();
    let mut ihl4 = frame.clone();
    ihl4[14] = 0x44;
    assert_eq!(
        parse_full(&ihl4, Link::Ethernet).0,
        Outcome::Malformed(Malformed::BadIpHeaderLength)
    );
    let mut too_long = frame.clone();
    too_long[16..18].copy_from_slice(&1500u16.to_be_bytes());
    assert_eq!(
        parse_full(&too_long, Link::Ethernet).0,
        Outcome::Malformed(Malformed::BadIpLength)
    );
    let mut below_header = frame.clone();
    below_header[16..18].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        parse_full(&below_header, Link::Ethernet).0,
        Outcome::Malformed(Malformed::BadIpLength)
    );
    let mut wrong_version = frame.clone();
    wrong_version[14] = 0x65;
    assert_eq!(
        parse_full(&wrong_version, Link::Ethernet).0,
        Outcome::Malformed(Malformed::BadIpVersion)
    );

    let v6 = FrameSpec::new(ip("::1"), ip("::2"), Transport::Udp { src: 1, dst: 2 }).build();
    let mut beyond = v6.clone();
    beyond[18..20].copy_from_slice(&9000u16.to_be_bytes());
    assert_eq!(
        parse_full(&beyond, Link::Ethernet).0,
        Outcome::Malformed(Malformed::BadIpLength)
    );
    let mut tcp = FrameSpec::new(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        Transport::Tcp {
            src: 1,
            dst: 2,
            flags: 0,
        },
    )
    .build();
    tcp[14 + 20 + 12] = 0x40;
    assert_eq!(
        parse_full(&tcp, Link::Ethernet).0,
        Outcome::Malformed(Malformed::BadTcpHeaderLength)
    );
}

#[test]
fn truncated_frames_at_every_byte_boundary() {
    for (frame, _) in catalogue() {
        let (_, whole) = parse_full(&frame, Link::Ethernet);
        for cut in 0..frame.len() {
            let prefix = &frame[..cut];
            // As a complete frame, a prefix is always malformed: either a
            // header is cut or the IP length points past the end.
            let (o, _) = parse_full(prefix, Link::Ethernet);
            assert!(matches!(o, Outcome::Malformed(_)), "cut at {cut}: {o:?}");
            // As a snapped capture of the whole frame, the prefix either
            // gives the same header fields or is malformed: never others.
            let mut r = PacketRecord::default();
            match parse(prefix, Link::Ethernet, frame.len(), &mut r) {
                Outcome::Ip => {
                    assert_eq!(r.flags & !FLAG_SNAPPED, whole.flags, "cut at {cut}");
                    r.flags = whole.flags;
                    assert_eq!(r, whole, "cut at {cut}");
                }
                Outcome::Malformed(_) => {}
                Outcome::NotIp { .. } => panic!("cut at {cut}: not IP"),
            }
        }
    }
}

/// A frame that remembers the furthest byte any read asked for.
struct Watched<'a> {
    bytes: &'a [u8],
    furthest: std::cell::Cell<usize>,
}

impl Frame for Watched<'_> {
    fn len(&self) -> usize {
        self.bytes.len()
    }
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let got = Frame::read::<N>(self.bytes, offset);
        if got.is_some() {
            self.furthest.set(self.furthest.get().max(offset + N));
        }
        got
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_or_read_past_the_end(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        link in prop_oneof![Just(Link::Ethernet), Just(Link::LinuxSll), Just(Link::LinuxSll2), Just(Link::RawIp)],
        extra in 0usize..100,
    ) {
        let frame = Watched { bytes: &bytes, furthest: 0.into() };
        let mut r = PacketRecord::default();
        let o = parse(&frame, link, bytes.len() + extra, &mut r);
        prop_assert!(frame.furthest.get() <= bytes.len());
        if o == Outcome::Ip {
            prop_assert!(r.ip_version == 4 || r.ip_version == 6);
        }
    }

    #[test]
    fn mutated_real_frames_never_panic(
        which in 0usize..10,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut frame = catalogue()[which].0.clone();
        for (at, value) in flips {
            let len = frame.len();
            frame[at % len] = value;
        }
        let mut r = PacketRecord::default();
        let o = parse(&frame[..], Link::Ethernet, frame.len(), &mut r);
        if o == Outcome::Ip {
            prop_assert!(r.ip_version == 4 || r.ip_version == 6);
        }
    }
}
