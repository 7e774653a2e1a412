//! Reading inputs and writing outputs.

pub mod csv_input;
pub mod lines;
pub mod output;
pub mod table;

pub use table::Table;

use std::path::Path;

/// Loads the rows `detect` and `classify` work on: a pcap or pcapng
/// capture (told by its magic bytes, whatever its name) becomes the rows
/// `sniff --read` would write; anything else is read as CSV.
pub fn load_table(path: &Path) -> anyhow::Result<Table> {
    // An unreadable file is left to the CSV reader's clear messages.
    if crate::capture::pcap::is_capture(path).unwrap_or(false) {
        return crate::capture::pcap::read_table(path);
    }
    csv_input::read_csv(path)
}
