//! Output files that appear whole or not at all.
//!
//! Rows go to a temporary file beside the destination; only a successful
//! [`AtomicFile::commit`] renames it into place, so an error half-way never
//! leaves a partial CSV that looks complete. (No fsync: that would guard
//! against power loss, at a cost of seconds for large outputs.) The file
//! gets the permissions `File::create` would give it: the destination's
//! own when it exists, otherwise 0o666 less the umask (a temporary file's
//! default, owner only, would hide outputs from the other users). The
//! temporary file is removed on every way out: an error or a panic (drop),
//! SIGINT or SIGTERM (see [`crate::signals`]), and, for SIGKILL, by a later
//! run writing to the same folder ([`partial::remove_stale`]).

use std::fs::{File, Permissions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::partial;

/// How messages name the output `path` (`-` is stdout).
pub fn shown(path: &Path) -> String {
    if super::input::is_dash(path) {
        "stdout".to_string()
    } else {
        path.display().to_string()
    }
}

pub struct AtomicFile {
    destination: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
    /// Dropped after `writer`, whose drop removes the file.
    registered: Registered,
}

/// A temporary file on the list the signal handler removes.
struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        crate::signals::with_temps(|temps| temps.retain(|p| p != &self.0));
    }
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
        partial::remove_stale(&parent, std::time::SystemTime::now());
        // Created and registered at once: a signal sees it or no file.
        let (temp, registered) = crate::signals::with_temps(|temps| {
            let temp = tempfile::Builder::new()
                .prefix(partial::PREFIX)
                .suffix(partial::SUFFIX)
                .rand_bytes(partial::RANDOM_LEN)
                .permissions(Permissions::from_mode(0o666))
                .tempfile_in(&parent)?;
            temps.push(temp.path().to_path_buf());
            let registered = Registered(temp.path().to_path_buf());
            std::io::Result::Ok((temp, registered))
        })
        .with_context(|| format!("cannot write in {}", parent.display()))?;
        if let Ok(existing) = std::fs::metadata(destination) {
            temp.as_file()
                .set_permissions(existing.permissions())
                .with_context(|| format!("cannot write in {}", parent.display()))?;
        }
        Ok(AtomicFile {
            destination: destination.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, temp),
            registered,
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
        // Renamed and unregistered at once: a signal never removes a file
        // that is complete, nor misses one that is not.
        let registered = &self.registered.0;
        crate::signals::with_temps(|temps| {
            let persisted = temp.persist(&self.destination);
            if persisted.is_ok() {
                temps.retain(|p| p != registered);
            }
            persisted
        })
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

/// Where rows go: a regular file appears only once complete
/// ([`AtomicFile`]); an existing device or pipe (`/dev/null`,
/// `/dev/stdout`, a FIFO) is written directly, never replaced; `-` is
/// stdout.
pub enum Output {
    Atomic(AtomicFile),
    Direct(BufWriter<File>, String),
    /// `-`: the rows on stdout (the report then goes to stderr).
    Stdout(BufWriter<std::io::Stdout>),
}

impl Output {
    pub fn create(path: &Path) -> Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout(BufWriter::with_capacity(
                1 << 20,
                std::io::stdout(),
            )));
        }
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("cannot write {shown}"))?;
                Ok(Output::Direct(
                    BufWriter::with_capacity(1 << 20, file),
                    shown,
                ))
            }
            _ => Ok(Output::Atomic(AtomicFile::create(path)?)),
        }
    }

    /// Whether the rows go to stdout (`-`), so that reports go to stderr.
    pub fn is_stdout(&self) -> bool {
        matches!(self, Output::Stdout(_))
    }

    /// Flushes, and moves an atomic file into place.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Atomic(file) => file.commit().map(|_| ()),
            Output::Direct(mut w, shown) => {
                w.flush().with_context(|| format!("cannot write {shown}"))
            }
            Output::Stdout(mut w) => w.flush().context("cannot write stdout"),
        }
    }
}

impl Write for Output {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Atomic(f) => f.write(buf),
            Output::Direct(w, _) => w.write(buf),
            Output::Stdout(w) => w.write(buf),
        }
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Atomic(f) => f.writer().write_all(buf),
            Output::Direct(w, _) => w.write_all(buf),
            Output::Stdout(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Atomic(f) => f.flush(),
            Output::Direct(w, _) => w.flush(),
            Output::Stdout(w) => w.flush(),
        }
    }
}

