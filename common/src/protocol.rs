//! IANA IP protocol numbers and the lower-case names `/etc/protocols` (and so
//! the original Scapy tool) gives them.

/// `(number, name)` for every protocol Debian's `/etc/protocols` names (the
/// table Scapy, and so the original tool, took its names from).
pub const NAMES: &[(u8, &str)] = &[
    (0, "hopopt"),
    (1, "icmp"),
    (2, "igmp"),
    (3, "ggp"),
    (4, "ipencap"),
    (5, "st"),
    (6, "tcp"),
    (8, "egp"),
    (9, "igp"),
    (12, "pup"),
    (17, "udp"),
    (20, "hmp"),
    (22, "xns-idp"),
    (27, "rdp"),
    (29, "iso-tp4"),
    (33, "dccp"),
    (36, "xtp"),
    (37, "ddp"),
    (38, "idpr-cmtp"),
    (41, "ipv6"),
    (43, "ipv6-route"),
    (44, "ipv6-frag"),
    (45, "idrp"),
    (46, "rsvp"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (57, "skip"),
    (58, "ipv6-icmp"),
    (59, "ipv6-nonxt"),
    (60, "ipv6-opts"),
    (73, "rspf"),
    (81, "vmtp"),
    (88, "eigrp"),
    (89, "ospf"),
    (93, "ax.25"),
    (94, "ipip"),
    (97, "etherip"),
    (98, "encap"),
    (103, "pim"),
    (108, "ipcomp"),
    (112, "vrrp"),
    (115, "l2tp"),
    (124, "isis"),
    (132, "sctp"),
    (133, "fc"),
    (135, "mobility-header"),
    (136, "udplite"),
    (137, "mpls-in-ip"),
    (138, "manet"),
    (139, "hip"),
    (140, "shim6"),
    (141, "wesp"),
    (142, "rohc"),
    (143, "ethernet"),
];

/// The lower-case name of IP protocol `number`, if it has a well-known one.
pub fn name(number: u8) -> Option<&'static str> {
    let mut i = 0;
    while i < NAMES.len() {
        if NAMES[i].0 == number {
            return Some(NAMES[i].1);
        }
        i += 1;
    }
    None
}

/// The IANA number for a protocol name (case-insensitive). Also accepts the
/// number itself written in decimal (how unknown protocols are written) and
/// the aliases other tools use (`icmpv6`, `ipv6_icmp`, `icmp6`).
pub fn number(name: &str) -> Option<u8> {
    let trimmed = name.trim();
    if let Ok(n) = trimmed.parse::<u8>() {
        return Some(n);
    }
    for &(n, known) in NAMES {
        if known.eq_ignore_ascii_case(trimmed) {
            return Some(n);
        }
    }
    const ALIASES: &[(&str, u8)] = &[("icmpv6", 58), ("icmp6", 58), ("ipv6_icmp", 58), ("ip", 0)];
    for &(alias, n) in ALIASES {
        if alias.eq_ignore_ascii_case(trimmed) {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for &(n, known) in NAMES {
            assert_eq!(name(n), Some(known));
            assert_eq!(number(known), Some(n));
            assert_eq!(number(&known.to_uppercase()), Some(n));
        }
    }

    #[test]
    fn numbers_written_as_text_and_aliases() {
        assert_eq!(number("253"), Some(253));
        assert_eq!(number(" TCP "), Some(6));
        assert_eq!(number("icmpv6"), Some(58));
        assert_eq!(number("not-a-protocol"), None);
        assert_eq!(name(253), None);
    }
}
