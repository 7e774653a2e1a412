//! ml-sniffing: network-traffic anomaly detection.
//!
//! The binary is a thin wrapper around [`cli::main`]; everything else is a
//! library so integration tests and benchmarks use the same code paths.

pub mod capture;
pub mod cli;
pub mod commands;
pub mod features;
pub mod io;
pub mod load;
pub mod model_file;
pub mod monitor;
pub mod progress;
pub mod pyfmt;
pub mod reports;
pub mod screen;
pub mod signals;
pub mod timings;
