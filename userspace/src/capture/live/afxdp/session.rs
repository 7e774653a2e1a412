//! An AF_XDP capture session, with the contract of `live::capture`: the
//! same sink, stop reasons and summary. Everything attached or created
//! (XDP program, sockets, TAP device, TC program) is released on every exit
//! path: the guards' destructors on errors, explicitly otherwise (the XDP
//! program first, so that no frame is redirected to a closing socket).
//!
//! One thread serves every queue: it drains each receive ring in turn and,
//! when all are empty, waits for any socket to become readable (the kernel
//! wakes it as frames arrive), a signal, or the next tick.

use std::future::poll_fn;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};
use std::task::Poll;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ml_sniffing_common::maps::{self, Config, Counters};
use ml_sniffing_common::parser::{self, Link, Outcome};
use ml_sniffing_common::record::PacketRecord;
use rand::{RngCore, SeedableRng};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::checksum;
use super::kernel::XskPrograms;
use super::queue::QueueSocket;
use super::stats::{AfXdpSummary, QueueSummary, SocketStats};
use super::tap::Tap;
use super::{interface_mtu, rx_queue_count, BindMode, RingSizes};
use crate::capture::clock::{monotonic_ns, KernelClock};
use crate::capture::link::{self, LinkState, LinkWatch};
use crate::capture::live::{
    CaptureError, CaptureOptions, CapturedFrame, Control, RecordSink, Signals, StopReason, Summary,
    STOP_DRAIN, TICK,
};
use crate::capture::programs;
use crate::capture::state::StateTables;
use crate::capture::xdp::{check_privileges_for, interface_index, Needs, XdpMode};

/// Frames taken from one ring before the next ring's turn.
const BUDGET: u32 = 512;
/// The TAP device's name (the kernel picks the number).
const TAP_TEMPLATE: &str = "mlsxr%d";

/// Runs an AF_XDP capture session (see `live::capture`).
pub fn capture(
    options: &CaptureOptions,
    sink: &mut dyn RecordSink,
) -> Result<Summary, CaptureError> {
    let object = programs::xsk()?;
    interface_index(&options.interface)?;
    let mode = attach_mode(options)?;
    check_privileges_for(Needs::AfXdp)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(session(object, options, mode, sink))
}

/// The XDP attach mode for the options, or the sentence saying why they
/// cannot work together.
pub fn attach_mode(options: &CaptureOptions) -> Result<XdpMode> {
    let af = &options.af_xdp;
    if af.bind == BindMode::ZeroCopy && options.mode == XdpMode::Skb {
        bail!(
            "AF_XDP zero-copy needs the XDP program in driver mode: use --xdp-mode drv (or auto)"
        );
    }
    if !af.consume {
        if options.mode == XdpMode::Skb {
            bail!(
                "frames can be re-injected into the host stack only with the XDP program in driver mode \
                 (in generic mode the kernel would run it again on every re-injected frame): \
                 use --xdp-mode drv, or --consume to keep the frames from the host stack"
            );
        }
        // Driver mode, named: `auto` could fall back to generic mode.
        return Ok(XdpMode::Drv);
    }
    if af.bind == BindMode::ZeroCopy {
        return Ok(XdpMode::Drv);
    }
    Ok(options.mode)
}

/// A socket's fd for tokio's readiness (the socket outlives it).
struct Readable(RawFd);

