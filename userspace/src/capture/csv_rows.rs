//! The CSV row of a packet record: the format every capture path writes
//! (`sniff --read`, `sniff --interface`) and the rows `detect`/`classify`
//! get when they are handed a capture file.
//!
//! Columns, in this order (the original tool's five first):
//!
//! | column | value |
//! |---|---|
//! | `timestamp` | epoch seconds with exactly 6 decimals (`1712589010.595727`); nanosecond captures are truncated to the microsecond, as libpcap does |
//! | `source_ip`, `destination_ip` | dotted IPv4 or compressed IPv6 text |
//! | `protocol` | lower-case IANA name (`tcp`, `udp`, `icmp`, `ipv6-icmp`), else the number |
//! | `length` | the whole frame's length on the wire, link header included |
//! | `source_port`, `destination_port` | TCP/UDP/SCTP/DCCP/UDP-Lite ports; ICMP type and code; 0 when none (later fragments) |
//! | `ttl` | IPv4 TTL or IPv6 hop limit |
//! | `tcp_flags` | the TCP flags byte as a number (SYN = 2, SYN+ACK = 18), 0 otherwise |
//! | `vlan_id` | the outer 802.1Q/802.1ad VLAN id, 0 when untagged |
//! | `flow_packets`, `flow_bytes` | the flow's packets and bytes so far, this packet included |
//! | `flow_gap` | seconds since the flow's previous packet, 6 decimals (0.000000 for its first) |
//! | `ip_version` | 4 or 6 |
//! | `fragment` | 0: not a fragment; 1: first fragment (has ports); 2: later fragment (no ports) |
//!
//! No cell can hold a comma, a quote or a line break, so rows are written
//! without quoting.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

use anyhow::Result;
use ml_sniffing_common::protocol;
use ml_sniffing_common::record::{PacketRecord, FLAG_FRAGMENT, FLAG_LATER_FRAGMENT};

use crate::io::Table;

/// Every column, in file order.
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

/// The header line, newline included.
pub fn header_line() -> String {
    let mut line = COLUMNS.join(",");
    line.push('\n');
    line
}

/// The `fragment` cell's value for a record.
pub fn fragment_code(record: &PacketRecord) -> u8 {
    if record.flags & FLAG_LATER_FRAGMENT != 0 {
        2
    } else if record.flags & FLAG_FRAGMENT != 0 {
        1
    } else {
        0
    }
}

/// The longest row: 15 cells of at most 20 digits (or 45 characters for
/// an IPv6 address, 27 for a timestamp) and their separators, rounded up.
const LINE_MAX: usize = 384;

/// Formats records into one reusable line buffer, digit by digit: the
/// general-purpose formatters cost more than the parser here.
#[derive(Debug)]
pub struct RowFormatter {
    /// `line[..len]` is the cells joined by commas, closed by a newline
    /// (ASCII only).
    line: [u8; LINE_MAX],
    len: usize,
    /// The end of each cell in `line`.
    ends: [usize; COLUMNS.len()],
}

impl Default for RowFormatter {
    fn default() -> Self {
        RowFormatter::new()
    }
}

impl RowFormatter {
    pub fn new() -> Self {
        RowFormatter {
            line: [0; LINE_MAX],
            len: 0,
            ends: [0; COLUMNS.len()],
        }
    }

    /// Ends cell `cell`.
    #[inline(always)]
    fn close(&mut self, cell: usize) {
        self.ends[cell] = self.len;
        self.line[self.len] = if cell + 1 == COLUMNS.len() {
            b'\n'
        } else {
            b','
        };
        self.len += 1;
    }

    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.line[self.len] = b;
            self.len += 1;
        }
    }

    /// `v` in decimal.
    #[inline(always)]
    fn push_u64(&mut self, mut v: u64) {
        let mut digits = 1;
        let mut rest = v / 10;
        while rest > 0 {
            digits += 1;
            rest /= 10;
        }
        let end = self.len + digits;
        for slot in self.line[self.len..end].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len = end;
    }

    /// `seconds.micros` with exactly six decimals, truncating nanoseconds.
    #[inline(always)]
    fn push_seconds(&mut self, ns: u64) {
        self.push_u64(ns / 1_000_000_000);
        self.line[self.len] = b'.';
        let mut micros = ns % 1_000_000_000 / 1_000;
        let end = self.len + 7;
        for slot in self.line[self.len + 1..end].iter_mut().rev() {
            *slot = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        self.len = end;
    }

    fn push_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.push(b".");
                    }
                    self.push_u64(octet as u64);
                }
            }
            // At most 45 characters: the buffer has room.
            IpAddr::V6(v6) => {
                let _ = write!(self, "{v6}");
            }
        }
    }

    /// Formats `r` (whose `timestamp_ns` is epoch nanoseconds).
    pub fn format(&mut self, r: &PacketRecord) {
        self.len = 0;
        self.push_seconds(r.timestamp_ns);
        self.close(0);
        self.push_ip(r.source());
        self.close(1);
        self.push_ip(r.destination());
        self.close(2);
        match protocol::name(r.protocol) {
            Some(name) => self.push(name.as_bytes()),
            None => self.push_u64(r.protocol as u64),
        }
        self.close(3);
        let numbers = [
            r.frame_len as u64,
            r.src_port as u64,
            r.dst_port as u64,
            r.ttl as u64,
            r.tcp_flags as u64,
            r.vlan_id as u64,
            r.flow_packets,
            r.flow_bytes,
        ];
        for (i, value) in numbers.into_iter().enumerate() {
            self.push_u64(value);
            self.close(4 + i);
        }
        self.push_seconds(r.flow_gap_ns);
        self.close(12);
        self.push_u64(r.ip_version as u64);
        self.close(13);
        self.push_u64(fragment_code(r) as u64);
        self.close(14);
    }

    /// The last formatted row as a CSV line, newline included.
    pub fn line(&self) -> &[u8] {
        &self.line[..self.len]
    }

    /// The last formatted row's cells.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.ends.iter().enumerate().map(move |(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
            // Only ASCII is ever written.
            std::str::from_utf8(&self.line[start..end]).unwrap_or("")
        })
    }
}

