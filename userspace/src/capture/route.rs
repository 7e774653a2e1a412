//! The interface of the default route, read from /proc (what `run` and
//! `cargo xtask run` monitor when no interface is named).

use anyhow::{Context, Result};

/// The default route's interface on this machine.
pub fn default_interface() -> Result<String> {
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let route6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    default_route_interface(&route, &route6)
        .context("there is no default route to take the interface from: name one with --iface IF")
}

/// The interface of the default route with the lowest metric: IPv4 from
/// /proc/net/route, else IPv6 from /proc/net/ipv6_route.
pub fn default_route_interface(route: &str, ipv6_route: &str) -> Option<String> {
    const RTF_UP: u32 = 1;
    let v4 = route
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, flags, metric, mask) =
                (f.first()?, f.get(1)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let metric: u32 = metric.parse().ok()?;
            (*dest == "00000000" && *mask == "00000000" && flags & RTF_UP != 0)
                .then(|| (metric, iface.to_string()))
        })
        .min();
    if let Some((_, iface)) = v4 {
        return Some(iface);
    }
    ipv6_route
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, prefix, metric, flags, iface) =
                (f.first()?, f.get(1)?, f.get(5)?, f.get(8)?, f.get(9)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let metric = u32::from_str_radix(metric, 16).ok()?;
            let default = dest.bytes().all(|b| b == b'0') && *prefix == "00";
            (default && flags & RTF_UP != 0 && *iface != "lo").then(|| (metric, iface.to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
";

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        assert_eq!(default_route_interface(ROUTE, "").as_deref(), Some("eth0"));
    }

    #[test]
    fn ipv6_default_route_when_there_is_no_ipv4_one() {
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     ens3
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     ens4
";
        let no_default_v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        assert_eq!(
            default_route_interface(no_default_v4, v6).as_deref(),
            Some("ens3")
        );
        assert_eq!(default_route_interface(no_default_v4, ""), None);
    }
}
