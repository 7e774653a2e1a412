//! Causal per-flow counters: the one implementation of the flow-state update,
//! run by the XDP program on its LRU map and by userspace for captures and
//! CSV files, so that both give the same counters for the same packets.

/// A flow: both addresses (IPv4 as IPv4-mapped IPv6, `::ffff:a.b.c.d`), the
/// ports (0 when the protocol has none or the packet is a later fragment)
/// and the IP protocol number.
///
/// Layout: 16 + 16 + 2 + 2 + 1 + 3 explicit padding bytes = 40, no implicit
/// padding, so the key hashes the same in the kernel and in userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);

/// What is known of a flow so far.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    pub packets: u64,
    pub bytes: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}
const _: () = assert!(core::mem::size_of::<FlowState>() == 32);

/// The counters a packet carries once it has been counted in its flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Packets of the flow so far, this one included.
    pub packets: u64,
    /// Bytes (frame lengths) of the flow so far, this one included.
    pub bytes: u64,
    /// Time since the flow's previous packet; 0 for its first packet, and 0
    /// when packets arrive out of time order.
    pub gap_ns: u64,
}

impl FlowState {
    /// The state of a flow whose first packet is `length` bytes at `now_ns`.
    #[inline(always)]
    pub const fn first(length: u32, now_ns: u64) -> Self {
        FlowState {
            packets: 1,
            bytes: length as u64,
            first_seen_ns: now_ns,
            last_seen_ns: now_ns,
        }
    }

    /// Counts one packet of `length` bytes seen at `now_ns`.
    #[inline(always)]
    pub fn record(&mut self, length: u32, now_ns: u64) -> FlowCounters {
        if self.packets == 0 {
            *self = FlowState::first(length, now_ns);
            return self.counters(0);
        }
        let gap_ns = now_ns.saturating_sub(self.last_seen_ns);
        self.packets += 1;
        self.bytes += length as u64;
        self.last_seen_ns = now_ns;
        self.counters(gap_ns)
    }

    #[inline(always)]
    pub const fn counters(&self, gap_ns: u64) -> FlowCounters {
        FlowCounters {
            packets: self.packets,
            bytes: self.bytes,
            gap_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_causal() {
        let mut s = FlowState::default();
        assert_eq!(
            s.record(100, 1_000),
            FlowCounters {
                packets: 1,
                bytes: 100,
                gap_ns: 0
            }
        );
        assert_eq!(
            s.record(60, 1_500),
            FlowCounters {
                packets: 2,
                bytes: 160,
                gap_ns: 500
            }
        );
        // Out of order: no negative gap.
        assert_eq!(
            s.record(40, 1_200),
            FlowCounters {
                packets: 3,
                bytes: 200,
                gap_ns: 0
            }
        );
        assert_eq!(s.first_seen_ns, 1_000);
        assert_eq!(s.last_seen_ns, 1_200);
        assert_eq!(FlowState::first(100, 1_000).counters(0).packets, 1);
    }
}
