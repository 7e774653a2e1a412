//! Headless Chromium for the tests that check what a page renders:
//! installed with apt when missing (as root), else the test says it
//! skipped; and the apt installer the tests that need a server use.

use std::path::Path;
use std::process::Command;

/// The browser's command, or `None` (and a note) when there is none and
/// it cannot be installed.
pub fn chromium() -> Option<String> {
    // The tests of one binary run in parallel: one installs, the others wait.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|name| {
                Command::new("sh")
                    .args(["-c", &format!("command -v {name}")])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map(String::from)
    };
    if let Some(found) = find() {
        return Some(found);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: no Chromium, and installing it needs root");
        return None;
    }
    assert!(
        apt_install("chromium"),
        "cannot install chromium with apt-get"
    );
    find()
}

/// `apt-get install PACKAGE`, refreshing the package lists first when the
/// package is not found in them.
pub fn apt_install(package: &str) -> bool {
    eprintln!("installing {package} (apt-get install {package})...");
    let install = || {
        Command::new("apt-get")
            // Wait for another apt (another test, the system's) to finish.
            .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y"])
            .args(["--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    install()
        || (Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update"])
            .status()
            .is_ok_and(|s| s.success())
            && install())
}

/// The DOM the browser builds from `url` after at most `budget_ms` (scripts
/// and event streams run meanwhile; a page that never finishes loading,
/// such as one holding an event stream, is stopped then), run by `wrap`
/// (e.g. `ip netns exec NS`) when given.
pub fn rendered(browser: &str, url: &str, budget_ms: u32, wrap: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(browser);
            c
        }
        None => Command::new(browser),
    };
    let out = cmd
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--timeout={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `file://` URL of a local page.
pub fn file_url(page: &Path) -> String {
    format!("file://{}", page.display())
}
