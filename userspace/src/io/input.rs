//! Inputs named on the command line: a file, a pipe or device (`/dev/stdin`,
//! `<(...)`), or `-` for stdin. Each is opened once and read as a stream,
//! so a pipe gives the same result as the file it carries.

use std::io::Read;
use std::path::Path;

use anyhow::Result;

/// Whether `path` is `-`, the name of stdin (and of stdout for outputs).
pub fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How messages name `path`.
pub fn shown(path: &Path) -> String {
    if is_dash(path) {
        "stdin".to_string()
    } else {
        path.display().to_string()
    }
}

/// An opened input and its size in bytes when known (0 for stdin and
/// pipes), for progress bars.
pub struct Opened {
    pub reader: Box<dyn Read>,
    pub size: u64,
}

/// Opens `path`, or stdin for `-`, with one clear sentence for a missing,
/// unreadable or empty file (see [`super::csv_input::open_input`]).
pub fn open(path: &Path) -> Result<Opened> {
    if is_dash(path) {
        return Ok(Opened {
            reader: Box::new(std::io::stdin().lock()),
            size: 0,
        });
    }
    let file = super::csv_input::open_input(path)?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len());
    Ok(Opened {
        reader: Box::new(file),
        size,
    })
}