impl AsRawFd for Readable {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// What happens to each frame: re-injection, parsing, the flow update,
/// filtering and sampling (in the record program's order), and the hand
/// over to the sink.
struct Frames {
    flows: StateTables,
    counters: Counters,
    ipv4_only: bool,
    filter: Option<ml_sniffing_common::filter::Program>,
    sample_every: u32,
    rng: rand_chacha::ChaCha8Rng,
    clock: KernelClock,
    /// Records for the next `records` call (sinks that take batches).
    batch: Vec<PacketRecord>,
    /// The sink takes records one by one (`record_in_place`).
    in_place: bool,
    tap: Option<Tap>,
    reinjected: u64,
    reinject_failed: u64,
    /// Records handed to the sink (in place, or in batches handed over).
    delivered: u64,
    /// Records made once the sink was done (not handed over).
    left_unread: u64,
    /// Whether records and frames go to the sink (not once it is done or
    /// failed).
    deliver: bool,
    /// The sink said it is done.
    done: bool,
    /// The first error the sink returned while frames were handed over.
    error: Option<anyhow::Error>,
}

impl Frames {
    #[inline]
    fn frame(&mut self, data: &[u8], kernel_ns: u64, queue: u32, sink: &mut dyn RecordSink) {
        if let Some(tap) = &mut self.tap {
            match tap.write(data, checksum::partial(data)) {
                Ok(()) => self.reinjected += 1,
                Err(_) => self.reinject_failed += 1,
            }
        }
        // A frame without the program's timestamp (no metadata room) is
        // stamped now.
        let now = if kernel_ns != 0 {
            kernel_ns
        } else {
            monotonic_ns()
        };
        self.counters.seen += 1;
        let mut record = PacketRecord::default();
        let made = match parser::parse(data, Link::Ethernet, data.len(), &mut record) {
            Outcome::Ip => self.record(record, now, data.len()),
            Outcome::NotIp { .. } => {
                self.counters.not_ip += 1;
                None
            }
            Outcome::Malformed(_) => {
                self.counters.unparsed += 1;
                None
            }
        };
        if !self.deliver {
            self.left_unread += made.is_some() as u64;
            return;
        }
        let epoch_ns = self.clock.to_epoch_ns(now);
        let stamped = made.map(|mut r| {
            r.timestamp_ns = epoch_ns;
            r
        });
        let frame = CapturedFrame {
            data,
            timestamp_ns: epoch_ns,
            queue,
            record: stamped.as_ref(),
        };
        if let Err(e) = sink.frame(&frame) {
            self.fail(e);
            return;
        }
        match (made, stamped) {
            (Some(record), _) if self.in_place => {
                self.delivered += 1;
                match sink.record_in_place(&record, epoch_ns) {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => {
                        self.done = true;
                        self.deliver = false;
                    }
                    Err(e) => self.fail(e),
                }
            }
            (_, Some(stamped)) => self.batch.push(stamped),
            _ => {}
        }
    }

    /// The record program's steps after parsing; the record keeps the
    /// kernel time.
    #[inline]
    fn record(&mut self, mut record: PacketRecord, now: u64, len: usize) -> Option<PacketRecord> {
        if self.ipv4_only && record.ip_version != 4 {
            self.counters.filtered += 1;
            return None;
        }
        // The XDP program's filter, run here on the frames AF_XDP hands over.
        if self
            .filter
            .as_ref()
            .is_some_and(|p| !ml_sniffing_common::filter::matches(p, &record))
        {
            self.counters.filtered += 1;
            return None;
        }
        record.timestamp_ns = now;
        record.frame_len = len as u32;
        self.flows.count(&mut record);
        if self.sample_every > 1 && !self.rng.next_u32().is_multiple_of(self.sample_every) {
            self.counters.sampled_out += 1;
            return None;
        }
        self.counters.emitted += 1;
        Some(record)
    }

