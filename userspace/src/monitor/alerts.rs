//! Alerts: reported packets grouped into the unit a person acts on.
//!
//! A reported packet joins the open alert of its source (scans, a source's
//! bursts), else of its destination as a victim (many-to-one floods and
//! reflections); otherwise it opens one, keyed by the side its first
//! reason is about. An alert counts packets, bytes, distinct peers and
//! ports and keeps its peak score; it is announced when opened, updated at
//! most every [`AlertOptions::update_every`] while packets keep coming, and
//! closed after [`AlertOptions::idle`] without one. Its kind is named from
//! the behaviour that isolated it, and becomes a scan once it holds one or
//! two peers on 16 ports or more.
//!
//! Noise control: packets of `--allow` networks never alert; a key whose
//! alert closed stays quiet for [`AlertOptions::suppress`] (its packets are
//! counted as suppressed); at most [`AlertOptions::max_per_second`] alerts
//! open per second of traffic, and the rest are counted.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ml_sniffing_common::record::PacketRecord;

use super::community_id::community_id;

/// Distinct peers and ports remembered per alert (counts stop there).
const DISTINCT_MAX: usize = 65_536;

/// What the user set (`run --alert-*`, `--allow`).
#[derive(Debug, Clone)]
pub struct AlertOptions {
    pub idle: Duration,
    pub update_every: Duration,
    pub suppress: Duration,
    pub max_per_second: u32,
    pub allow: Vec<Allow>,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            idle: Duration::from_secs(30),
            update_every: Duration::from_secs(10),
            suppress: Duration::from_secs(60),
            max_per_second: 10,
            allow: Vec::new(),
        }
    }
}

/// `--allow CIDR[:PORT]`: traffic from or to this network (on this port,
/// either end) never alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    pub net: ipnet::IpNet,
    pub port: Option<u16>,
}

impl FromStr for Allow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not CIDR[:PORT] (e.g. 10.0.0.0/8, 192.0.2.7:53, [2001:db8::]/32:443)")
        };
        // [v6]/len:port, v4/len:port, or a bare address.
        let (net, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, tail) = rest.split_once(']').ok_or_else(bad)?;
            let (len, port) = match tail.strip_prefix('/') {
                Some(t) => match t.split_once(':') {
                    Some((l, p)) => (Some(l), Some(p)),
                    None => (Some(t), None),
                },
                None => (None, tail.strip_prefix(':')),
            };
            let text = match len {
                Some(l) => format!("{addr}/{l}"),
                None => addr.to_string(),
            };
            (text, port)
        } else if s.matches(':').count() > 1 {
            (s.to_string(), None)
        } else {
            match s.split_once(':') {
                Some((n, p)) => (n.to_string(), Some(p)),
                None => (s.to_string(), None),
            }
        };
        let net = match net.parse::<ipnet::IpNet>() {
            Ok(n) => n,
            Err(_) => IpAddr::from_str(&net).map_err(|_| bad())?.into(),
        };
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad()))
            .transpose()?;
        Ok(Allow { net, port })
    }
}

impl Allow {
    fn matches(&self, r: &PacketRecord) -> bool {
        let port_ok = |p: u16| self.port.is_none_or(|want| want == p);
        (self.net.contains(&r.source()) && port_ok(r.src_port))
            || (self.net.contains(&r.destination()) && port_ok(r.dst_port))
    }
}

/// The behaviour an alert stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scan,
    Flood,
    Amplification,
    HighRate,
    OneWay,
    Unusual,
}