/// Opens `path` for the writers that write as they go (truncating it, or
/// appending with `append`), without following a symbolic link: as root, a
/// link planted by another user would otherwise overwrite its target. The
/// usual names of the process's own descriptors (`/dev/stdout`,
/// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`) are links and are
/// followed.
pub fn open_for_writing(path: &Path, append: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    if path.is_dir() {
        bail!("cannot write {shown}: it is a directory");
    }
    let own_descriptor = ["/dev/stdout", "/dev/stderr"]
        .iter()
        .any(|p| path == Path::new(p))
        || ["/dev/fd/", "/proc/self/fd/"]
            .iter()
            .any(|p| path.to_str().is_some_and(|s| s.starts_with(p)));
    let mut options = std::fs::File::options();
    options.write(true).create(true);
    if append {
        options.append(true);
    } else {
        options.truncate(true);
    }
    if !own_descriptor {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            anyhow::anyhow!(
                "{shown} is a symbolic link: not followed (writing through a link someone \
                 planted could overwrite any file); remove it or choose another file"
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot create {shown}"))
        }
    })
}

/// Whether two paths name the same existing file (`-`, stdin or stdout,
/// names none).
pub(crate) fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    if crate::io::input::is_dash(a) || crate::io::input::is_dash(b) {
        return false;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses to write `output` (the file of option `flag`) over one of
/// `inputs`, itself or through a link: the input would be destroyed.
pub fn refuse_overwrite(
    output: Option<&std::path::Path>,
    flag: &str,
    inputs: &[&std::path::Path],
) -> anyhow::Result<()> {
    let Some(output) = output else {
        return Ok(());
    };
    if let Some(input) = inputs.iter().find(|i| same_file(i, output)) {
        anyhow::bail!(
            "{} {}: choose another {flag} file (writing it would destroy the input)",
            output.display(),
            if input == &output {
                "is also the input".to_string()
            } else {
                format!("is the same file as the input {}", input.display())
            }
        );
    }
    Ok(())
}

/// Whether `e` comes from writing to a pipe whose reader went away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_writers_do_not_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.path().join("out.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for append in [false, true] {
            let e = open_for_writing(&link, append).unwrap_err().to_string();
            assert!(e.contains("is a symbolic link: not followed"), "{e}");
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        // A plain path is created, then truncated or appended to.
        let plain = dir.path().join("plain.csv");
        open_for_writing(&plain, false)
            .unwrap()
            .write_all(b"a\n")
            .unwrap();
        open_for_writing(&plain, true)
            .unwrap()
            .write_all(b"b\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "a\nb\n");
        open_for_writing(&plain, false).unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "");
        assert!(open_for_writing(dir.path(), false).is_err());
        // The process's own descriptors are links, and are followed.
        open_for_writing(Path::new("/dev/stderr"), true).unwrap();
    }

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

    /// The signal handler removes what is on the list: a file is on it
    /// from its creation to its rename into place or its removal.
    #[test]
    fn temporary_files_are_listed_for_the_signal_handler_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let listed = |temp: &Path| crate::signals::with_temps(|t| t.iter().any(|p| p == temp));
        for commit in [false, true] {
            let f = AtomicFile::create(&dir.path().join("out.csv")).unwrap();
            let temp = f.writer.get_ref().path().to_path_buf();
            assert!(temp.exists() && listed(&temp));
            if commit {
                f.commit().unwrap();
            } else {
                drop(f);
            }
            assert!(!temp.exists() && !listed(&temp), "commit {commit}");
        }
    }

    /// One left by a killed run goes when a new one is created beside it.
    #[test]
    fn creating_a_file_removes_old_temporary_files_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".ml-sniffing-Zz9yX8.partial");
        let f = std::fs::File::create(&stale).unwrap();
        f.set_modified(std::time::SystemTime::now() - partial::STALE_AFTER * 2)
            .unwrap();
        drop(f);
        let out = AtomicFile::create(&dir.path().join("out.csv")).unwrap();
        assert!(!stale.exists());
        out.commit().unwrap();
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
