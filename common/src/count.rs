//! A packet counted in its states: its 5-tuple flow, then its source,
//! destination and pair. Written once, for the XDP program (maps) and for
//! userspace (hash tables), through [`StateMaps`].

use crate::behaviour::{address_bit, port_bit, HostKey, HostState, PairKey, PairState, Seen};
use crate::flow::{FlowKey, FlowState};
use crate::record::PacketRecord;

/// The maps a packet is counted in, as the XDP program and userspace each
/// hold them. Each lookup gives the key's state, inserting a zeroed one
/// when missing, or `None` when the map refused the insertion.
pub trait StateMaps {
    fn flow(&mut self, key: &FlowKey) -> Option<&mut FlowState>;
    fn source(&mut self, key: &HostKey) -> Option<&mut HostState>;
    fn destination(&mut self, key: &HostKey) -> Option<&mut HostState>;
    fn pair(&mut self, key: &PairKey) -> Option<&mut PairState>;
}

/// What [`count_flow`] and [`count_behaviour`] could not store.
pub mod failed {
    pub const FLOW: u32 = 1;
    pub const SOURCE: u32 = 2;
    pub const DESTINATION: u32 = 4;
    pub const PAIR: u32 = 8;
}

/// Counts `record` (its `frame_len` at its `timestamp_ns`) in its flow and
/// stores the flow counters in it. Returns [`failed`] bits.
#[inline(always)]
pub fn count_flow<M: StateMaps>(maps: &mut M, record: &mut PacketRecord) -> u32 {
    let key = record.flow_key();
    let (counters, failed) = match maps.flow(&key) {
        Some(state) => (state.record(record.frame_len, record.timestamp_ns), 0),
        // Not stored: counted as its flow's first packet.
        None => (
            FlowState::first(record.frame_len, record.timestamp_ns).counters(0),
            failed::FLOW,
        ),
    };
    record.set_flow(&counters);
    failed
}

/// Counts `record` in its source, destination and pair states (after its
/// flow: a packet whose `flow_packets` is 1 opens a new flow) and stores
/// what they say in `record.behaviour`. Returns [`failed`] bits; a state
/// that could not be stored leaves its part of the record zero.
#[inline(always)]
pub fn count_behaviour<M: StateMaps>(maps: &mut M, record: &mut PacketRecord) -> u32 {
    let seen = Seen {
        now_ns: record.timestamp_ns,
        length: record.frame_len,
        new_flow: record.flow_packets == 1,
    };
    let now = seen.now_ns;
    let mut failed = 0;
    let dst_port = port_bit(record.dst_port);
    let src_key = HostKey {
        addr: record.src_addr,
    };
    match maps.source(&src_key) {
        Some(s) => {
            s.record(&seen, address_bit(&record.dst_addr), dst_port);
            record.behaviour.src = s.view(now);
        }
        None => failed |= failed::SOURCE,
    }
    let dst_key = HostKey {
        addr: record.dst_addr,
    };
    match maps.destination(&dst_key) {
        Some(s) => {
            s.record(&seen, address_bit(&record.src_addr), dst_port);
            record.behaviour.dst = s.view(now);
        }
        None => failed |= failed::DESTINATION,
    }
    let (pair_key, dir) = PairKey::of(&record.src_addr, &record.dst_addr);
    match maps.pair(&pair_key) {
        Some(s) => {
            s.record(&seen, dir);
            record.behaviour.pair = s.view(now, dir);
        }
        None => failed |= failed::PAIR,
    }
    failed
}