impl std::fmt::Write for RowFormatter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > LINE_MAX - COLUMNS.len() {
            return Err(std::fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Writes records as CSV: the header first, then one line per record.
pub struct CsvRowWriter<W: Write> {
    out: W,
    formatter: RowFormatter,
    rows: u64,
    header_written: bool,
}

impl<W: Write> CsvRowWriter<W> {
    /// Writes the header line.
    pub fn new(out: W) -> io::Result<Self> {
        let mut writer = Self::deferred(out);
        writer.write_header()?;
        Ok(writer)
    }

    /// A writer that writes the header line only with the first row or at
    /// [`write_header`](Self::write_header): a live capture to stdout
    /// prints nothing until the capture has started, so a failed attach
    /// leaves no stray header ahead of its error.
    pub fn deferred(out: W) -> Self {
        CsvRowWriter {
            out,
            formatter: RowFormatter::new(),
            rows: 0,
            header_written: false,
        }
    }

    /// Writes the header line if it is not written yet.
    pub fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(header_line().as_bytes())?;
            self.header_written = true;
        }
        Ok(())
    }

    #[inline]
    pub fn write(&mut self, record: &PacketRecord) -> io::Result<()> {
        self.write_header()?;
        self.formatter.format(record);
        self.rows += 1;
        self.out.write_all(self.formatter.line())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// An empty table with the record columns.
pub fn new_table() -> Table {
    Table::new(COLUMNS.iter().map(|c| c.to_string()).collect())
}

/// Appends `record` to a table made by [`new_table`]. Its line number is
/// the one the row would have in the CSV `sniff` writes (header = line 1).
pub fn push_record(
    table: &mut Table,
    formatter: &mut RowFormatter,
    record: &PacketRecord,
) -> Result<()> {
    formatter.format(record);
    let line = table.len() as u64 + 2;
    table.push_row(formatter.cells(), line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use ml_sniffing_common::record::{addr_bytes, FLAG_VLAN};
    use proptest::prelude::*;

    use super::*;

    /// The row written with `format!`, field by field.
    fn reference(r: &PacketRecord) -> String {
        let seconds = |ns: u64| format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1_000);
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            seconds(r.timestamp_ns),
            r.source(),
            r.destination(),
            protocol::name(r.protocol)
                .map(str::to_string)
                .unwrap_or_else(|| r.protocol.to_string()),
            r.frame_len,
            r.src_port,
            r.dst_port,
            r.ttl,
            r.tcp_flags,
            r.vlan_id,
            r.flow_packets,
            r.flow_bytes,
            seconds(r.flow_gap_ns),
            r.ip_version,
            fragment_code(r)
        )
    }

    proptest! {
        #[test]
        fn rows_match_a_plain_reference(
            words in proptest::array::uniform4(any::<u64>()),
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            small in proptest::array::uniform4(any::<u16>()),
            bytes in proptest::array::uniform4(any::<u8>()),
            v4 in any::<bool>(),
            extreme in any::<bool>(),
        ) {
            let mut r = PacketRecord {
                timestamp_ns: words[0],
                flow_packets: words[1],
                flow_bytes: words[2],
                flow_gap_ns: words[3],
                src_addr: src,
                dst_addr: dst,
                frame_len: (small[0] as u32) << 16 | small[1] as u32,
                src_port: small[1],
                dst_port: small[2],
                vlan_id: small[3],
                protocol: bytes[0],
                ip_version: if v4 { 4 } else { 6 },
                ttl: bytes[1],
                tcp_flags: bytes[2],
                flags: bytes[3],
                _pad: 0,
                behaviour: Default::default(),
            };
            if v4 {
                r.src_addr[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
                r.dst_addr[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
            }
            if extreme {
                // The longest row: maximal numbers and full-length IPv6.
                r.timestamp_ns = u64::MAX;
                r.flow_packets = u64::MAX;
                r.flow_bytes = u64::MAX;
                r.flow_gap_ns = u64::MAX;
                r.frame_len = u32::MAX;
                r.ip_version = 6;
                r.src_addr = [0x12; 16];
                r.dst_addr = [0xfe; 16];
            }
            let mut f = RowFormatter::new();
            f.format(&r);
            prop_assert_eq!(std::str::from_utf8(f.line()).unwrap(), reference(&r));
        }
    }

    fn record() -> PacketRecord {
        PacketRecord {
            timestamp_ns: 1_712_589_010_595_727_999,
            flow_packets: 3,
            flow_bytes: 198,
            flow_gap_ns: 1_500_000_001,
            src_addr: addr_bytes("10.1.2.3".parse().unwrap()),
            dst_addr: addr_bytes("192.168.0.255".parse().unwrap()),
            frame_len: 66,
            src_port: 51000,
            dst_port: 443,
            vlan_id: 7,
            protocol: 6,
            ip_version: 4,
            ttl: 64,
            tcp_flags: 0x12,
            flags: FLAG_VLAN,
            _pad: 0,
            behaviour: Default::default(),
        }
    }

    #[test]
    fn a_row_has_every_column_in_order() {
        let mut f = RowFormatter::new();
        f.format(&record());
        assert_eq!(
            std::str::from_utf8(f.line()).unwrap(),
            "1712589010.595727,10.1.2.3,192.168.0.255,tcp,66,51000,443,64,18,7,3,198,1.500000,4,0\n"
        );
        let cells: Vec<&str> = f.cells().collect();
        assert_eq!(cells.len(), COLUMNS.len());
        assert_eq!(cells[0], "1712589010.595727");
        assert_eq!(cells[14], "0");
        assert_eq!(
            header_line(),
            "timestamp,source_ip,destination_ip,protocol,length,source_port,\
             destination_port,ttl,tcp_flags,vlan_id,flow_packets,flow_bytes,flow_gap,\
             ip_version,fragment\n"
        );
    }

    #[test]
    fn ipv6_unknown_protocols_small_times_and_fragments() {
        let mut r = record();
        r.src_addr = addr_bytes("2001:db8::1".parse().unwrap());
        r.dst_addr = addr_bytes("::ffff:1.2.3.4".parse().unwrap());
        r.ip_version = 6;
        r.protocol = 253;
        r.timestamp_ns = 5_000;
        r.flow_gap_ns = 999;
        r.flags = FLAG_FRAGMENT | FLAG_LATER_FRAGMENT;
        let mut f = RowFormatter::new();
        f.format(&r);
        let line = std::str::from_utf8(f.line()).unwrap();
        assert_eq!(
            line,
            "0.000005,2001:db8::1,::ffff:1.2.3.4,253,66,51000,443,64,18,7,3,198,0.000000,6,2\n"
        );
        r.flags = FLAG_FRAGMENT;
        r.protocol = 58;
        f.format(&r);
        let cells: Vec<&str> = f.cells().collect();
        assert_eq!((cells[3], cells[14]), ("ipv6-icmp", "1"));
    }

    #[test]
    fn table_rows_hold_the_same_cells_as_the_csv() {
        let mut table = new_table();
        let mut f = RowFormatter::new();
        push_record(&mut table, &mut f, &record()).unwrap();
        push_record(&mut table, &mut f, &PacketRecord::default()).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table.line(1), 3);
        let mut w = CsvRowWriter::new(Vec::new()).unwrap();
        w.write(&record()).unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(
            (0..COLUMNS.len())
                .map(|c| table.cell(0, c))
                .collect::<Vec<_>>(),
            row
        );
        assert_eq!(table.cell(1, 1), "::");
    }

    #[test]
    fn a_deferred_header_comes_once_before_the_first_row_or_when_asked() {
        let w = CsvRowWriter::deferred(Vec::new());
        assert!(
            w.into_inner().is_empty(),
            "nothing before a row or a request"
        );

        let mut w = CsvRowWriter::deferred(Vec::new());
        w.write(&record()).unwrap();
        w.write_header().unwrap();
        w.write(&record()).unwrap();
        let mut eager = CsvRowWriter::new(Vec::new()).unwrap();
        eager.write(&record()).unwrap();
        eager.write(&record()).unwrap();
        assert_eq!(w.into_inner(), eager.into_inner());

        let mut w = CsvRowWriter::deferred(Vec::new());
        w.write_header().unwrap();
        w.write_header().unwrap();
        assert_eq!(w.rows(), 0);
        assert_eq!(String::from_utf8(w.into_inner()).unwrap(), header_line());
    }
}
