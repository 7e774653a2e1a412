//! The XDP program's maps as userspace sees them: names, sizes and the
//! layouts of their values, shared so the program and its loader agree.

/// Ring buffer of packet records (`RingBuf`).
pub const EVENTS: &str = "EVENTS";
/// Per-flow state (`LruHashMap<FlowKey, FlowState>`).
pub const FLOWS: &str = "FLOWS";
/// Per-source host state (`LruHashMap<HostKey, HostState>`).
pub const SOURCES: &str = "SOURCES";
/// Per-destination host state (`LruHashMap<HostKey, HostState>`).
pub const DESTINATIONS: &str = "DESTINATIONS";
/// Per-pair state (`LruHashMap<PairKey, PairState>`).
pub const PAIRS: &str = "PAIRS";
/// Per-CPU [`Counters`] (`PerCpuArray<Counters>`, one entry).
pub const COUNTERS: &str = "COUNTERS";
/// The [`Config`] userspace writes before attaching (`Array<Config>`, one entry).
pub const CONFIG: &str = "CONFIG";
/// The filter program ([`crate::filter::Program`]), read when
/// [`Config::FILTER`] is set.
pub const FILTER: &str = "FILTER";
/// Bidirectional flow records (`HashMap<BiFlowKey, FlowStats>`, see
/// [`crate::flow_stats`]), kept when [`Config::FLOW_RECORDS`] is set.
pub const FLOW_RECORDS: &str = "FLOW_RECORDS";
/// Ring buffer of flow records ended by a TCP FIN or RST (`FlowStats`).
pub const FLOW_EVENTS: &str = "FLOW_EVENTS";
/// A zeroed `FlowStats`, the value a new flow record is inserted as (it is
/// larger than the program's stack allows).
pub const ZERO_FLOW: &str = "ZERO_FLOW";
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
/// Hosts remembered per role (source, destination), as for flows: 65,536
/// of 192 bytes, about 17 MiB per map with the kernel's overhead.
pub const HOSTS_MAX: u32 = 1 << 16;
/// Pairs of hosts remembered: 131,072 of 88 bytes.
pub const PAIRS_MAX: u32 = 1 << 17;
/// Flow records kept at once when asked for: 131,072 of 440 bytes, about
/// 60 MiB (a plain hash map, preallocated; 1 entry when not asked for).
/// When it is full a new flow's packets go out as packet records instead
/// (`flow_overflow`), so userspace counts them: none is lost.
pub const FLOW_RECORDS_MAX: u32 = 1 << 17;
/// Flow-record ring size: 8 MiB, about 20,000 ended flows.
pub const FLOW_EVENTS_BYTES: u32 = 8 << 20;

/// What the program counted, per CPU. Every frame lands in exactly one of
/// the outcome counters, so nothing the program fails to hand to userspace
/// goes uncounted:
/// `seen = emitted + ring_full + unparsed + not_ip + filtered + sampled_out
/// + flow_recorded` (when no `SKIP_*` bit is set).
///
/// Layout: twelve `u64`, 96 bytes, no padding.
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
    /// Packets whose flow, host or pair state could not be inserted (the
    /// record still goes out: as its flow's first packet, with the missing
    /// host or pair part zero). Not an outcome: overlaps the others.
    pub flow_insert_failed: u64,
    /// Packets counted in a kernel flow record and not written as packet
    /// records ([`Config::FLOW_RECORDS_ONLY`]).
    pub flow_recorded: u64,
    /// Flow records written to the flow ring (ended by FIN or RST).
    pub flows_exported: u64,
    /// Flows ended by FIN or RST that the flow ring could not take: they
    /// stay in the map and end by timeout instead. Not an outcome.
    pub flow_ring_full: u64,
    /// Packets whose flow record could not be inserted (the map was full):
    /// they went out as packet records. Not an outcome.
    pub flow_overflow: u64,
}
const _: () = assert!(core::mem::size_of::<Counters>() == 96);

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
            t.flow_recorded += c.flow_recorded;
            t.flows_exported += c.flows_exported;
            t.flow_ring_full += c.flow_ring_full;
            t.flow_overflow += c.flow_overflow;
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
            + self.flow_recorded
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
    /// Leave the flow, host and pair maps alone (records carry zero flow
    /// counters and behaviour). For measuring their cost (`cargo xtask bench
    /// --only kernel`).
    pub const SKIP_FLOW: u32 = 2;
    /// Do not write records to the ring buffer (nor count them). For
    /// measuring its cost.
    pub const SKIP_OUTPUT: u32 = 4;
    /// Count flows but leave the host and pair maps alone. For measuring
    /// their cost.
    pub const SKIP_BEHAVIOUR: u32 = 8;
    /// Run the [`FILTER`] program: packets it does not match are
    /// `filtered`, before any state counts them.
    pub const FILTER: u32 = 16;
    /// Keep a bidirectional flow record per flow ([`FLOW_RECORDS`]) with
    /// NFStream's statistics, and write it to [`FLOW_EVENTS`] when a TCP FIN
    /// or RST ends it (userspace ends the others on timeouts).
    pub const FLOW_RECORDS: u32 = 32;
    /// With `FLOW_RECORDS`: packets counted in a flow record are not
    /// written as packet records (`flow_recorded`); later fragments and
    /// packets whose record could not be inserted still are.
    pub const FLOW_RECORDS_ONLY: u32 = 64;
}

