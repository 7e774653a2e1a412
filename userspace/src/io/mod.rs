//! Reading inputs and writing outputs.

pub mod csv_input;
pub mod output;
pub mod table;

pub use table::Table;

use std::path::Path;

/// Loads the rows `detect` and `classify` work on.
pub fn load_table(path: &Path) -> anyhow::Result<Table> {
    csv_input::read_csv(path)
}
