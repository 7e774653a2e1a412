//! A live capture session: load and attach the XDP program, hand batches of
//! records (timestamps already converted to epoch ns) to a [`RecordSink`]
//! until it is done, CTRL+C or SIGTERM arrives, or an error happens; then
//! detach, hand over what was still in the ring buffer, and report the
//! kernel's counters. The program is detached on every one of those paths
//! (the [`Attached`] guard), before this function returns.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ml_sniffing_common::maps::{self, Config, Counters};
use ml_sniffing_common::record::PacketRecord;
use tokio::signal::unix::{signal, SignalKind};

use super::clock::KernelClock;
use super::programs;
use super::ringbuf::RecordRing;
use super::xdp::{interface_index, Attached, Loaded, XdpMode};

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    pub interface: String,
    pub mode: XdpMode,
    /// Leave IPv6 out in the kernel (the original tool's behaviour).
    pub ipv4_only: bool,
    /// Emit one packet in N (0 or 1: all).
    pub sample_every: u32,
}

impl CaptureOptions {
    pub fn new(interface: impl Into<String>) -> Self {
        CaptureOptions {
            interface: interface.into(),
            mode: XdpMode::Auto,
            ipv4_only: false,
            sample_every: 0,
        }
    }

    fn config(&self) -> Config {
        Config {
            sample_every: self.sample_every,
            flags: if self.ipv4_only { Config::IPV4_ONLY } else { 0 },
        }
    }
}

/// Receives the records of a capture.
pub trait RecordSink {
    /// A batch of records in arrival order, timestamps in epoch ns. Return
    /// `Break` to end the capture (e.g. a packet count was reached).
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>>;

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
    /// The kernel's counters, read after detaching.
    pub counters: Counters,
}

/// Runs a capture session (see the module documentation).
pub fn capture(options: &CaptureOptions, sink: &mut dyn RecordSink) -> Result<Summary> {
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