impl Kind {
    /// From the feature of the first reason, the packet's bytes each way
    /// (`log2` of this way over back) and its length: a reflection sends the
    /// victim large packets it never asked for (8 times the bytes back, 300
    /// bytes or more); a SYN flood's small packets are one-way too.
    pub fn of(feature: &str, byte_ratio: Option<f32>, length: u32) -> Kind {
        if feature.starts_with("dst_") {
            if byte_ratio.is_some_and(|r| r >= 3.0) && length >= 300 {
                Kind::Amplification
            } else {
                Kind::Flood
            }
        } else if feature == "src_ports"
            || feature.starts_with("src_new_flows")
            || feature == "src_peers"
        {
            Kind::Scan
        } else if feature.starts_with("src_packets") {
            Kind::HighRate
        } else if feature.starts_with("pair_byte_ratio") {
            Kind::OneWay
        } else {
            Kind::Unusual
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Scan => "scan",
            Kind::Flood => "flood towards a victim",
            Kind::Amplification => "amplification towards a victim",
            Kind::HighRate => "high rate from a source",
            Kind::OneWay => "one-way transfer",
            Kind::Unusual => "unusual traffic",
        }
    }

    /// EVE `alert.signature_id`, `category` and `severity` (1 highest).
    pub fn signature(self) -> (u32, &'static str, u8) {
        match self {
            Kind::Scan => (9_100_001, "Detection of a Network Scan", 2),
            Kind::Flood => (9_100_002, "Attempted Denial of Service", 1),
            Kind::Amplification => (9_100_003, "Attempted Denial of Service", 1),
            Kind::HighRate => (9_100_004, "Potentially Bad Traffic", 2),
            Kind::OneWay => (9_100_005, "Potentially Bad Traffic", 3),
            Kind::Unusual => (9_100_006, "Misc activity", 3),
        }
    }

    /// Whether the alert is about its destination (a victim).
    fn on_victim(self) -> bool {
        matches!(self, Kind::Flood | Kind::Amplification)
    }
}

/// One feature that isolated the alert's first packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub feature: String,
    /// Beyond the training range (the strongest evidence).
    pub novel: bool,
    /// In words, with the value and the baseline in natural units.
    pub text: String,
    pub value: f64,
    pub median: f64,
    pub p99: f64,
}

/// Whose alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Source(IpAddr),
    Victim(IpAddr),
}

impl Key {
    pub fn host(self) -> IpAddr {
        match self {
            Key::Source(a) | Key::Victim(a) => a,
        }
    }
}

/// What opens an alert: the packet and why it was reported.
pub struct Opening<'a> {
    pub record: &'a PacketRecord,
    pub kind: Kind,
    pub reasons: Vec<Reason>,
    pub score: f64,
    pub threshold: f64,
    pub percentile: f64,
    pub model_version: u32,
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub id: u64,
    pub kind: Kind,
    pub key: Key,
    pub first_ns: u64,
    pub last_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    peers: HashSet<IpAddr>,
    ports: HashSet<u16>,
    /// The lowest score (`decision_function`) of its packets.
    pub peak_score: f64,
    pub threshold: f64,
    pub percentile: f64,
    pub reasons: Vec<Reason>,
    /// The first packet's flow.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub community_id: String,
    pub model_version: u32,
    /// Packets since the last event about it.
    pub pending: u64,
    last_event_ns: u64,
    /// When the monitor raised it (wall clock; `first_ns` is traffic time).
    pub raised: std::time::SystemTime,
}

impl Alert {
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    pub fn ports(&self) -> usize {
        self.ports.len()
    }

    /// A 53-bit flow id (JSON-safe) from the community id.
    pub fn flow_id(&self) -> u64 {
        self.community_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            })
            & ((1 << 53) - 1)
    }

    fn count(&mut self, r: &PacketRecord, score: f64) {
        self.packets += 1;
        self.pending += 1;
        self.bytes += r.frame_len as u64;
        self.last_ns = self.last_ns.max(r.timestamp_ns);
        self.peak_score = self.peak_score.min(score);
        // The peer is the packet's other end; the port is the victim's (a
        // source's peer's, a victim's own), whichever way the packet goes.
        let host = self.key.host();
        let outbound = r.source() == host;
        let peer = if outbound {
            r.destination()
        } else {
            r.source()
        };
        let port = match (self.key, outbound) {
            (Key::Source(_), true) | (Key::Victim(_), false) => r.dst_port,
            (Key::Source(_), false) | (Key::Victim(_), true) => r.src_port,
        };
        if self.peers.len() < DISTINCT_MAX {
            self.peers.insert(peer);
        }
        if self.ports.len() < DISTINCT_MAX {
            self.ports.insert(port);
        }
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Opened,
    Updated,
    Closed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Opened => "opened",
            State::Updated => "updated",
            State::Closed => "closed",
        }
    }
}

