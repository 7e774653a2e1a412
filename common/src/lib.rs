//! Shared by the XDP program (`no_std`, BPF target) and userspace.
//!
//! Everything here must compile for `bpfel-unknown-none`: no allocation, no
//! panics on any input, bounded loops only.
#![cfg_attr(target_arch = "bpf", no_std)]

pub mod flow;
pub mod maps;
pub mod protocol;
