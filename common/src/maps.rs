//! The XDP program's maps as userspace sees them: names, sizes and the
//! layouts of their values, shared so the program and its loader agree.

/// Ring buffer of packet records (`RingBuf`).
pub const EVENTS: &str = "EVENTS";
/// Per-flow state (`LruHashMap<FlowKey, FlowState>`).
pub const FLOWS: &str = "FLOWS";
/// Per-CPU [`Counters`] (`PerCpuArray<Counters>`, one entry).
pub const COUNTERS: &str = "COUNTERS";
/// The [`Config`] userspace writes before attaching (`Array<Config>`, one entry).
pub const CONFIG: &str = "CONFIG";
/// The capture program's name in the object (its function name).
pub const PROGRAM: &str = "ml_sniffing";

/// Default ring buffer size: 64 MiB holds about 0.7 s of records at a
/// million packets per second, which absorbs userspace scheduling hiccups.
/// A power of two multiple of the page size, as the kernel requires.
pub const EVENTS_BYTES: u32 = 64 << 20;
/// Flows remembered at once; the least recently seen are evicted first.
pub const FLOWS_MAX: u32 = 65_536;

/// What the program counted, per CPU. Nothing it fails to hand to
/// userspace goes uncounted.
///
/// Layout: six `u64`, 48 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Records written to the ring buffer.
    pub emitted: u64,
    /// Records the ring buffer could not take (it was full).
    pub ring_full: u64,
    /// Frames the parser could not make a record of (not IP, truncated,
    /// bogus header lengths).
    pub unparsed: u64,
    /// Parsed frames left out by 1-in-N sampling.
    pub sampled_out: u64,
    /// Flow-map insertions that failed (the record still goes out, counted
    /// as its flow's first packet).
    pub flow_insert_failed: u64,
}
const _: () = assert!(core::mem::size_of::<Counters>() == 48);

impl Counters {
    /// Sums per-CPU values.
    pub fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a Counters>) -> Counters {
        let mut total = Counters::default();
        for c in per_cpu {
            total.seen += c.seen;
            total.emitted += c.emitted;
            total.ring_full += c.ring_full;
            total.unparsed += c.unparsed;
            total.sampled_out += c.sampled_out;
            total.flow_insert_failed += c.flow_insert_failed;
        }
        total
    }
}

/// Settings userspace gives the program through the [`CONFIG`] map.
///
/// Layout: two `u32`, 8 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Emit one parsed packet in `sample_every` (chosen at random); 0 and 1
    /// mean every packet. Flow counters still count every packet.
    pub sample_every: u32,
    /// `SKIP_*` bits that switch parts of the program off, for measuring
    /// their cost (`cargo xtask bench kernel`); 0 in normal use.
    pub skip: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 8);

impl Config {
    /// Leave the flow map alone (records carry zero flow counters).
    pub const SKIP_FLOW: u32 = 1;
    /// Do not write records to the ring buffer.
    pub const SKIP_OUTPUT: u32 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_field_by_field() {
        let a = Counters {
            seen: 1,
            emitted: 2,
            ring_full: 3,
            unparsed: 4,
            sampled_out: 5,
            flow_insert_failed: 6,
        };
        let total = Counters::sum([&a, &a, &Counters::default()]);
        assert_eq!(
            total,
            Counters {
                seen: 2,
                emitted: 4,
                ring_full: 6,
                unparsed: 8,
                sampled_out: 10,
                flow_insert_failed: 12
            }
        );
    }

    #[test]
    fn ring_size_is_a_power_of_two_of_pages() {
        assert!(EVENTS_BYTES.is_power_of_two() && EVENTS_BYTES % 4096 == 0);
    }
}
