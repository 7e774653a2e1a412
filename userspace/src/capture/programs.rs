//! The eBPF objects userspace/build.rs built and embedded (empty when the
//! eBPF toolchain was missing at build time).

use anyhow::{bail, Result};

/// What the capture commands say when the binary was built without the
/// eBPF toolchain.
pub const NOT_BUILT: &str =
    "the XDP program was not built: run `cargo xtask setup` (or `cargo xtask build-ebpf`) first";

static CAPTURE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ml-sniffing-ebpf"));
static XDP_TX: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ml-sniffing-xdp-tx"));

/// Whether the objects were built into this binary.
pub fn built() -> bool {
    !CAPTURE.is_empty()
}

/// The capture program's object (program `ml_sniffing`, see
/// `ml_sniffing_common::maps` for its maps).
pub fn capture() -> Result<&'static [u8]> {
    if CAPTURE.is_empty() {
        bail!(NOT_BUILT);
    }
    Ok(CAPTURE)
}

/// The traffic generator's object (program `xdp_tx`: returns XDP_TX, run in
/// BPF_PROG_TEST_RUN "live frames" mode to send frames fast).
pub fn xdp_tx() -> Result<&'static [u8]> {
    if XDP_TX.is_empty() {
        bail!(NOT_BUILT);
    }
    Ok(XDP_TX)
}
