use std::collections::HashMap;

use super::*;
use crate::count::{count_behaviour, count_flow, failed, StateMaps};
use crate::flow::{FlowKey, FlowState};
use crate::record::PacketRecord;

/// Plain maps, unbounded: the reference store for the update functions.
#[derive(Default)]
struct Maps {
    flows: HashMap<FlowKey, FlowState>,
    sources: HashMap<HostKey, HostState>,
    destinations: HashMap<HostKey, HostState>,
    pairs: HashMap<PairKey, PairState>,
}

impl StateMaps for Maps {
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

fn addr(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12] = 10;
    a[15] = last;
    a
}

fn packet(src: u8, dst: u8, dst_port: u16, len: u32, t: u64) -> PacketRecord {
    PacketRecord {
        src_addr: addr(src),
        dst_addr: addr(dst),
        src_port: 40000,
        dst_port,
        protocol: 17,
        ip_version: 4,
        frame_len: len,
        timestamp_ns: t,
        ..PacketRecord::default()
    }
}

fn count(maps: &mut Maps, r: &mut PacketRecord) {
    assert_eq!(count_flow(maps, r), 0);
    assert_eq!(count_behaviour(maps, r), 0);
}

#[test]
fn the_decay_table_is_two_to_the_minus_sixteenths() {
    for (i, &f) in DECAY.iter().enumerate() {
        let want = 65536.0 * 2f64.powf(-(i as f64) / 16.0);
        assert!((f as f64 - want).abs() <= 0.5, "{i}: {f} against {want}");
    }
    let v = 1000 * ONE;
    for t in 0..2000u64 {
        let want = 1000.0 * 2f64.powf(-(t as f64) / 16.0);
        let got = decay(v, t) as f64 / ONE as f64;
        assert!(
            (got - want).abs() <= want * 1e-4 + 2.0 / ONE as f64,
            "{t}: {got} against {want}"
        );
    }
    assert_eq!(decay(u64::MAX, 0), u64::MAX, "no overflow");
    assert_eq!(decay(u64::MAX, 48 << STEP_SHIFT), 0);
}

/// A steady rate `r` holds about `r * H / ln 2` at half-life `H`, however
/// short the gaps are against a tick (ticks are counted on absolute
/// boundaries, so they add up).
#[test]
fn a_steady_rate_settles_where_the_formula_says() {
    for gap_ns in [100_000u64, 1_000_000, 7_777_777] {
        let mut s = HostState::default();
        let p = |t| Seen {
            now_ns: t,
            length: 100,
            new_flow: t % 2 == 0,
        };
        let mut t = 1_000_000_000_000u64;
        // Five times the longest half-life.
        while t < 1_000_000_000_000 + (5u64 << 36) {
            s.record(&p(t), 0, 0);
            t += gap_ns;
        }
        let rate = 1e9 / gap_ns as f64;
        for (k, shift) in HALF_LIFE_SHIFT.iter().enumerate() {
            let h = (1u64 << shift) as f64 / 1e9;
            let want = rate * h / std::f64::consts::LN_2;
            let got = s.packets[k] as f64 / ONE as f64;
            // Ticks are 1/16 of a half-life: the value saws by up to 4.3 %.
            assert!(
                (got - want).abs() <= want * 0.05 + 1.0,
                "gap {gap_ns}, scale {k}: {got} against {want}"
            );
            let flows = s.new_flows[k] as f64 / ONE as f64;
            let even = if gap_ns % 2 == 0 { 1.0 } else { 0.5 };
            assert!((flows / got - even).abs() < 0.02, "{flows} {got}");
        }
    }
}

#[test]
fn older_packets_add_without_decay_and_keep_the_latest_time() {
    let mut s = HostState::default();
    let seen = |t| Seen {
        now_ns: t,
        length: 60,
        new_flow: true,
    };
    s.record(&seen(10_000_000_000), 1, 2);
    s.record(&seen(5_000_000_000), 3, 4);
    assert_eq!(s.packets, [2 * ONE; SCALES]);
    assert_eq!(s.new_flows, [2 * ONE; SCALES]);
    assert_eq!(
        (s.first_ns, s.last_ns, s.seen),
        (10_000_000_000, 10_000_000_000, 2)
    );
    let v = s.view(12_000_000_000);
    assert_eq!(v.packets, [32; SCALES]);
    assert_eq!(v.age, (2_000_000_000u64 >> AGE_SHIFT) as u32);
    assert_eq!((v.peers, v.ports), (2, 2));
}

