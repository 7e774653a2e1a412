//! Causal behaviour statistics per host and per pair of hosts: the one
//! implementation of the state update, run by the XDP program on its LRU
//! maps and by userspace for captures and CSV files, so that both give the
//! same values for the same packets (a differential test checks it).
//!
//! Each packet updates four states before it becomes a record: its 5-tuple
//! flow ([`FlowState`]), its source host and its destination host
//! ([`HostState`], one map per role) and the unordered pair of its two
//! addresses ([`PairState`]). The record then carries what they say right
//! after counting the packet ([`Behaviour`]).
//!
//! **Decay.** Counts are exponentially decayed sums, `sum of w * 2^(-age /
//! H)`, at three half-lives `H = 2^30, 2^33, 2^36` ns (1.07 s, 8.6 s,
//! 68.7 s: a burst, a sustained rate, a host's baseline). A steady rate of `r` per second holds a decayed count of
//! about `r * H / ln 2`. There is no floating point in BPF, so values are
//! 64-bit fixed point (16 fraction bits) and time is cut into 16 ticks per
//! half-life on absolute tick boundaries: the decay between two packets is
//! `2^-(ticks / 16)`, a shift for whole half-lives and a 16-entry table for
//! the rest. Because ticks are counted on absolute boundaries, the decay
//! over many short gaps adds up to the decay over their sum (within one
//! table rounding per packet), and the same timestamps give the same bits
//! everywhere. Packets older than the state's latest one (out of order) are
//! added without decay.
//!
//! **Fan-out.** Distinct peers (destinations of a source, sources of a
//! destination) and distinct destination ports are counted in 64-bit
//! bitmaps (linear counting) over windows of 2^33 ns (8.6 s): the current
//! window's and the previous one's, so the count covers the last 8.6 to
//! 17.2 s. The record carries the number of bits set; userspace turns it
//! into an estimate (`-64 ln(1 - bits / 64)`, about 266 at most).
//!
//! **Several CPUs.** The maps are shared by all CPUs and updated without a
//! lock. A flood towards one victim arrives on every receive queue, and a
//! per-CPU map would split its view by the number of queues; a shared map
//! sees it whole. Two CPUs updating the same host at the same instant can
//! lose one packet's update: the statistics are approximate under such
//! contention, never unsafe, and a single receive queue (the tests' veth)
//! is exact.

/// Time scales.
pub const SCALES: usize = 3;
/// Half-life of scale `k`: `2^HALF_LIFE_SHIFT[k]` ns.
pub const HALF_LIFE_SHIFT: [u32; SCALES] = [30, 33, 36];
/// Ticks per half-life: `2^STEP_SHIFT`.
pub const STEP_SHIFT: u32 = 4;
/// Fan-out windows: `2^WINDOW_SHIFT` ns.
pub const WINDOW_SHIFT: u32 = 33;
/// One in the 16-fraction-bit fixed point of the states.
pub const ONE: u64 = 1 << 16;

/// `round(2^16 * 2^(-i/16))`: the decay over `i` ticks of a half-life.
const DECAY: [u64; 16] = [
    65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393, 46341, 44376, 42495, 40693, 38968,
    37316, 35734, 34219,
];

/// `v` decayed over `ticks` ticks (fixed point in, fixed point out).
#[inline(always)]
pub fn decay(v: u64, ticks: u64) -> u64 {
    let halvings = ticks >> STEP_SHIFT;
    if halvings >= 48 {
        return 0;
    }
    let v = v >> halvings;
    let f = DECAY[(ticks & ((1 << STEP_SHIFT) - 1)) as usize];
    // v * f / 2^16 without overflowing 64 bits.
    (v >> 16) * f + (((v & 0xffff) * f) >> 16)
}

/// Ticks of scale `k` from `last` to `now` (0 when `now` is older).
#[inline(always)]
fn ticks(k: usize, last: u64, now: u64) -> u64 {
    let q = HALF_LIFE_SHIFT[k] - STEP_SHIFT;
    (now >> q).saturating_sub(last >> q)
}

/// A value of the states as the record carries it: the fixed point shifted
/// right by `shift`, saturated to 32 bits.
#[inline(always)]
fn export(v: u64, shift: u32) -> u32 {
    let v = v >> shift;
    if v > u32::MAX as u64 {
        u32::MAX
    } else {
        v as u32
    }
}

