//! Community ID v1 (corelight/community-id-spec): one flow hash that
//! Suricata, Zeek and Elastic agree on, so alerts join their records.
//!
//! `1:` + base64(SHA-1(seed (u16, big endian) | lower address | higher
//! address | protocol | 0 | lower port | higher port)), the endpoints ordered
//! so that both directions give the same ID. For ICMP and ICMPv6 the ports
//! are the type and code, mapped to the type of the reply for the
//! request/reply pairs the specification lists, so both sides match (other
//! types are one-way and keep their order).

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

/// ICMP types that come in request/reply pairs, both ways.
fn icmp_counterpart(v6: bool, kind: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        &[
            (128, 129),
            (130, 131),
            (133, 134),
            (135, 136),
            (139, 140),
            (144, 145),
        ]
    } else {
        &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)]
    };
    pairs.iter().find_map(|&(a, b)| {
        if kind == a {
            Some(b)
        } else if kind == b {
            Some(a)
        } else {
            None
        }
    })
}

fn bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The Community ID of a flow (`sport`/`dport`: ports, or ICMP type and
/// code; 0 for protocols without them).
pub fn community_id(src: IpAddr, dst: IpAddr, protocol: u8, sport: u16, dport: u16) -> String {
    let (sp, mut dp) = (sport, dport);
    let mut one_way = false;
    let icmp6 = protocol == 58;
    if protocol == 1 || icmp6 {
        match icmp_counterpart(icmp6, sport as u8) {
            Some(other) => dp = other as u16,
            None => one_way = true,
        }
    }
    let (s, d) = (bytes(src), bytes(dst));
    // An ICMP type without a counterpart is one-way: kept as it is.
    let swap = !one_way && (&s, sp) > (&d, dp);
    let (a, ap, b, bp) = if swap { (d, dp, s, sp) } else { (s, sp, d, dp) };
    let mut h = Sha1::new();
    h.update(0u16.to_be_bytes());
    h.update(&a);
    h.update(&b);
    h.update([protocol, 0]);
    if matches!(protocol, 1 | 6 | 17 | 58 | 132) {
        h.update(ap.to_be_bytes());
        h.update(bp.to_be_bytes());
    }
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The specification's baseline vectors (seed 0), both directions.
    #[test]
    fn the_specification_vectors() {
        let cases = [
            (
                "128.232.110.120",
                "66.35.250.204",
                6,
                34855,
                80,
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                "192.168.1.52",
                "8.8.8.8",
                17,
                54585,
                53,
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                "192.168.0.89",
                "192.168.0.1",
                1,
                8,
                0,
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                "192.168.0.1",
                "192.168.0.89",
                1,
                0,
                0,
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                "fe80::200:86ff:fe05:80da",
                "fe80::260:97ff:fe07:69ea",
                58,
                135,
                0,
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                "1.2.3.4",
                "5.6.7.8",
                6,
                1122,
                3344,
                "1:wCb3OG7yAFWelaUydu0D+125CLM=",
            ),
            (
                "1.2.3.4",
                "5.6.7.8",
                17,
                1122,
                3344,
                "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
            ),
        ];
        for (s, d, p, sp, dp, want) in cases {
            assert_eq!(community_id(ip(s), ip(d), p, sp, dp), want, "{s} {d} {p}");
            if p == 6 || p == 17 {
                assert_eq!(community_id(ip(d), ip(s), p, dp, sp), want, "reverse");
            }
        }
    }
}
