//! The ml-sniffing XDP program: parses each frame with the shared parser
//! (`ml_sniffing_common::parser`), counts it in its flow and in the
//! behaviour of its hosts and pair (`ml_sniffing_common::behaviour`), and
//! hands one fixed-size record per packet to userspace through a ring
//! buffer. It never changes or drops traffic: every path returns XDP_PASS.
//!
//! On the host this file builds to an empty binary so `cargo build
//! --workspace` and clippy work without the BPF target.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::{xdp_action, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
        helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
        macros::{map, xdp},
        maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
        programs::XdpContext,
    };
    use ml_sniffing_common::{
        behaviour::{HostKey, HostState, PairKey, PairState},
        count::{self, StateMaps},
        filter,
        flow::{FlowKey, FlowState},
        flow_stats::{BiFlowKey, FlowStats},
        maps::{self, Config, Counters},
        parser::{self, Frame, Link, Outcome},
        record::PacketRecord,
    };

    #[map(name = "EVENTS")]
    static EVENTS: RingBuf = RingBuf::with_byte_size(maps::EVENTS_BYTES, 0);

    /// Flow state is updated without a lock: RSS (and a veth's single
    /// queue) keeps a flow's packets on one receive queue, processed by one
    /// CPU at a time, so concurrent updates of one flow do not happen in
    /// practice.
    #[map(name = "FLOWS")]
    static FLOWS: LruHashMap<FlowKey, FlowState> = LruHashMap::with_max_entries(maps::FLOWS_MAX, 0);

    /// Host and pair states, shared by all CPUs and updated without a lock
    /// (why: `ml_sniffing_common::behaviour`).
    #[map(name = "SOURCES")]
    static SOURCES: LruHashMap<HostKey, HostState> =
        LruHashMap::with_max_entries(maps::HOSTS_MAX, 0);

    #[map(name = "DESTINATIONS")]
    static DESTINATIONS: LruHashMap<HostKey, HostState> =
        LruHashMap::with_max_entries(maps::HOSTS_MAX, 0);

    #[map(name = "PAIRS")]
    static PAIRS: LruHashMap<PairKey, PairState> = LruHashMap::with_max_entries(maps::PAIRS_MAX, 0);

    /// The record being built, per CPU: at 168 bytes it would take a third of
    /// the program's 512-byte stack.
    #[map(name = "SCRATCH")]
    static SCRATCH: PerCpuArray<PacketRecord> = PerCpuArray::with_max_entries(1, 0);

    /// A zeroed host state, never written: what new keys are inserted with
    /// (a stack copy would cost 112 bytes of stack).
    #[map(name = "ZERO")]
    static ZERO: Array<HostState> = Array::with_max_entries(1, 0);

    #[map(name = "COUNTERS")]
    static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

    /// Flow records (`Config::FLOW_RECORDS`). A plain hash map, not an
    /// LRU one: an LRU map would push an old flow out unseen; here a new
    /// flow that does not fit goes to userspace as packet records. Updated
    /// without a lock, as the flow state above: the two directions of a
    /// flow can land on two receive queues (RSS is not symmetric on every
    /// NIC), and a rare simultaneous update may then lose one count.
    #[map(name = "FLOW_RECORDS")]
    static FLOW_RECORDS: HashMap<BiFlowKey, FlowStats> =
        HashMap::with_max_entries(maps::FLOW_RECORDS_MAX, 0);

    #[map(name = "FLOW_EVENTS")]
    static FLOW_EVENTS: RingBuf = RingBuf::with_byte_size(maps::FLOW_EVENTS_BYTES, 0);

    #[map(name = "ZERO_FLOW")]
    static ZERO_FLOW: Array<FlowStats> = Array::with_max_entries(1, 0);

    #[map(name = "CONFIG")]
    static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

    #[map(name = "FILTER")]
    static FILTER: Array<filter::Program> = Array::with_max_entries(1, 0);

    /// The frame between `data` and `data_end`. Every read is checked
    /// against `data_end` right before it, the shape the verifier follows.
    struct XdpFrame {
        start: usize,
        end: usize,
    }

    impl Frame for XdpFrame {
        #[inline(always)]
        fn len(&self) -> usize {
            self.end - self.start
        }

        #[inline(always)]
        fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
            let at = self.start + offset;
            if at + N > self.end {
                return None;
            }
            // SAFETY: `at..at + N` lies inside the packet (checked above);
            // `[u8; N]` has no alignment requirement.
            Some(unsafe { core::ptr::read_unaligned(at as *const [u8; N]) })
        }
    }

    /// `map`'s value for `key`, inserted as `zero` when missing; None when
    /// the map refused it.
    #[inline(always)]
    fn lookup_or_insert<K, V>(map: &LruHashMap<K, V>, key: &K, zero: &V) -> Option<&'static mut V> {
        if let Some(v) = map.get_ptr_mut(key) {
            // SAFETY: a pointer into the map's value, valid for this run of
            // the program (see the maps on concurrency).
            return Some(unsafe { &mut *v });
        }
        // BPF_NOEXIST: a key another CPU inserted meanwhile is kept.
        let _ = map.insert(key, zero, 1);
        // SAFETY: as above.
        map.get_ptr_mut(key).map(|v| unsafe { &mut *v })
    }

    /// The zeroed host state, or None if the map is missing.
    #[inline(always)]
    fn zero_host() -> Option<&'static HostState> {
        // SAFETY: a pointer to an array map's value, valid for the run.
        ZERO.get_ptr(0).map(|p| unsafe { &*p })
    }

    /// The program's maps as `behaviour::count_*` sees them.
    struct KernelMaps;

    impl StateMaps for KernelMaps {
        #[inline(always)]
        fn flow(&mut self, key: &FlowKey) -> Option<&mut FlowState> {
            lookup_or_insert(&FLOWS, key, &FlowState::default())
        }

        #[inline(always)]
        fn source(&mut self, key: &HostKey) -> Option<&mut HostState> {
            lookup_or_insert(&SOURCES, key, zero_host()?)
        }

        #[inline(always)]
        fn destination(&mut self, key: &HostKey) -> Option<&mut HostState> {
            lookup_or_insert(&DESTINATIONS, key, zero_host()?)
        }

        #[inline(always)]
        fn pair(&mut self, key: &PairKey) -> Option<&mut PairState> {
            // SAFETY: the zeroed host state is larger than a pair state and
            // all zero bits, a valid PairState (plain integers).
            let zero = unsafe { &*(zero_host()? as *const HostState as *const PairState) };
            lookup_or_insert(&PAIRS, key, zero)
        }
    }

    #[xdp]
    pub fn ml_sniffing(ctx: XdpContext) -> u32 {
        try_ml_sniffing(&ctx).unwrap_or(xdp_action::XDP_PASS)
    }

    #[inline(always)]
    fn try_ml_sniffing(ctx: &XdpContext) -> Result<u32, ()> {
        let counters = COUNTERS.get_ptr_mut(0).ok_or(())?;
        // SAFETY: a per-CPU array slot, used by this CPU only while the
        // program runs (XDP programs are not preempted).
        let counters = unsafe { &mut *counters };
        counters.seen += 1;
        let config = match CONFIG.get(0) {
            Some(c) => *c,
            None => Config::default(),
        };

        let frame = XdpFrame {
            start: ctx.data(),
            end: ctx.data_end(),
        };
        let frame_len = frame.len();
        let record = SCRATCH.get_ptr_mut(0).ok_or(())?;
        // SAFETY: a per-CPU array slot, used by this CPU only while the
        // program runs.
        let record = unsafe { &mut *record };
        *record = PacketRecord::default();
        match parser::parse(&frame, Link::Ethernet, frame_len, record) {
            Outcome::Ip => {}
            Outcome::NotIp { .. } => {
                counters.not_ip += 1;
                return Ok(xdp_action::XDP_PASS);
            }
            Outcome::Malformed(_) => {
                counters.unparsed += 1;
                return Ok(xdp_action::XDP_PASS);
            }
        }
        if config.flags & Config::IPV4_ONLY != 0 && record.ip_version != 4 {
            counters.filtered += 1;
            return Ok(xdp_action::XDP_PASS);
        }
        if config.flags & Config::FILTER != 0 {
            let program = FILTER.get(0).ok_or(())?;
            if !filter::matches(program, record) {
                counters.filtered += 1;
                return Ok(xdp_action::XDP_PASS);
            }
        }

        // SAFETY: a helper without preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        record.timestamp_ns = now;
        record.frame_len = frame_len as u32;

        if config.flags & Config::SKIP_FLOW == 0 {
            let mut failed = count::count_flow(&mut KernelMaps, record);
            if config.flags & Config::SKIP_BEHAVIOUR == 0 {
                failed |= count::count_behaviour(&mut KernelMaps, record);
            }
            if failed != 0 {
                counters.flow_insert_failed += 1;
            }
        }

        if config.flags & Config::FLOW_RECORDS != 0 && !record.is_later_fragment() {
            match flow_record(record, now / 1_000_000, counters) {
                Some(()) if config.flags & Config::FLOW_RECORDS_ONLY != 0 => {
                    counters.flow_recorded += 1;
                    return Ok(xdp_action::XDP_PASS);
                }
                Some(()) => {}
                None => {
                    // Not sampled out: userspace must count this packet.
                    counters.flow_overflow += 1;
                    emit(record, counters);
                    return Ok(xdp_action::XDP_PASS);
                }
            }
        }

        if config.sample_every > 1 {
            // SAFETY: a helper without preconditions.
            let draw = unsafe { bpf_get_prandom_u32() };
            if draw % config.sample_every != 0 {
                counters.sampled_out += 1;
                return Ok(xdp_action::XDP_PASS);
            }
        }

        if config.flags & Config::SKIP_OUTPUT == 0 {
            emit(record, counters);
        }
        Ok(xdp_action::XDP_PASS)
    }

    /// Writes `record` to the ring buffer, counted.
    #[inline(always)]
    fn emit(record: &PacketRecord, counters: &mut Counters) {
        // Wake a waiting reader once every WAKEUP_EVERY records, not per
        // record (see maps::DRAIN_EVERY_MS).
        let wakeup = if (counters.emitted + 1) % maps::WAKEUP_EVERY == 0 {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        };
        match EVENTS.output::<PacketRecord>(record, wakeup as u64) {
            Ok(()) => counters.emitted += 1,
            Err(_) => counters.ring_full += 1,
        }
    }

    /// Counts `record` in its flow record (`flow_stats`, the code userspace
    /// runs on captures); a flow a FIN or RST ends goes to FLOW_EVENTS and
    /// leaves the map. None when the record could not be inserted.
    #[inline(always)]
    fn flow_record(record: &PacketRecord, now_ms: u64, counters: &mut Counters) -> Option<()> {
        let key = BiFlowKey::of(record);
        let stats = match FLOW_RECORDS.get_ptr_mut(&key) {
            Some(v) => v,
            None => {
                // SAFETY: a pointer to an array map's value, valid for the run.
                let zero = unsafe { &*ZERO_FLOW.get_ptr(0)? };
                // BPF_NOEXIST: a key another CPU inserted meanwhile is kept.
                let _ = FLOW_RECORDS.insert(&key, zero, 1);
                FLOW_RECORDS.get_ptr_mut(&key)?
            }
        };
        // SAFETY: a pointer into the map's value, valid for this run of the
        // program (see FLOW_RECORDS on concurrency).
        let stats = unsafe { &mut *stats };
        if stats.add(record, record.frame_len, now_ms) {
            // Ended by FIN or RST: out to userspace, or kept (to end by
            // timeout) when the ring is full, never lost.
            match FLOW_EVENTS.output::<FlowStats>(stats, 0) {
                Ok(()) => {
                    counters.flows_exported += 1;
                    let _ = FLOW_RECORDS.remove(&key);
                }
                Err(_) => counters.flow_ring_full += 1,
            }
        }
        Some(())
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
