//! Packet capture: live from an interface through the XDP program (loaded
//! from the object embedded in the binary), offline from pcap/pcapng files
//! through the same parser, the userspace flow table, and the CSV rows every
//! capture path writes.
//!
//! - [`programs`]: the embedded eBPF objects.
//! - [`xdp`]: loading, configuring, attaching ([`xdp::Attached`] detaches on
//!   drop) and `BPF_PROG_TEST_RUN`, with one-sentence errors.
//! - [`ringbuf`]: draining records from the ring buffer (polled: the program
//!   never wakes readers).
//! - [`clock`]: kernel monotonic time to epoch time.
//! - [`stats`]: the program's per-CPU counters.
//! - [`live`]: a whole live session: attach, stream batches of records
//!   (epoch timestamps) to a [`live::RecordSink`] until it is done or CTRL+C /
//!   SIGTERM arrive, detach, report. `sniff` uses it; the live monitor will.
//! - [`pcap`]: capture files; [`flows`]: the userspace flow table.
//! - [`csv_rows`]: records as CSV rows (seed columns first).

pub mod clock;
pub mod csv_rows;
pub mod flows;
pub mod live;
pub mod pcap;
pub mod programs;
pub mod ringbuf;
pub mod route;
pub mod stats;
pub mod xdp;
