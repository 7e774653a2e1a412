//! Shared by the XDP program (`no_std`, BPF target) and userspace.
//!
//! Everything outside the `user` feature must compile for
//! `bpfel-unknown-none`: no allocation, no panics on any input, bounded loops.
#![cfg_attr(target_arch = "bpf", no_std)]

pub mod behaviour;
#[cfg(feature = "user")]
pub mod build;
pub mod count;
pub mod filter;
pub mod flow;
pub mod flow_stats;
pub mod maps;
pub mod parser;
pub mod protocol;
pub mod record;
