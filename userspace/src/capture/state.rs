//! The userspace state tables: the flow, host and pair updates of
//! [`ml_sniffing_common::behaviour`] (the same the XDP program runs) on
//! bounded LRU maps.
//!
//! Memory is bounded like the kernel's `BPF_MAP_TYPE_LRU_HASH`: when a
//! table is full, a new key evicts the least recently seen one. A flow (or
//! host, or pair) that comes back after its eviction starts again from
//! nothing, exactly as it would in the kernel map, and the evictions are
//! counted so that a summary can say it happened.

use std::hash::Hash;
use std::num::NonZeroUsize;

use lru::LruCache;
use ml_sniffing_common::behaviour::{HostKey, HostState, PairKey, PairState};
use ml_sniffing_common::count::{self, StateMaps};
use ml_sniffing_common::flow::{FlowCounters, FlowKey, FlowState};
use ml_sniffing_common::maps;
use ml_sniffing_common::record::PacketRecord;

/// Flows kept before the least recently seen is evicted: 262,144 (2^18).
/// At about 130 bytes per flow (key, state, LRU links, hash slot) the table
/// stays under 40 MiB, whatever the capture holds.
pub const DEFAULT_CAPACITY: usize = maps::FLOWS_MAX as usize;

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

/// A bounded LRU map whose missing keys read as a zeroed state.
struct Lru<K: Hash + Eq + Copy, V> {
    map: LruCache<K, V>,
    evicted: u64,
}

impl<K: Hash + Eq + Copy, V: Default> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Lru {
            map: LruCache::new(capacity),
            evicted: 0,
        }
    }

    #[inline]
    fn get(&mut self, key: K) -> &mut V {
        if self.map.len() == self.map.cap().get() && !self.map.contains(&key) {
            self.evicted += 1;
        }
        self.map.get_or_insert_mut(key, V::default)
    }
}

/// A host address as two words (see [`Key`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct HostWords([u64; 2]);

/// A pair of addresses as four words.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PairWords([u64; 4]);

fn words<const N: usize>(bytes: &[u8]) -> [u64; N] {
    std::array::from_fn(|i| {
        u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
    })
}

/// Causal flow, host and pair state over a bounded number of keys.
pub struct StateTables {
    flows: Lru<Key, FlowState>,
    sources: Lru<HostWords, HostState>,
    destinations: Lru<HostWords, HostState>,
    pairs: Lru<PairWords, PairState>,
}

impl Default for StateTables {
    fn default() -> Self {
        StateTables::with_capacity(DEFAULT_CAPACITY)
    }
}

impl StateMaps for StateTables {
    #[inline]
    fn flow(&mut self, key: &FlowKey) -> Option<&mut FlowState> {
        Some(self.flows.get(Key::new(key)))
    }

    #[inline]
    fn source(&mut self, key: &HostKey) -> Option<&mut HostState> {
        Some(self.sources.get(HostWords(words(&key.addr))))
    }

    #[inline]
    fn destination(&mut self, key: &HostKey) -> Option<&mut HostState> {
        Some(self.destinations.get(HostWords(words(&key.addr))))
    }

    #[inline]
    fn pair(&mut self, key: &PairKey) -> Option<&mut PairState> {
        let mut both = [0u8; 32];
        both[..16].copy_from_slice(&key.a);
        both[16..].copy_from_slice(&key.b);
        Some(self.pairs.get(PairWords(words(&both))))
    }
}

impl StateTables {
    /// Tables holding at most `capacity` flows (at least 1), and the
    /// kernel's share of hosts and pairs for that many flows.
    pub fn with_capacity(capacity: usize) -> Self {
        let share = |max: u32| (capacity as u64 * max as u64 / maps::FLOWS_MAX as u64) as usize;
        StateTables {
            flows: Lru::new(capacity),
            sources: Lru::new(share(maps::HOSTS_MAX)),
            destinations: Lru::new(share(maps::HOSTS_MAX)),
            pairs: Lru::new(share(maps::PAIRS_MAX)),
        }
    }

    /// Counts `record` (its `frame_len` at its `timestamp_ns`) in its flow
    /// and stores the flow counters in it, then in its hosts and pair and
    /// stores their behaviour in it.
    #[inline]
    pub fn count(&mut self, record: &mut PacketRecord) -> FlowCounters {
        count::count_flow(self, record);
        self.count_behaviour(record);
        FlowCounters {
            packets: record.flow_packets,
            bytes: record.flow_bytes,
            gap_ns: record.flow_gap_ns,
        }
    }

    /// Counts `record` in its hosts and pair only: its flow counters are
    /// already set (a CSV that carries the capture's own).
    #[inline]
    pub fn count_behaviour(&mut self, record: &mut PacketRecord) {
        count::count_behaviour(self, record);
    }

    /// Flows held now.
    pub fn len(&self) -> usize {
        self.flows.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.flows.map.cap().get()
    }

    /// Flows evicted so far to make room for new ones.
    pub fn evicted(&self) -> u64 {
        self.flows.evicted
    }

    /// Hosts and pairs evicted so far.
    pub fn behaviour_evicted(&self) -> u64 {
        self.sources.evicted + self.destinations.evicted + self.pairs.evicted
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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

    /// Plain unbounded maps: the reference the LRU tables must match while
    /// nothing is evicted.
    #[derive(Default)]
    struct Reference {
        flows: HashMap<FlowKey, FlowState>,
        sources: HashMap<HostKey, HostState>,
        destinations: HashMap<HostKey, HostState>,
        pairs: HashMap<PairKey, PairState>,
    }

    impl StateMaps for Reference {
        fn flow(&mut self, key: &FlowKey) -> Option<&mut FlowState> {
            Some(self.flows.entry(*key).or_default())
        }
        fn source(&mut self, key: &HostKey) -> Option<&mut HostState> {
            Some(self.sources.entry(*key).or_default())
        }
        fn destination(&mut self, key: &HostKey) -> Option<&mut HostState> {
            Some(self.destinations.entry(*key).or_default())
        }
        fn pair(&mut self, key: &PairKey) -> Option<&mut PairState> {
            Some(self.pairs.entry(*key).or_default())
        }
    }

    #[test]
    fn matches_unbounded_maps_of_states() {
        let mut table = StateTables::with_capacity(1 << 12);
        let mut reference = Reference::default();
        for i in 0..3000u64 {
            let mut p = packet(
                (i % 7) as u16,
                60 + (i % 13) as u32,
                i * 1_000_000 + (i % 3),
            );
            p.src_addr[15] = (i % 5) as u8;
            p.dst_addr[15] = (i % 3) as u8;
            let mut want = p;
            count::count_flow(&mut reference, &mut want);
            count::count_behaviour(&mut reference, &mut want);
            table.count(&mut p);
            assert_eq!(p, want, "packet {i}");
            assert_ne!(
                p.behaviour.src.packets,
                [0; ml_sniffing_common::behaviour::SCALES]
            );
        }
        assert_eq!(
            (table.len(), table.evicted(), table.behaviour_evicted()),
            (7 * 5 * 3, 0, 0)
        );
    }

    /// The flow counters alone, against a plain map of `FlowState`s.
    #[test]
    fn matches_an_unbounded_map_of_flow_states() {
        let mut table = StateTables::with_capacity(100);
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
        let mut table = StateTables::with_capacity(1000);
        for mut r in variants.clone() {
            assert_eq!(table.count(&mut r).packets, 1);
        }
        assert_eq!(table.len(), variants.len());
    }

    #[test]
    fn the_least_recently_seen_flow_is_evicted_and_restarts() {
        let mut table = StateTables::with_capacity(2);
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
