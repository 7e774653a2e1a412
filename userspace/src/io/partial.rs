//! The temporary files of outputs being written (`.ml-sniffing-XXXXXX.partial`
//! beside the destination) and the removal of old ones: a process killed by
//! SIGKILL (or a power cut) cannot remove its own, so creating a new one
//! removes those in the same folder older than [`STALE_AFTER`] (no run
//! writes one output for that long without touching it).

use std::path::Path;
use std::time::{Duration, SystemTime};

pub const PREFIX: &str = ".ml-sniffing-";
pub const SUFFIX: &str = ".partial";
/// Random characters between prefix and suffix.
pub const RANDOM_LEN: usize = 6;
pub const STALE_AFTER: Duration = Duration::from_secs(12 * 3600);

/// Whether `name` is one of ours.
pub fn is_partial(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .is_some_and(|random| {
            random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Removes our temporary files in `folder` last modified more than
/// `STALE_AFTER` before `now`: regular files only, never a link or a
/// folder. Best effort: what cannot be read or removed is left.
pub fn remove_stale(folder: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_partial) {
            continue;
        }
        // `DirEntry::metadata` does not follow links.
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if meta.is_file() && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_are_ours() {
        assert!(is_partial(".ml-sniffing-a1B2c3.partial"));
        for other in [
            ".ml-sniffing-a1B2c.partial",
            ".ml-sniffing-a1B2c3d.partial",
            ".ml-sniffing-a1-2c3.partial",
            "ml-sniffing-a1B2c3.partial",
            ".ml-sniffing-a1B2c3.partial.csv",
            "scores.csv",
        ] {
            assert!(!is_partial(other), "{other}");
        }
    }

    /// A file left by a killed run goes once it is old; a recent one (a
    /// run in progress), another name, a link and a folder stay.
    #[test]
    fn old_temporary_files_of_ours_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        let now = SystemTime::now();
        let old = now - STALE_AFTER - Duration::from_secs(60);
        let file = |name: &str, modified: SystemTime| {
            let f = std::fs::File::create(at(name)).unwrap();
            f.set_modified(modified).unwrap();
        };
        file(".ml-sniffing-aaaaaa.partial", old);
        file(".ml-sniffing-bbbbbb.partial", now);
        file("precious.csv", old);
        file(".ml-sniffing-precious.partial", old);
        std::fs::create_dir(at(".ml-sniffing-dddddd.partial")).unwrap();
        std::os::unix::fs::symlink(at("precious.csv"), at(".ml-sniffing-cccccc.partial")).unwrap();
        remove_stale(dir.path(), now);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".ml-sniffing-bbbbbb.partial",
                ".ml-sniffing-cccccc.partial",
                ".ml-sniffing-dddddd.partial",
                ".ml-sniffing-precious.partial",
                "precious.csv"
            ]
        );
    }
}
