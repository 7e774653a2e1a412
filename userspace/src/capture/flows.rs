//! The userspace flow table: [`FlowState::record`] (the same update the XDP
//! program runs) on a bounded LRU map keyed by [`PacketRecord::flow_key`].
//!
//! Memory is bounded like the kernel's `BPF_MAP_TYPE_LRU_HASH`: when the
//! table is full, counting a packet of a new flow evicts the least recently
//! seen flow. A flow that comes back after its eviction starts again from 1
//! packet, exactly as it would in the kernel map, and the evictions are
//! counted so that a summary can say it happened.

use std::num::NonZeroUsize;

use lru::LruCache;
use ml_sniffing_common::flow::{FlowCounters, FlowKey, FlowState};
use ml_sniffing_common::record::PacketRecord;

/// Flows kept before the least recently seen is evicted: 262,144 (2^18).
/// At about 130 bytes per flow (key, state, LRU links, hash slot) the table
/// stays under 40 MiB, whatever the capture holds.
pub const DEFAULT_CAPACITY: usize = ml_sniffing_common::maps::FLOWS_MAX as usize;

/// A [`FlowKey`] as five words: hashing them is a handful of multiplies,
/// where the derived `Hash` of the key feeds the hasher field by field
/// (with length prefixes for the arrays).
#[derive(Clone, Copy)]
struct Key([u64; 5]);

/// Word by word: the derived comparison of the array calls `memcmp`.
impl PartialEq for Key {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) == 0
    }
}

impl Eq for Key {}

impl Key {
    #[inline(always)]
    fn new(k: &FlowKey) -> Self {
        let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
        Key([
            word(&k.src_addr[..8]),
            word(&k.src_addr[8..]),
            word(&k.dst_addr[..8]),
            word(&k.dst_addr[8..]),
            (k.src_port as u64) | (k.dst_port as u64) << 16 | (k.protocol as u64) << 32,
        ])
    }
}

impl std::hash::Hash for Key {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for w in self.0 {
            state.write_u64(w);
        }
    }
}

/// Causal per-flow counters over a bounded number of flows.
pub struct FlowTable {
    flows: LruCache<Key, FlowState>,
    evicted: u64,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::with_capacity(DEFAULT_CAPACITY)
    }
}

impl FlowTable {
    /// A table holding at most `capacity` flows (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        FlowTable {
            flows: LruCache::new(capacity),
            evicted: 0,
        }
    }

    /// Counts `record` in its flow (its `frame_len` at its `timestamp_ns`)
    /// and stores the flow counters in it.
    #[inline]
    pub fn count(&mut self, record: &mut PacketRecord) -> FlowCounters {
        let key = Key::new(&record.flow_key());
        let counters = match self.flows.get_mut(&key) {
            Some(state) => state.record(record.frame_len, record.timestamp_ns),
            None => {
                let state = FlowState::first(record.frame_len, record.timestamp_ns);
                if self.flows.push(key, state).is_some() {
                    self.evicted += 1;
                }
                state.counters(0)
            }
        };
        record.set_flow(&counters);
        counters
    }

    /// Flows held now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.flows.cap().get()
    }

    /// Flows evicted so far to make room for new ones.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src_port: u16, len: u32, t: u64) -> PacketRecord {
        PacketRecord {
            src_port,
            dst_port: 80,
            protocol: 6,
            frame_len: len,
            timestamp_ns: t,
            ..PacketRecord::default()
        }
    }

    /// The table must give what a plain, unbounded map of `FlowState`s gives
    /// while nothing is evicted.
    #[test]
    fn matches_an_unbounded_map_of_flow_states() {
        let mut table = FlowTable::with_capacity(100);
        let mut reference = std::collections::HashMap::<FlowKey, FlowState>::new();
        for i in 0..1000u64 {
            let mut p = packet((i % 7) as u16, 60 + (i % 13) as u32, i * 1_000 + (i % 3));
            let expected = reference
                .entry(p.flow_key())
                .or_default()
                .record(p.frame_len, p.timestamp_ns);
            assert_eq!(table.count(&mut p), expected, "packet {i}");
            assert_eq!(
                (p.flow_packets, p.flow_bytes, p.flow_gap_ns),
                (expected.packets, expected.bytes, expected.gap_ns)
            );
        }
        assert_eq!((table.len(), table.evicted()), (7, 0));
    }

    /// Every field of the flow key takes part in the table's key.
    #[test]
    fn keys_differing_in_any_field_are_different_flows() {
        let base = PacketRecord {
            src_addr: [1; 16],
            dst_addr: [2; 16],
            src_port: 3,
            dst_port: 4,
            protocol: 5,
            ..PacketRecord::default()
        };
        let mut variants = vec![base];
        for i in 0..16 {
            let mut r = base;
            r.src_addr[i] ^= 0x80;
            variants.push(r);
            let mut r = base;
            r.dst_addr[i] ^= 0x01;
            variants.push(r);
        }
        for f in [
            |r: &mut PacketRecord| r.src_port = 4,
            |r: &mut PacketRecord| r.dst_port = 3,
            |r: &mut PacketRecord| r.protocol = 6,
        ] {
            let mut r = base;
            f(&mut r);
            variants.push(r);
        }
        let mut table = FlowTable::with_capacity(1000);
        for mut r in variants.clone() {
            assert_eq!(table.count(&mut r).packets, 1);
        }
        assert_eq!(table.len(), variants.len());
    }

    #[test]
    fn the_least_recently_seen_flow_is_evicted_and_restarts() {
        let mut table = FlowTable::with_capacity(2);
        let mut a = packet(1, 100, 10);
        let mut b = packet(2, 100, 20);
        let mut c = packet(3, 100, 30);
        table.count(&mut a);
        table.count(&mut b);
        // Seeing `a` again makes `b` the least recently seen flow.
        a.timestamp_ns = 40;
        assert_eq!(table.count(&mut a).packets, 2);
        table.count(&mut c);
        assert_eq!((table.len(), table.evicted()), (2, 1));
        // `a` survived with its history; `b` starts over.
        a.timestamp_ns = 50;
        assert_eq!(
            table.count(&mut a),
            FlowCounters {
                packets: 3,
                bytes: 300,
                gap_ns: 10
            }
        );
        b.timestamp_ns = 60;
        assert_eq!(
            table.count(&mut b),
            FlowCounters {
                packets: 1,
                bytes: 100,
                gap_ns: 0
            }
        );
        assert_eq!(table.evicted(), 2);
        assert_eq!(table.capacity(), 2);
    }
}