/// How many packets noise control kept out of alerts, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quieted {
    pub allowed: u64,
    /// Of keys whose alert closed less than `suppress` ago.
    pub suppressed: u64,
    /// Alerts not opened because the per-second cap was reached.
    pub capped_alerts: u64,
    pub capped_packets: u64,
}

/// The open alerts and the noise control.
pub struct Alerts {
    options: AlertOptions,
    open: HashMap<Key, Alert>,
    quiet_until: HashMap<Key, u64>,
    next_id: u64,
    /// Alerts opened in the current second of traffic.
    second: u64,
    opened_this_second: u32,
    pub opened: u64,
    pub quieted: Quieted,
    /// Alerts opened per kind, in [`Kind`] order.
    pub by_kind: HashMap<&'static str, u64>,
}

/// The outcome for one reported packet.
pub enum Joined {
    /// It joined alert `id`.
    Alert(u64),
    /// It joined alert `id` and made it a scan: its reasons say why
    /// (call [`Alerts::scan_reasons`]).
    BecameScan(u64),
    /// It needs a new alert: call [`Alerts::open`].
    New,
    /// Noise control kept it out.
    Quiet,
}

impl Alerts {
    pub fn new(options: AlertOptions) -> Self {
        Alerts {
            options,
            open: HashMap::new(),
            quiet_until: HashMap::new(),
            next_id: 1,
            second: 0,
            opened_this_second: 0,
            opened: 0,
            quieted: Quieted::default(),
            by_kind: HashMap::new(),
        }
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
    }

    /// A reported packet: joins an open alert when one is its victim's or
    /// its source's.
    pub fn join(&mut self, r: &PacketRecord, score: f64) -> Joined {
        if self.options.allow.iter().any(|a| a.matches(r)) {
            self.quieted.allowed += 1;
            return Joined::Quiet;
        }
        // A source's own alert first (a scan across victims), then the
        // destination's as a victim (a flood from many sources), then the
        // same incident's replies (a victim's answers, a scanner's
        // answers back).
        let keys = [
            Key::Source(r.source()),
            Key::Victim(r.destination()),
            Key::Victim(r.source()),
            Key::Source(r.destination()),
        ];
        for key in keys {
            if let Some(alert) = self.open.get_mut(&key) {
                alert.count(r, score);
                let id = alert.id;
                // One peer hit on many ports is a scan, from either end.
                if alert.kind != Kind::Scan && alert.ports() >= 16 && alert.peers() <= 2 {
                    let old = alert.kind.name();
                    alert.kind = Kind::Scan;
                    if let Some(n) = self.by_kind.get_mut(old) {
                        *n -= 1;
                        if *n == 0 {
                            self.by_kind.remove(old);
                        }
                    }
                    *self.by_kind.entry(Kind::Scan.name()).or_default() += 1;
                    self.rekey_scan(key);
                    return Joined::BecameScan(id);
                }
                return Joined::Alert(id);
            }
        }
        let now = r.timestamp_ns;
        let quiet = [Key::Victim(r.destination()), Key::Source(r.source())]
            .iter()
            .any(|k| self.quiet_until.get(k).is_some_and(|&t| now < t));
        if quiet {
            self.quieted.suppressed += 1;
            return Joined::Quiet;
        }
        let second = now / 1_000_000_000;
        if second != self.second {
            self.second = second;
            self.opened_this_second = 0;
        }
        if self.opened_this_second >= self.options.max_per_second {
            self.quieted.capped_packets += 1;
            return Joined::Quiet;
        }
        Joined::New
    }

