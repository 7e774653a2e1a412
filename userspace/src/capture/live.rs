//! A live capture session: load and attach the XDP program, hand batches of
//! records (timestamps already converted to epoch ns) to a [`RecordSink`]
//! until it is done, CTRL+C or SIGTERM arrives, or an error happens; then
//! detach, hand over what was still in the ring buffer, and report the
//! kernel's counters. The program is detached on every one of those paths
//! (the [`Attached`] guard), before this function returns.
//!
//! Two engines share this contract, chosen by [`CaptureOptions::capture`]:
//! the record path ([`CaptureMode::Xdp`]: the XDP program parses, records
//! cross a ring buffer) and AF_XDP ([`CaptureMode::AfXdp`], in
//! `capture::afxdp`: whole frames cross, userspace parses them with the same
//! parser and flow update, and the sink also gets each frame through
//! [`RecordSink::frame`]).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ml_sniffing_common::maps::{self, Config, Counters};
use ml_sniffing_common::record::PacketRecord;
use tokio::signal::unix::{signal, SignalKind};

use super::afxdp::{self, AfXdpOptions, AfXdpSummary};
use super::clock::KernelClock;
use super::programs;
use super::ringbuf::RecordRing;
use super::xdp::{interface_index, Attached, Loaded, XdpMode};

/// The capture engine (`--capture`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureMode {
    /// The record path: the XDP program parses each packet and hands a
    /// record to userspace through a ring buffer; traffic is not touched.
    #[default]
    Xdp,
    /// Whole frames to userspace through AF_XDP sockets, parsed there with
    /// the same parser (needed for `--write-pcap`).
    #[value(name = "af-xdp")]
    AfXdp,
}

impl CaptureMode {
    pub fn name(self) -> &'static str {
        match self {
            CaptureMode::Xdp => "xdp",
            CaptureMode::AfXdp => "af-xdp",
        }
    }
}

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    pub interface: String,
    pub mode: XdpMode,
    /// Leave IPv6 out (the original tool's behaviour).
    pub ipv4_only: bool,
    /// Emit one packet in N (0 or 1: all).
    pub sample_every: u32,
    /// The engine: [`capture`] runs the record path or AF_XDP accordingly.
    pub capture: CaptureMode,
    /// AF_XDP settings (queues, bind mode, `--consume`); ignored by the
    /// record path.
    pub af_xdp: AfXdpOptions,
}

impl CaptureOptions {
    pub fn new(interface: impl Into<String>) -> Self {
        CaptureOptions {
            interface: interface.into(),
            mode: XdpMode::Auto,
            ipv4_only: false,
            sample_every: 0,
            capture: CaptureMode::Xdp,
            af_xdp: AfXdpOptions::default(),
        }
    }

    fn config(&self) -> Config {
        Config {
            sample_every: self.sample_every,
            flags: if self.ipv4_only { Config::IPV4_ONLY } else { 0 },
        }
    }
}

/// A whole frame, as AF_XDP mode hands it to [`RecordSink::frame`].
#[derive(Clone, Copy, Debug)]
pub struct CapturedFrame<'a> {
    /// The frame as received, Ethernet header included (never cut short).
    pub data: &'a [u8],
    /// Epoch ns, the same clock and value as the frame's record.
    pub timestamp_ns: u64,
    /// The receive queue it arrived on.
    pub queue: u32,
    /// The index of this frame's record in the batch the next
    /// [`RecordSink::records`] call hands over; `None` when the frame made
    /// no record (not IP, unparsable, filtered out or sampled out).
    pub record: Option<usize>,
}

/// Receives the records of a capture.
pub trait RecordSink {
    /// A batch of records in arrival order, timestamps in epoch ns. Return
    /// `Break` to end the capture (e.g. a packet count was reached).
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>>;

    /// AF_XDP mode only: every frame received, in arrival order, before the
    /// [`records`](Self::records) call of the batch holding its record. The
    /// bytes are only borrowed for the call (the UMEM chunk is reused):
    /// copy what must outlive it. The record path never calls it (it does
    /// not see whole frames). Default: ignore frames.
    fn frame(&mut self, frame: &CapturedFrame<'_>) -> Result<()> {
        let _ = frame;
        Ok(())
    }

