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
    /// The record made of this frame (timestamp in epoch ns, as the sink
    /// will get it); `None` when the frame made none (not IP, unparsable,
    /// filtered out or sampled out).
    pub record: Option<&'a PacketRecord>,
}

/// Receives the records of a capture.
pub trait RecordSink {
    /// A batch of records in arrival order, timestamps in epoch ns. Return
    /// `Break` to end the capture (e.g. a packet count was reached).
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>>;

    /// AF_XDP mode only: every frame received, in arrival order, right
    /// before its record (if it made one) is handed over: to
    /// [`record_in_place`](Self::record_in_place) next for in-place sinks,
    /// else in the next [`records`](Self::records) batch (frames with a
    /// record come in the batch's order). The bytes are only borrowed for
    /// the call (the UMEM chunk is reused): copy what must outlive it. The
    /// record path never calls it (it does not see whole frames). Default:
    /// ignore frames.
    fn frame(&mut self, frame: &CapturedFrame<'_>) -> Result<()> {
        let _ = frame;
        Ok(())
    }

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
    engine: Engine<'a>,
    config: Config,
    /// Most records (AF_XDP: frames) found waiting at one drain since the
    /// last [`take_backlog`](Self::take_backlog).
    backlog: u64,
    /// What the ring(s) hold, in records (AF_XDP: frames).
    capacity: u64,
}

enum Engine<'a> {
    /// The record path: the program's counters and configuration map.
    Records(&'a mut Attached),
    /// AF_XDP: the counters userspace keeps (sampling is applied there, by
    /// the session, from `config`).
    Frames(Counters),
}

impl<'a> Control<'a> {
    fn for_records(attached: &'a mut Attached, config: Config, backlog: u64) -> Self {
        Control {
            engine: Engine::Records(attached),
            config,
            backlog,
            capacity: maps::EVENTS_BYTES as u64 / RING_ITEM_BYTES,
        }
    }

    /// AF_XDP mode: `counters` so far (`ring_full` = frames the sockets
    /// dropped), and the receive rings' total `capacity` in frames.
    pub(crate) fn for_frames(
        counters: Counters,
        config: Config,
        backlog: u64,
        capacity: u64,
    ) -> Self {
        Control {
            engine: Engine::Frames(counters),
            config,
            backlog,
            capacity,
        }
    }

    /// The counters so far: the program's (summed over CPUs) on the record
    /// path; in AF_XDP mode the same outcomes counted by userspace, with
    /// `ring_full` the frames the sockets dropped.
    pub fn counters(&self) -> Result<Counters> {
        match &self.engine {
            Engine::Records(attached) => attached.counters(),
            Engine::Frames(counters) => Ok(*counters),
        }
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
        if let Engine::Records(attached) = &mut self.engine {
            attached.loaded().configure(config)?;
        }
        self.config = config;
        Ok(())
    }

    /// The largest number of records (AF_XDP: frames) found waiting at one
    /// drain since the last call, and the capacity of the ring buffer (AF_XDP:
    /// the receive rings) in records.
    pub fn take_backlog(&mut self) -> (u64, u64) {
        let most = std::mem::take(&mut self.backlog);
        (most, self.capacity)
    }

    pub(crate) fn backlog(&self) -> u64 {
        self.backlog
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
    /// The kernel's counters, read after detaching. In AF_XDP mode the same
    /// outcomes counted by userspace: `seen` = frames received + frames the
    /// sockets dropped, `ring_full` = frames the sockets dropped,
    /// `flow_insert_failed` 0 (see `af_xdp` for the details).
    pub counters: Counters,
    /// AF_XDP mode: sockets, drops, re-injection.
    pub af_xdp: Option<AfXdpSummary>,
}

/// Runs a capture session (see the module documentation) with the engine
/// `options.capture` names.
pub fn capture(options: &CaptureOptions, sink: &mut dyn RecordSink) -> Result<Summary> {
    // The capture loops stop on SIGINT/SIGTERM themselves (detaching first).
    let _stopper = crate::signals::Stopper::new();
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
            let mut control = Control::for_records(&mut attached, config, backlog);
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
    let mut control = Control::for_records(&mut attached, config, backlog);
    sink.tick(&mut control)?;
    let counters = attached.counters()?;
    Ok(Summary {
        reason,
        delivered,
        left_unread,
        counters,
        af_xdp: None,
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
