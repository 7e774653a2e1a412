//! The XDP program arrives with the kernel-capture work (issue 4). On the host
//! this file builds to an empty binary so `cargo build --workspace` works.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(not(target_arch = "bpf"))]
fn main() {}
