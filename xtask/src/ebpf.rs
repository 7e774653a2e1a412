//! `cargo xtask build-ebpf`: the XDP program on its own, built exactly as
//! userspace/build.rs (aya-build) builds it, into `target/bpfel-unknown-none`.
//! Useful to inspect the object and for the kernel benchmarks, which load
//! these files rather than the copy embedded in a binary.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::{setup, util};

/// The eBPF package and its programs' object names.
pub const PACKAGE: &str = "ml-sniffing-ebpf";
pub const TARGET: &str = "bpfel-unknown-none";

/// Builds the eBPF package (after `setup`) and returns the capture
/// program's object file; the other programs sit beside it.
pub fn build() -> Result<PathBuf> {
    setup::ensure()?;
    util::run(&mut nightly_cargo("build")?)?;
    Ok(object_dir().join(PACKAGE))
}

/// Clippy on the eBPF programs as compiled for the BPF target (on the host
/// their code is compiled out), warnings denied.
pub fn clippy() -> Result<()> {
    setup::ensure()?;
    let mut cmd = nightly_cargo("clippy")?;
    cmd.args(["--", "-D", "warnings"]);
    util::run(&mut cmd)
}

/// `cargo +nightly SUBCOMMAND` for the eBPF package and the BPF target,
/// with aya-build's flags and the linker on PATH.
fn nightly_cargo(subcommand: &str) -> Result<Command> {
    let root = util::root();
    let bin_dir = setup::bpf_linker()?
        .parent()
        .expect("the linker is in a bin folder")
        .to_path_buf();
    let mut path = OsString::from(&bin_dir);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    // The same flags aya-build passes (BTF for the loader, the target arch
    // for aya-ebpf's cfgs).
    let rustflags = [
        "--cfg=bpf_target_arch=\"x86_64\"",
        "-Cdebuginfo=2",
        "-Clink-arg=--btf",
    ]
    .join("\x1f");
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", subcommand, "--package", PACKAGE])
        .args(["--bins", "--release", "--target", TARGET])
        .args(["-Z", "build-std=core"])
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env("PATH", path)
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .current_dir(&root);
    Ok(cmd)
}

/// Where `build` leaves the objects.
pub fn object_dir() -> PathBuf {
    util::root().join("target").join(TARGET).join("release")
}
