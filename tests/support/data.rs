//! The real captures and labelled flows in `../shared/data` (or
//! `$ML_SNIFFING_DATA`): tests that use them say clearly when they are absent.

use std::path::PathBuf;

/// The shared data folder, or `None` after printing why the calling test is
/// skipped.
#[track_caller]
pub fn shared_data() -> Option<PathBuf> {
    let dir = match std::env::var_os("ML_SNIFFING_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped ({}): the shared data folder {} is absent (set ML_SNIFFING_DATA to use another)",
            std::panic::Location::caller(),
            dir.display()
        );
        None
    }
}
