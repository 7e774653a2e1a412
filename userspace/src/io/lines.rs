//! A file of lines written as they come (live CSV rows, EVE JSON lines)
//! that never ends in part of a line.
//!
//! Lines are buffered and written in large writes; when one fails (disk
//! full, quota) after the kernel took part of it, the file is cut back to
//! the end of its last whole line, and every later write fails with the
//! same error, so nothing can be appended after the cut. [`LineFile::lines`]
//! counts the whole lines in the file, which is what a report should say
//! was written.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// Bytes gathered before a write.
const BUFFER: usize = 1 << 20;

pub struct LineFile {
    file: File,
    buf: Vec<u8>,
    /// Bytes in the file, and where its last whole line ends.
    len: u64,
    line_end: u64,
    /// Whole lines in the file.
    lines: u64,
    /// The first write error (its kind and text), repeated to every later
    /// write.
    failed: Option<(io::ErrorKind, String)>,
}

impl LineFile {
    /// `file` must be empty or positioned at its end (a new, truncated or
    /// appended file).
    pub fn new(file: File) -> Self {
        // An appended file may already hold lines: cut only what we wrote.
        let len = file.metadata().map_or(0, |m| m.len());
        LineFile {
            file,
            buf: Vec::with_capacity(BUFFER),
            len,
            line_end: len,
            lines: 0,
            failed: None,
        }
    }

    /// Whole lines this writer put in the file (what is still buffered is
    /// not in it yet).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Whether a write failed (the file then ends on the last whole line).
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    fn error(&self) -> Option<io::Error> {
        self.failed
            .as_ref()
            .map(|(kind, text)| io::Error::new(*kind, text.clone()))
    }

    /// Writes the buffer; on an error cuts the file back to its last whole
    /// line.
    fn write_buffer(&mut self) -> io::Result<()> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let mut written = 0;
        let mut result = Ok(());
        while written < self.buf.len() {
            match self.file.write(&self.buf[written..]) {
                Ok(0) => {
                    result = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let done = &self.buf[..written];
        self.lines += done.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(last) = done.iter().rposition(|&b| b == b'\n') {
            self.line_end = self.len + last as u64 + 1;
        }
        self.len += written as u64;
        self.buf.clear();
        if let Err(e) = result {
            self.failed = Some((e.kind(), e.to_string()));
            if self.len != self.line_end {
                // Cut the part of a line off; should that fail too, say so.
                self.file
                    .set_len(self.line_end)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.line_end)).map(drop))
                    .map_err(|cut| {
                        io::Error::new(
                            e.kind(),
                            format!("{e}; cutting the file back to its last whole line failed too: {cut}"),
                        )
                    })?;
                self.len = self.line_end;
            }
            return Err(e);
        }
        Ok(())
    }
}

impl Write for LineFile {
    /// Takes all of `data` (never part of it) into the buffer, writing the
    /// buffer first when `data` would not fit.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        if self.buf.len() + data.len() > BUFFER && !self.buf.is_empty() {
            self.write_buffer()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() || self.failed() {
            self.write_buffer()?;
        }
        self.file.flush()
    }
}

impl Drop for LineFile {
    fn drop(&mut self) {
        let _ = self.write_buffer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_and_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut f = LineFile::new(File::create(&path).unwrap());
        f.write_all(b"h\n1,").unwrap();
        f.write_all(b"2\n").unwrap();
        assert_eq!(f.lines(), 0, "nothing written before a flush");
        f.flush().unwrap();
        assert_eq!(f.lines(), 2);
        drop(f);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "h\n1,2\n");
    }

    /// On /dev/full every write fails: the error comes back, and again on
    /// every later write, and no line is counted.
    #[test]
    fn a_full_device_fails_every_write() {
        let file = File::options().write(true).open("/dev/full").unwrap();
        let mut f = LineFile::new(file);
        f.write_all(b"a\n").unwrap();
        let e = f.flush().unwrap_err();
        assert!(e.to_string().contains("No space left"), "{e}");
        assert!(f.failed());
        assert_eq!(f.lines(), 0);
        let again = f.write_all(b"b\n").unwrap_err();
        assert_eq!(again.kind(), e.kind());
        assert!(again.to_string().contains("No space left"), "{again}");
        assert!(f.flush().is_err());
    }

    /// A write the kernel takes only in part (the disk filled during it):
    /// the file is cut back to its last whole line. Simulated in a child
    /// process (this test binary again, running `partial_write_child`)
    /// with a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored): the kernel
    /// writes up to the limit, then fails with EFBIG.
    #[test]
    fn a_partial_write_is_cut_back_to_the_last_whole_line() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.csv");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "io::lines::tests::partial_write_child",
                "--nocapture",
            ])
            .env(CHILD, &path);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            child.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: 555,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = child.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("lines 55, failed: File too large"), "{said}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 550, "cut back to 55 whole lines");
        assert!(text.ends_with("000000054\n"));
    }

    const CHILD: &str = "ML_SNIFFING_LINES_CHILD";

    /// The child of the test above (does nothing when run on its own): 100
    /// lines of 10 bytes in one write, 55 whole lines and half of the 56th
    /// within the limit.
    #[test]
    fn partial_write_child() {
        let Some(path) = std::env::var_os(CHILD) else {
            return;
        };
        let mut f = LineFile::new(File::create(path).unwrap());
        for i in 0..100 {
            writeln!(f, "{i:09}").unwrap();
        }
        let e = f.flush().unwrap_err();
        println!("lines {}, failed: {e}", f.lines());
    }
}
