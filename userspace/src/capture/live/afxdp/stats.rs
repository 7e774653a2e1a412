//! What an AF_XDP session counted, and how it is reported.
//!
//! Every frame the program sees is accounted for:
//! `seen = redirected + no_socket` (kernel program),
//! `redirected = received + rx_dropped + rx_ring_full` (sockets; frames
//! dropped because the fill ring was empty are part of `rx_dropped` and
//! also counted on their own in `rx_fill_ring_empty_descs`).

use std::fmt;

use ml_sniffing_common::maps::{Counters, XskCounters};

use super::queue::QueueEvents;

/// A socket's `XDP_STATISTICS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Frames the socket dropped: no chunk in the fill ring, or larger than
    /// a chunk.
    pub rx_dropped: u64,
    /// Invalid descriptors the kernel met in the rings.
    pub rx_invalid_descs: u64,
    /// Frames dropped because the receive ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (each time a frame was
    /// dropped, in copy mode).
    pub rx_fill_ring_empty_descs: u64,
}

impl SocketStats {
    pub fn add(&mut self, o: &SocketStats) {
        self.rx_dropped += o.rx_dropped;
        self.rx_invalid_descs += o.rx_invalid_descs;
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
    }

    /// Frames redirected to the socket that never reached userspace.
    pub fn lost(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full
    }
}

impl From<xdpilone::xdp::XdpStatisticsV2> for SocketStats {
    fn from(s: xdpilone::xdp::XdpStatisticsV2) -> Self {
        SocketStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
        }
    }
}

/// One queue's socket at the end of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueSummary {
    pub queue: u32,
    pub zero_copy: bool,
    pub socket: SocketStats,
    pub events: QueueEvents,
}

/// The AF_XDP part of a session's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfXdpSummary {
    pub queues: Vec<QueueSummary>,
    /// The kernel programs' counters.
    pub kernel: XskCounters,
    /// Frames were kept from the host stack (`--consume`).
    pub consume: bool,
    /// Frames written back through the TAP device.
    pub reinjected: u64,
    /// Frames the TAP device refused (counted, not retried).
    pub reinject_failed: u64,
    /// Flows evicted from the userspace flow table to make room.
    pub flows_evicted: u64,
}

impl AfXdpSummary {
    pub fn socket_totals(&self) -> SocketStats {
        let mut t = SocketStats::default();
        for q in &self.queues {
            t.add(&q.socket);
        }
        t
    }

    pub fn event_totals(&self) -> QueueEvents {
        let mut t = QueueEvents::default();
        for q in &self.queues {
            t.received += q.events.received;
            t.bad_descriptors += q.events.bad_descriptors;
            t.umem_exhausted += q.events.umem_exhausted;
            t.fill_empty += q.events.fill_empty;
        }
        t
    }

    /// Frames received by userspace.
    pub fn received(&self) -> u64 {
        self.event_totals().received
    }

    /// Frames redirected to a socket but dropped before userspace got them.
    pub fn lost(&self) -> u64 {
        self.socket_totals().lost()
    }

    /// Whether every frame the program redirected is either received or
    /// in a socket's drop counters.
    pub fn all_accounted(&self) -> bool {
        self.kernel.redirected == self.received() + self.lost()
    }
}

