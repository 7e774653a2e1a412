//! The AF_XDP mode's kernel side (object `ml-sniffing-xsk`), separate from
//! the record program so that the record path is not changed at all:
//!
//! - `ml_sniffing_xsk` (XDP): stamps each frame with the kernel time (in
//!   the metadata area in front of the frame, which AF_XDP copies into the
//!   UMEM chunk) and redirects it to the AF_XDP socket of its receive queue.
//!   Frames on a queue without a socket pass to the host stack.
//! - `ml_sniffing_reinject` (TC ingress, on the TAP device userspace writes
//!   frames back to): sends each frame into the receive path of the captured
//!   interface (`bpf_redirect` with `BPF_F_INGRESS`), so the host stack sees
//!   it as having arrived there.
//!
//! See `ml_sniffing_common::maps::xsk` for the maps.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::{xdp_action, BPF_F_INGRESS},
        helpers::{bpf_ktime_get_ns, bpf_redirect, bpf_xdp_adjust_meta},
        macros::{classifier, map, xdp},
        maps::{Array, PerCpuArray, XskMap},
        programs::{TcContext, XdpContext},
    };
    use ml_sniffing_common::maps::{xsk, XskCounters};

    #[map(name = "XSK_SOCKETS")]
    static SOCKETS: XskMap = XskMap::with_max_entries(xsk::SOCKETS_MAX, 0);

    #[map(name = "XSK_COUNTERS")]
    static COUNTERS: PerCpuArray<XskCounters> = PerCpuArray::with_max_entries(1, 0);

    #[map(name = "XSK_REINJECT_TARGET")]
    static REINJECT_TARGET: Array<u32> = Array::with_max_entries(1, 0);

    /// `TC_ACT_SHOT` (drop), as the classifier's return type (the bindings'
    /// integer type differs between targets).
    const TC_ACT_SHOT: i32 = 2;

    #[inline(always)]
    fn counters() -> Option<&'static mut XskCounters> {
        let c = COUNTERS.get_ptr_mut(0)?;
        // SAFETY: a per-CPU array slot, used by this CPU only while the
        // program runs (BPF programs are not preempted).
        Some(unsafe { &mut *c })
    }

    #[xdp]
    pub fn ml_sniffing_xsk(ctx: XdpContext) -> u32 {
        let Some(counters) = counters() else {
            return xdp_action::XDP_PASS;
        };
        counters.seen += 1;
        // The lower bits of the flags are the action when the queue has no
        // socket: pass the frame on.
        match SOCKETS.redirect(ctx.rx_queue_index(), xdp_action::XDP_PASS as u64) {
            Ok(action) if action == xdp_action::XDP_REDIRECT => {}
            _ => {
                counters.no_socket += 1;
                return xdp_action::XDP_PASS;
            }
        }
        counters.redirected += 1;
        // The frame is handed over after the program returns, so the
        // metadata written now travels with it.
        if !stamp(&ctx) {
            counters.no_timestamp += 1;
        }
        xdp_action::XDP_REDIRECT
    }

    /// Puts the kernel time in front of the frame (`META_LEN` bytes).
    #[inline(always)]
    fn stamp(ctx: &XdpContext) -> bool {
        // SAFETY: a helper on the program's own context.
        if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(xsk::META_LEN as i32)) } != 0 {
            return false;
        }
        let meta = ctx.metadata();
        if meta + xsk::META_LEN > ctx.data() {
            return false;
        }
        // SAFETY: a helper without preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: `meta..meta + META_LEN` lies in the metadata area (checked
        // against `data` above); unaligned writes are allowed.
        unsafe { core::ptr::write_unaligned(meta as *mut u64, now) };
        true
    }

    #[classifier]
    pub fn ml_sniffing_reinject(_ctx: TcContext) -> i32 {
        let target = REINJECT_TARGET.get(0).copied().unwrap_or(0);
        let counters = counters();
        if target == 0 {
            if let Some(c) = counters {
                c.reinject_failed += 1;
            }
            return TC_ACT_SHOT;
        }
        // SAFETY: a helper without preconditions; it returns TC_ACT_REDIRECT
        // on success.
        let action = unsafe { bpf_redirect(target, BPF_F_INGRESS as u64) } as i32;
        if let Some(c) = counters {
            if action == TC_ACT_SHOT {
                c.reinject_failed += 1;
            } else {
                c.reinjected += 1;
            }
        }
        action
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
