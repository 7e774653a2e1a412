//! Child processes owned by a guard: killed and reaped on drop, so a
//! failing test never leaves a capture running (and attached).

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct ChildGuard {
    child: Option<Child>,
    shown: String,
}

impl ChildGuard {
    /// Starts `cmd` with stdout and stderr captured.
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let shown = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        Ok(ChildGuard {
            child: Some(child),
            shown,
        })
    }

    /// Starts `cmd` with stdout and stderr captured, and its stdin a pipe
    /// the caller writes (and closes by dropping it).
    pub fn spawn_fed(cmd: &mut Command) -> Result<(Self, std::process::ChildStdin)> {
        let shown = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        let stdin = child.stdin.take().expect("piped");
        Ok((
            ChildGuard {
                child: Some(child),
                shown,
            },
            stdin,
        ))
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(self.id() as libc::pid_t, signal) } != 0 {
            bail!(
                "cannot signal {}: {}",
                self.shown,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for it to exit (at most `timeout`, then kills it and fails) and
    /// returns its status and output.
    pub fn wait(mut self, timeout: Duration) -> Result<Output> {
        let mut child = self.child.take().expect("a child until waited for");
        let start = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                return child
                    .wait_with_output()
                    .context("cannot collect the output");
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let out = child.wait_with_output()?;
                bail!(
                    "{} did not exit within {timeout:?}; stderr: {}",
                    self.shown,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The exit status as a short string for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn success(status: &ExitStatus) -> bool {
    status.success()
}