    /// A scan opened on its victim is about the scanner: the alert moves to
    /// the first packet's source (unless that one has an alert of its own).
    fn rekey_scan(&mut self, key: Key) {
        let Key::Victim(victim) = key else { return };
        let alert = &self.open[&key];
        let scanner = if alert.dst == victim {
            alert.src
        } else {
            alert.dst
        };
        let to = Key::Source(scanner);
        if self.open.contains_key(&to) {
            return;
        }
        let mut alert = self.open.remove(&key).expect("present");
        alert.key = to;
        // Peers and ports seen from the scanner: the victim, on its ports.
        alert.peers = HashSet::from([victim]);
        self.open.insert(to, alert);
    }

    /// Opens an alert for a packet [`join`](Self::join) said was new (or,
    /// past the cap, counts it).
    pub fn open(&mut self, o: Opening) -> Option<&Alert> {
        let r = o.record;
        if self.opened_this_second >= self.options.max_per_second {
            self.quieted.capped_alerts += 1;
            return None;
        }
        self.opened_this_second += 1;
        let key = if o.kind.on_victim() {
            Key::Victim(r.destination())
        } else {
            Key::Source(r.source())
        };
        let mut alert = Alert {
            id: self.next_id,
            kind: o.kind,
            key,
            first_ns: r.timestamp_ns,
            last_ns: r.timestamp_ns,
            packets: 0,
            bytes: 0,
            peers: HashSet::new(),
            ports: HashSet::new(),
            peak_score: o.score,
            threshold: o.threshold,
            percentile: o.percentile,
            reasons: o.reasons,
            src: r.source(),
            dst: r.destination(),
            src_port: r.src_port,
            dst_port: r.dst_port,
            protocol: r.protocol,
            community_id: community_id(
                r.source(),
                r.destination(),
                r.protocol,
                r.src_port,
                r.dst_port,
            ),
            model_version: o.model_version,
            pending: 0,
            last_event_ns: r.timestamp_ns,
            raised: std::time::SystemTime::now(),
        };
        alert.count(r, o.score);
        alert.pending = 0;
        self.next_id += 1;
        self.opened += 1;
        *self.by_kind.entry(o.kind.name()).or_default() += 1;
        self.open.insert(key, alert);
        self.open.get(&key)
    }

    /// At `now_ns` (traffic time): alerts idle for longer than `idle` are
    /// closed and returned; `each_update` sees the open alerts whose update
    /// is due.
    pub fn tick(&mut self, now_ns: u64, mut each_update: impl FnMut(&Alert)) -> Vec<Alert> {
        let idle = self.options.idle.as_nanos() as u64;
        let every = self.options.update_every.as_nanos() as u64;
        let mut closed = Vec::new();
        // In id order, so that a replay writes the same events every time.
        let mut keys: Vec<(u64, Key)> = self.open.iter().map(|(k, a)| (a.id, *k)).collect();
        keys.sort_unstable_by_key(|&(id, _)| id);
        for (_, key) in keys {
            let alert = self.open.get_mut(&key).expect("listed");
            if now_ns.saturating_sub(alert.last_ns) > idle {
                let alert = self.open.remove(&key).expect("listed");
                self.quiet_until
                    .insert(key, alert.last_ns + self.options.suppress.as_nanos() as u64);
                closed.push(alert);
            } else if alert.pending > 0 && now_ns.saturating_sub(alert.last_event_ns) >= every {
                each_update(alert);
                alert.pending = 0;
                alert.last_event_ns = now_ns;
            }
        }
        self.quiet_until.retain(|_, &mut t| t > now_ns);
        closed.sort_by_key(|a| a.id);
        closed
    }