    /// Called about every [`TICK`] while capturing (flush output, refresh a
    /// display).
    fn tick(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How often [`RecordSink::tick`] runs.
pub const TICK: Duration = Duration::from_millis(100);
/// How often the ring is drained (the program never wakes the reader; see
/// `ml_sniffing_common::maps::DRAIN_EVERY_MS`).
pub const DRAIN_EVERY: Duration = Duration::from_millis(maps::DRAIN_EVERY_MS);
/// Records handed over at most per batch.
pub const BATCH: usize = 4096;

/// Why a capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The sink returned `Break`.
    SinkDone,
    /// SIGINT (CTRL+C).
    Interrupted,
    /// SIGTERM.
    Terminated,
}

/// What a capture did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub reason: StopReason,
    /// Records handed to the sink.
    pub delivered: u64,
    /// Records still in the ring buffer when the sink was done (not handed
    /// over).
    pub left_unread: u64,
    /// The kernel's counters, read after detaching. In AF_XDP mode the same
    /// outcomes counted by userspace over the frames it received
    /// (`ring_full` and `flow_insert_failed` stay 0; see `af_xdp`).
    pub counters: Counters,
    /// AF_XDP mode: sockets, drops, re-injection.
    pub af_xdp: Option<AfXdpSummary>,
}

/// Runs a capture session (see the module documentation) with the engine
/// `options.capture` names.
pub fn capture(options: &CaptureOptions, sink: &mut dyn RecordSink) -> Result<Summary> {
    if options.capture == CaptureMode::AfXdp {
        return afxdp::capture(options, sink);
    }
    let object = programs::capture()?;
    // Check the interface first: a clearer error than any load failure.
    interface_index(&options.interface)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(session(object, options, sink))
}

async fn session(
    object: &[u8],
    options: &CaptureOptions,
    sink: &mut dyn RecordSink,
) -> Result<Summary> {
    // Signals are caught before attaching so no signal can end the process
    // between attach and the guard taking over.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;

    let mut loaded = Loaded::new(object, options.config())?;
    let mut ring = RecordRing::new(loaded.take_ring()?);
    let mut attached: Attached = loaded.attach(&options.interface, options.mode)?;

    let mut clock = KernelClock::new();
    let mut clock_read = Instant::now();
    let mut batch: Vec<PacketRecord> = Vec::with_capacity(BATCH);
    let mut delivered = 0u64;
    let mut ticker = tokio::time::interval(DRAIN_EVERY);
    let mut last_tick = Instant::now();
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let reason = 'capture: loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = interrupt.recv() => break StopReason::Interrupted,
            _ = terminate.recv() => break StopReason::Terminated,
        }
        // Everything waiting, batch by batch.
        loop {
            batch.clear();
            if ring.drain(&mut batch, BATCH) == 0 {
                break;
            }
            delivered += batch.len() as u64;
            if hand_over(sink, &clock, &mut batch)?.is_break() {
                break 'capture StopReason::SinkDone;
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if clock_read.elapsed() >= KernelClock::REFRESH_EVERY {
                clock.refresh();
                clock_read = Instant::now();
            }
            sink.tick()?;
        }
    };

    attached.detach()?;
    // After detaching nothing more arrives: hand over what is left, unless
    // the sink is done.
    let mut left_unread = 0u64;
    loop {
        batch.clear();
        if ring.drain(&mut batch, BATCH) == 0 {
            break;
        }
        if reason == StopReason::SinkDone {
            left_unread += batch.len() as u64;
            continue;
        }
        delivered += batch.len() as u64;
        if hand_over(sink, &clock, &mut batch)?.is_break() {
            // Counted from here on as left unread.
            let mut rest = Vec::new();
            while ring.drain(&mut rest, BATCH) > 0 {
                left_unread += rest.len() as u64;
                rest.clear();
            }
            break;
        }
    }
    sink.tick()?;
    let counters = attached.counters()?;
    Ok(Summary {
        reason,
        delivered,
        left_unread,
        counters,
        af_xdp: None,
    })
}

fn hand_over(
    sink: &mut dyn RecordSink,
    clock: &KernelClock,
    batch: &mut [PacketRecord],
) -> Result<ControlFlow<()>> {
    for r in batch.iter_mut() {
        r.timestamp_ns = clock.to_epoch_ns(r.timestamp_ns);
    }
    sink.records(batch)
}
