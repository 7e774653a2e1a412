//! The live subset of tcpdump filters (host, net, port, portrange and the
//! protocols, with and, or, not): a small program of tests on a parsed
//! record's fields, each test jumping forward to the next test, to
//! accept or to reject. Userspace compiles an expression into it
//! (`ml_sniffing::capture::live_filter`); the XDP program runs it on every
//! parsed packet, and userspace runs the same code in tests.

use crate::record::PacketRecord;

/// Tests a program holds at most.
pub const MAX_OPS: usize = 32;
const _: () = assert!(MAX_OPS.is_power_of_two());
/// Jump targets beyond the program: the packet matches, or does not.
pub const ACCEPT: u8 = 254;
pub const REJECT: u8 = 255;

/// What one test looks at.
pub mod kind {
    /// `proto`: the transport protocol number equals `lo` (low byte).
    pub const PROTOCOL: u8 = 1;
    /// `ip_version`: 4 or 6, in `lo`.
    pub const IP_VERSION: u8 = 2;
    /// The packet is of IP version `hi` and the address (IPv4 as
    /// `::ffff:a.b.c.d`) is in `addr` / `mask`.
    pub const ADDRESS: u8 = 3;
    /// The port lies in `lo..=hi` (TCP, UDP, SCTP only, as tcpdump's).
    pub const PORT: u8 = 4;
}

/// Which end a test reads.
pub mod end {
    pub const SOURCE: u8 = 1;
    pub const DESTINATION: u8 = 2;
    pub const EITHER: u8 = 3;
}

/// One test.
///
/// Layout: 40 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Op {
    pub kind: u8,
    pub end: u8,
    /// Where to go when the test holds, and when it does not: a later
    /// op's index, [`ACCEPT`] or [`REJECT`].
    pub on_true: u8,
    pub on_false: u8,
    pub lo: u16,
    pub hi: u16,
    /// Address tests: the address (16 bytes read as two native-endian
    /// words, as the record's are) already masked, and the mask.
    pub addr: [u64; 2],
    pub mask: [u64; 2],
}
const _: () = assert!(core::mem::size_of::<Op>() == 40);

/// A compiled filter; `len == 0`: every packet matches.
///
/// Layout: `u32` length, padding to 8, then the ops.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    pub len: u32,
    pub _pad: u32,
    pub ops: [Op; MAX_OPS],
}
const _: () = assert!(core::mem::size_of::<Program>() == 8 + 40 * MAX_OPS);

impl Default for Program {
    fn default() -> Self {
        Program {
            len: 0,
            _pad: 0,
            ops: [Op::default(); MAX_OPS],
        }
    }
}

/// An address as the two words address tests compare.
#[inline(always)]
pub fn words(a: &[u8; 16]) -> [u64; 2] {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    [u64::from_ne_bytes(hi), u64::from_ne_bytes(lo)]
}

/// Whether `a` lies in the network `net` / `mask` (both as [`words`]).
#[inline(always)]
fn in_network(a: &[u8; 16], net: &[u64; 2], mask: &[u64; 2]) -> bool {
    let a = words(a);
    (a[0] & mask[0]) == net[0] && (a[1] & mask[1]) == net[1]
}

/// Whether the protocol has the ports tcpdump's `port` tests read.
#[inline(always)]
fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 132)
}

#[inline(always)]
fn holds(op: &Op, r: &PacketRecord) -> bool {
    let (src, dst) = (op.end & end::SOURCE != 0, op.end & end::DESTINATION != 0);
    match op.kind {
        kind::PROTOCOL => r.protocol == op.lo as u8,
        kind::IP_VERSION => r.ip_version == op.lo as u8,
        kind::ADDRESS => {
            r.ip_version == op.hi as u8
                && ((src && in_network(&r.src_addr, &op.addr, &op.mask))
                    || (dst && in_network(&r.dst_addr, &op.addr, &op.mask)))
        }
        kind::PORT => {
            has_ports(r.protocol)
                && ((src && op.lo <= r.src_port && r.src_port <= op.hi)
                    || (dst && op.lo <= r.dst_port && r.dst_port <= op.hi))
        }
        _ => false,
    }
}

/// Whether `r` matches `program`. Jumps only go forward, so one pass over
/// the ops in order runs every test that is reached, each at most once; the
/// index is the loop's own, which the verifier bounds.
#[inline(always)]
pub fn matches(program: &Program, r: &PacketRecord) -> bool {
    if program.len == 0 {
        return true;
    }
    let mut pc: usize = 0;
    for (i, op) in program.ops.iter().enumerate() {
        if i < pc {
            continue;
        }
        let next = if holds(op, r) {
            op.on_true
        } else {
            op.on_false
        };
        if next == ACCEPT {
            return true;
        }
        if next == REJECT || (next as usize) <= i {
            return false;
        }
        pc = next as usize;
    }
    false
}
