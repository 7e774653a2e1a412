//! Writing frames to a pcapng file (AF_XDP captures: `sniff --write-pcap`,
//! and the monitor's anomaly frames).
//!
//! The file is one section with one Ethernet interface (its name, and
//! nanosecond timestamps: `if_tsresol` 9), an enhanced packet block per
//! frame, and, when [`PcapNgWriter::finish`] is called, an interface
//! statistics block: capture start and end, frames the interface showed the
//! capture (`isb_ifrecv`), frames the capture lost (`isb_ifdrop`) and frames
//! written to this file (`isb_usrdeliv`). Blocks are written through
//! `pcap-file`'s pcapng writer, little-endian.
//!
//! Frames are written as they come (the caller flushes, e.g. on its tick),
//! so a capture that is killed keeps what was flushed; pcapng readers,
//! ours included, stop cleanly at a truncated last block.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness};

/// The largest frame the file declares (`snaplen`): frames are never cut.
pub const SNAPLEN: u32 = 262_144;

/// What [`PcapNgWriter::finish`] records in the interface statistics block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Epoch ns of the capture's start and end.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Frames the interface showed the capture (`isb_ifrecv`).
    pub received: u64,
    /// Frames the capture lost for lack of resources (`isb_ifdrop`).
    pub dropped: u64,
}

/// A pcapng file being written.
pub struct PcapNgWriter<W: Write> {
    inner: pcap_file::pcapng::PcapNgWriter<W>,
    frames: u64,
}

impl<W: Write> PcapNgWriter<W> {
    /// Starts the file: section header and the interface `interface`.
    pub fn new(writer: W, interface: &str) -> Result<Self> {
        let section = SectionHeaderBlock {
            endianness: Endianness::Little,
            options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "ml-sniffing {}",
                env!("CARGO_PKG_VERSION")
            )))],
            ..SectionHeaderBlock::default()
        };
        let mut inner = pcap_file::pcapng::PcapNgWriter::with_section_header(writer, section)
            .context("cannot write the pcapng section header")?;
        inner
            .write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: SNAPLEN,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(interface.to_owned())),
                    // Enhanced packet blocks hold nanoseconds (pcap-file
                    // writes `Duration::as_nanos`).
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            })
            .context("cannot write the pcapng interface description")?;
        Ok(PcapNgWriter { inner, frames: 0 })
    }

    /// Appends one whole frame seen at `timestamp_ns` (epoch).
    #[inline]
    pub fn write(&mut self, timestamp_ns: u64, frame: &[u8]) -> Result<()> {
        self.inner
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(timestamp_ns),
                original_len: frame.len() as u32,
                data: Cow::Borrowed(frame),
                options: Vec::new(),
            })
            .context("cannot write a frame to the pcapng file")?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.inner.get_mut()
    }

    /// Ends the file with the interface statistics block and returns the
    /// writer (not flushed).
    pub fn finish(mut self, stats: &CaptureStats) -> Result<W> {
        let little = self.inner.section().endianness == Endianness::Little;
        let frames = self.frames;
        let end = timestamp(stats.end_ns, little);
        self.inner
            .write_pcapng_block(InterfaceStatisticsBlock {
                interface_id: 0,
                timestamp: end,
                options: vec![
                    InterfaceStatisticsOption::IsbStartTime(timestamp(stats.start_ns, little)),
                    InterfaceStatisticsOption::IsbEndTime(end),
                    InterfaceStatisticsOption::IsbIfRecv(stats.received),
                    InterfaceStatisticsOption::IsbIfDrop(stats.dropped),
                    InterfaceStatisticsOption::IsbUsrDeliv(frames),
                ],
            })
            .context("cannot write the pcapng interface statistics")?;
        Ok(self.inner.into_inner())
    }
}

/// A pcapng timestamp (in the interface's units, ns here) as pcap-file must
/// be given it for statistics blocks: the format stores the high 32 bits
/// then the low 32 bits, each in the section's byte order, while pcap-file
/// writes the value as one u64; in a little-endian section the halves must
/// be swapped beforehand.
fn timestamp(ns: u64, little_endian: bool) -> u64 {
    if little_endian {
        ns.rotate_left(32)
    } else {
        ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::pcap::{CaptureReader, Format};
    use ml_sniffing_common::parser::Link;

    /// Frames written are read back by our reader, byte for byte, with
    /// their nanosecond timestamps; the statistics block is where the
    /// format says, with its fields in order.
    #[test]
    fn frames_read_back_and_statistics_are_in_the_format() {
        let frames: Vec<(u64, Vec<u8>)> = vec![
            (1_712_589_010_595_727_123, vec![0xaa; 60]),
            (1_712_589_010_595_728_001, (0..=255).collect()),
            (1_712_589_011_000_000_000, vec![1, 2, 3]),
        ];
        let mut w = PcapNgWriter::new(Vec::new(), "veth0").unwrap();
        for (ts, f) in &frames {
            w.write(*ts, f).unwrap();
        }
        assert_eq!(w.frames(), 3);
        let stats = CaptureStats {
            start_ns: 0x0000_0001_0000_0002,
            end_ns: 0x1122_3344_5566_7788,
            received: 10,
            dropped: 4,
        };
        let bytes = w.finish(&stats).unwrap();

        let mut reader = CaptureReader::new(&bytes[..], "written.pcapng").unwrap();
        assert_eq!(reader.format(), Format::PcapNg);
        for (ts, f) in &frames {
            let got = reader.next_frame().unwrap().expect("a frame");
            assert_eq!(got.data, &f[..]);
            assert_eq!(got.wire_len as usize, f.len());
            assert_eq!(got.timestamp_ns, *ts);
            assert_eq!(got.link, Link::Ethernet);
        }
        assert!(reader.next_frame().unwrap().is_none());
        assert!(reader.truncation().is_none());

        // The last block: type 5, then interface id, timestamp high, low,
        // then options (code, length, value) in little-endian.
        let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let le64_halves = |at: usize| ((le32(at) as u64) << 32) | le32(at + 4) as u64;
        let total = le32(bytes.len() - 4) as usize;
        let isb = bytes.len() - total;
        assert_eq!(le32(isb), 5, "an interface statistics block ends the file");
        assert_eq!(le32(isb + 8), 0, "interface 0");
        assert_eq!(le64_halves(isb + 12), stats.end_ns);
        let mut at = isb + 20;
        let mut options = Vec::new();
        loop {
            let code = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
            let len = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
            if code == 0 {
                break;
            }
            assert_eq!(len, 8);
            let value = if code <= 3 {
                le64_halves(at + 4)
            } else {
                u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap())
            };
            options.push((code, value));
            at += 4 + len;
        }
        assert_eq!(
            options,
            vec![
                (2, stats.start_ns),
                (3, stats.end_ns),
                (4, 10),
                (5, 4),
                (8, 3)
            ]
        );
    }

    #[test]
    fn timestamp_halves_follow_the_byte_order() {
        let ns = 0x0000_0001_ffff_fffe;
        let mut le = Vec::new();
        le.extend_from_slice(&timestamp(ns, true).to_le_bytes());
        assert_eq!(&le[..4], &1u32.to_le_bytes(), "high half first");
        assert_eq!(&le[4..], &0xffff_fffeu32.to_le_bytes());
        assert_eq!(timestamp(ns, false).to_be_bytes(), ns.to_be_bytes());
    }
}
