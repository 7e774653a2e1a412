//! Loading the rows the file commands work on, CSV or capture: above both
//! `io` (CSV) and `capture` (pcap), which know nothing of each other's
//! formats.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

use crate::capture::pcap;
use crate::io::{csv_input, input, Table};

/// Loads the rows `detect` and `classify` work on: a pcap or pcapng
/// capture (told by its magic bytes, whatever its name) becomes the rows
/// `sniff --read` would write; anything else is read as CSV. The input
/// (`-`: stdin) is opened once and its first bytes are read from the same
/// stream, so that a pipe works too.
pub fn load_table(path: &Path) -> anyhow::Result<Table> {
    let input::Opened { mut reader, size } = input::open(path)?;
    let shown = input::shown(path);
    let mut first = Vec::with_capacity(pcap::MAGIC_LEN);
    (&mut reader)
        .take(pcap::MAGIC_LEN as u64)
        .read_to_end(&mut first)
        .with_context(|| format!("cannot read {shown}"))?;
    let is_capture = pcap::detect(&first).is_some();
    let whole = std::io::Cursor::new(first).chain(reader);
    if is_capture {
        return pcap::records::read_table_from(whole, &shown, size);
    }
    csv_input::read_csv_stream(whole, Path::new(&shown), size)
}
