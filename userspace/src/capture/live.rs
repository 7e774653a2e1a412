//! A live capture session: load and attach the XDP program, hand records
//! (in batches with timestamps converted to epoch ns, or one by one where
//! they lie in the ring buffer) to a [`RecordSink`] until it is done, CTRL+C
//! or SIGTERM arrives, or an error happens; then detach, hand over what was
//! still in the ring buffer, and report the kernel's counters. The program
//! is detached on every one of those paths (the [`Attached`] guard), before
//! this function returns.
//!
//! The reader sleeps until the program wakes it (once every
//! `WAKEUP_EVERY` records) or a short timer fires, whichever comes first.

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

    /// Whether the sink takes records one by one where they lie in the ring
    /// buffer ([`record_in_place`](Self::record_in_place)) instead of
    /// copied into batches: for sinks that build batches of their own.
    fn in_place(&self) -> bool {
        false
    }

    /// One record read in place (its `timestamp_ns` still kernel time;
    /// `epoch_ns` is its time), when [`in_place`](Self::in_place) is true.
    fn record_in_place(&mut self, record: &PacketRecord, epoch_ns: u64) -> Result<ControlFlow<()>> {
        let mut copy = *record;
        copy.timestamp_ns = epoch_ns;
        self.records(std::slice::from_ref(&copy))
    }

    /// Called after every drain and about every [`TICK`] while capturing
    /// (flush output, refresh a display, adjust the capture).
    fn tick(&mut self, _control: &mut Control) -> Result<()> {
        Ok(())
    }
}

/// What a sink may look at and change during a capture.
pub struct Control<'a> {
    attached: &'a mut Attached,
    config: Config,
    /// Most records found waiting at one drain since the last
    /// [`take_backlog`](Self::take_backlog).
    backlog: u64,
}

impl Control<'_> {
    /// The program's counters so far (summed over CPUs).
    pub fn counters(&self) -> Result<Counters> {
        self.attached.counters()
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Emits one packet in `n` from now on (0 or 1: all).
    pub fn set_sample_every(&mut self, n: u32) -> Result<()> {
        let config = Config {
            sample_every: n,
            ..self.config
        };
        self.attached.loaded().configure(config)?;
        self.config = config;
        Ok(())
    }

    /// The largest number of records found waiting in the ring buffer at
    /// one drain since the last call, and the ring's capacity in records.
    pub fn take_backlog(&mut self) -> (u64, u64) {
        let most = std::mem::take(&mut self.backlog);
        (most, maps::EVENTS_BYTES as u64 / RING_ITEM_BYTES)
    }
}

/// Bytes a record takes in the ring buffer (8-byte header + record).
const RING_ITEM_BYTES: u64 = 8 + std::mem::size_of::<PacketRecord>() as u64;

/// How often [`RecordSink::tick`] runs at least.
pub const TICK: Duration = Duration::from_millis(100);
/// How often the ring is drained without a wakeup (the program wakes the
/// reader only every `WAKEUP_EVERY` records; see `ml_sniffing_common::maps`).
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
    let mut ring = RecordRing::new(loaded.take_ring()?).context("cannot poll the ring buffer")?;
    let mut attached: Attached = loaded.attach(&options.interface, options.mode)?;

    let mut clock = KernelClock::new();
    let mut clock_read = Instant::now();
    let mut batch: Vec<PacketRecord> = Vec::with_capacity(BATCH);
    let mut delivered = 0u64;
    let mut ticker = tokio::time::interval(DRAIN_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = Instant::now();
    let mut config = options.config();
    let mut backlog = 0u64;

    let reason = 'capture: loop {
        tokio::select! {
            woken = ring.readable() => woken.context("cannot wait on the ring buffer")?,
            _ = ticker.tick() => {}
            _ = interrupt.recv() => break StopReason::Interrupted,
            _ = terminate.recv() => break StopReason::Terminated,
        }
        // Everything waiting, batch by batch.
        let mut waiting = 0u64;
        loop {
            let (read, flow) = drain(&mut ring, sink, &clock, &mut batch)?;
            delivered += read;
            waiting += read;
            if flow.is_break() {
                break 'capture StopReason::SinkDone;
            }
            if read < BATCH as u64 {
                break;
            }
        }
        backlog = backlog.max(waiting);
        if clock_read.elapsed() >= KernelClock::REFRESH_EVERY {
            clock.refresh();
            clock_read = Instant::now();
        }
        if waiting > 0 || last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let mut control = Control {
                attached: &mut attached,
                config,
                backlog,
            };
            sink.tick(&mut control)?;
            config = control.config;
            backlog = control.backlog;
        }
    };

    attached.detach()?;
    // After detaching nothing more arrives: hand over what is left, unless
    // the sink is done.
    let mut left_unread = 0u64;
    if reason == StopReason::SinkDone {
        left_unread += ring.drain_in_place(usize::MAX, |_| ControlFlow::Continue(())) as u64;
    } else {
        loop {
            let (read, flow) = drain(&mut ring, sink, &clock, &mut batch)?;
            delivered += read;
            if flow.is_break() {
                left_unread +=
                    ring.drain_in_place(usize::MAX, |_| ControlFlow::Continue(())) as u64;
                break;
            }
            if read == 0 {
                break;
            }
        }
    }
    let mut control = Control {
        attached: &mut attached,
        config,
        backlog,
    };
    sink.tick(&mut control)?;
    let counters = attached.counters()?;
    Ok(Summary {
        reason,
        delivered,
        left_unread,
        counters,
    })
}

/// Hands up to [`BATCH`] waiting records to the sink, in place or copied
/// into `batch` as the sink prefers; returns how many were read and
/// whether the sink is done.
fn drain(
    ring: &mut RecordRing,
    sink: &mut dyn RecordSink,
    clock: &KernelClock,
    batch: &mut Vec<PacketRecord>,
) -> Result<(u64, ControlFlow<()>)> {
    if sink.in_place() {
        let mut outcome: Result<ControlFlow<()>> = Ok(ControlFlow::Continue(()));
        let read = ring.drain_in_place(BATCH, |record| {
            outcome = sink.record_in_place(record, clock.to_epoch_ns(record.timestamp_ns));
            match &outcome {
                Ok(ControlFlow::Continue(())) => ControlFlow::Continue(()),
                _ => ControlFlow::Break(()),
            }
        });
        return Ok((read as u64, outcome?));
    }
    batch.clear();
    let read = ring.drain(batch, BATCH);
    if read == 0 {
        return Ok((0, ControlFlow::Continue(())));
    }
    Ok((read as u64, hand_over(sink, clock, batch)?))
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