#[test]
fn fan_out_counts_distinct_peers_and_ports_over_two_windows() {
    let mut s = HostState::default();
    let w = 1u64 << WINDOW_SHIFT;
    let start = 100 * w;
    let seen = |t| Seen {
        now_ns: t,
        length: 60,
        new_flow: true,
    };
    // One peer, 1,000 ports: the port bitmap fills, the peer one has 1 bit.
    for port in 0..1000u16 {
        s.record(
            &seen(start + port as u64),
            address_bit(&addr(1)),
            port_bit(port),
        );
    }
    let v = s.view(start + 1000);
    assert_eq!((v.peers, v.ports), (1, 64));
    // 20 distinct peers on one port in the next window: the old window
    // still counts.
    for i in 0..20u8 {
        s.record(
            &seen(start + w + i as u64),
            address_bit(&addr(i + 2)),
            port_bit(80),
        );
    }
    let v = s.view(start + w + 20);
    assert!((14..=21).contains(&v.peers), "{}", v.peers);
    assert_eq!(v.ports, 64);
    // Two windows later the first one is gone; three later, both.
    s.record(&seen(start + 2 * w), address_bit(&addr(1)), port_bit(80));
    let v = s.view(start + 2 * w);
    assert!(v.ports <= 2 && v.peers >= 14, "{v:?}");
    s.record(&seen(start + 5 * w), address_bit(&addr(1)), port_bit(80));
    let v = s.view(start + 5 * w);
    assert_eq!((v.peers, v.ports), (1, 1));
}

#[test]
fn bitmap_bits_spread_over_all_64() {
    let mut bits = 0u64;
    for i in 0..1024u16 {
        let mut a = addr(0);
        a[14..].copy_from_slice(&i.to_be_bytes());
        bits |= 1 << address_bit(&a);
    }
    assert_eq!(bits, u64::MAX, "1,024 addresses reach every bit");
    let mut bits = 0u64;
    for p in 0..1024u16 {
        bits |= 1 << port_bit(p);
    }
    assert_eq!(bits, u64::MAX);
    assert_ne!(address_bit(&addr(1)), address_bit(&addr(2)));
}

#[test]
fn pairs_share_one_state_seen_from_either_end() {
    let (a, b) = (addr(1), addr(2));
    let (k1, d1) = PairKey::of(&a, &b);
    let (k2, d2) = PairKey::of(&b, &a);
    assert_eq!(k1, k2);
    assert_ne!(d1, d2);
    // Order by bytes, not by the first differing word only.
    let mut x = [0u8; 16];
    let mut y = [0u8; 16];
    x[8] = 1;
    y[0] = 1;
    assert!(addr_less(&x, &y) && !addr_less(&y, &x) && !addr_less(&x, &x));

    let mut maps = Maps::default();
    let mut query = packet(1, 2, 53, 80, 1_000_000_000);
    count(&mut maps, &mut query);
    let mut answer = packet(2, 1, 40000, 800, 1_000_100_000);
    count(&mut maps, &mut answer);
    assert_eq!(answer.behaviour.pair.bytes_out, [800, 800]);
    assert_eq!(answer.behaviour.pair.bytes_back, [80, 80]);
    assert_eq!(query.behaviour.pair.bytes_out, [80, 80]);
    assert_eq!(query.behaviour.pair.bytes_back, [0, 0]);
}

/// The victim's view: a spoofed flood from ever new sources is a high rate
/// of new flows at the destination, while each source has seen one packet.
#[test]
fn a_flood_shows_at_the_destination() {
    let mut maps = Maps::default();
    let mut last = PacketRecord::default();
    for i in 0..10_000u64 {
        let mut r = packet((i % 250) as u8, 200, 80, 60, 5_000_000_000 + i * 10_000);
        r.src_addr[13] = (i / 250) as u8;
        r.protocol = 6;
        r.tcp_flags = 0x02;
        count(&mut maps, &mut r);
        last = r;
    }
    let dst = last.behaviour.dst;
    // 100,000 packets/s for 0.1 s: at 1.07 s half-life about 9,700.
    let at_short = dst.packets[0] as f64 / 16.0;
    assert!((8_500.0..10_000.0).contains(&at_short), "{at_short}");
    assert_eq!(dst.new_flows, dst.packets);
    assert_eq!(dst.peers, 64);
    assert_eq!(last.behaviour.src.packets, [16; SCALES]);
    assert_eq!(last.behaviour.src.age, 0);
    assert_eq!(last.flow_packets, 1);
}

#[test]
fn refused_insertions_leave_their_part_zero_and_say_so() {
    struct Full;
    impl StateMaps for Full {
        fn flow(&mut self, _: &FlowKey) -> Option<&mut FlowState> {
            None
        }
        fn source(&mut self, _: &HostKey) -> Option<&mut HostState> {
            None
        }
        fn destination(&mut self, _: &HostKey) -> Option<&mut HostState> {
            None
        }
        fn pair(&mut self, _: &PairKey) -> Option<&mut PairState> {
            None
        }
    }
    let mut r = packet(1, 2, 80, 100, 7);
    assert_eq!(count_flow(&mut Full, &mut r), failed::FLOW);
    assert_eq!((r.flow_packets, r.flow_bytes, r.flow_gap_ns), (1, 100, 0));
    assert_eq!(
        count_behaviour(&mut Full, &mut r),
        failed::SOURCE | failed::DESTINATION | failed::PAIR
    );
    assert_eq!(r.behaviour, Behaviour::default());
}
