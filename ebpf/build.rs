//! Link options for the BPF target (bpf-linker); nothing on the host.
//!
//! `--disable-expand-memcpy-in-order`: by default bpf-linker asks LLVM to
//! expand memcpy "in order" for the kernel JIT's pattern matcher, which also
//! stops LLVM from inlining memset; every zeroed struct or array then became
//! a call to aya-ebpf's byte-at-a-time `memset` (80 iterations for a record).
//! Without it LLVM writes the zeros as a few 8-byte stores: the program went
//! from about 200 to about 150 ns per packet (`cargo xtask bench --only
//! kernel`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("bpf") {
        return;
    }
    println!("cargo:rustc-link-arg-bins=--disable-expand-memcpy-in-order");
}
