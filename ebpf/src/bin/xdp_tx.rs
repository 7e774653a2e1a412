//! A traffic generator for the kernel benchmark: run through
//! BPF_PROG_TEST_RUN in XDP "live frames" mode, it sends every test frame
//! out of the interface it is run on (XDP_TX), millions per second, which
//! ordinary sockets cannot reach on this machine kind.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

    #[xdp]
    pub fn xdp_tx(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_TX
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
