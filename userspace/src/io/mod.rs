//! Reading inputs and writing outputs.

pub mod csv_input;
pub mod input;
pub mod lines;
pub mod output;
pub mod partial;
pub mod table;

pub use table::Table;
