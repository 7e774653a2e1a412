//! Every frame of the mixture is Ethernet: raw IP and Linux cooked frames
//! get their link header replaced by a 14-byte Ethernet header.

use ml_sniffing_common::parser::{Link, ETH_P_IPV4, ETH_P_IPV6};

/// Bytes of the link header the parser skips for `link`.
pub fn header_len(link: Link) -> usize {
    match link {
        Link::Ethernet => 14,
        Link::LinuxSll => 16,
        Link::LinuxSll2 => 20,
        Link::RawIp => 0,
    }
}

/// `data` (captured bytes) and `wire_len` as an Ethernet frame: Ethernet
/// frames as they are; other framings get zero MAC addresses and the
/// EtherType of the IP version nibble, the wire length changed by the same
/// number of bytes. `None` when a non-Ethernet frame does not start an IPv4
/// or IPv6 packet after its link header (it would not be kept anyway).
pub fn to_ethernet(link: Link, data: &[u8], wire_len: u32) -> Option<(Vec<u8>, u32)> {
    if link == Link::Ethernet {
        return Some((data.to_vec(), wire_len));
    }
    let skip = header_len(link);
    let ethertype = match data.get(skip)? >> 4 {
        4 => ETH_P_IPV4,
        6 => ETH_P_IPV6,
        _ => return None,
    };
    let mut frame = Vec::with_capacity(14 + data.len() - skip);
    frame.extend_from_slice(&[0u8; 12]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(&data[skip..]);
    let wire = (wire_len as usize).max(data.len()) - skip + 14;
    Some((frame, wire as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_sniffing_common::parser::{parse, Outcome};
    use ml_sniffing_common::record::PacketRecord;

    /// A 28-byte IPv4 header + UDP header, 10.0.0.1:1000 -> 10.0.0.2:53.
    fn ipv4_udp() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0x03, 0xe8, 0, 53, 0, 8, 0, 0]);
        p
    }

    /// A 40-byte IPv6 header + 8-byte UDP header.
    fn ipv6_udp() -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        p.extend_from_slice(&[0u8; 15]);
        p.push(1);
        p.extend_from_slice(&[0u8; 15]);
        p.push(2);
        p.extend_from_slice(&[0x03, 0xe8, 0, 53, 0, 8, 0, 0]);
        p
    }

    fn parses_as_ip(frame: &[u8], wire: u32) -> bool {
        parse(
            frame,
            Link::Ethernet,
            wire as usize,
            &mut PacketRecord::default(),
        ) == Outcome::Ip
    }

    #[test]
    fn raw_ipv4_gets_an_ethernet_header() {
        let ip = ipv4_udp();
        let (frame, wire) = to_ethernet(Link::RawIp, &ip, ip.len() as u32).unwrap();
        assert_eq!(&frame[..12], &[0u8; 12]);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(&frame[14..], &ip[..]);
        assert_eq!(wire, ip.len() as u32 + 14);
        assert!(parses_as_ip(&frame, wire));
    }

    #[test]
    fn raw_ipv6_gets_the_ipv6_ethertype() {
        let ip = ipv6_udp();
        let (frame, wire) = to_ethernet(Link::RawIp, &ip, ip.len() as u32).unwrap();
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(wire, ip.len() as u32 + 14);
        assert!(parses_as_ip(&frame, wire));
    }

    #[test]
    fn sll_and_sll2_headers_are_replaced() {
        let ip = ipv4_udp();
        // SLL: packet type, ARPHRD, address length, 8 address bytes, protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        // A snapped frame: 100 bytes on the wire, all kept but the tail.
        let (frame, wire) = to_ethernet(Link::LinuxSll, &sll, 100).unwrap();
        assert_eq!(frame.len(), 14 + ip.len());
        assert_eq!(&frame[14..], &ip[..]);
        assert_eq!(wire, 100 - 16 + 14);
        // SLL2: protocol, reserved, interface index, ARPHRD, type, address.
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
        sll2.extend_from_slice(&[0u8; 8]);
        let ip6 = ipv6_udp();
        sll2.extend_from_slice(&ip6);
        let (frame, wire) = to_ethernet(Link::LinuxSll2, &sll2, sll2.len() as u32).unwrap();
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(&frame[14..], &ip6[..]);
        assert_eq!(wire, ip6.len() as u32 + 14);
        assert!(parses_as_ip(&frame, wire));
    }

    #[test]
    fn ethernet_is_kept_and_non_ip_is_refused() {
        let eth: Vec<u8> = (0..60).collect();
        assert_eq!(
            to_ethernet(Link::Ethernet, &eth, 70),
            Some((eth.clone(), 70))
        );
        // An SLL frame carrying ARP (no IP version nibble after the header).
        let mut arp = vec![0u8; 16];
        arp[14..16].copy_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0x00, 0x01, 0x08, 0x00]);
        assert_eq!(to_ethernet(Link::LinuxSll, &arp, 20), None);
        // Shorter than the link header.
        assert_eq!(to_ethernet(Link::LinuxSll2, &[0u8; 10], 10), None);
    }
}
