//! Packet capture: offline captures (pcap, pcapng) read through the shared
//! parser, the userspace flow table, and the CSV rows every capture path
//! writes.

pub mod csv_rows;
pub mod flows;
pub mod pcap;
