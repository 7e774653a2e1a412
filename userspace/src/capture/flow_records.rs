//! Bidirectional flows with NFStream's statistics (its statistical mode),
//! for `flows`: one record per flow, ended by an idle or active timeout, a
//! TCP FIN or RST, or the end of the input.
//!
//! A flow is its 5-tuple and VLAN either way round; its first packet's
//! source is `src`. Bytes are frame lengths on the wire (NFStream's
//! default link-layer accounting). Ports are 0 for protocols without them
//! (ICMP's type and code, which the packet records keep, would split a
//! request from its reply). Standard deviations are of the sample
//! (n - 1), as NFStream computes them.
//!
//! Time is counted as NFStream counts it, in whole milliseconds of the
//! packets' timestamps: gaps are differences of those, and a flow has
//! timed out once `now - last >= idle` (or `now - first >= active`). So
//! a model trained on NFStream's tables sees the same values here.
//!
//! Later IP fragments (no transport header, so no ports) join no flow, as
//! in NFStream; the table counts them (`later_fragments`) for the summary.

use std::collections::hash_map::Entry;
use std::net::IpAddr;

use ml_sniffing_common::flow_stats::{BiFlowKey, FlowStats, Side, FLAGS};
use ml_sniffing_common::record::PacketRecord;

/// Why a flow ended (`expiration_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    Idle = 0,
    Active = 1,
    /// A TCP FIN or RST (ours: NFStream waits for a timeout).
    Closed = 2,
    /// The input ended.
    End = -1,
}

/// A finished flow (or one going on, for an early verdict).
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: u64,
    pub expiration: Expiration,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub stats: FlowStats,
}

impl Flow {
    pub fn new(id: u64, stats: FlowStats) -> Self {
        Flow {
            id,
            expiration: Expiration::End,
            src: address(stats.src_addr, stats.ip_version),
            dst: address(stats.dst_addr, stats.ip_version),
            stats,
        }
    }
}

fn address(bytes: [u8; 16], version: u8) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(bytes);
    match (version, v6.to_ipv4_mapped()) {
        (4, Some(v4)) => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    }
}

/// Why `f` has ended by `now` (ms) under the (idle, active) timeouts, if
/// it has.
fn timed_out((idle, active): (u64, u64), f: &FlowStats, now: u64) -> Option<Expiration> {
    if now.saturating_sub(f.both.last_ms) >= idle {
        Some(Expiration::Idle)
    } else if now.saturating_sub(f.both.first_ms) >= active {
        Some(Expiration::Active)
    } else {
        None
    }
}

/// The flow table.
pub struct FlowTable {
    idle_ms: u64,
    active_ms: u64,
    /// Whether a TCP FIN or RST ends a flow.
    tcp_end: bool,
    flows: rustc_hash::FxHashMap<BiFlowKey, (u64, FlowStats)>,
    next_id: u64,
    /// Traffic time of the last sweep for idle flows.
    swept_ms: u64,
    /// The latest packet's time.
    latest_ms: u64,
    later_fragments: u64,
}

impl FlowTable {
    pub fn new(idle: std::time::Duration, active: std::time::Duration) -> Self {
        FlowTable {
            idle_ms: idle.as_millis() as u64,
            active_ms: active.as_millis() as u64,
            tcp_end: true,
            flows: Default::default(),
            next_id: 0,
            swept_ms: 0,
            latest_ms: 0,
            later_fragments: 0,
        }
    }

    /// Flows end on timeouts only, as NFStream's do (not on FIN or RST).
    pub fn without_tcp_end(mut self) -> Self {
        self.tcp_end = false;
        self
    }

    fn timed_out(&self, f: &FlowStats, now: u64) -> Option<Expiration> {
        timed_out((self.idle_ms, self.active_ms), f, now)
    }

    pub fn open(&self) -> usize {
        self.flows.len()
    }

    /// An id no flow of this table has had (for flows built elsewhere).
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// The flows going on (key, id and statistics), in no order.
    pub fn open_flows(&self) -> impl Iterator<Item = (&BiFlowKey, &(u64, FlowStats))> {
        self.flows.iter()
    }

    /// Later IP fragments seen, which joined no flow.
    pub fn later_fragments(&self) -> u64 {
        self.later_fragments
    }

