//! A small tmpfs on a temporary folder (as root), to see what writers do
//! when the disk fills; unmounted (and the folder removed) on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::netns::run;

pub struct SmallDisk {
    // Dropped after the unmount below.
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A tmpfs of `size` (e.g. `"64k"`).
    pub fn new(size: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()))?;
        Ok(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process that still has a file open there does not keep
        // the mount.
        if let Err(e) = run(Command::new("umount").arg("-l").arg(self.dir.path())) {
            eprintln!("warning: {e:#}");
        }
    }
}
