//! Packet capture: live from an interface through the XDP program (loaded
//! from the object embedded in the binary), offline from pcap/pcapng files
//! through the same parser, the userspace flow table, and the CSV rows every
//! capture path writes.
//!
//! - [`programs`]: the embedded eBPF objects.
//! - [`xdp`]: loading, configuring, attaching ([`xdp::Attached`] detaches on
//!   drop) and `BPF_PROG_TEST_RUN`, with one-sentence errors.
//! - [`ringbuf`]: draining records from the ring buffer (the program wakes
//!   the reader every `maps::WAKEUP_EVERY` records; it is also polled).
//! - [`clock`]: kernel monotonic time to epoch time.
//! - [`holder`]: who holds an interface's XDP attachment (for the advice
//!   when attaching finds one there).
//! - [`link`]: the captured interface's state (down, no carrier, gone),
//!   watched by live sessions.
//! - [`stats`]: the program's per-CPU counters.
//! - [`kernel_flows`]: the program's flow records (`run --flows` live).
//! - [`live`]: a whole live session: attach, stream batches of records
//!   (epoch timestamps) to a [`live::RecordSink`] until it is done or CTRL+C /
//!   SIGTERM arrive, detach, report. `sniff` and the live monitor use it.
//! - [`filter`]: tcpdump expressions on captures (libpcap, loaded at run
//!   time); [`live_filter`]: the subset the XDP program runs, compiled.
//! - [`pcap`]: capture files; [`state`]: the userspace flow, host and pair tables.
//! - [`csv_rows`]: records as CSV rows (the original tool's columns first).
//! - [`afxdp`]: the AF_XDP engine (`--capture af-xdp`): whole frames to
//!   userspace, the same records, re-injection into the host stack;
//!   [`frame_stash`] keeps frames for records decided on later, and
//!   `pcap::writer` writes frames to pcapng.

pub mod clock;
pub mod csv_rows;
pub mod filter;
pub mod flow_records;
pub mod frame_stash;
pub mod holder;
pub mod kernel_flows;
pub mod link;
pub mod live;
/// The AF_XDP engine lives under [`live`] (it shares its session contract).
pub use live::afxdp;
pub mod live_filter;
pub mod pcap;
pub mod programs;
pub mod ringbuf;
pub mod route;
pub mod state;
pub mod stats;
pub mod xdp;