/// The AF_XDP program's object (`ml-sniffing-xsk`): maps and programs.
///
/// In AF_XDP mode a second, separate XDP program is attached instead of
/// the record program: it only stamps each frame with the kernel time and
/// redirects it to the AF_XDP socket of its receive queue; userspace parses
/// it with the shared parser. The record program's object is not changed.
pub mod xsk {
    /// The XDP program (redirects to [`SOCKETS`]).
    pub const PROGRAM: &str = "ml_sniffing_xsk";
    /// The TC ingress program on the re-injection TAP device: sends every
    /// frame written to the TAP into the captured interface's receive path.
    pub const REINJECT_PROGRAM: &str = "ml_sniffing_reinject";
    /// `XskMap`: receive queue index -> AF_XDP socket.
    pub const SOCKETS: &str = "XSK_SOCKETS";
    /// Per-CPU [`XskCounters`](super::XskCounters) (`PerCpuArray`, one entry).
    pub const COUNTERS: &str = "XSK_COUNTERS";
    /// The interface index the re-injection program redirects to
    /// (`Array<u32>`, one entry; 0 = none, frames are dropped and counted).
    pub const REINJECT_TARGET: &str = "XSK_REINJECT_TARGET";
    /// Receive queues the socket map can hold.
    pub const SOCKETS_MAX: u32 = 256;
    /// Bytes of metadata the program puts in front of each redirected frame
    /// (`bpf_xdp_adjust_meta`): the kernel time in ns (`bpf_ktime_get_ns`,
    /// as in records), native endian. AF_XDP copies it into the UMEM chunk
    /// right before the frame.
    pub const META_LEN: usize = 8;
}

/// What the AF_XDP program counted, per CPU.
/// `seen = redirected + no_socket`; frames redirected then lost by a
/// socket are in the socket's own statistics (`XDP_STATISTICS`).
///
/// Layout: eight `u64`, 64 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskCounters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Frames redirected to an AF_XDP socket.
    pub redirected: u64,
    /// Frames on a receive queue without a socket (not selected with
    /// `--queues`): passed to the host stack, not captured.
    pub no_socket: u64,
    /// Redirected frames that could not carry their timestamp (no room for
    /// metadata): userspace stamps them on arrival.
    pub no_timestamp: u64,
    /// Frames the re-injection program sent into the interface's receive
    /// path.
    pub reinjected: u64,
    /// Frames the re-injection program could not send (no target set, or
    /// the redirect failed).
    pub reinject_failed: u64,
    pub _reserved: [u64; 2],
}
const _: () = assert!(core::mem::size_of::<XskCounters>() == 64);

impl XskCounters {
    /// Sums per-CPU values.
    pub fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a XskCounters>) -> XskCounters {
        let mut t = XskCounters::default();
        for c in per_cpu {
            t.seen += c.seen;
            t.redirected += c.redirected;
            t.no_socket += c.no_socket;
            t.no_timestamp += c.no_timestamp;
            t.reinjected += c.reinjected;
            t.reinject_failed += c.reinject_failed;
        }
        t
    }
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
            flow_recorded: 9,
            flows_exported: 10,
            flow_ring_full: 11,
            flow_overflow: 12,
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
                flow_insert_failed: 16,
                flow_recorded: 18,
                flows_exported: 20,
                flow_ring_full: 22,
                flow_overflow: 24,
            }
        );
        assert_eq!(total.outcomes(), 4 + 6 + 8 + 10 + 12 + 14 + 18);
    }

    #[test]
    fn xsk_counters_sum_field_by_field() {
        let a = XskCounters {
            seen: 1,
            redirected: 2,
            no_socket: 3,
            no_timestamp: 4,
            reinjected: 5,
            reinject_failed: 6,
            _reserved: [7, 8],
        };
        let total = XskCounters::sum([&a, &a, &XskCounters::default()]);
        assert_eq!(
            total,
            XskCounters {
                seen: 2,
                redirected: 4,
                no_socket: 6,
                no_timestamp: 8,
                reinjected: 10,
                reinject_failed: 12,
                _reserved: [0, 0],
            }
        );
    }

    #[test]
    fn ring_size_is_a_power_of_two_of_pages() {
        assert!(EVENTS_BYTES.is_power_of_two() && EVENTS_BYTES.is_multiple_of(4096));
    }
}