/// The AF_XDP session's counters as the capture commands print them:
/// the frames' outcomes (`counters`, the record path's labels) and the
/// AF_XDP path's own counters.
pub struct Report<'a> {
    pub counters: &'a Counters,
    pub af_xdp: &'a AfXdpSummary,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counters;
        let a = self.af_xdp;
        let sockets = a.socket_totals();
        let events = a.event_totals();
        let zero_copy = a.queues.iter().filter(|q| q.zero_copy).count();
        let mode = match zero_copy {
            0 => "copy mode".to_string(),
            n if n == a.queues.len() => "zero-copy".to_string(),
            n => format!("zero-copy on {n} of them"),
        };
        writeln!(
            f,
            "AF_XDP counters ({} queue{}, {mode}):",
            a.queues.len(),
            if a.queues.len() == 1 { "" } else { "s" }
        )?;
        writeln!(f, "  frames seen by the program:      {}", a.kernel.seen)?;
        writeln!(
            f,
            "  frames redirected to sockets:    {}",
            a.kernel.redirected
        )?;
        if a.kernel.no_socket != 0 {
            writeln!(
                f,
                "  frames on queues not captured:   {} (passed to the host stack)",
                a.kernel.no_socket
            )?;
        }
        writeln!(f, "  frames received:                 {}", events.received)?;
        let other = sockets
            .rx_dropped
            .saturating_sub(sockets.rx_fill_ring_empty_descs);
        writeln!(
            f,
            "  frames dropped by the sockets:   {} (fill ring empty {}, receive ring full {}, other {})",
            sockets.lost(),
            sockets.rx_fill_ring_empty_descs,
            sockets.rx_ring_full,
            other
        )?;
        if sockets.rx_invalid_descs != 0 || events.bad_descriptors != 0 {
            writeln!(
                f,
                "  invalid descriptors:             {} (kernel), {} (userspace)",
                sockets.rx_invalid_descs, events.bad_descriptors
            )?;
        }
        writeln!(
            f,
            "  fill ring found empty:           {}",
            events.fill_empty
        )?;
        writeln!(
            f,
            "  UMEM exhausted:                  {}",
            events.umem_exhausted
        )?;
        writeln!(
            f,
            "  completion ring:                 not used (nothing is transmitted)"
        )?;
        if a.consume {
            writeln!(
                f,
                "  host stack:                      frames consumed (--consume)"
            )?;
        } else {
            writeln!(f, "  frames re-injected:              {}", a.reinjected)?;
            writeln!(
                f,
                "  re-injections failed:            {} (TAP {}, kernel {})",
                a.reinject_failed + a.kernel.reinject_failed,
                a.reinject_failed,
                a.kernel.reinject_failed
            )?;
        }
        if a.kernel.no_timestamp != 0 {
            writeln!(
                f,
                "  frames stamped in userspace:     {} (no room for the kernel timestamp)",
                a.kernel.no_timestamp
            )?;
        }
        writeln!(f, "Frames parsed in userspace:")?;
        writeln!(
            f,
            "  frames parsed:                   {}",
            c.seen.saturating_sub(c.ring_full)
        )?;
        writeln!(f, "  records emitted:                 {}", c.emitted)?;
        writeln!(f, "  frames unparsed:                 {}", c.unparsed)?;
        writeln!(f, "  frames not IP:                   {}", c.not_ip)?;
        if c.filtered != 0 {
            writeln!(f, "  packets filtered out:            {}", c.filtered)?;
        }
        if c.sampled_out != 0 {
            writeln!(f, "  packets left out by sampling:    {}", c.sampled_out)?;
        }
        if a.flows_evicted != 0 {
            writeln!(f, "  flows evicted (table full):      {}", a.flows_evicted)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> AfXdpSummary {
        let q = |queue, dropped, full, empty, received| QueueSummary {
            queue,
            zero_copy: false,
            socket: SocketStats {
                rx_dropped: dropped,
                rx_invalid_descs: 0,
                rx_ring_full: full,
                rx_fill_ring_empty_descs: empty,
            },
            events: QueueEvents {
                received,
                ..QueueEvents::default()
            },
        };
        AfXdpSummary {
            queues: vec![q(0, 5, 1, 4, 100), q(1, 0, 2, 0, 50)],
            kernel: XskCounters {
                seen: 160,
                redirected: 158,
                no_socket: 2,
                ..XskCounters::default()
            },
            ..AfXdpSummary::default()
        }
    }

    #[test]
    fn losses_add_up_over_queues() {
        let s = summary();
        assert_eq!(s.received(), 150);
        assert_eq!(s.lost(), 5 + 1 + 2);
        assert!(s.all_accounted());
        let mut off = s.clone();
        off.kernel.redirected += 1;
        assert!(!off.all_accounted());
    }

    #[test]
    fn the_report_names_every_loss() {
        let s = summary();
        // As the session fills them: seen and ring_full include the 8
        // frames the sockets dropped.
        let counters = Counters {
            seen: 158,
            emitted: 149,
            not_ip: 1,
            ring_full: 8,
            ..Counters::default()
        };
        let text = Report {
            counters: &counters,
            af_xdp: &s,
        }
        .to_string();
        for line in [
            "AF_XDP counters (2 queues, copy mode):",
            "  frames redirected to sockets:    158",
            "  frames on queues not captured:   2 (passed to the host stack)",
            "  frames received:                 150",
            "  frames dropped by the sockets:   8 (fill ring empty 4, receive ring full 3, other 1)",
            "  frames re-injected:              0",
            "  frames parsed:                   150",
            "  records emitted:                 149",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
