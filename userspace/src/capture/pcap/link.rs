//! Capture link types (the `LINKTYPE_*` numbers in file headers) and the
//! framing the shared parser reads for each.

use ml_sniffing_common::parser::Link;
use pcap_file::DataLink;

/// The link types a capture may use, as the sentence errors show.
pub const SUPPORTED: &str = "Ethernet (1), Linux cooked capture SLL (113) and SLL2 (276), \
                             raw IP (101, and 12, 14, 228, 229)";

/// The parser framing for a link type, `None` when it is not supported.
pub fn framing(link_type: u32) -> Option<Link> {
    match link_type {
        1 => Some(Link::Ethernet),
        113 => Some(Link::LinuxSll),
        276 => Some(Link::LinuxSll2),
        // LINKTYPE_RAW; 12 and 14 are the DLT_RAW values some systems
        // wrote into files; 228/229 are LINKTYPE_IPV4/IPV6. The parser
        // tells IPv4 from IPv6 by the version nibble.
        101 | 12 | 14 | 228 | 229 => Some(Link::RawIp),
        _ => None,
    }
}

/// `105 (IEEE802_11)`: the number and, when pcap-file knows it, the name.
pub fn describe(link_type: u32) -> String {
    match DataLink::from(link_type) {
        DataLink::Unknown(_) => format!("{link_type}"),
        known => format!("{link_type} ({known:?})"),
    }
}

/// The sentence for a link type the parser cannot read.
pub fn unsupported(what: &str, link_type: u32) -> String {
    format!(
        "{what} uses link type {}, which ml-sniffing cannot read; supported link types: {SUPPORTED}",
        describe(link_type)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_framings() {
        assert_eq!(framing(1), Some(Link::Ethernet));
        assert_eq!(framing(276), Some(Link::LinuxSll2));
        assert_eq!(framing(105), None);
        assert_eq!(describe(105), "105 (IEEE802_11)");
        assert_eq!(describe(60_000), "60000");
    }
}
