//! NFStream, the reference flow meter, in a virtual environment of its own
//! (`target/nfstream-venv`), installed from PyPI the first time a test asks.

use std::path::PathBuf;
use std::process::Command;

/// The version the comparison was written against.
pub const VERSION: &str = "6.6.0";

/// The Python of a virtual environment holding NFStream; panics saying why
/// when it cannot be made (no Python 3, no package index).
pub fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/nfstream-venv");
    let python = venv.join("bin/python");
    let has_it = || {
        Command::new(&python)
            .args(["-c", "import nfstream"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has_it() {
        return python;
    }
    let system = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("NFStream needs Python 3: none found as python3 or python");
    eprintln!("installing NFStream {VERSION} into {}...", venv.display());
    let made = Command::new(system)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        || (super::browser::apt_install("python3-venv")
            && Command::new(system)
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success()));
    assert!(
        made,
        "cannot create a virtual environment at {}",
        venv.display()
    );
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .arg(format!("nfstream=={VERSION}"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed && has_it(),
        "pip could not install nfstream=={VERSION}"
    );
    python
}
