//! A live capture session: load and attach the XDP program, hand records
//! (in batches with timestamps converted to epoch ns, or one by one where
//! they lie in the ring buffer) to a [`RecordSink`] until it is done, CTRL+C
//! or SIGTERM arrives, the interface vanishes, or an error happens; then
//! detach, hand over what was still in the ring buffer, and report the
//! kernel's counters, on the error paths too ([`CaptureError`] carries
//! them). The program is detached on every one of those paths (the
//! [`Attached`] guard), before this function returns.
//!
//! The reader sleeps until the program wakes it (once every
//! `WAKEUP_EVERY` records) or a short timer fires, whichever comes first.
//! However busy the ring, the sink's tick (status, sampling) and the
//! signals come at least every [`TICK`].
//!
//! Two engines share this contract, chosen by [`CaptureOptions::capture`]:
//! the record path ([`CaptureMode::Xdp`]: the XDP program parses, records
//! cross a ring buffer) and AF_XDP ([`CaptureMode::AfXdp`], in
//! [`afxdp`]: whole frames cross, userspace parses them with the same
//! parser and flow update, and the sink also gets each frame through
//! [`RecordSink::frame`]).

pub mod afxdp;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ml_sniffing_common::maps::{self, Config, Counters};
use ml_sniffing_common::record::PacketRecord;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::clock::KernelClock;
use super::kernel_flows::{EndedFlow, KernelFlows};
use super::link::{self, LinkState, LinkWatch};
use super::programs;
use super::ringbuf::RecordRing;
use super::xdp::{interface_index, Attached, Loaded, XdpMode};
use afxdp::{AfXdpOptions, AfXdpSummary, QueueSummary};

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
    /// A filter: only the packets it matches are counted and handed over
    /// (see [`super::live_filter`]).
    pub filter: Option<ml_sniffing_common::filter::Program>,
    /// Keep flow records in the kernel and hand over ended flows
    /// ([`RecordSink::flows`]) instead of packet records, with these idle
    /// and active timeouts (record path only).
    pub flow_records: Option<(Duration, Duration)>,
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
            filter: None,
            flow_records: None,
        }
    }

    fn config(&self) -> Config {
        let mut flags = 0;
        if self.ipv4_only {
            flags |= Config::IPV4_ONLY;
        }
        if self.filter.is_some() {
            flags |= Config::FILTER;
        }
        if self.flow_records.is_some() {
            flags |= Config::FLOW_RECORDS | Config::FLOW_RECORDS_ONLY | Config::SKIP_FLOW;
        }
        Config {
            sample_every: self.sample_every,
            flags,
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

    /// Flows the kernel's flow records ended ([`CaptureOptions::flow_records`]),
    /// to take out of `ended`. Default: ignore them.
    fn flows(&mut self, ended: &mut Vec<EndedFlow>) -> Result<()> {
        ended.clear();
        Ok(())
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
    /// Most records (AF_XDP: frames) found waiting in the ring(s) since
    /// the last [`take_backlog`](Self::take_backlog).
    backlog: u64,
    /// What the ring(s) hold, in records (AF_XDP: frames).
    capacity: u64,
    /// AF_XDP: each queue's counters as last read (on the tick).
    queues: &'a [QueueSummary],
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
            queues: &[],
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
            queues: &[],
        }
    }

    /// AF_XDP mode: each queue's counters, for metrics.
    pub(crate) fn with_queues(self, queues: &'a [QueueSummary]) -> Self {
        Control { queues, ..self }
    }

    /// AF_XDP: each queue's counters as last read (empty on the record
    /// path).
    pub fn queues(&self) -> &[QueueSummary] {
        self.queues
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

    /// The largest number of records (AF_XDP: frames) found waiting in the
    /// ring buffer (AF_XDP: the receive rings) since the last call, and its
    /// capacity in records.
    pub fn take_backlog(&mut self) -> (u64, u64) {
        let most = std::mem::take(&mut self.backlog);
        (most, self.capacity)
    }

    pub(crate) fn backlog(&self) -> u64 {
        self.backlog
    }

    /// The backlog as a share of the capacity (0 to 1), without taking it.
    pub fn fill(&self) -> f64 {
        self.backlog as f64 / self.capacity.max(1) as f64
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
/// Once a capture is stopped (signal, vanished interface), records still
/// waiting are handed over for at most this long, so that CTRL+C is
/// honoured within a second however deep the backlog of a slow sink; what
/// is left then is counted ([`Summary::left_unread`]), not read.
pub const STOP_DRAIN: Duration = Duration::from_millis(500);

/// Why a capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The sink returned `Break`.
    SinkDone,
    /// SIGINT (CTRL+C).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// The interface vanished (deleted, or moved to another namespace):
    /// the capture's error says so.
    InterfaceGone,
    /// The sink or the capture failed: the capture's error says how.
    Failed,
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

/// A capture that failed. Once the program was attached, `summary` says
/// what the capture did up to the failure (the program detached, its
/// counters read after), so that the report is printed on this exit too.
#[derive(Debug)]
pub struct CaptureError {
    pub error: anyhow::Error,
    pub summary: Option<Box<Summary>>,
}

impl CaptureError {
    pub(crate) fn with_summary(error: anyhow::Error, summary: Summary) -> Self {
        CaptureError {
            error,
            summary: Some(Box::new(summary)),
        }
    }
}

impl From<anyhow::Error> for CaptureError {
    fn from(error: anyhow::Error) -> Self {
        CaptureError {
            error,
            summary: None,
        }
    }
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for CaptureError {}

/// Runs a capture session (see the module documentation) with the engine
/// `options.capture` names.
pub fn capture(
    options: &CaptureOptions,
    sink: &mut dyn RecordSink,
) -> Result<Summary, CaptureError> {
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
) -> Result<Summary, CaptureError> {
    // Signals are caught before attaching so no signal can end the process
    // between attach and the guard taking over.
    let mut signals = Signals::new()?;
    let mut loaded = Loaded::new(object, options.config())?;
    if let Some(program) = &options.filter {
        loaded.set_filter(program)?;
    }
    let ring = RecordRing::new(loaded.take_ring()?).context("cannot poll the ring buffer")?;
    let kernel_flows = match options.flow_records {
        Some((idle, active)) => Some(KernelFlows::take(&mut loaded, idle, active)?),
        None => None,
    };
    let index = interface_index(&options.interface)?;
    let attached: Attached = loaded.attach(&options.interface, options.mode)?;
    let link = LinkWatch::start(&options.interface, index)?;
    let mut session = Session {
        ring,
        attached,
        link,
        clock: KernelClock::new(),
        batch: Vec::with_capacity(BATCH),
        delivered: 0,
        config: options.config(),
        backlog: 0,
        kernel_flows,
        ended_flows: Vec::new(),
    };
    let ended = session.run(sink, &mut signals).await;
    session.finish(sink, ended)
}

/// SIGINT and SIGTERM, caught for the session.
pub(crate) struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    /// Waits for either signal.
    pub(crate) async fn recv(&mut self) -> StopReason {
        tokio::select! {
            biased;
            _ = self.interrupt.recv() => StopReason::Interrupted,
            _ = self.terminate.recv() => StopReason::Terminated,
        }
    }
}

/// A record-path session once attached.
struct Session {
    ring: RecordRing,
    attached: Attached,
    link: LinkWatch,
    clock: KernelClock,
    batch: Vec<PacketRecord>,
    delivered: u64,
    config: Config,
    /// Most records found waiting since the sink last took it.
    backlog: u64,
    kernel_flows: Option<KernelFlows>,
    ended_flows: Vec<EndedFlow>,
}

impl Session {
    /// Hands records over until a signal, the sink being done, the
    /// interface vanishing, or an error. However full the ring stays, the
    /// tick (status line, sampling, signals, the interface check) comes at
    /// least every [`TICK`]: a drain that would go on longer stops there.
    async fn run(
        &mut self,
        sink: &mut dyn RecordSink,
        signals: &mut Signals,
    ) -> Result<StopReason> {
        let mut ticker = tokio::time::interval(DRAIN_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tick = Instant::now();
        let mut last_check = Instant::now();
        let mut clock_read = Instant::now();
        loop {
            tokio::select! {
                biased;
                reason = signals.recv() => return Ok(reason),
                woken = self.ring.readable() => woken.context("cannot wait on the ring buffer")?,
                _ = ticker.tick() => {}
            }
            self.backlog = self
                .backlog
                .max(self.ring.waiting_bytes() / RING_ITEM_BYTES);
            let mut waiting = 0u64;
            let mut cut_short = false;
            let deadline = last_tick + TICK;
            loop {
                let drained = drain(&mut self.ring, sink, &self.clock, &mut self.batch, deadline)?;
                self.delivered += drained.read;
                waiting += drained.read;
                if drained.flow.is_break() {
                    return Ok(StopReason::SinkDone);
                }
                if !drained.more() {
                    break;
                }
                if Instant::now() >= deadline {
                    cut_short = true;
                    break;
                }
            }
            if let Some(k) = &mut self.kernel_flows {
                k.poll(&self.clock, &mut self.ended_flows)?;
                if !self.ended_flows.is_empty() {
                    sink.flows(&mut self.ended_flows)?;
                }
            }
            if clock_read.elapsed() >= KernelClock::REFRESH_EVERY {
                self.clock.refresh();
                clock_read = Instant::now();
            }
            if last_check.elapsed() >= TICK {
                last_check = Instant::now();
                if self.link.check() == LinkState::Gone {
                    return Ok(StopReason::InterfaceGone);
                }
            }
            if waiting > 0 || last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick(sink)?;
            }
            if cut_short {
                // Signals (and the ring's wakeups) reach their futures only
                // once the runtime has read its event sources: let it.
                tokio::task::yield_now().await;
            }
        }
    }

    fn tick(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        let mut control = Control::for_records(&mut self.attached, self.config, self.backlog);
        sink.tick(&mut control)?;
        self.config = control.config;
        self.backlog = control.backlog;
        Ok(())
    }

    /// Detaches, hands over what is left (unless the sink is done or
    /// failed), reads the counters and says how the capture ended: an
    /// error carries the summary too.
    fn finish(
        mut self,
        sink: &mut dyn RecordSink,
        ended: Result<StopReason>,
    ) -> Result<Summary, CaptureError> {
        let detached = self.attached.detach();
        let (reason, mut error) = match ended {
            Ok(reason) => (reason, None),
            Err(e) => (StopReason::Failed, Some(e)),
        };
        // After detaching nothing more arrives.
        let mut left_unread = 0u64;
        if error.is_none() && reason != StopReason::SinkDone {
            if let Err(e) = self.hand_over_rest(sink) {
                error = Some(e);
            }
        }
        left_unread += self.discard_rest();
        if let (Some(k), None) = (&mut self.kernel_flows, &error) {
            let handed = k
                .finish(&self.clock, &mut self.ended_flows)
                .and_then(|()| sink.flows(&mut self.ended_flows));
            if let Err(e) = handed {
                error = Some(e);
            }
        }
        if error.is_none() {
            if let Err(e) = self.tick(sink) {
                error = Some(e);
            }
        }
        if let Err(e) = detached {
            error.get_or_insert(e);
        }
        let counters = match self.attached.counters() {
            Ok(c) => c,
            Err(e) => return Err(error.unwrap_or(e).into()),
        };
        let summary = Summary {
            reason: if error.is_some() {
                StopReason::Failed
            } else {
                reason
            },
            delivered: self.delivered,
            left_unread,
            counters,
            af_xdp: None,
        };
        if reason == StopReason::InterfaceGone && error.is_none() {
            error = Some(anyhow::anyhow!(link::vanished(self.link.name())));
        }
        match error {
            Some(e) => Err(CaptureError::with_summary(e, summary)),
            None => Ok(summary),
        }
    }

    /// Hands over what is still waiting, for at most [`STOP_DRAIN`].
    fn hand_over_rest(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        let deadline = Instant::now() + STOP_DRAIN;
        loop {
            let drained = drain(&mut self.ring, sink, &self.clock, &mut self.batch, deadline)?;
            self.delivered += drained.read;
            if drained.flow.is_break() || !drained.more() || Instant::now() >= deadline {
                return Ok(());
            }
        }
    }

    /// Empties the ring without handing anything over; returns how many.
    fn discard_rest(&mut self) -> u64 {
        self.ring
            .drain_in_place(usize::MAX, |_| ControlFlow::Continue(())) as u64
    }
}

/// Hands up to [`BATCH`] waiting records to the sink, in place or copied
/// into `batch` as the sink prefers; returns how many were read and
/// whether the sink is done.
fn drain(
    ring: &mut RecordRing,
    sink: &mut dyn RecordSink,
    clock: &KernelClock,
    batch: &mut Vec<PacketRecord>,
    deadline: Instant,
) -> Result<Drained> {
    if sink.in_place() {
        let mut outcome: Result<ControlFlow<()>> = Ok(ControlFlow::Continue(()));
        let mut n = 0u32;
        let mut late = false;
        let read = ring.drain_in_place(BATCH, |record| {
            outcome = sink.record_in_place(record, clock.to_epoch_ns(record.timestamp_ns));
            n += 1;
            // An in-place sink may do real work per record (the monitor
            // scores a batch every so often): look at the clock now and then.
            if n.is_multiple_of(64) && Instant::now() >= deadline {
                late = true;
            }
            match &outcome {
                Ok(ControlFlow::Continue(())) if !late => ControlFlow::Continue(()),
                _ => ControlFlow::Break(()),
            }
        });
        return Ok(Drained {
            read: read as u64,
            flow: outcome?,
            late,
        });
    }
    batch.clear();
    let read = ring.drain(batch, BATCH);
    if read == 0 {
        return Ok(Drained {
            read: 0,
            flow: ControlFlow::Continue(()),
            late: false,
        });
    }
    Ok(Drained {
        read: read as u64,
        flow: hand_over(sink, clock, batch)?,
        late: Instant::now() >= deadline,
    })
}

/// What one [`drain`] did.
struct Drained {
    read: u64,
    /// Whether the sink is done.
    flow: ControlFlow<()>,
    /// Stopped at (or went past) the deadline: more may be waiting.
    late: bool,
}

impl Drained {
    /// Whether the ring may hold more: a whole batch, or cut short.
    fn more(&self) -> bool {
        self.late || self.read == BATCH as u64
    }
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
