//! Building frames with known headers, for tests, test captures and test
//! traffic. Checksums are computed, so the frames are valid on a real link.

use std::net::IpAddr;

/// TCP flag bits as in the header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The transport part of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp {
        src: u16,
        dst: u16,
        flags: u8,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    /// ICMP for IPv4, ICMPv6 for IPv6: type and code.
    Icmp {
        kind: u8,
        code: u8,
    },
    /// Any other IP protocol, with its raw header bytes.
    Other {
        protocol: u8,
        header: Vec<u8>,
    },
}

/// A frame to build: Ethernet, optional VLAN tags, IPv4 or IPv6, transport,
/// payload.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN ids, outer first (802.1ad for the outer tag of two).
    pub vlans: Vec<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub transport: Transport,
    pub payload: Vec<u8>,
    /// IPv6 extension headers (8 bytes each) to insert before the
    /// transport, by next-header code: 0, 43 or 60.
    pub ipv6_extensions: Vec<u8>,
}

impl FrameSpec {
    pub fn new(src: IpAddr, dst: IpAddr, transport: Transport) -> Self {
        FrameSpec {
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            vlans: Vec::new(),
            src,
            dst,
            ttl: 64,
            transport,
            payload: Vec::new(),
            ipv6_extensions: Vec::new(),
        }
    }

    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn vlan(mut self, id: u16) -> Self {
        self.vlans.push(id);
        self
    }

    pub fn payload(mut self, len: usize) -> Self {
        self.payload = (0..len).map(|i| i as u8).collect();
        self
    }

    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Self {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// Adds an IPv6 hop-by-hop (0), routing (43) or destination options (60)
    /// header of 8 bytes.
    pub fn ipv6_extension(mut self, kind: u8) -> Self {
        assert!(matches!(kind, 0 | 43 | 60), "unsupported extension {kind}");
        self.ipv6_extensions.push(kind);
        self
    }

    fn protocol(&self) -> u8 {
        match (&self.transport, self.src) {
            (Transport::Tcp { .. }, _) => 6,
            (Transport::Udp { .. }, _) => 17,
            (Transport::Icmp { .. }, IpAddr::V4(_)) => 1,
            (Transport::Icmp { .. }, IpAddr::V6(_)) => 58,
            (Transport::Other { protocol, .. }, _) => *protocol,
        }
    }

    /// The transport header and payload, checksummed for `src`/`dst`.
    fn l4(&self) -> Vec<u8> {
        let mut l4 = match &self.transport {
            Transport::Tcp { src, dst, flags } => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&src.to_be_bytes());
                h[2..4].copy_from_slice(&dst.to_be_bytes());
                h[4..8].copy_from_slice(&1u32.to_be_bytes());
                h[12] = 5 << 4;
                h[13] = *flags;
                h[14..16].copy_from_slice(&64240u16.to_be_bytes());
                h
            }
            Transport::Udp { src, dst } => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&src.to_be_bytes());
                h[2..4].copy_from_slice(&dst.to_be_bytes());
                let len = (8 + self.payload.len()) as u16;
                h[4..6].copy_from_slice(&len.to_be_bytes());
                h
            }
            Transport::Icmp { kind, code } => vec![*kind, *code, 0, 0, 0, 0, 0, 0],
            Transport::Other { header, .. } => header.clone(),
        };
        l4.extend_from_slice(&self.payload);
        let checksum_at = match (&self.transport, self.src) {
            (Transport::Tcp { .. }, _) => Some(16),
            (Transport::Udp { .. }, _) => Some(6),
            (Transport::Icmp { .. }, _) => Some(2),
            _ => None,
        };
        if let Some(at) = checksum_at {
            let pseudo = match (&self.transport, self.src) {
                // ICMPv4 has no pseudo-header.
                (Transport::Icmp { .. }, IpAddr::V4(_)) => Vec::new(),
                _ => pseudo_header(self.src, self.dst, self.protocol(), l4.len()),
            };
            let mut sum = checksum(&[&pseudo, &l4]);
            if sum == 0 && matches!(self.transport, Transport::Udp { .. }) {
                sum = 0xffff;
            }
            l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        }
        l4
    }

    /// The IP packet (header, extension headers, transport, payload).
    pub fn ip_packet(&self) -> Vec<u8> {
        let l4 = self.l4();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = vec![0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
                h[6] = 0x40; // don't fragment
                h[8] = self.ttl;
                h[9] = self.protocol();
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let sum = checksum(&[&h]);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                h.extend_from_slice(&l4);
                h
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut ext = Vec::new();
                let kinds = &self.ipv6_extensions;
                for (i, _) in kinds.iter().enumerate() {
                    let next = kinds.get(i + 1).copied().unwrap_or(self.protocol());
                    ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                }
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
                h[6] = kinds.first().copied().unwrap_or(self.protocol());
                h[7] = self.ttl;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                h.extend_from_slice(&ext);
                h.extend_from_slice(&l4);
                h
            }
            _ => panic!("source and destination must be the same IP version"),
        }
    }

    /// The whole Ethernet frame.
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (i, id) in self.vlans.iter().enumerate() {
            let tpid: u16 = if i == 0 && self.vlans.len() > 1 {
                0x88a8
            } else {
                0x8100
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
        }
        let ethertype: u16 = if self.src.is_ipv4() { 0x0800 } else { 0x86dd };
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&self.ip_packet());
        f
    }
}

fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, protocol]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, protocol]);
        }
        _ => panic!("source and destination must be the same IP version"),
    }
    p
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in part.iter() {
            match odd.take() {
                Some(hi) => sum += u16::from_be_bytes([hi, b]) as u32,
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u16::from_be_bytes([hi, 0]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify_to_zero() {
        let spec = FrameSpec::new(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            Transport::Udp { src: 1234, dst: 53 },
        )
        .payload(11);
        let ip = spec.ip_packet();
        assert_eq!(checksum(&[&ip[..20]]), 0, "IPv4 header");
        let pseudo = pseudo_header(spec.src, spec.dst, 17, ip.len() - 20);
        assert_eq!(checksum(&[&pseudo, &ip[20..]]), 0, "UDP");
        // RFC 1071's example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            0x220d
        );
    }
}
