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
/// How often readers drain the ring buffer when no wakeup came. A wakeup is
/// an inter-processor interrupt, which cost about 5 us in a VM here: the
/// program asks for one only every [`WAKEUP_EVERY`] records, so a busy link
/// wakes the reader in batches, and a quiet one is drained on this timer
/// (at most 10 ms of records wait).
pub const DRAIN_EVERY_MS: u64 = 10;
/// The program wakes a reader waiting on the ring buffer once every this
/// many records written on a CPU (the others are written without wakeup).
pub const WAKEUP_EVERY: u64 = 1024;
/// Flows remembered at once, in the kernel's LRU map and in userspace flow
/// tables (pcap reading, AF_XDP); the least recently seen are evicted first.
pub const FLOWS_MAX: u32 = 1 << 18;

/// What the program counted, per CPU. Every frame lands in exactly one of
/// the outcome counters, so nothing the program fails to hand to userspace
/// goes uncounted:
/// `seen = emitted + ring_full + unparsed + not_ip + filtered + sampled_out`
/// (when no `SKIP_*` bit is set).
///
/// Layout: eight `u64`, 64 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Records written to the ring buffer.
    pub emitted: u64,
    /// Records the ring buffer could not take (it was full).
    pub ring_full: u64,
    /// Frames the parser could not make a record of (truncated, bogus
    /// header lengths, too many VLAN tags...).
    pub unparsed: u64,
    /// Well-formed frames that do not carry IP (ARP, LLDP...).
    pub not_ip: u64,
    /// IP packets left out on purpose (IPv6 under `--ipv4-only`).
    pub filtered: u64,
    /// Parsed packets left out by 1-in-N sampling (their flows still count
    /// them).
    pub sampled_out: u64,
    /// Flow-map insertions that failed (the record still goes out, counted
    /// as its flow's first packet). Not an outcome: overlaps the others.
    pub flow_insert_failed: u64,
}
const _: () = assert!(core::mem::size_of::<Counters>() == 64);

impl Counters {
    /// Sums per-CPU values.
    pub fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a Counters>) -> Counters {
        let mut t = Counters::default();
        for c in per_cpu {
            t.seen += c.seen;
            t.emitted += c.emitted;
            t.ring_full += c.ring_full;
            t.unparsed += c.unparsed;
            t.not_ip += c.not_ip;
            t.filtered += c.filtered;
            t.sampled_out += c.sampled_out;
            t.flow_insert_failed += c.flow_insert_failed;
        }
        t
    }

    /// The frames accounted for by an outcome counter (equals `seen` when
    /// the program counted right).
    pub fn outcomes(&self) -> u64 {
        self.emitted
            + self.ring_full
            + self.unparsed
            + self.not_ip
            + self.filtered
            + self.sampled_out
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
    /// `Config::*` bits.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 8);

impl Config {
    /// Keep IPv4 only (the original tool's behaviour); IPv6 is `filtered`.
    pub const IPV4_ONLY: u32 = 1;
    /// Leave the flow map alone (records carry zero flow counters). For
    /// measuring its cost (`cargo xtask bench --only kernel`).
    pub const SKIP_FLOW: u32 = 2;
    /// Do not write records to the ring buffer (nor count them). For
    /// measuring its cost.
    pub const SKIP_OUTPUT: u32 = 4;
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
            not_ip: 5,
            filtered: 6,
            sampled_out: 7,
            flow_insert_failed: 8,
        };
        let total = Counters::sum([&a, &a, &Counters::default()]);
        assert_eq!(
            total,
            Counters {
                seen: 2,
                emitted: 4,
                ring_full: 6,
                unparsed: 8,
                not_ip: 10,
                filtered: 12,
                sampled_out: 14,
                flow_insert_failed: 16
            }
        );
        assert_eq!(total.outcomes(), 4 + 6 + 8 + 10 + 12 + 14);
    }

    #[test]
    fn ring_size_is_a_power_of_two_of_pages() {
        assert!(EVENTS_BYTES.is_power_of_two() && EVENTS_BYTES.is_multiple_of(4096));
    }
}
