//! Packet records as CSV rows: the original tool's five columns first, in
//! its formats, then the fields the XDP program adds. `sniff` writes these;
//! pcap conversion writes the same rows.
//!
//! | column | value |
//! |---|---|
//! | `timestamp` | epoch seconds with 6 decimals (`1712589010.595727`) |
//! | `source_ip`, `destination_ip` | dotted IPv4, or IPv6 in RFC 5952 form |
//! | `protocol` | lower-case IANA name (`tcp`, `udp`, `ipv6-icmp`), else the number |
//! | `length` | the whole frame's length, link header included |
//! | `source_port`, `destination_port` | TCP/UDP/SCTP/DCCP ports; ICMP type and code; 0 otherwise |
//! | `ttl` | IPv4 TTL or IPv6 hop limit |
//! | `tcp_flags` | the TCP flags byte as a number (SYN = 2, SYN+ACK = 18) |
//! | `vlan_id` | the outer 802.1Q VLAN id, 0 when untagged |
//! | `flow_packets`, `flow_bytes` | the flow's packets and bytes so far, this one included |
//! | `flow_gap` | seconds since the flow's previous packet, 6 decimals, 0 for its first |
//! | `ip_version` | 4 or 6 |
//! | `fragment` | 1 for an IP fragment, else 0 |
//!
//! Every value is a number, an address or a protocol name: none needs CSV
//! quoting, so rows are formatted straight into one reused buffer.

use std::fmt::Write as _;
use std::io::{self, Write};

use ml_sniffing_common::protocol;
use ml_sniffing_common::record::{PacketRecord, FLAG_FRAGMENT};

/// The header, in column order.
pub const COLUMNS: [&str; 15] = [
    "timestamp",
    "source_ip",
    "destination_ip",
    "protocol",
    "length",
    "source_port",
    "destination_port",
    "ttl",
    "tcp_flags",
    "vlan_id",
    "flow_packets",
    "flow_bytes",
    "flow_gap",
    "ip_version",
    "fragment",
];

/// Writes the header, then one row per record.
pub struct CsvRows<W: Write> {
    out: W,
    line: String,
    rows: u64,
    header_written: bool,
}

impl<W: Write> CsvRows<W> {
    /// The header is written with the first row (or by
    /// [`write_header`](Self::write_header)).
    pub fn new(out: W) -> Self {
        CsvRows {
            out,
            line: String::with_capacity(256),
            rows: 0,
            header_written: false,
        }
    }

    pub fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            self.out.write_all(COLUMNS.join(",").as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// One row; `record.timestamp_ns` must be epoch ns.
    pub fn write(&mut self, record: &PacketRecord) -> io::Result<()> {
        self.write_header()?;
        self.line.clear();
        format_row(&mut self.line, record);
        self.out.write_all(self.line.as_bytes())?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Seconds with 6 decimals from nanoseconds (truncated, as `%.6f` of a
/// microsecond timestamp would print it).
fn push_seconds(line: &mut String, ns: u64) {
    let micros = ns / 1_000;
    let _ = write!(line, "{}.{:06}", micros / 1_000_000, micros % 1_000_000);
}

/// Appends `record` as one CSV line (with its newline) to `line`.
pub fn format_row(line: &mut String, r: &PacketRecord) {
    push_seconds(line, r.timestamp_ns);
    let _ = write!(line, ",{},{},", r.source(), r.destination());
    match protocol::name(r.protocol) {
        Some(name) => line.push_str(name),
        None => {
            let _ = write!(line, "{}", r.protocol);
        }
    }
    let _ = write!(
        line,
        ",{},{},{},{},{},{},{},{},",
        r.frame_len,
        r.src_port,
        r.dst_port,
        r.ttl,
        r.tcp_flags,
        r.vlan_id,
        r.flow_packets,
        r.flow_bytes
    );
    push_seconds(line, r.flow_gap_ns);
    let fragment = u8::from(r.flags & FLAG_FRAGMENT != 0);
    let _ = writeln!(line, ",{},{}", r.ip_version, fragment);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_sniffing_common::record::addr_bytes;

    fn record() -> PacketRecord {
        PacketRecord {
            timestamp_ns: 1_712_589_010_595_727_891,
            src_addr: addr_bytes("192.168.1.10".parse().unwrap()),
            dst_addr: addr_bytes("10.0.0.1".parse().unwrap()),
            ip_version: 4,
            protocol: 6,
            frame_len: 66,
            src_port: 51000,
            dst_port: 443,
            ttl: 64,
            tcp_flags: 0x12,
            flow_packets: 3,
            flow_bytes: 198,
            flow_gap_ns: 1_500_000,
            ..Default::default()
        }
    }

    #[test]
    fn rows_follow_the_seed_formats_then_the_extra_columns() {
        let mut rows = CsvRows::new(Vec::new());
        rows.write(&record()).unwrap();
        let mut v6 = record();
        v6.src_addr = addr_bytes("2001:db8::1".parse().unwrap());
        v6.dst_addr = addr_bytes("fe80::2".parse().unwrap());
        v6.ip_version = 6;
        v6.protocol = 58;
        v6.tcp_flags = 0;
        v6.vlan_id = 42;
        v6.flags = FLAG_FRAGMENT;
        v6.timestamp_ns = 5_000; // 5 µs after the epoch
        v6.flow_gap_ns = 0;
        rows.write(&v6).unwrap();
        let mut unknown = record();
        unknown.protocol = 253;
        rows.write(&unknown).unwrap();
        assert_eq!(rows.rows(), 3);
        let text = String::from_utf8(rows.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "timestamp,source_ip,destination_ip,protocol,length,source_port,destination_port,ttl,\
             tcp_flags,vlan_id,flow_packets,flow_bytes,flow_gap,ip_version,fragment"
        );
        assert_eq!(
            lines[1],
            "1712589010.595727,192.168.1.10,10.0.0.1,tcp,66,51000,443,64,18,0,3,198,0.001500,4,0"
        );
        assert_eq!(
            lines[2],
            "0.000005,2001:db8::1,fe80::2,ipv6-icmp,66,51000,443,64,0,42,3,198,0.000000,6,1"
        );
        assert!(lines[3].starts_with("1712589010.595727,192.168.1.10,10.0.0.1,253,66,"));
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn the_seed_columns_come_first_in_the_seed_order() {
        assert_eq!(
            &COLUMNS[..5],
            &[
                "timestamp",
                "source_ip",
                "destination_ip",
                "protocol",
                "length"
            ]
        );
    }
}
