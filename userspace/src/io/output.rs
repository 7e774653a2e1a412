//! Output files that appear whole or not at all.
//!
//! Rows go to a temporary file beside the destination; only a successful
//! [`AtomicFile::commit`] renames it into place, so an error half-way never
//! leaves a partial CSV that looks complete. (No fsync: that would guard
//! against power loss, at a cost of seconds for large outputs.) The file
//! gets the permissions `File::create` would give it: the destination's
//! own when it exists, otherwise 0o666 less the umask (a temporary file's
//! default, owner only, would hide outputs from the other users).

use std::fs::Permissions;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub struct AtomicFile {
    destination: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    pub fn create(destination: &Path) -> Result<Self> {
        let shown = destination.display();
        if destination.is_dir() {
            bail!("cannot write {shown}: it is a directory");
        }
        let parent = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
        let temp = tempfile::Builder::new()
            .prefix(".ml-sniffing-")
            .suffix(".partial")
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(&parent)
            .with_context(|| format!("cannot write in {}", parent.display()))?;
        if let Ok(existing) = std::fs::metadata(destination) {
            temp.as_file()
                .set_permissions(existing.permissions())
                .with_context(|| format!("cannot write in {}", parent.display()))?;
        }
        Ok(AtomicFile {
            destination: destination.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, temp),
        })
    }

    pub fn writer(&mut self) -> &mut BufWriter<tempfile::NamedTempFile> {
        &mut self.writer
    }

    /// Flushes and moves the file into place.
    pub fn commit(self) -> Result<PathBuf> {
        let shown = self.destination.display().to_string();
        let temp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {shown}"))?;
        temp.persist(&self.destination)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {shown}"))?;
        Ok(self.destination)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_a_dropped_file_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.csv");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"a,b\n").unwrap();
        assert!(!dest.exists());
        drop(f);
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"a,b\n1,2\n").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "a,b\n1,2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_get_the_permissions_file_create_gives() {
        let dir = tempfile::tempdir().unwrap();
        // A new file: as `File::create` makes one (0o666 less the umask).
        let plain = dir.path().join("plain.csv");
        std::fs::File::create(&plain).unwrap();
        let dest = dir.path().join("out.csv");
        AtomicFile::create(&dest).unwrap().commit().unwrap();
        assert_eq!(mode(&dest), mode(&plain));
        // An existing file keeps its permissions, as when truncated.
        for kept in [0o640, 0o604, 0o600] {
            std::fs::set_permissions(&dest, Permissions::from_mode(kept)).unwrap();
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"x\n").unwrap();
            f.commit().unwrap();
            assert_eq!(mode(&dest), kept, "{kept:o}");
        }
    }
}
