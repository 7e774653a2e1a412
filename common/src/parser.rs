//! THE packet header parser, shared by the XDP program and userspace.
//!
//! It is written once over [`Frame`], a "read N bytes at offset" view: the
//! kernel implements it with bounds-checked reads between `data` and
//! `data_end`, userspace with slice reads (pcap files, AF_XDP frames, tests).
//! Kernel and userspace therefore cannot disagree about a packet.
//!
//! Shape, for the BPF verifier: no recursion, loops with constant bounds,
//! every read checked by `Frame::read`, offsets kept below [`MAX_OFFSET`].
//!
//! A frame yields a record ([`Outcome::Ip`]), is not IP ([`Outcome::NotIp`],
//! e.g. ARP), or cannot be parsed ([`Outcome::Malformed`] with the reason):
//! never a record with wrong fields.

use crate::record::{PacketRecord, FLAG_FRAGMENT, FLAG_LATER_FRAGMENT, FLAG_SNAPPED, FLAG_VLAN};

/// Byte access to a frame.
pub trait Frame {
    /// Bytes available (captured).
    fn len(&self) -> usize;

    /// The `N` bytes at `offset`, or `None` when they are not all inside the
    /// frame.
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Frame for [u8] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    #[inline(always)]
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N)?;
        let bytes = self.get(offset..end)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Some(out)
    }
}

/// Headers never start beyond this offset: the verifier needs a bound on
/// every packet offset, and no sane header stack is longer.
pub const MAX_OFFSET: usize = 1024;
/// 802.1Q tags followed (QinQ = 2).
pub const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers followed before giving up.
pub const MAX_IPV6_EXTENSIONS: usize = 6;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_P_QINQ_OLD: u16 = 0x9100;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_DCCP: u8 = 33;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;
pub const IPPROTO_UDPLITE: u8 = 136;

/// Why a frame could not be parsed.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than its link-layer header.
    TruncatedLink = 1,
    /// More VLAN tags than [`MAX_VLAN_TAGS`].
    TooManyVlanTags = 2,
    /// The IP header does not fit in the frame.
    TruncatedIp = 3,
    /// The version nibble does not match the EtherType.
    BadIpVersion = 4,
    /// IPv4 header length below 20 bytes.
    BadIpHeaderLength = 5,
    /// The IP length field disagrees with the frame.
    BadIpLength = 6,
    /// The transport header does not fit in the frame.
    TruncatedTransport = 7,
    /// TCP data offset below 5 words.
    BadTcpHeaderLength = 8,
    /// An IPv6 extension header chain that is too long or truncated.
    BadExtensionHeaders = 9,
    /// Headers beyond [`MAX_OFFSET`].
    TooDeep = 10,
}

/// What parsing a frame gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An IP packet: the record's header fields are set.
    Ip,
    /// A well-formed frame that does not carry IP (ARP, LLDP...).
    NotIp {
        ethertype: u16,
    },
    Malformed(Malformed),
}

