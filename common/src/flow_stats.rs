//! Bidirectional flow statistics (NFStream's statistical columns) in
//! integers: the one implementation of a flow record's update, run by the
//! XDP program on its flow-record map and by userspace for captures, so both
//! give the same values for the same packets.
//!
//! Times are whole milliseconds (as NFStream counts them). Sizes and gaps
//! are kept as count, sum, sum of squares, minimum and maximum, so means
//! and sample standard deviations are computed exactly at export (in
//! userspace: BPF has no floating point).

use crate::record::PacketRecord;

/// A bidirectional flow: the lower (address, port) end first, then the
/// higher, the VLAN and the protocol. Ports are 0 for protocols without them.
///
/// Layout: 16 + 16 + 2 + 2 + 2 + 1 + 1 explicit padding byte = 40, no
/// implicit padding, so the key hashes the same in the kernel and userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct BiFlowKey {
    pub lo_addr: [u8; 16],
    pub hi_addr: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub vlan_id: u16,
    pub protocol: u8,
    pub _pad: u8,
}
const _: () = assert!(core::mem::size_of::<BiFlowKey>() == 40);

/// The ports a flow is keyed by: the packet's for TCP, UDP and SCTP, 0 for
/// the others (ICMP's type and code would split a request from its reply).
#[inline(always)]
pub fn ports(r: &PacketRecord) -> (u16, u16) {
    if matches!(r.protocol, 6 | 17 | 132) {
        (r.src_port, r.dst_port)
    } else {
        (0, 0)
    }
}

/// `a` as two big-endian halves, to compare and test addresses without
/// `memcmp` (which the BPF target does not have).
#[inline(always)]
fn halves(a: &[u8; 16]) -> (u64, u64) {
    (
        u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]),
        u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]),
    )
}

impl BiFlowKey {
    /// The flow `r` belongs to, whichever way it goes.
    #[inline(always)]
    pub fn of(r: &PacketRecord) -> Self {
        let (sp, dp) = ports(r);
        let (s, d) = (halves(&r.src_addr), halves(&r.dst_addr));
        let src_first = (s.0, s.1, sp) <= (d.0, d.1, dp);
        let (lo_addr, lo_port, hi_addr, hi_port) = if src_first {
            (r.src_addr, sp, r.dst_addr, dp)
        } else {
            (r.dst_addr, dp, r.src_addr, sp)
        };
        BiFlowKey {
            lo_addr,
            hi_addr,
            lo_port,
            hi_port,
            vlan_id: r.vlan_id,
            protocol: r.protocol,
            _pad: 0,
        }
    }
}

/// TCP flags counted, in NFStream's column order.
pub const FLAGS: [(&str, u8); 8] = [
    ("syn", 0x02),
    ("cwr", 0x80),
    ("ece", 0x40),
    ("urg", 0x20),
    ("ack", 0x10),
    ("psh", 0x08),
    ("rst", 0x04),
    ("fin", 0x01),
];

/// One direction's (or both ways') statistics. 120 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Side {
    pub first_ms: u64,
    pub last_ms: u64,
    pub packets: u64,
    pub bytes: u64,
    pub size_sum: u64,
    pub size_sumsq: u64,
    /// Gaps between packets (ms): `packets - 1` of them.
    pub gap_min: u64,
    pub gap_max: u64,
    pub gap_sum: u64,
    pub gap_sumsq: u64,
    pub size_min: u32,
    pub size_max: u32,
    /// Packets with each of [`FLAGS`] set.
    pub flags: [u32; 8],
}
const _: () = assert!(core::mem::size_of::<Side>() == 120);

