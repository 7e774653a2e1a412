//! Builds the XDP program (the `ml-sniffing-ebpf` package, for the BPF target,
//! with the nightly toolchain) through aya-build and leaves its objects in
//! OUT_DIR, where `capture::programs` embeds them.
//!
//! Without bpf-linker (on PATH or where `cargo xtask setup` installs it) the
//! host build must still work: the objects are then left empty, a cargo
//! warning says so, and the capture commands explain at run time.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The eBPF package and the programs (bins) it builds.
const PACKAGE: &str = "ml-sniffing-ebpf";
const OBJECTS: &[&str] = &["ml-sniffing-ebpf", "ml-sniffing-xdp-tx", "ml-sniffing-xsk"];

fn main() -> Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let root = manifest_dir
        .parent()
        .context("userspace is inside the workspace")?;
    let ebpf_dir = root.join("ebpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);

    // The program is made of ebpf/ and the shared common/ crate.
    for watched in [
        root.join("common"),
        ebpf_dir.clone(),
        root.join("Cargo.lock"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    for var in ["PATH", "XDG_CACHE_HOME", "HOME"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    describe_build(root);
    let Some(linker) = find_bpf_linker() else {
        println!("cargo:rustc-env=ML_SNIFFING_BUILT_WITH=without the XDP program");
        // Rebuild once `cargo xtask setup` installs the linker: watch the
        // nearest folder that exists on the way to it (a missing path would
        // rerun this script, and rebuild the crate, on every build).
        if let Some(expected) = cache_linker() {
            if let Some(existing) = expected.ancestors().find(|p| p.exists()) {
                println!("cargo:rerun-if-changed={}", existing.display());
            }
        }
        println!(
            "cargo:warning=bpf-linker not found: the XDP program is not built into this binary; \
             run `cargo xtask setup` (or `cargo xtask build-ebpf`) to install the eBPF toolchain"
        );
        for object in OBJECTS {
            std::fs::write(out_dir.join(object), [])?;
        }
        return Ok(());
    };
    println!("cargo:rerun-if-changed={}", linker.display());
    println!("cargo:rustc-env=ML_SNIFFING_BUILT_WITH=XDP, AF_XDP");

    // rustc finds the linker for the BPF target on PATH.
    let bin_dir = linker.parent().context("bpf-linker has a parent folder")?;
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    // Edition 2021: set_var is safe; a build script is single-threaded here.
    env::set_var("PATH", env::join_paths(paths)?);
    // aya-build relays the nested cargo's stderr as cargo warnings: keep it
    // to real diagnostics (compiler messages still come through).
    env::set_var("CARGO_TERM_QUIET", "true");

    let ebpf_dir = ebpf_dir
        .to_str()
        .context("the ebpf folder's path is not UTF-8")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: PACKAGE,
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context("building the XDP program (ebpf/) failed")
}

/// `ML_SNIFFING_COMMIT` for `--version`: the commit built ("unknown"
/// outside a git checkout), watched so that a new commit updates it.
fn describe_build(root: &Path) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ML_SNIFFING_COMMIT={commit}");
    for watched in [
        Some("HEAD".to_string()),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(path) = git(&["rev-parse", "--git-path", &watched]) {
            let path = root.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

/// bpf-linker: the one `cargo xtask setup` installs, else one on PATH.
fn find_bpf_linker() -> Option<PathBuf> {
    if let Some(cached) = cache_linker().filter(|p| p.is_file()) {
        return Some(cached);
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join("bpf-linker"))
        .find(|p| p.is_file())
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/ml-sniffing/toolchain/bin/bpf-linker`
/// (keep in sync with xtask/src/setup.rs).
fn cache_linker() -> Option<PathBuf> {
    let cache = match env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    Some(cache.join("ml-sniffing/toolchain/bin/bpf-linker"))
}