    fn fail(&mut self, e: anyhow::Error) {
        self.deliver = false;
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Hands the batch to a batch-taking sink (or counts it as left unread
    /// once the sink is done).
    fn hand_over(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        if self.deliver {
            self.delivered += self.batch.len() as u64;
            let flow = sink.records(&self.batch);
            self.batch.clear();
            if flow?.is_break() {
                self.done = true;
                self.deliver = false;
            }
        } else {
            self.left_unread += self.batch.len() as u64;
            self.batch.clear();
        }
        Ok(())
    }

    /// The counters as `Control` and the summary show them: frames the
    /// sockets dropped count as seen and as `ring_full`.
    fn counters(&self, lost: u64) -> Counters {
        let mut c = self.counters;
        c.seen += lost;
        c.ring_full = lost;
        c
    }
}

async fn session(
    object: &[u8],
    options: &CaptureOptions,
    mode: XdpMode,
    sink: &mut dyn RecordSink,
) -> Result<Summary, CaptureError> {
    // Signals are caught before attaching (as on the record path).
    let mut signals = Signals::new()?;

    let interface = options.interface.as_str();
    let af = &options.af_xdp;
    let ifindex = interface_index(interface)?;
    let queues = af.queues.resolve(interface, rx_queue_count(interface)?)?;
    let sizes = RingSizes::plan(queues.len() as u32, interface_mtu(interface)?, af.ring);

    let mut programs = XskPrograms::load(object)?;
    let mut sockets = Vec::with_capacity(queues.len());
    for &queue in &queues {
        let socket = QueueSocket::bind(interface, ifindex, queue, sizes, af.bind)?;
        programs.set_socket(queue, socket.fd())?;
        sockets.push(socket);
    }
    let tap = if af.consume {
        None
    } else {
        let tap = Tap::create(TAP_TEMPLATE)?;
        programs.attach_reinjection(tap.name(), ifindex)?;
        Some(tap)
    };
    // Last: frames flow only once every socket and the re-injection are ready.
    programs.attach(interface, mode, !af.consume && options.mode != XdpMode::Drv)?;
    let mut link = LinkWatch::start(interface, ifindex)?;

    let mut readiness = Vec::with_capacity(sockets.len());
    for socket in &sockets {
        // SAFETY: the socket's fd stays open and the same until `readiness`
        // is dropped, which happens below before `sockets` (and on early
        // returns too: locals drop in reverse order of declaration).
        let fd =
            unsafe { AsyncFd::register_with_interest(Readable(socket.fd()), Interest::READABLE) }
                .map_err(|e| e.into_parts().1)
                .context("cannot wait on the AF_XDP sockets")?;
        readiness.push(fd);
    }

    let mut frames = Frames {
        flows: StateTables::with_capacity(maps::FLOWS_MAX as usize),
        counters: Counters::default(),
        ipv4_only: options.ipv4_only,
        filter: options.filter,
        sample_every: options.sample_every,
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(0x6d6c_736e),
        clock: KernelClock::new(),
        batch: Vec::with_capacity(BUDGET as usize),
        in_place: sink.in_place(),
        tap,
        reinjected: 0,
        reinject_failed: 0,
        delivered: 0,
        left_unread: 0,
        deliver: true,
        done: false,
        error: None,
    };
    let mut config = Config {
        sample_every: options.sample_every,
        flags: if options.ipv4_only {
            Config::IPV4_ONLY
        } else {
            0
        },
    };
    let capacity: u64 = sockets.iter().map(|s| s.sizes().ring as u64).sum();
    let mut backlog = 0u64;

    // Every round drains each ring by at most BUDGET frames, so the tick
    // (status, sampling, the interface check) and the signals come at
    // least every TICK however busy the rings are.
    let ended: Result<StopReason> = async {
        let mut clock_read = Instant::now();
        let mut next_tick = Instant::now() + TICK;
        let mut lost = 0u64;
        let mut queues = queue_summaries(&sockets)?;
        let mut rounds = 0u64;
        loop {
            let waiting: u64 = sockets.iter().map(|s| s.waiting() as u64).sum();
            backlog = backlog.max(waiting);
            let mut got = 0;
            for socket in &mut sockets {
                got += drain(socket, &mut frames, sink)?;
                frames.hand_over(sink)?;
            }
            if frames.done {
                return Ok(StopReason::SinkDone);
            }
            let now = Instant::now();
            let due = now >= next_tick;
            if due {
                next_tick = now + TICK;
                if link.check() == LinkState::Gone {
                    return Ok(StopReason::InterfaceGone);
                }
                if clock_read.elapsed() >= KernelClock::REFRESH_EVERY {
                    frames.clock.refresh();
                    clock_read = Instant::now();
                }
                queues = queue_summaries(&sockets)?;
                lost = queues.iter().map(|q| q.socket.lost()).sum();
                // Chunks normally go back after each batch; this also wakes a
                // zero-copy driver that ran dry while nothing arrived.
                for socket in &mut sockets {
                    socket.refill();
                }
            }
            if got > 0 || due {
                // As on the record path: after every drain and on each tick.
                let mut control =
                    Control::for_frames(frames.counters(lost), config, backlog, capacity)
                        .with_queues(&queues);
                sink.tick(&mut control)?;
                config = control.config();
                backlog = control.backlog();
                frames.sample_every = config.sample_every;
            }
            if got == 0 {
                tokio::select! {
                    biased;
                    reason = signals.recv() => return Ok(reason),
                    _ = any_readable(&readiness) => {}
                    _ = tokio::time::sleep_until(next_tick.into()) => {}
                }
            } else {
                // Busy: look at the signals without waiting, and let the
                // runtime read its signal pipe now and then, and at every
                // tick (a slow sink makes rounds long).
                tokio::select! {
                    biased;
                    reason = signals.recv() => return Ok(reason),
                    _ = std::future::ready(()) => {}
                }
                rounds += 1;
                if due || rounds.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
    .await;
    drop(readiness);

    let (reason, mut error) = match ended {
        Ok(reason) => (reason, None),
        Err(e) => (StopReason::Failed, Some(e)),
    };
    if error.is_some() {
        // What is left is still re-injected, not handed to a failed sink.
        frames.deliver = false;
    }
    // No frame is redirected any more; those still in the rings are
    // re-injected, and handed over (for at most STOP_DRAIN) unless the sink
    // is done or failed.
    let detached = programs.detach_xdp();
    let deadline = Instant::now() + STOP_DRAIN;
    loop {
        if frames.deliver && Instant::now() >= deadline {
            // A slow sink's backlog is counted, not read (as on the record
            // path); frames are still re-injected.
            frames.deliver = false;
        }
        let mut got = 0;
        for socket in &mut sockets {
            match drain(socket, &mut frames, sink).and_then(|n| {
                frames.hand_over(sink)?;
                Ok(n)
            }) {
                Ok(n) => got += n,
                Err(e) => {
                    error.get_or_insert(e);
                    frames.deliver = false;
                    got += 1;
                }
            }
        }
        if got == 0 {
            break;
        }
    }
    if let Err(e) = detached.and_then(|()| programs.detach()) {
        error.get_or_insert(e);
    }
    let summary = (|| -> Result<Summary> {
        let queues = queue_summaries(&sockets)?;
        let counters = frames.counters(queues.iter().map(|q| q.socket.lost()).sum());
        let af_xdp = AfXdpSummary {
            queues,
            kernel: programs.counters()?,
            consume: af.consume,
            reinjected: frames.reinjected,
            reinject_failed: frames.reinject_failed,
            flows_evicted: frames.flows.evicted(),
        };
        Ok(Summary {
            reason: if error.is_some() {
                StopReason::Failed
            } else {
                reason
            },
            delivered: frames.delivered,
            left_unread: frames.left_unread,
            counters,
            af_xdp: Some(af_xdp),
        })
    })();
    let summary = match summary {
        Ok(s) => s,
        Err(e) => return Err(error.unwrap_or(e).into()),
    };
    if error.is_none() {
        let queues = summary.af_xdp.as_ref().map_or(&[][..], |a| &a.queues);
        let mut control =
            Control::for_frames(summary.counters, config, backlog, capacity).with_queues(queues);
        if let Err(e) = sink.tick(&mut control) {
            error = Some(e);
        }
    }
    if reason == StopReason::InterfaceGone && error.is_none() {
        error = Some(anyhow::anyhow!(link::vanished(link.name())));
    }
    match error {
        Some(e) => Err(CaptureError::with_summary(e, summary)),
        None => Ok(summary),
    }
}

/// Each queue's counters now (its socket's `XDP_STATISTICS`, read once).
fn queue_summaries(sockets: &[QueueSocket]) -> Result<Vec<QueueSummary>> {
    sockets
        .iter()
        .map(|socket| {
            Ok(QueueSummary {
                queue: socket.queue(),
                zero_copy: socket.zero_copy(),
                socket: SocketStats::from(socket.statistics()?),
                events: socket.events(),
            })
        })
        .collect()
}

/// Up to `BUDGET` frames of one socket through `frames`; the sink's
/// `frame` error, if any, ends the session.
#[inline]
fn drain(socket: &mut QueueSocket, frames: &mut Frames, sink: &mut dyn RecordSink) -> Result<u32> {
    let queue = socket.queue();
    let n = socket.receive(BUDGET, |data, ts| frames.frame(data, ts, queue, sink));
    match frames.error.take() {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// Resolves once any socket has frames waiting (clearing the readiness of
/// every socket found ready: the caller drains them all).
async fn any_readable(fds: &[AsyncFd<Readable>]) {
    poll_fn(|cx| {
        let mut ready = false;
        for fd in fds {
            if let Poll::Ready(Ok(mut guard)) = fd.poll_read_ready(cx) {
                guard.clear_ready();
                ready = true;
            }
        }
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