    /// A later packet of alert `id` lay beyond the training range while the
    /// alert's reasons did not: it says better what the alert is.
    pub fn revise(&mut self, id: u64, kind: Kind, reasons: Vec<Reason>) {
        if let Some((&key, a)) = self.open.iter_mut().find(|(_, a)| a.id == id) {
            if !a.reasons.first().is_some_and(|r| r.novel) {
                let old = a.kind.name();
                if let Some(n) = self.by_kind.get_mut(old) {
                    *n -= 1;
                    if *n == 0 {
                        self.by_kind.remove(old);
                    }
                }
                *self.by_kind.entry(kind.name()).or_default() += 1;
                a.kind = kind;
                a.reasons = reasons;
                if kind == Kind::Scan {
                    self.rekey_scan(key);
                }
            }
        }
    }

    /// The reasons of the packet that made alert `id` a scan.
    pub fn scan_reasons(&mut self, id: u64, reasons: Vec<Reason>) {
        if let Some(a) = self.open.values_mut().find(|a| a.id == id) {
            a.reasons = reasons;
        }
    }

    /// Whether alert `id`'s first reason already lies beyond the training
    /// range.
    pub fn is_novel(&self, id: u64) -> bool {
        self.open
            .values()
            .find(|a| a.id == id)
            .is_some_and(|a| a.reasons.first().is_some_and(|r| r.novel))
    }