    /// Counts a packet (epoch timestamp, frame length); flows it ends, or
    /// that timed out by its time, go to `done`. Returns the flow it joined
    /// while that one goes on (its id and statistics).
    pub fn add(&mut self, r: &PacketRecord, done: &mut Vec<Flow>) -> Option<(u64, &FlowStats)> {
        if r.is_later_fragment() {
            self.later_fragments += 1;
            return None;
        }
        // Time never goes back (as in NFStream): a packet stamped before
        // the latest one counts at the latest one's time.
        let now = (r.timestamp_ns / 1_000_000).max(self.latest_ms);
        self.latest_ms = now;
        // Idle flows are looked for a tenth of the idle timeout apart (at
        // least a second): when a flow is found idle changes the order of
        // the rows, not their values.
        let every = (self.idle_ms / 10).max(1000);
        if now.saturating_sub(self.swept_ms) >= every {
            self.sweep(now, done);
            self.swept_ms = now;
        }
        let key = BiFlowKey::of(r);
        let (timeouts, next) = ((self.idle_ms, self.active_ms), &mut self.next_id);
        let mut fresh = || {
            *next += 1;
            (*next - 1, FlowStats::default())
        };
        // One lookup: a flow that timed out gives way to a new one in place.
        let slot = match self.flows.entry(key) {
            Entry::Occupied(o) => {
                let slot = o.into_mut();
                if let Some(why) = timed_out(timeouts, &slot.1, now) {
                    let (id, f) = std::mem::replace(slot, fresh());
                    done.push(Flow {
                        expiration: why,
                        ..Flow::new(id, f)
                    });
                }
                slot
            }
            Entry::Vacant(v) => v.insert(fresh()),
        };
        let closing = slot.1.add(r, r.frame_len, now);
        if self.tcp_end && closing {
            let (id, f) = self.flows.remove(&key).expect("present");
            done.push(Flow {
                expiration: Expiration::Closed,
                ..Flow::new(id, f)
            });
            return None;
        }
        self.flows.get(&key).map(|(id, f)| (*id, f))
    }

    /// Flows idle or active for longer than the timeouts at `now`.
    fn sweep(&mut self, now: u64, done: &mut Vec<Flow>) {
        let ended: Vec<(BiFlowKey, Expiration)> = self
            .flows
            .iter()
            .filter_map(|(k, (_, f))| self.timed_out(f, now).map(|why| (*k, why)))
            .collect();
        let mut ended: Vec<Flow> = ended
            .into_iter()
            .map(|(k, why)| {
                let (id, f) = self.flows.remove(&k).expect("present");
                Flow {
                    expiration: why,
                    ..Flow::new(id, f)
                }
            })
            .collect();
        ended.sort_by_key(|f| f.id);
        done.extend(ended);
    }

    /// The flows still open at the end of the input, in the order they
    /// began (after those that had timed out by then).
    pub fn finish(&mut self, done: &mut Vec<Flow>) {
        // Those already idle (or too old) by the last packet's time ended so.
        self.sweep(self.latest_ms, done);
        let mut rest: Vec<Flow> = self
            .flows
            .drain()
            .map(|(_, (id, f))| Flow::new(id, f))
            .collect();
        rest.sort_by_key(|f| f.id);
        done.extend(rest);
    }
}

/// The CSV header: NFStream's statistical columns (without MAC, OUI and
/// application fields, which need a dissector).
pub fn header() -> String {
    let mut cols: Vec<String> = [
        "id",
        "expiration_id",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "protocol",
        "ip_version",
        "vlan_id",
    ]
    .map(String::from)
    .to_vec();
    for side in ["bidirectional", "src2dst", "dst2src"] {
        for c in [
            "first_seen_ms",
            "last_seen_ms",
            "duration_ms",
            "packets",
            "bytes",
        ] {
            cols.push(format!("{side}_{c}"));
        }
    }
    for what in ["ps", "piat_ms"] {
        for side in ["bidirectional", "src2dst", "dst2src"] {
            for s in ["min", "mean", "stddev", "max"] {
                cols.push(match what {
                    "ps" => format!("{side}_{s}_ps"),
                    _ => format!("{side}_{s}_piat_ms"),
                });
            }
        }
    }
    for side in ["bidirectional", "src2dst", "dst2src"] {
        for (flag, _) in FLAGS {
            cols.push(format!("{side}_{flag}_packets"));
        }
    }
    cols.join(",")
}