/// Link-layer framing of the bytes handed to the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Linux cooked capture v1 (16-byte header, protocol at byte 14).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header, protocol at byte 0).
    LinuxSll2,
    /// No link header: the frame starts with the IP header.
    RawIp,
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parses `frame` into the header fields of `out` (addresses, protocol,
/// ports, TTL, TCP flags, VLAN id, flags). `wire_len` is the frame's length
/// on the wire: when the capture kept fewer bytes (`frame.len() < wire_len`)
/// IP length fields may point past the kept bytes without making the frame
/// malformed. Timestamp, frame length and flow counters are left to the
/// caller.
#[inline(always)]
pub fn parse<F: Frame + ?Sized>(
    frame: &F,
    link: Link,
    wire_len: usize,
    out: &mut PacketRecord,
) -> Outcome {
    let snapped = frame.len() < wire_len;
    out.flags = if snapped { FLAG_SNAPPED } else { 0 };
    out.vlan_id = 0;
    let (ethertype, l3) = match link {
        Link::Ethernet => match frame.read::<2>(12) {
            Some(t) => (be16(t), 14),
            None => return Outcome::Malformed(Malformed::TruncatedLink),
        },
        Link::LinuxSll => match frame.read::<2>(14) {
            Some(t) => (be16(t), 16),
            None => return Outcome::Malformed(Malformed::TruncatedLink),
        },
        Link::LinuxSll2 => match (frame.read::<2>(0), frame.len() >= 20) {
            (Some(t), true) => (be16(t), 20),
            _ => return Outcome::Malformed(Malformed::TruncatedLink),
        },
        Link::RawIp => match frame.read::<1>(0) {
            Some([b]) if b >> 4 == 4 => (ETH_P_IPV4, 0),
            Some([b]) if b >> 4 == 6 => (ETH_P_IPV6, 0),
            Some(_) => return Outcome::Malformed(Malformed::BadIpVersion),
            None => return Outcome::Malformed(Malformed::TruncatedIp),
        },
    };
    let (ethertype, l3) = match skip_vlan_tags(frame, ethertype, l3, out) {
        Ok(v) => v,
        Err(m) => return Outcome::Malformed(m),
    };
    let result = match ethertype {
        ETH_P_IPV4 => parse_ipv4(frame, l3, snapped, out),
        ETH_P_IPV6 => parse_ipv6(frame, l3, snapped, out),
        other => return Outcome::NotIp { ethertype: other },
    };
    match result {
        Ok(()) => Outcome::Ip,
        Err(m) => Outcome::Malformed(m),
    }
}

/// Follows up to [`MAX_VLAN_TAGS`] 802.1Q / 802.1ad tags; the outer tag's id
/// is kept.
#[inline(always)]
fn skip_vlan_tags<F: Frame + ?Sized>(
    frame: &F,
    mut ethertype: u16,
    mut offset: usize,
    out: &mut PacketRecord,
) -> Result<(u16, usize), Malformed> {
    for i in 0..=MAX_VLAN_TAGS {
        if !matches!(ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_OLD) {
            return Ok((ethertype, offset));
        }
        if i == MAX_VLAN_TAGS {
            return Err(Malformed::TooManyVlanTags);
        }
        let tag = frame.read::<4>(offset).ok_or(Malformed::TruncatedLink)?;
        if i == 0 {
            out.vlan_id = be16([tag[0], tag[1]]) & 0x0fff;
            out.flags |= FLAG_VLAN;
        }
        ethertype = be16([tag[2], tag[3]]);
        offset += 4;
    }
    Err(Malformed::TooManyVlanTags)
}

#[inline(always)]
fn parse_ipv4<F: Frame + ?Sized>(
    frame: &F,
    l3: usize,
    snapped: bool,
    out: &mut PacketRecord,
) -> Result<(), Malformed> {
    let h = frame.read::<20>(l3).ok_or(Malformed::TruncatedIp)?;
    if h[0] >> 4 != 4 {
        return Err(Malformed::BadIpVersion);
    }
    let header_len = ((h[0] & 0x0f) as usize) * 4;
    if header_len < 20 {
        return Err(Malformed::BadIpHeaderLength);
    }
    let total_len = be16([h[2], h[3]]) as usize;
    if total_len < header_len {
        return Err(Malformed::BadIpLength);
    }
    if l3 + header_len > frame.len() {
        return Err(Malformed::TruncatedIp);
    }
    if !snapped && l3 + total_len > frame.len() {
        return Err(Malformed::BadIpLength);
    }
    out.ip_version = 4;
    out.ttl = h[8];
    out.protocol = h[9];
    out.src_addr = mapped([h[12], h[13], h[14], h[15]]);
    out.dst_addr = mapped([h[16], h[17], h[18], h[19]]);
    let frag = be16([h[6], h[7]]);
    let more_fragments = frag & 0x2000 != 0;
    let fragment_offset = frag & 0x1fff;
    if more_fragments || fragment_offset != 0 {
        out.flags |= FLAG_FRAGMENT;
    }
    if fragment_offset != 0 {
        out.flags |= FLAG_LATER_FRAGMENT;
        clear_transport(out);
        return Ok(());
    }
    parse_transport(frame, l3 + header_len, out.protocol, out)
}

/// `::ffff:a.b.c.d`
#[inline(always)]
fn mapped(v4: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3],
    ]
}

