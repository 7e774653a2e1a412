//! The shared data folder and which of its captures are benign or attacks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::capture::Label;

/// Captures of `pcap/` that are benign sessions; the others there are
/// attacks.
pub const BENIGN_IN_PCAP: [&str; 2] = ["ssh.pcap", "ftp.pcap"];

/// `$ML_SNIFFING_DATA`, else `../shared/data` beside the repository root.
pub fn data_dir(root: &Path) -> Result<PathBuf> {
    let (dir, how) = match std::env::var_os("ML_SNIFFING_DATA") {
        Some(d) => (PathBuf::from(d), "set by ML_SNIFFING_DATA"),
        None => (root.join("../shared/data"), "beside the repository root"),
    };
    if !dir.join("benign").is_dir() || !dir.join("pcap").is_dir() {
        bail!(
            "the data folder {} ({how}) is absent or lacks benign/ and pcap/: eval needs the shared \
             captures (set ML_SNIFFING_DATA to their folder)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The captures (pcap or pcapng by magic bytes) of `dir`, by file name.
fn captures_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && ml_sniffing::capture::pcap::is_capture(&path)? {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Every capture of the mixture with its label, in a fixed order: benign
/// (`benign/`, then the benign sessions of `pcap/`), then attacks. A file
/// of `pcap/` with the same name and bytes as one of `benign/` (today
/// `ssh.pcap`) is listed once.
pub fn list(dir: &Path) -> Result<Vec<(PathBuf, Label)>> {
    let mut list: Vec<(PathBuf, Label)> = captures_in(&dir.join("benign"))?
        .into_iter()
        .map(|p| (p, Label::Benign))
        .collect();
    let mut attacks = Vec::new();
    for path in captures_in(&dir.join("pcap"))? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !BENIGN_IN_PCAP.contains(&name.as_ref()) {
            attacks.push((path, Label::Attack));
            continue;
        }
        if !already_listed(&list, &path)? {
            list.push((path, Label::Benign));
        }
    }
    for name in BENIGN_IN_PCAP {
        if !dir.join("pcap").join(name).is_file() {
            bail!("{} is missing", dir.join("pcap").join(name).display());
        }
    }
    if attacks.is_empty() {
        bail!("{} holds no attack capture", dir.join("pcap").display());
    }
    list.extend(attacks);
    Ok(list)
}

/// Whether `list` already holds a file of the same name and bytes.
fn already_listed(list: &[(PathBuf, Label)], path: &Path) -> Result<bool> {
    for (other, _) in list {
        if other.file_name() == path.file_name() && std::fs::read(other)? == std::fs::read(path)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::super::capture::Capture;
    use super::super::mixture::{Mixture, Timeline};
    use super::*;

    /// On the real captures, when the shared data folder is there.
    #[test]
    fn shared_captures_load_and_mix() {
        let dir = match data_dir(&crate::util::root()) {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let list = list(&dir).unwrap();
        let attacks: Vec<String> = list
            .iter()
            .filter(|(_, l)| *l == Label::Attack)
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(attacks.contains(&"synscan.pcap".to_string()), "{attacks:?}");
        assert!(!attacks.iter().any(|a| BENIGN_IN_PCAP.contains(&a.as_str())));
        // ssh.pcap is in both folders, listed once.
        let ssh = list
            .iter()
            .filter(|(p, _)| p.file_name().unwrap() == "ssh.pcap")
            .count();
        assert_eq!(ssh, 1);
        let captures: Vec<Capture> = list
            .iter()
            .map(|(p, l)| Capture::load(p, *l).unwrap())
            .collect();
        for c in &captures {
            assert!(!c.packets.is_empty(), "{} keeps no IP frame", c.name);
        }
        let synscan = captures.iter().find(|c| c.name == "synscan.pcap").unwrap();
        assert_eq!(synscan.packets.len(), 2011);
        let timeline = Timeline::default();
        let one = Mixture::build(&captures, &timeline, 1);
        assert_eq!(one, Mixture::build(&captures, &timeline, 1));
        for (c, p) in captures.iter().zip(&one.placements) {
            if c.label == Label::Benign {
                assert!(p.train > 0 && p.test > 0, "{}: {p:?}", c.name);
            } else {
                assert_eq!((p.train, p.test), (0, c.packets.len() as u64), "{}", c.name);
            }
        }
    }
}
