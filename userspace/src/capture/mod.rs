//! Packet capture: the XDP program (loaded from the object embedded in the
//! binary), its ring buffer of records, kernel time, counters, and the CSV
//! rows captures are written as.
//!
//! - [`programs`]: the embedded eBPF objects.
//! - [`xdp`]: loading, configuring, attaching ([`xdp::Attached`] detaches on
//!   drop) and `BPF_PROG_TEST_RUN`, with one-sentence errors.
//! - [`ringbuf`]: draining records from the ring buffer (polled: the program
//!   never wakes readers).
//! - [`clock`]: kernel monotonic time to epoch time.
//! - [`stats`]: the program's per-CPU counters.
//! - [`live`]: a whole capture session: attach, stream batches of records
//!   (epoch timestamps) to a [`live::RecordSink`] until it is done or CTRL+C /
//!   SIGTERM arrive, detach, report. `sniff` uses it; the live monitor will.
//! - [`csv_rows`]: records as CSV rows (seed columns first), for `sniff` and
//!   for pcap conversion.

pub mod clock;
pub mod csv_rows;
pub mod live;
pub mod programs;
pub mod ringbuf;
pub mod stats;
pub mod xdp;
