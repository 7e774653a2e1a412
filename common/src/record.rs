//! The packet record: one per packet, written by the XDP program into the
//! ring buffer and built by userspace from pcap files and AF_XDP frames.

use crate::behaviour::Behaviour;
use crate::flow::{FlowCounters, FlowKey};

/// The packet is an IP fragment (first or later).
pub const FLAG_FRAGMENT: u8 = 1;
/// The packet is a later fragment: it has no transport header, so no ports.
pub const FLAG_LATER_FRAGMENT: u8 = 2;
/// The frame carried at least one VLAN tag (`vlan_id` is the outer one's).
pub const FLAG_VLAN: u8 = 4;
/// The capture kept only part of the frame (pcap snap length); headers were
/// read from what was kept.
pub const FLAG_SNAPPED: u8 = 8;

/// Layout, chosen so that no field needs implicit padding (size asserted
/// below): four u64 first, then the two 16-byte addresses, then the u32, the
/// u16s and the u8s, closed by one explicit padding byte to a multiple of 8
/// (80 bytes: the packet and its flow), then the behaviour of its hosts and
/// pair (88 bytes of `u32` and `u16`, see [`crate::behaviour`]): 168 bytes.
///
/// Addresses are 16 bytes; IPv4 addresses are stored IPv4-mapped
/// (`::ffff:a.b.c.d`) so one key type serves both versions.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct PacketRecord {
    /// When the packet was seen: kernel monotonic ns (`bpf_ktime_get_ns`)
    /// in the ring buffer, epoch ns once userspace has converted it.
    pub timestamp_ns: u64,
    /// Packets of the flow so far, this one included.
    pub flow_packets: u64,
    /// Bytes (frame lengths) of the flow so far, this one included.
    pub flow_bytes: u64,
    /// Time since the flow's previous packet (0 for its first).
    pub flow_gap_ns: u64,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    /// The whole frame's length on the wire, link header included (what the
    /// original tool called `length`).
    pub frame_len: u32,
    /// TCP/UDP/SCTP/DCCP/UDP-Lite ports; for ICMP and ICMPv6 the type (as
    /// Zeek does); 0 when there is none.
    pub src_port: u16,
    /// Destination port; for ICMP and ICMPv6 the code.
    pub dst_port: u16,
    /// The outer 802.1Q VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// IANA protocol number of the transport (after IPv6 extension headers).
    pub protocol: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN), 0 otherwise.
    pub tcp_flags: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    pub _pad: u8,
    /// Its source, destination and pair, right after counting it.
    pub behaviour: Behaviour,
}

const _: () = assert!(core::mem::size_of::<PacketRecord>() == 168);
const _: () = assert!(core::mem::offset_of!(PacketRecord, behaviour) == 80);
const _: () = assert!(core::mem::align_of::<PacketRecord>() == 8);

impl PacketRecord {
    /// The flow this packet belongs to.
    #[inline(always)]
    pub fn flow_key(&self) -> FlowKey {
        FlowKey {
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            src_port: self.src_port,
            dst_port: self.dst_port,
            protocol: self.protocol,
            _pad: [0; 3],
        }
    }

    /// Stores the flow counters the packet got when it was counted.
    #[inline(always)]
    pub fn set_flow(&mut self, counters: &FlowCounters) {
        self.flow_packets = counters.packets;
        self.flow_bytes = counters.bytes;
        self.flow_gap_ns = counters.gap_ns;
    }

    pub fn is_later_fragment(&self) -> bool {
        self.flags & FLAG_LATER_FRAGMENT != 0
    }
}

#[cfg(feature = "user")]
mod user {
    use std::net::{IpAddr, Ipv6Addr};

    use super::PacketRecord;

    /// 16 record bytes back to an address: IPv4-mapped addresses become IPv4.
    pub fn addr(bytes: [u8; 16], ip_version: u8) -> IpAddr {
        let v6 = Ipv6Addr::from(bytes);
        match (ip_version, v6.to_ipv4_mapped()) {
            (4, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    /// An address in the 16-byte record form.
    pub fn addr_bytes(addr: IpAddr) -> [u8; 16] {
        match addr {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        }
    }

    impl PacketRecord {
        pub fn source(&self) -> IpAddr {
            addr(self.src_addr, self.ip_version)
        }

        pub fn destination(&self) -> IpAddr {
            addr(self.dst_addr, self.ip_version)
        }
    }
}

#[cfg(feature = "user")]
pub use user::{addr, addr_bytes};