/// Ages are in units of 2^20 ns (1.05 ms): a shift, where a division by a
/// million would cost the XDP program tens of cycles.
pub const AGE_SHIFT: u32 = 20;

/// The age from `from` to `now` in `2^AGE_SHIFT` ns, saturated.
#[inline(always)]
fn age(from: u64, now: u64) -> u32 {
    export(now.saturating_sub(from), AGE_SHIFT)
}

/// A murmur3 finalizer: spreads `x`'s bits so its low 6 pick a bitmap bit.
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// The fan-out bitmap bit of an address.
#[inline(always)]
pub fn address_bit(a: &[u8; 16]) -> u32 {
    let w = |i: usize| u32::from_le_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    mix(w(0) ^ w(4).rotate_left(8) ^ w(8).rotate_left(16) ^ w(12)) & 63
}

/// The fan-out bitmap bit of a port.
#[inline(always)]
pub fn port_bit(port: u16) -> u32 {
    mix(port as u32 ^ 0x5bd1_e995) & 63
}

/// A host: its address (IPv4 as IPv4-mapped IPv6). 16 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostKey {
    pub addr: [u8; 16],
}

/// Two hosts, in address order (`a <= b`, comparing the bytes), so both
/// directions share one state. 32 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub a: [u8; 16],
    pub b: [u8; 16],
}

/// Whether `x` sorts before `y` as 16 big-endian bytes, in two words (a
/// loop over bytes would cost the XDP program more).
#[inline(always)]
fn addr_less(x: &[u8; 16], y: &[u8; 16]) -> bool {
    let word = |a: &[u8; 16], i: usize| {
        u64::from_be_bytes([
            a[i],
            a[i + 1],
            a[i + 2],
            a[i + 3],
            a[i + 4],
            a[i + 5],
            a[i + 6],
            a[i + 7],
        ])
    };
    let (x0, y0) = (word(x, 0), word(y, 0));
    x0 < y0 || (x0 == y0 && word(x, 8) < word(y, 8))
}

impl PairKey {
    /// The pair of a packet from `src` to `dst`, and whether the packet goes
    /// from `b` to `a` (direction 1) rather than from `a` to `b` (0).
    #[inline(always)]
    pub fn of(src: &[u8; 16], dst: &[u8; 16]) -> (PairKey, usize) {
        if addr_less(dst, src) {
            (PairKey { a: *dst, b: *src }, 1)
        } else {
            (PairKey { a: *src, b: *dst }, 0)
        }
    }
}

/// What is known of a host in one role (as a source, or as a destination).
///
/// Layout: 14 `u64`, 112 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    /// Packets counted (0: a new state).
    pub seen: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Decayed packets and new flows (first packets of a 5-tuple), per
    /// scale (fixed point).
    pub packets: [u64; SCALES],
    pub new_flows: [u64; SCALES],
    /// The latest fan-out window (`ns >> WINDOW_SHIFT`).
    pub window: u64,
    /// Peer address bitmaps: this window's, the previous one's.
    pub peers: [u64; 2],
    /// Destination port bitmaps: this window's, the previous one's.
    pub ports: [u64; 2],
}
const _: () = assert!(core::mem::size_of::<HostState>() == 112);

/// One packet, as the host and pair states count it.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub now_ns: u64,
    pub length: u32,
    /// The first packet of its 5-tuple flow.
    pub new_flow: bool,
}

impl HostState {
    /// Counts one packet exchanged with `peer_bit`'s peer on `port_bit`'s
    /// destination port.
    #[inline(always)]
    pub fn record(&mut self, p: &Seen, peer_bit: u32, port_bit: u32) {
        if self.seen == 0 {
            self.first_ns = p.now_ns;
            self.last_ns = p.now_ns;
            self.window = p.now_ns >> WINDOW_SHIFT;
        }
        self.seen += 1;
        for k in 0..SCALES {
            // Under load most packets fall in the tick of the one before:
            // nothing to decay.
            let t = ticks(k, self.last_ns, p.now_ns);
            if t != 0 {
                self.packets[k] = decay(self.packets[k], t);
                self.new_flows[k] = decay(self.new_flows[k], t);
            }
            self.packets[k] += ONE;
            self.new_flows[k] += if p.new_flow { ONE } else { 0 };
        }
        if p.now_ns > self.last_ns {
            self.last_ns = p.now_ns;
        }
        let window = p.now_ns >> WINDOW_SHIFT;
        if window > self.window {
            let keep = window == self.window + 1;
            self.peers = [0, if keep { self.peers[0] } else { 0 }];
            self.ports = [0, if keep { self.ports[0] } else { 0 }];
            self.window = window;
        }
        self.peers[0] |= 1 << peer_bit;
        self.ports[0] |= 1 << port_bit;
    }

