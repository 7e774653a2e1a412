//! Classic pcap files the tests write from frames they build.

use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

/// Writes `frames` (each with its time since the epoch) to `path` as an
/// Ethernet pcap with microsecond timestamps.
pub fn write_pcap(path: &Path, frames: impl IntoIterator<Item = (Duration, Vec<u8>)>) {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (ts, frame) in frames {
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    }
}
