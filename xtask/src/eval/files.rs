//! The work folder's inputs: `mix.pcap`, `train.pcap` (its first
//! `n_train` packets) and `labels.csv` (one row per packet of mix.pcap).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::capture::Capture;
use super::mixture::{Mixture, Slot};

/// `1700000000.000001`: epoch microseconds as the tool's CSV rows write them.
pub fn seconds6(time_us: u64) -> String {
    format!("{}.{:06}", time_us / 1_000_000, time_us % 1_000_000)
}

/// Writes `slots` as a classic Ethernet pcap with microsecond timestamps.
pub fn write_pcap(path: &Path, captures: &[Capture], slots: &[Slot]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let header = PcapHeader {
        snaplen: 262_144,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let shown = || format!("cannot write {}", path.display());
    let mut writer = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, file), header)
        .with_context(shown)?;
    for s in slots {
        let p = &captures[s.capture as usize].packets[s.packet as usize];
        writer
            .write_packet(&PcapPacket::new(
                Duration::from_micros(s.time_us),
                p.wire_len.max(p.data.len() as u32),
                &p.data,
            ))
            .with_context(shown)?;
    }
    writer.into_writer().flush().with_context(shown)?;
    Ok(())
}

/// `index,timestamp,part,label,capture`, one row per slot.
pub fn write_labels(path: &Path, captures: &[Capture], mixture: &Mixture) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "index,timestamp,part,label,capture")?;
    for (i, s) in mixture.slots.iter().enumerate() {
        let capture = &captures[s.capture as usize];
        writeln!(
            w,
            "{i},{},{},{},{}",
            seconds6(s.time_us),
            if i < mixture.n_train { "train" } else { "test" },
            capture.label.name(),
            capture.name
        )?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `captures.csv`: where each capture went (frames in the file, IP frames
/// kept, duration after clamping gaps, repetitions, first start on the
/// timeline, packets in each part).
pub fn write_captures(path: &Path, captures: &[Capture], mixture: &Mixture) -> Result<()> {
    let mut text =
        String::from("capture,label,frames,kept,duration_s,repetitions,start_s,train,test\n");
    for (c, p) in captures.iter().zip(&mixture.placements) {
        text.push_str(&format!(
            "{},{},{},{},{:.6},{},{:.6},{},{}\n",
            c.name,
            c.label.name(),
            c.frames,
            c.packets.len(),
            c.duration_ns() as f64 / 1e9,
            p.repetitions,
            p.start_ns as f64 / 1e9,
            p.train,
            p.test
        ));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the three files into `dir`.
pub fn write_all(dir: &Path, captures: &[Capture], mixture: &Mixture) -> Result<()> {
    write_pcap(&dir.join("mix.pcap"), captures, &mixture.slots)?;
    write_pcap(
        &dir.join("train.pcap"),
        captures,
        &mixture.slots[..mixture.n_train],
    )?;
    write_labels(&dir.join("labels.csv"), captures, mixture)
}

#[cfg(test)]
mod tests {
    use super::super::capture::tests::synthetic;
    use super::super::capture::Label;
    use super::super::mixture::Timeline;
    use super::*;
    use ml_sniffing::capture::pcap::CaptureReader;

    #[test]
    fn seconds_have_six_decimals() {
        assert_eq!(seconds6(1_700_000_000_000_001), "1700000000.000001");
        assert_eq!(seconds6(1_700_000_012_345_678), "1700000012.345678");
    }

    #[test]
    fn labels_align_with_frames() {
        let captures = vec![
            synthetic("a", Label::Benign, 1, 40, 50_000_000),
            synthetic("b", Label::Benign, 2, 30, 2_000),
            synthetic("x", Label::Attack, 9, 100, 1_000_000),
        ];
        let timeline = Timeline {
            length_ns: 30_000_000_000,
            split_ns: 18_000_000_000,
            start_window_ns: 3_000_000_000,
            ..Timeline::default()
        };
        let mixture = Mixture::build(&captures, &timeline, 5);
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &captures, &mixture).unwrap();

        let labels = std::fs::read_to_string(dir.path().join("labels.csv")).unwrap();
        let rows: Vec<Vec<&str>> = labels
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), mixture.slots.len());
        let mut reader = CaptureReader::open(&dir.path().join("mix.pcap")).unwrap();
        let mut i = 0;
        while let Some(frame) = reader.next_frame().unwrap() {
            let row = &rows[i];
            let capture = captures.iter().find(|c| c.name == row[4]).unwrap();
            let slot = mixture.slots[i];
            assert_eq!(row[0], i.to_string());
            assert_eq!(row[1], seconds6(frame.timestamp_ns / 1_000));
            assert_eq!(frame.timestamp_ns / 1_000, slot.time_us);
            assert_eq!(row[2], if i < mixture.n_train { "train" } else { "test" });
            assert_eq!(row[3], capture.label.name());
            assert_eq!(frame.data, &capture.packets[slot.packet as usize].data[..]);
            i += 1;
        }
        assert_eq!(i, rows.len());

        let mut train = CaptureReader::open(&dir.path().join("train.pcap")).unwrap();
        let mut n = 0;
        while train.next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, mixture.n_train);
        assert!(n > 0 && n < rows.len());
    }
}
