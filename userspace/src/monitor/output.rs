//! Where anomalies go as they are found: CSV rows to `--output FILE`
//! (streamed, flushed every tick, so a crash loses nothing already
//! flushed); alerts, on stdout and in EVE, are `alerts` and `eve`'s.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ml_sniffing_common::record::PacketRecord;

use crate::capture::csv_rows::{self, RowFormatter};
use crate::io::lines::LineFile;
use crate::pyfmt;

/// One scored packet that was found anomalous.
pub struct Anomaly<'a> {
    pub record: &'a PacketRecord,
    /// `decision_function`: negative.
    pub score: f64,
    pub model_version: u32,
    /// The classifier's most probable class and its probability.
    pub class: Option<(&'a str, f64)>,
    /// Why it was flagged, when not by its score alone.
    pub reason: Option<String>,
    /// The alert it belongs to (none when noise control kept it out).
    pub alert_id: Option<u64>,
}

/// The columns of the anomaly CSV: a capture row (as `sniff` writes it),
/// then the score, the label, the model version, the class when a
/// classifier runs, and the reason when the score alone did not flag it.
pub fn csv_header(with_class: bool) -> String {
    let mut columns: Vec<&str> = csv_rows::COLUMNS.to_vec();
    columns.extend(["anomaly_score", "is_anomaly", "model_version"]);
    if with_class {
        columns.extend(["predicted_class", "class_probability"]);
    }
    columns.extend(["reason", "alert_id"]);
    columns.join(",")
}

/// The names of the TCP flags set in `flags`, as tcpdump writes them.
pub fn tcp_flag_letters(flags: u8) -> String {
    const LETTERS: [(u8, char); 8] = [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, '.'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// UTC date-time with microseconds.
pub fn utc_micros(epoch_ns: u64) -> String {
    let mut s = pyfmt::pandas_datetime(epoch_ns as i64, 6);
    s.push_str(" UTC");
    s
}

/// Anomaly rows to a CSV file, one line each as they are found; the file
/// ends on a whole row even when the disk fills (see `io::lines`).
pub struct AnomalyCsv {
    path: PathBuf,
    out: LineFile,
    row: RowFormatter,
    rows: u64,
    with_class: bool,
}

impl AnomalyCsv {
    pub fn create(path: &Path, with_class: bool) -> Result<Self> {
        let file = if crate::io::input::is_dash(path) {
            // A duplicate of stdout: written as it goes like the file.
            use std::os::fd::AsFd;
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot write stdout")?;
            std::fs::File::from(fd)
        } else {
            crate::io::output::open_for_writing(path, false)?
        };
        let mut out = LineFile::new(file);
        writeln!(out, "{}", csv_header(with_class))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(AnomalyCsv {
            path: path.to_path_buf(),
            out,
            row: RowFormatter::new(),
            rows: 0,
            with_class,
        })
    }

    pub fn write(&mut self, a: &Anomaly) -> Result<()> {
        self.row.format(a.record);
        let line = self.row.line();
        let mut tail = String::with_capacity(64);
        tail.push(',');
        pyfmt::push_float_repr(&mut tail, a.score);
        tail.push_str(",True,");
        tail.push_str(itoa::Buffer::new().format(a.model_version));
        if let Some((class, p)) = a.class {
            tail.push(',');
            tail.push_str(class);
            tail.push(',');
            pyfmt::push_float_repr(&mut tail, p);
        }
        tail.push(',');
        // Feature names and numbers: never a comma or a quote.
        tail.push_str(a.reason.as_deref().unwrap_or(""));
        tail.push(',');
        if let Some(id) = a.alert_id {
            tail.push_str(itoa::Buffer::new().format(id));
        }
        tail.push('\n');
        self.out
            .write_all(&line[..line.len() - 1])
            .and_then(|()| self.out.write_all(tail.as_bytes()))
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.rows += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Rows written; after a failed write, the rows in the file.
    pub fn rows(&self) -> u64 {
        if self.out.failed() {
            self.out.lines().saturating_sub(1)
        } else {
            self.rows
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After a log rotation (SIGHUP): flushes, then writes to the path
    /// anew, appending (with the header when the file is new or empty).
    pub fn reopen(&mut self) -> Result<()> {
        self.flush()?;
        let file = crate::io::output::open_for_writing(&self.path, true)?;
        let empty = file.metadata().map_or(true, |m| m.len() == 0);
        self.out = LineFile::new(file);
        if empty {
            writeln!(self.out, "{}", csv_header(self.with_class))
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_sniffing_common::record::addr_bytes;

    fn record() -> PacketRecord {
        PacketRecord {
            timestamp_ns: 1_712_589_010_595_727_891,
            src_addr: addr_bytes("203.0.113.9".parse().unwrap()),
            dst_addr: addr_bytes("10.0.0.2".parse().unwrap()),
            frame_len: 60,
            src_port: 51234,
            dst_port: 443,
            protocol: 6,
            ip_version: 4,
            ttl: 50,
            tcp_flags: 0x02,
            flow_packets: 1,
            flow_bytes: 60,
            ..PacketRecord::default()
        }
    }

    #[test]
    fn csv_rows_extend_the_capture_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let r = record();
        let mut csv = AnomalyCsv::create(&path, false).unwrap();
        csv.write(&Anomaly {
            record: &r,
            score: -0.5,
            model_version: 1,
            class: None,
            reason: None,
            alert_id: None,
        })
        .unwrap();
        csv.write(&Anomaly {
            record: &r,
            score: 0.1,
            model_version: 1,
            class: None,
            reason: Some("src_ports 6.42 beyond training (1.01 to 1.01)".into()),
            alert_id: Some(3),
        })
        .unwrap();
        csv.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("timestamp,source_ip,destination_ip,protocol,length,"));
        assert!(header.ends_with(",anomaly_score,is_anomaly,model_version,reason,alert_id"));
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("1712589010.595727,203.0.113.9,10.0.0.2,tcp,60,51234,443,"),
            "{row}"
        );
        assert!(row.ends_with(",-0.5,True,1,,"), "{row}");
        assert_eq!(row.split(',').count(), header.split(',').count());
        let row = lines.next().unwrap();
        assert!(
            row.ends_with(",0.1,True,1,src_ports 6.42 beyond training (1.01 to 1.01),3"),
            "{row}"
        );
        assert_eq!(row.split(',').count(), header.split(',').count());
    }

    #[test]
    fn tcp_flags_read_like_tcpdump() {
        assert_eq!(tcp_flag_letters(0x12), "S.");
        assert_eq!(tcp_flag_letters(0x18), "P.");
        assert_eq!(tcp_flag_letters(0), "");
    }
}