    /// Closes every open alert (the end of the capture).
    pub fn close_all(&mut self) -> Vec<Alert> {
        let mut all: Vec<Alert> = self.open.drain().map(|(_, a)| a).collect();
        all.sort_by_key(|a| a.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_sniffing_common::record::addr_bytes;

    fn packet(src: &str, dst: &str, dport: u16, t_ms: u64) -> PacketRecord {
        PacketRecord {
            timestamp_ns: 1_700_000_000_000_000_000 + t_ms * 1_000_000,
            src_addr: addr_bytes(src.parse().unwrap()),
            dst_addr: addr_bytes(dst.parse().unwrap()),
            src_port: 40000,
            dst_port: dport,
            protocol: 6,
            ip_version: 4,
            frame_len: 60,
            ..PacketRecord::default()
        }
    }

    fn report(a: &mut Alerts, r: &PacketRecord, kind: Kind) -> Option<u64> {
        match a.join(r, -0.2) {
            Joined::Alert(id) | Joined::BecameScan(id) => Some(id),
            Joined::Quiet => None,
            Joined::New => a
                .open(Opening {
                    record: r,
                    kind,
                    reasons: Vec::new(),
                    score: -0.2,
                    threshold: -0.1,
                    percentile: 99.9,
                    model_version: 1,
                })
                .map(|al| al.id),
        }
    }

    #[test]
    fn floods_group_by_victim_scans_by_source() {
        let mut a = Alerts::new(AlertOptions::default());
        // A spoofed flood: every packet from a new source.
        for i in 0..100u64 {
            let src = format!("198.51.100.{}", i % 250);
            let r = packet(&src, "10.0.0.1", 80, i);
            assert_eq!(report(&mut a, &r, Kind::Flood), Some(1));
        }
        // A scan from one source over many ports.
        for port in 1..50u16 {
            let r = packet("203.0.113.9", "10.0.0.2", port, 200 + port as u64);
            assert_eq!(report(&mut a, &r, Kind::Scan), Some(2));
        }
        let open: Vec<&Alert> = {
            let mut v: Vec<&Alert> = a.open_alerts().collect();
            v.sort_by_key(|x| x.id);
            v
        };
        assert_eq!(
            (open[0].packets, open[0].peers(), open[0].ports()),
            (100, 100, 1)
        );
        assert_eq!(
            (open[1].packets, open[1].peers(), open[1].ports()),
            (49, 1, 49)
        );
        assert_eq!(open[1].key, Key::Source("203.0.113.9".parse().unwrap()));
        assert_eq!(open[1].kind, Kind::Scan);
        // Updates only for alerts with new packets, at most every 10 s.
        let mut updated = Vec::new();
        let t = |ms: u64| 1_700_000_000_000_000_000 + ms * 1_000_000;
        assert!(a.tick(t(5_000), |x| updated.push(x.id)).is_empty());
        assert!(updated.is_empty());
        assert!(a.tick(t(10_300), |x| updated.push(x.id)).is_empty());
        assert_eq!(updated, [1, 2]);
        // Idle for 30 s: closed; the key then stays quiet for 60 s.
        let closed = a.tick(t(40_400), |_| {});
        assert_eq!(closed.iter().map(|x| x.id).collect::<Vec<_>>(), [1, 2]);
        let r = packet("203.0.113.9", "10.0.0.2", 7, 41_000);
        assert_eq!(report(&mut a, &r, Kind::Scan), None);
        assert_eq!(a.quieted.suppressed, 1);
        let r = packet("203.0.113.9", "10.0.0.2", 7, 200_000);
        a.tick(r.timestamp_ns, |_| {});
        assert_eq!(report(&mut a, &r, Kind::Scan), Some(3));
        assert_eq!(a.close_all().len(), 1);
    }

    #[test]
    fn one_peer_on_many_ports_is_a_scan() {
        let mut a = Alerts::new(AlertOptions::default());
        for port in 1..=20u16 {
            let r = packet("203.0.113.9", "10.0.0.2", port, port as u64);
            // Opened as a flood on the victim by its first packet.
            assert_eq!(report(&mut a, &r, Kind::Flood), Some(1));
        }
        let alert = a.open_alerts().next().unwrap();
        assert_eq!((alert.kind, alert.ports()), (Kind::Scan, 20));
        assert_eq!(a.by_kind.get("scan"), Some(&1));
        assert_eq!(a.by_kind.get("flood towards a victim"), None);
    }

    #[test]
    fn a_scan_opened_on_its_victim_moves_to_the_scanner_with_the_replies() {
        let mut a = Alerts::new(AlertOptions::default());
        // The first probe looks like new flows towards a victim.
        let first = packet("203.0.113.9", "10.0.0.2", 1, 0);
        assert_eq!(report(&mut a, &first, Kind::Flood), Some(1));
        let mut became = 0;
        for port in 2..40u16 {
            let probe = packet("203.0.113.9", "10.0.0.2", port, port as u64);
            if let Joined::BecameScan(1) = a.join(&probe, -0.2) {
                became = port;
            }
            // The victim's RST from the probed port joins the same alert.
            let mut reply = packet("10.0.0.2", "203.0.113.9", 40000, port as u64);
            reply.src_port = port;
            assert!(matches!(a.join(&reply, -0.2), Joined::Alert(1)));
        }
        assert!((16..20).contains(&became), "{became}");
        let open: Vec<&Alert> = a.open_alerts().collect();
        assert_eq!(open.len(), 1);
        let scan = open[0];
        assert_eq!(scan.kind, Kind::Scan);
        assert_eq!(scan.key, Key::Source("203.0.113.9".parse().unwrap()));
        assert_eq!((scan.peers(), scan.ports(), scan.packets), (1, 39, 77));
        assert_eq!(a.by_kind.get("scan"), Some(&1));
        assert_eq!(a.by_kind.get("flood towards a victim"), None);
    }

    /// A later packet beyond the training range names a victim's alert a
    /// scan before it reaches 16 ports: it moves to the scanner all the same.
    #[test]
    fn a_victim_alert_revised_to_a_scan_moves_to_the_scanner() {
        let mut a = Alerts::new(AlertOptions::default());
        let first = packet("203.0.113.9", "10.0.0.2", 1, 0);
        assert_eq!(report(&mut a, &first, Kind::Flood), Some(1));
        let probe = packet("203.0.113.9", "10.0.0.2", 2, 1);
        assert!(matches!(a.join(&probe, -0.2), Joined::Alert(1)));
        let novel = Reason {
            feature: "src_ports".into(),
            novel: true,
            text: String::new(),
            value: 40.0,
            median: 1.0,
            p99: 3.0,
        };
        a.revise(1, Kind::Scan, vec![novel]);
        let scan = a.open_alerts().next().unwrap();
        assert_eq!(scan.kind, Kind::Scan);
        assert_eq!(scan.key, Key::Source("203.0.113.9".parse().unwrap()));
        assert_eq!((scan.peers(), scan.ports(), scan.packets), (1, 2, 2));
        assert_eq!(a.by_kind.get("scan"), Some(&1));
        // Its next probe joins it under the scanner.
        let probe = packet("203.0.113.9", "10.0.0.2", 3, 2);
        assert!(matches!(a.join(&probe, -0.2), Joined::Alert(1)));
    }

    #[test]
    fn allowed_networks_and_the_cap() {
        let mut a = Alerts::new(AlertOptions {
            max_per_second: 2,
            allow: vec![
                "10.9.0.0/16".parse().unwrap(),
                "192.0.2.1:53".parse().unwrap(),
            ],
            ..AlertOptions::default()
        });
        assert_eq!(
            report(&mut a, &packet("10.9.1.1", "10.0.0.1", 80, 0), Kind::Scan),
            None
        );
        assert_eq!(
            report(&mut a, &packet("10.0.0.5", "192.0.2.1", 53, 0), Kind::Scan),
            None
        );
        assert_eq!(a.quieted.allowed, 2);
        // Port 80 of that host is not allowed.
        assert!(report(&mut a, &packet("10.0.0.5", "192.0.2.1", 80, 1), Kind::Scan).is_some());
        assert!(report(&mut a, &packet("10.0.0.6", "192.0.2.2", 80, 2), Kind::Scan).is_some());
        assert_eq!(
            report(&mut a, &packet("10.0.0.7", "192.0.2.3", 80, 3), Kind::Scan),
            None
        );
        assert_eq!(a.quieted.capped_packets, 1);
        // The next second opens again.
        assert!(report(
            &mut a,
            &packet("10.0.0.7", "192.0.2.3", 80, 1_000),
            Kind::Scan
        )
        .is_some());
    }

    #[test]
    fn allow_lists_read_like_tcpdump_users_write_them() {
        let a: Allow = "2001:db8::/32".parse().unwrap();
        assert_eq!(a.port, None);
        let a: Allow = "[2001:db8::]/32:443".parse().unwrap();
        assert_eq!(
            (a.net.to_string().as_str(), a.port),
            ("2001:db8::/32", Some(443))
        );
        let a: Allow = "192.0.2.7:53".parse().unwrap();
        assert_eq!(
            (a.net.to_string().as_str(), a.port),
            ("192.0.2.7/32", Some(53))
        );
        assert!("10.0.0.0/33".parse::<Allow>().is_err());
        assert!("10.0.0.0/8:http".parse::<Allow>().is_err());
        assert!("example.org".parse::<Allow>().is_err());
    }

    #[test]
    fn kinds_from_the_first_reason() {
        assert_eq!(Kind::of("dst_new_flows_1s", Some(0.0), 1000), Kind::Flood);
        assert_eq!(Kind::of("dst_new_flows_1s", Some(6.0), 60), Kind::Flood);
        assert_eq!(
            Kind::of("dst_packets_10s", Some(5.0), 1500),
            Kind::Amplification
        );
        assert_eq!(Kind::of("src_ports", None, 60), Kind::Scan);
        assert_eq!(Kind::of("src_packets_1s", None, 60), Kind::HighRate);
        assert_eq!(Kind::of("pair_byte_ratio_1s", None, 60), Kind::OneWay);
        assert_eq!(Kind::of("length", None, 60), Kind::Unusual);
    }
}