impl Side {
    #[inline(always)]
    fn add(&mut self, ms: u64, size: u32, tcp_flags: u8) {
        let s = size as u64;
        if self.packets == 0 {
            self.first_ms = ms;
            self.size_min = size;
            self.size_max = size;
        } else {
            let gap = ms.saturating_sub(self.last_ms);
            if self.packets == 1 || gap < self.gap_min {
                self.gap_min = gap;
            }
            if gap > self.gap_max {
                self.gap_max = gap;
            }
            self.gap_sum = self.gap_sum.wrapping_add(gap);
            self.gap_sumsq = self.gap_sumsq.wrapping_add(gap.wrapping_mul(gap));
            if size < self.size_min {
                self.size_min = size;
            }
            if size > self.size_max {
                self.size_max = size;
            }
        }
        self.last_ms = ms;
        self.packets += 1;
        self.bytes = self.bytes.wrapping_add(s);
        self.size_sum = self.size_sum.wrapping_add(s);
        self.size_sumsq = self.size_sumsq.wrapping_add(s * s);
        let f = tcp_flags as u32;
        self.flags[0] += (f >> 1) & 1;
        self.flags[1] += (f >> 7) & 1;
        self.flags[2] += (f >> 6) & 1;
        self.flags[3] += (f >> 5) & 1;
        self.flags[4] += (f >> 4) & 1;
        self.flags[5] += (f >> 3) & 1;
        self.flags[6] += (f >> 2) & 1;
        self.flags[7] += f & 1;
    }

    pub fn duration_ms(&self) -> u64 {
        self.last_ms - self.first_ms
    }
}

/// A flow's statistics: who spoke first (`src`), then both ways, source to
/// destination and back. 40 + 360 = 400 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct FlowStats {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub vlan_id: u16,
    pub protocol: u8,
    pub ip_version: u8,
    pub both: Side,
    pub src2dst: Side,
    pub dst2src: Side,
}
const _: () = assert!(core::mem::size_of::<FlowStats>() == 400);

impl FlowStats {
    /// Counts `r` (of `size` bytes, at `ms`) in this flow, the flow's first
    /// packet when it has none yet. True when it is a TCP FIN or RST.
    #[inline(always)]
    pub fn add(&mut self, r: &PacketRecord, size: u32, ms: u64) -> bool {
        let (sp, dp) = ports(r);
        if self.both.packets == 0 {
            self.src_addr = r.src_addr;
            self.dst_addr = r.dst_addr;
            self.src_port = sp;
            self.dst_port = dp;
            self.vlan_id = r.vlan_id;
            self.protocol = r.protocol;
            self.ip_version = r.ip_version;
        }
        let forward = halves(&r.src_addr) == halves(&self.src_addr) && sp == self.src_port;
        let flags = if r.protocol == 6 { r.tcp_flags } else { 0 };
        self.both.add(ms, size, flags);
        if forward {
            self.src2dst.add(ms, size, flags);
        } else {
            self.dst2src.add(ms, size, flags);
        }
        flags & (0x01 | 0x04) != 0
    }
}

#[cfg(feature = "user")]
mod user {
    use super::Side;

    /// Mean and sample standard deviation (0 below two values) of `n`
    /// values with sum `sum` and sum of squares `sumsq`, computed exactly in
    /// integers and rounded once.
    pub fn mean_stddev(n: u64, sum: u64, sumsq: u64) -> (f64, f64) {
        if n == 0 {
            return (0.0, 0.0);
        }
        let mean = sum as f64 / n as f64;
        if n < 2 {
            return (mean, 0.0);
        }
        let (n, sum, sumsq) = (n as u128, sum as u128, sumsq as u128);
        let spread = (n * sumsq).saturating_sub(sum * sum);
        (mean, (spread as f64 / (n * (n - 1)) as f64).sqrt())
    }

    impl Side {
        /// Sizes: minimum, mean, sample standard deviation, maximum.
        pub fn sizes(&self) -> [f64; 4] {
            let (mean, sd) = mean_stddev(self.packets, self.size_sum, self.size_sumsq);
            [self.size_min as f64, mean, sd, self.size_max as f64]
        }

        /// Gaps (ms): minimum, mean, sample standard deviation, maximum.
        pub fn gaps_ms(&self) -> [f64; 4] {
            let n = self.packets.saturating_sub(1);
            let (mean, sd) = mean_stddev(n, self.gap_sum, self.gap_sumsq);
            [self.gap_min as f64, mean, sd, self.gap_max as f64]
        }
    }
}

#[cfg(feature = "user")]
pub use user::mean_stddev;
