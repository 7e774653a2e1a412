//! Recognising frames whose TCP/UDP checksum was left to offload.
//!
//! A frame sent by a local socket through a veth (or any device with
//! checksum offload) carries a *partial* checksum: the checksum field holds
//! only the sum of the pseudo-header, and the kernel marks the packet
//! `CHECKSUM_PARTIAL` so that nobody verifies it. AF_XDP hands over the
//! bytes without that mark; written back through the TAP device as they
//! are, such frames would fail the stack's checksum check and be dropped.
//! Re-injection therefore tells the kernel (virtio-net header, `NEEDS_CSUM`)
//! which frames carry a partial checksum, restoring the mark they had;
//! every other frame is re-injected without any claim, so the stack
//! verifies its checksums as usual.

/// Where the checksum of a partial-checksum frame lies: the transport
/// header's offset in the frame and the checksum field's offset in it
/// (virtio-net's `csum_start` and `csum_offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial {
    pub start: u16,
    pub offset: u16,
}

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const TCP: u8 = 6;
const UDP: u8 = 17;

#[inline(always)]
fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

/// Adds 16-bit big-endian words of `bytes` (even length) to `sum`.
#[inline(always)]
fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    for w in bytes.chunks_exact(2) {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    sum
}

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// `Some` when `frame` is an IPv4 or IPv6 (without extension headers) TCP or
/// UDP packet, not a fragment, whose checksum field holds exactly the
/// pseudo-header sum, as offloading leaves it. A real checksum equals that
/// value only by chance (1 in 65,536 for a corrupted frame, as for any
/// checksum).
pub fn partial(frame: &[u8]) -> Option<Partial> {
    let mut ethertype = be16(frame, 12)?;
    let mut l3 = 14;
    // Up to two VLAN tags.
    for _ in 0..2 {
        if !matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        ethertype = be16(frame, l3 + 2)?;
        l3 += 4;
    }
    let (protocol, l4, l4_len, sum) = match ethertype {
        ETH_P_IPV4 => {
            let h = frame.get(l3..l3 + 20)?;
            if h[0] >> 4 != 4 {
                return None;
            }
            let ihl = (h[0] & 0x0f) as usize * 4;
            let total = be16(h, 2)? as usize;
            // Fragments are never offloaded.
            if ihl < 20 || total < ihl || be16(h, 6)? & 0x3fff != 0 {
                return None;
            }
            let l4_len = total - ihl;
            let sum = add_words(0, &h[12..20]) + h[9] as u32 + l4_len as u32;
            (h[9], l3 + ihl, l4_len, sum)
        }
        ETH_P_IPV6 => {
            let h = frame.get(l3..l3 + 40)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let l4_len = be16(h, 4)? as usize;
            let sum = add_words(0, &h[8..40])
                + h[6] as u32
                + (l4_len as u32 >> 16)
                + (l4_len as u32 & 0xffff);
            (h[6], l3 + 40, l4_len, sum)
        }
        _ => return None,
    };
    let offset = match protocol {
        TCP if l4_len >= 20 => 16,
        UDP if l4_len >= 8 => 6,
        _ => return None,
    };
    if l4 + l4_len > frame.len() {
        return None;
    }
    let field = be16(frame, l4 + offset)?;
    (field == fold(sum)).then_some(Partial {
        start: l4 as u16,
        offset: offset as u16,
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use ml_sniffing_common::build::{checksum, tcp_flags, FrameSpec, Transport};

    use super::*;

    /// The pseudo-header of `spec` as bytes (the plain reference).
    fn pseudo(spec: &FrameSpec, protocol: u8, l4_len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        match (spec.src, spec.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, protocol]);
                p.extend_from_slice(&(l4_len as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&(l4_len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, protocol]);
            }
            _ => unreachable!(),
        }
        p
    }

    fn specs() -> Vec<(FrameSpec, u8, usize)> {
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        let udp = Transport::Udp { src: 40000, dst: 7 };
        let tcp = Transport::Tcp {
            src: 1,
            dst: 443,
            flags: tcp_flags::ACK,
        };
        vec![
            (
                FrameSpec::new(v4("10.0.0.2"), v4("10.0.0.1"), udp.clone()).payload(6),
                UDP,
                6,
            ),
            (
                FrameSpec::new(v4("192.0.2.9"), v4("198.51.100.1"), tcp.clone()).payload(101),
                TCP,
                16,
            ),
            (
                FrameSpec::new(v4("10.0.0.2"), v4("10.0.0.1"), udp.clone())
                    .vlan(5)
                    .vlan(6),
                UDP,
                6,
            ),
            (
                FrameSpec::new(v4("fd00::2"), v4("fd00::1"), udp).payload(33),
                UDP,
                6,
            ),
            (
                FrameSpec::new(v4("2001:db8::1"), v4("2001:db8::2"), tcp).vlan(9),
                TCP,
                16,
            ),
        ]
    }

    /// A frame with its real checksum is not partial; the same frame with
    /// the field set to the pseudo-header sum (as offloading leaves it) is,
    /// at the right offsets.
    #[test]
    fn partial_checksums_are_told_from_real_ones() {
        for (spec, protocol, offset) in specs() {
            let full = spec.build();
            assert_eq!(partial(&full), None, "{spec:?}");
            let ip_start = 14 + 4 * spec.vlans.len();
            let l4 = ip_start + if spec.src.is_ipv4() { 20 } else { 40 };
            let l4_len = full.len() - l4;
            let mut offloaded = full.clone();
            // checksum() is the complemented sum: its complement is the
            // plain folded sum the offload leaves in the field.
            let field = !checksum(&[&pseudo(&spec, protocol, l4_len)]);
            offloaded[l4 + offset..l4 + offset + 2].copy_from_slice(&field.to_be_bytes());
            assert_eq!(
                partial(&offloaded),
                Some(Partial {
                    start: l4 as u16,
                    offset: offset as u16
                }),
                "{spec:?}"
            );
            // Cut short, or another field changed: no claim.
            assert_eq!(partial(&offloaded[..offloaded.len() - 1]), None);
            let mut other = offloaded.clone();
            other[l4 + offset + 1] ^= 1;
            assert_eq!(partial(&other), None);
        }
    }

    #[test]
    fn other_frames_are_not_partial() {
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        let icmp = FrameSpec::new(
            v4("10.0.0.1"),
            v4("10.0.0.2"),
            Transport::Icmp { kind: 8, code: 0 },
        );
        assert_eq!(partial(&icmp.build()), None);
        let mut fragment = FrameSpec::new(
            v4("10.0.0.1"),
            v4("10.0.0.2"),
            Transport::Udp { src: 1, dst: 2 },
        )
        .build();
        fragment[20] = 0x20; // more fragments
        assert_eq!(partial(&fragment), None);
        assert_eq!(partial(&[0u8; 10]), None);
        assert_eq!(partial(&[]), None);
    }
}