    /// What the record carries of this state at `now_ns`.
    #[inline(always)]
    pub fn view(&self, now_ns: u64) -> HostView {
        let mut v = HostView::default();
        for k in 0..SCALES {
            v.packets[k] = export(self.packets[k], 12);
            v.new_flows[k] = export(self.new_flows[k], 12);
        }
        v.age = age(self.first_ns, now_ns);
        v.peers = (self.peers[0] | self.peers[1]).count_ones() as u16;
        v.ports = (self.ports[0] | self.ports[1]).count_ones() as u16;
        v
    }
}

/// What is known of a pair of hosts.
///
/// Layout: 7 `u64`, 56 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairState {
    pub seen: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Decayed frame bytes from `a` to `b` and from `b` to `a` at
    /// [`PAIR_BYTE_SCALES`] (fixed point).
    pub bytes: [[u64; 2]; 2],
}
const _: () = assert!(core::mem::size_of::<PairState>() == 56);

/// The scales the pair's bytes are kept at (1.07 s and 68.7 s).
pub const PAIR_BYTE_SCALES: [usize; 2] = [0, 2];

impl PairState {
    /// Counts one packet going in direction `dir` (see [`PairKey::of`]).
    #[inline(always)]
    pub fn record(&mut self, p: &Seen, dir: usize) {
        if self.seen == 0 {
            self.first_ns = p.now_ns;
            self.last_ns = p.now_ns;
        }
        self.seen += 1;
        let t: [u64; SCALES] = core::array::from_fn(|k| ticks(k, self.last_ns, p.now_ns));
        let length = (p.length as u64) << 16;
        for (i, &k) in PAIR_BYTE_SCALES.iter().enumerate() {
            let (mut out, mut back) = (self.bytes[i][0], self.bytes[i][1]);
            if t[k] != 0 {
                (out, back) = (decay(out, t[k]), decay(back, t[k]));
            }
            self.bytes[i] = if dir == 0 {
                [out + length, back]
            } else {
                [out, back + length]
            };
        }
        if p.now_ns > self.last_ns {
            self.last_ns = p.now_ns;
        }
    }

    /// What the record carries, seen from a packet going in `dir`.
    #[inline(always)]
    pub fn view(&self, now_ns: u64, dir: usize) -> PairView {
        let mut v = PairView::default();
        for i in 0..PAIR_BYTE_SCALES.len() {
            let (out, back) = if dir == 0 {
                (self.bytes[i][0], self.bytes[i][1])
            } else {
                (self.bytes[i][1], self.bytes[i][0])
            };
            v.bytes_out[i] = export(out, 16);
            v.bytes_back[i] = export(back, 16);
        }
        v.age = age(self.first_ns, now_ns);
        v
    }
}

/// A host state as a record carries it. Counts of packets and new flows in
/// 1/16 (4 fraction bits), saturating at `u32::MAX`.
///
/// Layout: 7 `u32` and 2 `u16`, 32 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct HostView {
    pub packets: [u32; SCALES],
    pub new_flows: [u32; SCALES],
    /// Time since the host was first seen in this role, in `2^AGE_SHIFT`
    /// ns (1.05 ms).
    pub age: u32,
    /// Bits set in the peer and port bitmaps (0 to 64).
    pub peers: u16,
    pub ports: u16,
}
const _: () = assert!(core::mem::size_of::<HostView>() == 32);

/// A pair state as a record carries it, from the packet's direction: whole
/// bytes the packet's way and back at [`PAIR_BYTE_SCALES`] (saturating).
///
/// Layout: 5 `u32`, 20 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct PairView {
    pub bytes_out: [u32; 2],
    pub bytes_back: [u32; 2],
    /// Time since the pair was first seen, as [`HostView::age`].
    pub age: u32,
}
const _: () = assert!(core::mem::size_of::<PairView>() == 20);

/// What a packet's record carries of its hosts and pair. 88 bytes (with 4
/// explicit padding bytes), no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Behaviour {
    pub src: HostView,
    pub dst: HostView,
    pub pair: PairView,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<Behaviour>() == 88);

#[cfg(test)]
mod tests;
