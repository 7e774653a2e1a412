//! One capture of the data folder, as the mixture replays it: its IP
//! frames (as Ethernet) and their offsets from its first kept frame.

use std::path::Path;

use anyhow::{Context, Result};
use ml_sniffing::capture::pcap::CaptureReader;
use ml_sniffing_common::parser::{parse, Link, Outcome};
use ml_sniffing_common::record::PacketRecord;

use super::link::to_ethernet;

/// The longest gap between two frames of a capture, so that an appended
/// trace does not leave a hole of hours.
pub const GAP_CAP_NS: u64 = 60_000_000_000;

/// What a capture is in the mixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Benign,
    Attack,
}

impl Label {
    pub fn name(self) -> &'static str {
        match self {
            Label::Benign => "benign",
            Label::Attack => "attack",
        }
    }
}

/// A kept frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// From the capture's first kept frame.
    pub offset_ns: u64,
    pub wire_len: u32,
    /// Ethernet frame.
    pub data: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Capture {
    /// File name (what labels.csv and the tables show).
    pub name: String,
    pub label: Label,
    pub packets: Vec<Packet>,
    /// Frames in the file, kept or not.
    pub frames: u64,
}

impl Capture {
    /// Offset of the last kept frame.
    pub fn duration_ns(&self) -> u64 {
        self.packets.last().map_or(0, |p| p.offset_ns)
    }

    /// Reads the capture at `path`.
    pub fn load(path: &Path, label: Label) -> Result<Capture> {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let mut reader = CaptureReader::open(path)?;
        let mut builder = Builder::new(name, label);
        while let Some(frame) = reader
            .next_frame()
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            builder.push(frame.timestamp_ns, frame.link, frame.data, frame.wire_len);
        }
        Ok(builder.finish())
    }
}

/// Builds a [`Capture`] from its frames in file order.
pub struct Builder {
    capture: Capture,
    previous_ns: Option<u64>,
    clock_ns: u64,
    record: PacketRecord,
}

impl Builder {
    pub fn new(name: String, label: Label) -> Self {
        Builder {
            capture: Capture {
                name,
                label,
                packets: Vec::new(),
                frames: 0,
            },
            previous_ns: None,
            clock_ns: 0,
            record: PacketRecord::default(),
        }
    }

    /// A frame seen at `timestamp_ns`: the capture's clock moves by the gap
    /// since the previous frame, at least 0 (appended traces go back in
    /// time) and at most [`GAP_CAP_NS`]; kept when it is IP.
    pub fn push(&mut self, timestamp_ns: u64, link: Link, data: &[u8], wire_len: u32) {
        self.capture.frames += 1;
        if let Some(previous) = self.previous_ns {
            self.clock_ns += timestamp_ns.saturating_sub(previous).min(GAP_CAP_NS);
        }
        self.previous_ns = Some(timestamp_ns);
        let Some((frame, wire)) = to_ethernet(link, data, wire_len) else {
            return;
        };
        if parse(&frame[..], Link::Ethernet, wire as usize, &mut self.record) == Outcome::Ip {
            self.capture.packets.push(Packet {
                offset_ns: self.clock_ns,
                wire_len: wire,
                data: frame,
            });
        }
    }

    /// The capture, its offsets counted from its first kept frame.
    pub fn finish(mut self) -> Capture {
        if let Some(first) = self.capture.packets.first().map(|p| p.offset_ns) {
            for p in &mut self.capture.packets {
                p.offset_ns -= first;
            }
        }
        self.capture
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An Ethernet IPv4/UDP frame from 10.0.0.`src` to 10.0.0.2, `tag` in
    /// its source port (so frames can be told apart).
    pub fn udp_frame(src: u8, tag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, src, 10, 0, 0, 2,
        ]);
        f.extend_from_slice(&tag.to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 8, 0, 0]);
        f
    }

    /// A capture of `n` UDP frames `gap_ns` apart.
    pub fn synthetic(name: &str, label: Label, src: u8, n: u16, gap_ns: u64) -> Capture {
        let mut b = Builder::new(name.into(), label);
        for i in 0..n {
            let f = udp_frame(src, i);
            b.push(
                1_000_000_000 + u64::from(i) * gap_ns,
                Link::Ethernet,
                &f,
                f.len() as u32,
            );
        }
        b.finish()
    }

    #[test]
    fn gaps_are_clamped_and_non_ip_dropped() {
        let mut b = Builder::new("t".into(), Label::Benign);
        let ip = udp_frame(1, 0);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        b.push(5_000, Link::Ethernet, &arp, 42);
        b.push(6_000, Link::Ethernet, &ip, 42);
        // Backwards: no time passes.
        b.push(2_000, Link::Ethernet, &ip, 42);
        b.push(2_500, Link::Ethernet, &ip, 42);
        // Two hours later: one capped gap.
        b.push(2_500 + 7_200_000_000_000, Link::Ethernet, &ip, 42);
        let c = b.finish();
        assert_eq!(c.frames, 5);
        let offsets: Vec<u64> = c.packets.iter().map(|p| p.offset_ns).collect();
        assert_eq!(offsets, [0, 0, 500, 500 + GAP_CAP_NS]);
        assert_eq!(c.duration_ns(), 500 + GAP_CAP_NS);
    }
}