/// Writes `f` as one CSV line (without the newline) to `out`.
pub fn row(f: &Flow, out: &mut String) {
    use std::fmt::Write;
    let st = &f.stats;
    let _ = write!(
        out,
        "{},{},{},{},{},{},{},{},{}",
        f.id,
        f.expiration as i8,
        f.src,
        st.src_port,
        f.dst,
        st.dst_port,
        st.protocol,
        st.ip_version,
        st.vlan_id
    );
    let sides = [&st.both, &st.src2dst, &st.dst2src];
    for s in sides {
        let _ = write!(
            out,
            ",{},{},{},{},{}",
            s.first_ms,
            s.last_ms,
            if s.packets > 0 { s.duration_ms() } else { 0 },
            s.packets,
            s.bytes
        );
    }
    for stat in [Side::sizes, Side::gaps_ms] {
        for s in sides {
            let [min, mean, sd, max] = stat(s);
            let _ = write!(out, ",{min},{mean},{sd},{max}");
        }
    }
    for s in sides {
        for n in s.flags {
            let _ = write!(out, ",{n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(
        src: &str,
        sp: u16,
        dst: &str,
        dp: u16,
        ms: u64,
        len: u32,
        flags: u8,
    ) -> PacketRecord {
        let v6 = |s: &str| match s.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        PacketRecord {
            timestamp_ns: ms * 1_000_000,
            src_addr: v6(src),
            dst_addr: v6(dst),
            src_port: sp,
            dst_port: dp,
            protocol: 6,
            ip_version: 4,
            frame_len: len,
            tcp_flags: flags,
            ..Default::default()
        }
    }

    #[test]
    fn a_tcp_exchange_is_one_flow_with_both_directions() {
        let mut t = FlowTable::new(Duration::from_secs(120), Duration::from_secs(1800));
        let mut done = Vec::new();
        let (c, s) = ("10.0.0.1", "10.0.0.2");
        t.add(&packet(c, 4000, s, 80, 1000, 60, 0x02), &mut done);
        t.add(&packet(s, 80, c, 4000, 1010, 60, 0x12), &mut done);
        t.add(&packet(c, 4000, s, 80, 1030, 100, 0x10), &mut done);
        assert!(done.is_empty());
        t.add(&packet(s, 80, c, 4000, 1070, 40, 0x11), &mut done);
        assert_eq!(done.len(), 1, "the FIN ends it");
        let f = &done[0];
        assert_eq!(f.expiration, Expiration::Closed);
        assert_eq!((f.src.to_string(), f.stats.src_port), (c.to_string(), 4000));
        assert_eq!((f.stats.both.packets, f.stats.both.bytes), (4, 260));
        assert_eq!((f.stats.src2dst.packets, f.stats.dst2src.packets), (2, 2));
        assert_eq!(f.stats.both.duration_ms(), 70);
        let gaps = f.stats.both.gaps_ms();
        assert_eq!((gaps[0], gaps[3]), (10.0, 40.0));
        assert!((gaps[1] - 70.0 / 3.0).abs() < 1e-9);
        // Sizes 60, 60, 100, 40: mean 65, sample variance 1900/3.
        assert!((f.stats.both.sizes()[2] - (1900.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(f.stats.src2dst.gaps_ms()[1], 30.0);
        assert_eq!(f.stats.both.flags[0], 2, "SYN and SYN-ACK");
        assert_eq!(f.stats.both.flags[4], 3, "ACKs");
        assert_eq!(f.stats.dst2src.flags[7], 1, "the server's FIN");
    }

    #[test]
    fn timeouts_end_flows_and_the_end_ends_the_rest() {
        let mut t = FlowTable::new(Duration::from_secs(2), Duration::from_secs(5));
        let mut done = Vec::new();
        let (a, b) = ("10.0.0.1", "10.0.0.2");
        for ms in (0..=6000).step_by(1000) {
            t.add(&packet(a, 1, b, 2, ms, 50, 0x10), &mut done);
        }
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].expiration, Expiration::Active);
        assert_eq!(
            done[0].stats.both.packets, 5,
            "0..5 s, then 5 s (as long as the active timeout) starts a new flow"
        );
        t.add(&packet(a, 1, b, 2, 9000, 50, 0x10), &mut done);
        assert_eq!(done[1].expiration, Expiration::Idle);
        t.finish(&mut done);
        assert_eq!(done[2].expiration, Expiration::End);
        assert_eq!(t.open(), 0);
        let mut line = String::new();
        row(&done[0], &mut line);
        assert_eq!(line.split(',').count(), header().split(',').count());
    }

    #[test]
    fn time_does_not_go_back_and_later_fragments_join_no_flow() {
        let mut t = FlowTable::new(Duration::from_secs(120), Duration::from_secs(1800));
        let mut done = Vec::new();
        let (a, b) = ("10.0.0.1", "10.0.0.2");
        t.add(&packet(a, 1, b, 2, 5000, 50, 0x10), &mut done);
        // Stamped 3 s earlier: counted at 5 s, a gap of 0 ms.
        t.add(&packet(b, 2, a, 1, 2000, 60, 0x10), &mut done);
        let mut later = packet(a, 0, b, 0, 5100, 70, 0);
        later.flags |= ml_sniffing_common::record::FLAG_LATER_FRAGMENT;
        t.add(&later, &mut done);
        t.finish(&mut done);
        assert_eq!(done.len(), 1);
        let f = &done[0];
        assert_eq!((f.stats.both.packets, f.stats.both.bytes), (2, 110));
        assert_eq!((f.stats.both.first_ms, f.stats.both.last_ms), (5000, 5000));
        assert_eq!(
            (f.stats.dst2src.first_ms, f.stats.both.gaps_ms()[3]),
            (5000, 0.0)
        );
        assert_eq!(t.later_fragments(), 1);
    }
}
