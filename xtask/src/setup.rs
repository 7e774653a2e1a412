//! `cargo xtask setup`: the eBPF toolchain bootstrap.
//!
//! The XDP program is built with the nightly toolchain (`-Z build-std=core`
//! needs its `rust-src` component) and linked by `bpf-linker`, which must be
//! built against the nightly toolchain's own LLVM (see
//! `../shared/docs/ebpf-toolchain.md`). Everything is installed under
//! `${XDG_CACHE_HOME:-$HOME/.cache}/ml-sniffing/toolchain`, never in the
//! source tree; userspace/build.rs looks for the linker there.
//!
//! Idempotent: when everything is present it runs a few quick checks and
//! prints nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The nightly toolchain aya-build uses (`aya_build::Toolchain::Nightly`).
const NIGHTLY: &str = "nightly";
/// bpf-linker release known to build with the toolchains here.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Records which LLVM the installed linker was built against: a nightly
/// update that changes LLVM's major version needs a new linker.
const STAMP: &str = "bpf-linker.llvm";

/// Where the toolchain lives. Must match `toolchain_prefix` in
/// userspace/build.rs.
pub fn prefix() -> Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .context("neither XDG_CACHE_HOME nor HOME is set, so there is no cache folder for the eBPF toolchain")?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(cache.join("ml-sniffing").join("toolchain"))
}

/// The linker binary `setup` installs.
pub fn bpf_linker() -> Result<PathBuf> {
    Ok(prefix()?.join("bin").join("bpf-linker"))
}

/// Makes sure the nightly toolchain, its `rust-src` and bpf-linker are there.
pub fn ensure() -> Result<()> {
    let sysroot = nightly_sysroot()?;
    ensure_rust_src(&sysroot)?;
    ensure_bpf_linker(&sysroot)
}

fn nightly_sysroot() -> Result<PathBuf> {
    if Command::new("rustup")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        bail!("setup needs rustup to manage the nightly toolchain, and `rustup` was not found on PATH");
    }
    if let Ok(sysroot) =
        capture(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
    {
        return Ok(PathBuf::from(sysroot.trim()));
    }
    eprintln!("setup: installing the {NIGHTLY} toolchain (minimal profile)");
    quiet_run(Command::new("rustup").args([
        "toolchain",
        "install",
        NIGHTLY,
        "--profile",
        "minimal",
    ]))
    .with_context(|| format!("setup could not install the {NIGHTLY} Rust toolchain with rustup"))?;
    let sysroot =
        capture(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
            .with_context(|| {
                format!(
                    "setup installed the {NIGHTLY} toolchain but `rustc +{NIGHTLY}` does not run"
                )
            })?;
    Ok(PathBuf::from(sysroot.trim()))
}

fn ensure_rust_src(sysroot: &Path) -> Result<()> {
    let core = sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if core.is_file() {
        return Ok(());
    }
    eprintln!("setup: adding the rust-src component to the {NIGHTLY} toolchain");
    quiet_run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
        .with_context(|| format!("setup could not add the rust-src component to the {NIGHTLY} toolchain (needed for -Z build-std=core)"))?;
    if !core.is_file() {
        bail!(
            "setup added rust-src to the {NIGHTLY} toolchain but {} is still missing",
            core.display()
        );
    }
    Ok(())
}

/// The LLVM major version of the nightly toolchain (22 for rustc 1.97).
fn llvm_major() -> Result<String> {
    let version = capture(Command::new("rustc").args([&format!("+{NIGHTLY}"), "-vV"]))?;
    version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .map(str::to_owned)
        .context("`rustc +nightly -vV` does not say which LLVM it uses")
}

/// The nightly toolchain's shared LLVM library (`libLLVM.so.22.1-rust-...`).
fn nightly_libllvm(sysroot: &Path) -> Result<PathBuf> {
    let lib = sysroot.join("lib");
    let entries =
        std::fs::read_dir(&lib).with_context(|| format!("cannot list {}", lib.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("libLLVM.so.") && name.ends_with("-nightly") {
            return Ok(entry.path());
        }
    }
    bail!("the {NIGHTLY} toolchain has no libLLVM.so.*-nightly in {}, so bpf-linker cannot be built against its LLVM", lib.display())
}

fn ensure_bpf_linker(sysroot: &Path) -> Result<()> {
    let prefix = prefix()?;
    let linker = bpf_linker()?;
    let llvm = llvm_major()?;
    let libllvm = nightly_libllvm(sysroot)?;
    let link = prefix.join("lib").join("libLLVM.so");
    // The binary asks for the library's soname (`libLLVM.so.22.1-rust-...`)
    // and searches its rpath (`$PREFIX/lib`), so that name is linked too.
    let soname_link = prefix
        .join("lib")
        .join(libllvm.file_name().expect("a library file name"));
    let stamp = prefix.join(STAMP);

    let linked_right = [&link, &soname_link]
        .iter()
        .all(|l| std::fs::read_link(l).is_ok_and(|t| t == libllvm));
    let stamp_right = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == llvm);
    if linked_right && stamp_right && runs(&linker) {
        return Ok(());
    }

    std::fs::create_dir_all(prefix.join("lib"))
        .with_context(|| format!("setup cannot create {}", prefix.join("lib").display()))?;
    // bpf-linker's build links `-lLLVM` from `$LLVM_PREFIX/lib` and keeps an
    // rpath to it, so the prefix must stay where it is.
    for l in [&link, &soname_link] {
        let _ = std::fs::remove_file(l);
        std::os::unix::fs::symlink(&libllvm, l).with_context(|| {
            format!("setup cannot link {} to {}", l.display(), libllvm.display())
        })?;
    }
    // Only the links were missing or stale (the linker itself is fine).
    if stamp_right && runs(&linker) {
        return Ok(());
    }
    eprintln!(
        "setup: installing bpf-linker {BPF_LINKER_VERSION} (LLVM {llvm}) into {} (about a minute)",
        prefix.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut install = Command::new(cargo);
    install
        .args([
            "install",
            "bpf-linker",
            "--locked",
            "--force",
            "--version",
            BPF_LINKER_VERSION,
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{llvm}"),
        ])
        .arg("--root")
        .arg(&prefix)
        .env("LLVM_PREFIX", &prefix);
    quiet_run(&mut install).with_context(|| {
        format!("setup could not build bpf-linker {BPF_LINKER_VERSION} against the {NIGHTLY} toolchain's LLVM {llvm}")
    })?;
    if !runs(&linker) {
        bail!(
            "setup built bpf-linker but {} does not run",
            linker.display()
        );
    }
    std::fs::write(&stamp, format!("{llvm}\n"))
        .with_context(|| format!("cannot write {}", stamp.display()))?;
    eprintln!("setup: bpf-linker is ready at {}", linker.display());
    Ok(())
}

fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` and returns its stdout; fails with its stderr.
fn capture(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `cmd` keeping its output unless it fails, then shows its last lines.
fn quiet_run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(25).collect();
        for line in tail.iter().rev() {
            eprintln!("  | {line}");
        }
        bail!("{shown} failed ({})", output.status);
    }
    Ok(())
}
