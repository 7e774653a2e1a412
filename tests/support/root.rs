//! Privileged tests run as root (CI does) and say clearly when they skip.

/// Whether the process is root; prints why the calling test is skipped
/// when not.
#[track_caller]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped ({}): needs root", std::panic::Location::caller());
    }
    root
}

/// Whether the binary under test has the XDP program built in. Without it
/// the calling test is skipped, unless `ML_SNIFFING_REQUIRE_EBPF` is set
/// (`cargo xtask test` sets it), which makes it a failure.
#[track_caller]
pub fn has_xdp_program() -> bool {
    if ml_sniffing::capture::programs::built() {
        return true;
    }
    if std::env::var_os("ML_SNIFFING_REQUIRE_EBPF").is_some() {
        panic!("{}", ml_sniffing::capture::programs::NOT_BUILT);
    }
    eprintln!(
        "skipped ({}): {}",
        std::panic::Location::caller(),
        ml_sniffing::capture::programs::NOT_BUILT
    );
    false
}

/// Root and the XDP program: what kernel tests need.
#[track_caller]
pub fn can_run_kernel_tests() -> bool {
    is_root() && has_xdp_program()
}