#[inline(always)]
fn parse_ipv6<F: Frame + ?Sized>(
    frame: &F,
    l3: usize,
    snapped: bool,
    out: &mut PacketRecord,
) -> Result<(), Malformed> {
    let h = frame.read::<40>(l3).ok_or(Malformed::TruncatedIp)?;
    if h[0] >> 4 != 6 {
        return Err(Malformed::BadIpVersion);
    }
    let payload_len = be16([h[4], h[5]]) as usize;
    // A payload length of 0 announces a jumbogram (hop-by-hop option).
    if !snapped && payload_len != 0 && l3 + 40 + payload_len > frame.len() {
        return Err(Malformed::BadIpLength);
    }
    out.ip_version = 6;
    out.ttl = h[7];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    out.src_addr = src;
    out.dst_addr = dst;

    let mut next = h[6];
    let mut offset = l3 + 40;
    for _ in 0..MAX_IPV6_EXTENSIONS {
        if offset > MAX_OFFSET {
            return Err(Malformed::TooDeep);
        }
        match next {
            // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
            0 | 43 | 60 => {
                let e = frame
                    .read::<2>(offset)
                    .ok_or(Malformed::BadExtensionHeaders)?;
                next = e[0];
                offset += (e[1] as usize + 1) * 8;
            }
            // Fragment header: 8 bytes; only the first fragment has ports.
            44 => {
                let e = frame
                    .read::<4>(offset)
                    .ok_or(Malformed::BadExtensionHeaders)?;
                next = e[0];
                offset += 8;
                out.flags |= FLAG_FRAGMENT;
                if be16([e[2], e[3]]) & 0xfff8 != 0 {
                    out.flags |= FLAG_LATER_FRAGMENT;
                    out.protocol = next;
                    clear_transport(out);
                    return Ok(());
                }
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                let e = frame
                    .read::<2>(offset)
                    .ok_or(Malformed::BadExtensionHeaders)?;
                next = e[0];
                offset += (e[1] as usize + 2) * 4;
            }
            _ => {
                out.protocol = next;
                return parse_transport(frame, offset, next, out);
            }
        }
    }
    Err(Malformed::BadExtensionHeaders)
}

#[inline(always)]
fn clear_transport(out: &mut PacketRecord) {
    out.src_port = 0;
    out.dst_port = 0;
    out.tcp_flags = 0;
}

#[inline(always)]
fn parse_transport<F: Frame + ?Sized>(
    frame: &F,
    l4: usize,
    protocol: u8,
    out: &mut PacketRecord,
) -> Result<(), Malformed> {
    clear_transport(out);
    if l4 > MAX_OFFSET {
        return Err(Malformed::TooDeep);
    }
    match protocol {
        IPPROTO_TCP => {
            let t = frame.read::<14>(l4).ok_or(Malformed::TruncatedTransport)?;
            if t[12] >> 4 < 5 {
                return Err(Malformed::BadTcpHeaderLength);
            }
            out.src_port = be16([t[0], t[1]]);
            out.dst_port = be16([t[2], t[3]]);
            out.tcp_flags = t[13];
        }
        IPPROTO_UDP | IPPROTO_UDPLITE => {
            let u = frame.read::<8>(l4).ok_or(Malformed::TruncatedTransport)?;
            out.src_port = be16([u[0], u[1]]);
            out.dst_port = be16([u[2], u[3]]);
        }
        IPPROTO_SCTP | IPPROTO_DCCP => {
            let p = frame.read::<4>(l4).ok_or(Malformed::TruncatedTransport)?;
            out.src_port = be16([p[0], p[1]]);
            out.dst_port = be16([p[2], p[3]]);
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let i = frame.read::<2>(l4).ok_or(Malformed::TruncatedTransport)?;
            out.src_port = i[0] as u16;
            out.dst_port = i[1] as u16;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(all(test, feature = "user"))]
mod tests;
