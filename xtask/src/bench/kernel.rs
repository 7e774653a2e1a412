//! Kernel capture (`cargo xtask bench --only kernel`, as root):
//!
//! 1. The XDP program's in-kernel cost per packet: BPF_PROG_TEST_RUN with
//!    `repeat`, with parts of the program switched off through its CONFIG
//!    map (flow update, record output), against an empty program.
//! 2. On a veth pair between two namespaces: frames sent by the XDP
//!    "live frames" generator (a program returning XDP_TX, run with
//!    BPF_PROG_TEST_RUN from the peer namespace), paced at 1 Mpps and then
//!    flat out; how many arrive as records, and whether every loss is in a
//!    counter (the program's `ring_full`, the interface's drop counters).
//!    Also the whole `ml-sniffing sniff` (rows written to /dev/null) at
//!    1 Mpps.
//!
//! Objects come from `cargo xtask build-ebpf` (the same sources and flags
//! as the copy embedded in the binary).

#[path = "../../../tests/support/netns.rs"]
#[allow(dead_code)]
pub(super) mod netns;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions};
use ml_sniffing::capture::ringbuf::drain_ring;
use ml_sniffing::capture::xdp::{self, Loaded, XdpMode};
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use ml_sniffing_common::maps::{Config, Counters};
use ml_sniffing_common::record::PacketRecord;

use netns::{NetNs, VethPair};

use super::BenchOptions;
use crate::{ebpf, util};

/// The capture and generator objects, built fresh.
pub(super) fn objects() -> Result<(Vec<u8>, Vec<u8>)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the kernel benchmarks load XDP programs and create namespaces: run them as root");
    }
    ebpf::build()?;
    let capture = std::fs::read(ebpf::object_dir().join(ebpf::PACKAGE))
        .context("reading the capture object")?;
    let tx = std::fs::read(ebpf::object_dir().join("ml-sniffing-xdp-tx"))
        .context("reading the generator object")?;
    Ok((capture, tx))
}

/// `kernel: in-kernel cost`
pub fn cost(_options: &BenchOptions) -> Result<()> {
    let (capture, tx) = objects()?;
    in_kernel_cost(&capture, &tx)
}

/// `kernel: veth`
pub fn veth_rates(_options: &BenchOptions) -> Result<()> {
    let (capture, tx) = objects()?;
    veth(&capture, &tx)
}

/// `kernel: record path`
pub fn record_path(_options: &BenchOptions) -> Result<()> {
    let (capture, _) = objects()?;
    record_path_rates(&capture)?;
    csv_rows_rate()
}

/// The record path alone (program -> ring buffer -> reader), fed by
/// BPF_PROG_TEST_RUN on this CPU while a reader thread drains the ring on
/// the other: paced at 1 Mpps, then as fast as the program runs.
///
/// The program is attached (driver mode) to an idle veth while it runs:
/// each BPF_PROG_TEST_RUN of an XDP program that is not attached anywhere
/// adds it to the kernel's XDP dispatcher and removes it again, waiting for
/// an RCU grace period each time (milliseconds), which would throttle the
/// generator rather than measure the program.
fn record_path_rates(capture: &[u8]) -> Result<()> {
    const COUNT: u64 = 10_000_000;
    const CHUNK: u32 = 10_000;
    println!("Record path: the capture program run by BPF_PROG_TEST_RUN (one CPU), a reader thread draining the ring (the other):\n");
    println!("| run | records | wall rate (M/s) | writer M/CPU-s | reader M/CPU-s | emitted | read | ring full | all accounted |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let frame = frames().remove(0).1;
    for (name, rate) in [("paced 1 M/s", Some(1e6)), ("flat out", None)] {
        let lab = lab()?;
        let mut loaded = Loaded::new(capture, Config::default())?;
        let consumer = Consumer::start(loaded.take_ring()?);
        let iface = lab.link.a.name.clone();
        let mut attached = lab
            .capture
            .enter(move || loaded.attach(&iface, XdpMode::Drv))?;
        let loaded = attached.loaded();
        let start = Instant::now();
        let cpu_start = thread_cpu();
        let mut sent = 0u64;
        while sent < COUNT {
            loaded.test_run(&frame, CHUNK)?;
            sent += CHUNK as u64;
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64(sent as f64 / rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let elapsed = start.elapsed();
        let writer_cpu = thread_cpu() - cpu_start;
        std::thread::sleep(Duration::from_millis(300));
        let (read, reader_cpu) = consumer.finish();
        let c = loaded.counters()?;
        let accounted = c.seen == COUNT && c.emitted + c.ring_full == COUNT && read == c.emitted;
        println!(
            "| {name} | {COUNT} | {:.2} | {:.2} | {:.2} | {} | {read} | {} | {} |",
            COUNT as f64 / elapsed.as_secs_f64() / 1e6,
            COUNT as f64 / writer_cpu.as_secs_f64() / 1e6,
            read as f64 / reader_cpu.as_secs_f64() / 1e6,
            c.emitted,
            c.ring_full,
            if accounted { "yes" } else { "NO" }
        );
    }
    println!();
    Ok(())
}

/// How fast records become CSV rows (what `sniff` does with each record).
fn csv_rows_rate() -> Result<()> {
    use ml_sniffing::capture::csv_rows::CsvRowWriter;
    const ROWS: u64 = 2_000_000;
    let mut record = PacketRecord {
        timestamp_ns: 1_712_589_010_595_727_000,
        src_addr: ml_sniffing_common::record::addr_bytes("10.0.0.2".parse()?),
        dst_addr: ml_sniffing_common::record::addr_bytes("10.0.0.1".parse()?),
        ip_version: 4,
        protocol: 6,
        frame_len: 66,
        src_port: 40000,
        dst_port: 443,
        ttl: 64,
        tcp_flags: 0x10,
        ..Default::default()
    };
    let mut rows = CsvRowWriter::new(std::io::BufWriter::new(std::io::sink()))?;
    let start = thread_cpu();
    for i in 0..ROWS {
        record.flow_packets = i;
        record.flow_bytes = i * 66;
        record.timestamp_ns += 1_000;
        rows.write(&record)?;
    }
    let elapsed = thread_cpu() - start;
    println!(
        "CSV rows (`capture::csv_rows`, IPv4 TCP records, to a sink): {:.2} M rows per CPU-second, {:.0} ns/row\n",
        ROWS as f64 / elapsed.as_secs_f64() / 1e6,
        elapsed.as_nanos() as f64 / ROWS as f64
    );
    Ok(())
}

pub(super) fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    vec![
        (
            "IPv4 TCP ACK, 66 B",
            FrameSpec::new(
                ip("10.0.0.2"),
                ip("10.0.0.1"),
                Transport::Tcp {
                    src: 40000,
                    dst: 443,
                    flags: tcp_flags::ACK,
                },
            )
            .build(),
        ),
        (
            "VLAN IPv6 + ext. header UDP, 130 B",
            FrameSpec::new(
                ip("2001:db8::2"),
                ip("2001:db8::1"),
                Transport::Udp { src: 5353, dst: 53 },
            )
            .vlan(42)
            .ipv6_extension(60)
            .payload(16)
            .build(),
        ),
    ]
}

/// Average ns per run over `rounds` rounds of `repeat` runs (median round).
fn ns_per_packet(
    mut run: impl FnMut(u32) -> Result<Duration>,
    repeat: u32,
    rounds: usize,
) -> Result<f64> {
    let mut per_round = Vec::new();
    for _ in 0..rounds {
        per_round.push(run(repeat)?.as_nanos() as f64);
    }
    per_round.sort_by(f64::total_cmp);
    Ok(per_round[per_round.len() / 2])
}

fn in_kernel_cost(capture: &[u8], tx: &[u8]) -> Result<()> {
    // Fewer runs per round than the ring holds (64 MiB / 272 B), drained
    // between rounds, so the output path measured is the one that succeeds.
    const REPEAT: u32 = 200_000;
    const ROUNDS: usize = 7;
    println!(
        "In-kernel cost, BPF_PROG_TEST_RUN, {REPEAT} runs x {ROUNDS} rounds (median), ns/packet:\n"
    );
    println!(
        "| frame | empty program | parse | parse + flow | parse + flow + behaviour | parse + record | parse + flow + record | everything (flow, behaviour, record) | parse + flow record (`run --flows` live) | everything + flow record |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut empty = xdp::load_object(tx, "xdp_tx", |_| {})?;
    let empty_prog = xdp::program_mut(&mut empty, "xdp_tx")?;
    // Loaded with flow records on, so their map has its full size.
    let with_records = Config {
        sample_every: 0,
        flags: Config::FLOW_RECORDS,
    };
    let mut loaded = Loaded::new(capture, with_records)?;
    let mut ring = loaded.take_ring()?;
    let records_only = Config::FLOW_RECORDS | Config::FLOW_RECORDS_ONLY | Config::SKIP_FLOW;
    let variants = [
        Config::SKIP_FLOW | Config::SKIP_OUTPUT,
        Config::SKIP_OUTPUT | Config::SKIP_BEHAVIOUR,
        Config::SKIP_OUTPUT,
        Config::SKIP_FLOW,
        Config::SKIP_BEHAVIOUR,
        0,
        records_only,
        Config::FLOW_RECORDS,
    ];
    for (name, frame) in frames() {
        let base = ns_per_packet(
            |repeat| {
                let mut o = TestRunOptions::new();
                o.data_in = Some(&frame);
                o.repeat = repeat;
                Ok(empty_prog.test_run(o)?.duration)
            },
            REPEAT,
            ROUNDS,
        )?;
        let mut cells = vec![format!("{base:.1}")];
        for flags in variants {
            loaded.configure(Config {
                sample_every: 0,
                flags,
            })?;
            let before = loaded.counters()?;
            let ns = ns_per_packet(
                |repeat| {
                    let d = loaded.test_run(&frame, repeat)?.duration;
                    let mut sink = Vec::new();
                    let mut bad = 0;
                    while drain_ring(&mut ring, &mut sink, 1 << 16, &mut bad) > 0 {
                        sink.clear();
                    }
                    Ok(d)
                },
                REPEAT,
                ROUNDS,
            )?;
            let after = loaded.counters()?;
            if after.ring_full != before.ring_full {
                bail!("the ring buffer filled during the measurement: the figures would be wrong");
            }
            cells.push(format!("{ns:.1}"));
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!();
    filter_cost(&mut loaded, &mut ring, REPEAT, ROUNDS)
}

/// What a live filter adds to parsing (`SKIP_FLOW | SKIP_OUTPUT`, so the
/// difference is the filter's alone): a one-test filter, and one whose ten
/// tests all run before it lets the frame through.
fn filter_cost(
    loaded: &mut Loaded,
    ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
    repeat: u32,
    rounds: usize,
) -> Result<()> {
    use ml_sniffing::capture::live_filter::compile;
    const TEN: &str = "not host 192.0.2.1 and not host 192.0.2.2 and not host 192.0.2.3 \
                       and not net 198.18.0.0/15 and not port 9 and not portrange 10-20 \
                       and not ip proto 47 and not src net 203.0.113.0/24 and (ip or ip6) \
                       and (tcp or udp or icmp)";
    println!("A live filter's cost on top of parsing (ns/packet, same runs):\n");
    println!("| frame | parse | + `ip or ip6` (1 test) | + ten tests | filter cost (ten tests) |");
    println!("|---|---|---|---|---|");
    for (name, frame) in frames() {
        let mut cells = Vec::new();
        for expression in [None, Some("ip or ip6"), Some(TEN)] {
            let mut flags = Config::SKIP_FLOW | Config::SKIP_OUTPUT;
            if let Some(e) = expression {
                loaded.set_filter(&compile(e)?)?;
                flags |= Config::FILTER;
            }
            loaded.configure(Config {
                sample_every: 0,
                flags,
            })?;
            let ns = ns_per_packet(
                |repeat| {
                    let d = loaded.test_run(&frame, repeat)?.duration;
                    let mut sink = Vec::new();
                    let mut bad = 0;
                    while drain_ring(ring, &mut sink, 1 << 16, &mut bad) > 0 {
                        sink.clear();
                    }
                    Ok(d)
                },
                repeat,
                rounds,
            )?;
            cells.push(ns);
        }
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            cells[0],
            cells[1],
            cells[2],
            cells[2] - cells[0]
        );
    }
    println!();
    Ok(())
}

/// The generator: `xdp_tx` run in live-frames mode from inside `ns`, out
/// of `iface` (its index there).
pub(super) struct Generator {
    pub(super) ebpf: aya::Ebpf,
    pub(super) ifindex: u32,
    /// An idle interface in the generator's namespace the generator is
    /// attached to while it runs (see `record_path_rates` on the dispatcher).
    pub(super) idle: String,
}

impl Generator {
    /// Sends `count` copies of `frame`, in chunks, paced to `rate` packets
    /// per second when given. Returns the wall time. Must run on a thread
    /// inside the generator's namespace (the kernel looks the interface up
    /// there).
    pub(super) fn send(
        &mut self,
        frame: &[u8],
        count: u64,
        rate: Option<f64>,
    ) -> Result<(Duration, Duration)> {
        self.send_sequence(&[(frame, count)], rate)
    }

    /// Sends each frame of `sequence` as many times as it says, in order,
    /// paced to `rate` over the whole sequence when given. Returns the wall
    /// and CPU time.
    pub(super) fn send_sequence(
        &mut self,
        sequence: &[(&[u8], u64)],
        rate: Option<f64>,
    ) -> Result<(Duration, Duration)> {
        const CHUNK: u64 = 10_000;
        let program = xdp::program_mut(&mut self.ebpf, "xdp_tx")?;
        let idle = xdp::interface_index(&self.idle)?;
        let link = program.attach_to_if_index(idle, aya::programs::XdpMode::Driver)?;
        let start = Instant::now();
        let cpu_start = thread_cpu();
        let mut sent = 0;
        for (frame, count) in sequence {
            // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
            // rx_queue_index, egress_ifindex.
            let ctx: Vec<u8> = [0, frame.len() as u32, 0, self.ifindex, 0, 0]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect();
            let mut left = *count;
            while left > 0 {
                let n = CHUNK.min(left);
                let mut o = TestRunOptions::new();
                o.data_in = Some(frame);
                o.ctx_in = Some(&ctx);
                o.repeat = n as u32;
                o.attrs = TestRunAttrs::new().xdp_live_frames(64);
                program.test_run(o).context("live-frames test run")?;
                sent += n;
                left -= n;
                if let Some(rate) = rate {
                    let due = Duration::from_secs_f64(sent as f64 / rate);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
        }
        let times = (start.elapsed(), thread_cpu() - cpu_start);
        program.detach(link)?;
        Ok(times)
    }
}

/// CPU time the calling thread has used (user + system), which on a
/// shared machine says more about capacity than wall time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec; the clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Drains the ring on its own thread, counting records, until stopped;
/// polls every `DRAIN_EVERY` when empty, as `sniff` does.
struct Consumer {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Duration>>,
}

impl Consumer {
    fn start(mut ring: aya::maps::RingBuf<aya::maps::MapData>) -> Consumer {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let mut batch: Vec<PacketRecord> = Vec::with_capacity(4096);
            let mut bad = 0;
            loop {
                batch.clear();
                let n = drain_ring(&mut ring, &mut batch, 4096, &mut bad);
                r.fetch_add(n as u64, Ordering::Relaxed);
                if n == 0 {
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(ml_sniffing::capture::live::DRAIN_EVERY);
                }
            }
            thread_cpu()
        });
        Consumer {
            stop,
            received,
            thread: Some(thread),
        }
    }

    /// Records read, and the reader's CPU time.
    fn finish(mut self) -> (u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let cpu = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (self.received.load(Ordering::Relaxed), cpu)
    }
}

/// Field order is drop order: the pairs go before the namespaces.
pub(super) struct Lab {
    pub(super) link: VethPair,
    /// Both ends in the generator's namespace, idle.
    pub(super) idle: VethPair,
    pub(super) capture: NetNs,
    pub(super) generator: NetNs,
}

pub(super) fn lab() -> Result<Lab> {
    let capture = NetNs::new("bcap")?;
    let generator = NetNs::new("bgen")?;
    let link = VethPair::new(&capture, &generator)?;
    let idle = VethPair::new(&generator, &generator)?;
    Ok(Lab {
        link,
        idle,
        capture,
        generator,
    })
}

/// Frames lost on the way to the program: the capture interface's
/// rx_dropped (veth also shows each of them as the peer's tx_dropped, so
/// only one side is counted).
pub(super) fn drops(lab: &Lab) -> Result<u64> {
    lab.capture.if_stat(&lab.link.a.name, "rx_dropped")
}

fn veth(capture: &[u8], tx: &[u8]) -> Result<()> {
    let frame = frames().remove(0).1;
    println!("On a veth pair (capture attached in driver mode), frames from the live-frames generator:\n");
    println!("| run | ring | sent | wall rate (Mpps) | sender M/CPU-s | seen by program | records read | ring full | iface drops | all accounted |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let parse_only = Config {
        sample_every: 0,
        flags: Config::SKIP_FLOW | Config::SKIP_OUTPUT,
    };
    for (name, count, rate, ring_bytes, consume, config) in [
        (
            "paced 1 Mpps",
            5_000_000u64,
            Some(1e6),
            64u32 << 20,
            true,
            Config::default(),
        ),
        (
            "flat out",
            5_000_000,
            None,
            64 << 20,
            true,
            Config::default(),
        ),
        (
            "flat out, program parses only",
            5_000_000,
            None,
            64 << 20,
            false,
            parse_only,
        ),
        (
            "flat out, small ring, reader stalled",
            1_000_000,
            None,
            1 << 20,
            false,
            Config::default(),
        ),
    ] {
        let lab = lab()?;
        let loaded = Loaded::with_ring_size(capture, config, ring_bytes)?;
        let iface = lab.link.a.name.clone();
        let mut attached = lab.capture.enter(move || {
            let mut loaded = loaded;
            let ring = loaded.take_ring()?;
            Ok((loaded.attach(&iface, XdpMode::Drv)?, ring))
        })?;
        let ring = attached.1;
        let consumer = consume.then(|| Consumer::start(ring));
        let ebpf = xdp::load_object(tx, "xdp_tx", |_| {})?;
        let gen_if = lab.link.b.name.clone();
        let idle = lab.idle.a.name.clone();
        let drops_before = drops(&lab)?;
        let frame_c = frame.clone();
        let (elapsed, cpu) = lab.generator.enter(move || {
            let ifindex = xdp::interface_index(&gen_if)?;
            let mut g = Generator {
                ebpf,
                ifindex,
                idle,
            };
            g.send(&frame_c, count, rate)
        })?;
        // Let the reader catch up before counting.
        std::thread::sleep(Duration::from_millis(500));
        let received = consumer.map_or(0, |c| c.finish().0);
        let counters: Counters = attached.0.counters()?;
        attached.0.detach()?;
        let lost_before = drops(&lab)? - drops_before;
        let accounted = counters.seen + lost_before == count
            && (config.flags != 0 || counters.outcomes() == counters.seen)
            && (!consume || received == counters.emitted);
        println!(
            "| {name} | {} MiB | {count} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            ring_bytes >> 20,
            count as f64 / elapsed.as_secs_f64() / 1e6,
            count as f64 / cpu.as_secs_f64() / 1e6,
            counters.seen,
            if consume {
                received.to_string()
            } else {
                "(no reader)".into()
            },
            counters.ring_full,
            lost_before,
            if accounted { "yes" } else { "NO" },
        );
    }
    println!();
    sniff_end_to_end(&frame, tx)
}

/// What one end-to-end run gave.
pub(super) struct EndToEnd {
    /// The rate the generator reached, in Mpps.
    pub send_mpps: f64,
    /// The reader's stdout and stderr.
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ml-sniffing ARGS` (release build; `args(iface)` gives the
/// arguments for the capture interface) in a capture namespace, sends it
/// `count` copies of `frame` from the live-frames generator, paced to
/// `rate` when given, then stops it with SIGTERM and returns its report.
pub(super) fn end_to_end(
    args: impl FnOnce(&str) -> Vec<String>,
    frame: &[u8],
    count: u64,
    rate: Option<f64>,
) -> Result<EndToEnd> {
    end_to_end_sequence(args, vec![(frame.to_vec(), count)], rate)
}

/// As [`end_to_end`], sending each frame of `sequence` as many times as it
/// says, in order.
pub(super) fn end_to_end_sequence(
    args: impl FnOnce(&str) -> Vec<String>,
    sequence: Vec<(Vec<u8>, u64)>,
    rate: Option<f64>,
) -> Result<EndToEnd> {
    let count: u64 = sequence.iter().map(|(_, n)| n).sum();
    let (_, tx) = objects()?;
    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let binary = util::root().join("target/release/ml-sniffing");
    let lab = lab()?;
    let reader = lab
        .capture
        .command(&binary)
        .args(args(&lab.link.a.name))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start ml-sniffing")?;
    lab.capture
        .wait_for_xdp(&lab.link.a.name, Duration::from_secs(20))?;
    let ebpf = xdp::load_object(&tx, "xdp_tx", |_| {})?;
    let gen_if = lab.link.b.name.clone();
    let idle = lab.idle.a.name.clone();
    let (elapsed, _) = lab.generator.enter(move || {
        let ifindex = xdp::interface_index(&gen_if)?;
        let sequence: Vec<(&[u8], u64)> =
            sequence.iter().map(|(f, n)| (f.as_slice(), *n)).collect();
        Generator {
            ebpf,
            ifindex,
            idle,
        }
        .send_sequence(&sequence, rate)
    })?;
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(reader.id() as i32, libc::SIGTERM) };
    let out = reader
        .wait_with_output()
        .context("collecting the reader's report")?;
    Ok(EndToEnd {
        send_mpps: count as f64 / elapsed.as_secs_f64() / 1e6,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The first number after `label` in `report`, or 0.
pub(super) fn number_after(report: &str, label: &str) -> u64 {
    report
        .split(label)
        .nth(1)
        .and_then(|rest| {
            rest.trim_start_matches([':', ' '])
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `ml-sniffing sniff /dev/null` (release build) as the reader, at 1 Mpps.
fn sniff_end_to_end(frame: &[u8], _tx: &[u8]) -> Result<()> {
    const COUNT: u64 = 5_000_000;
    let run = end_to_end(
        |iface| {
            ["sniff", "/dev/null", "--xdp-mode", "drv", "-i", iface]
                .map(String::from)
                .to_vec()
        },
        frame,
        COUNT,
        Some(1e6),
    )?;
    let report = run.stdout;
    println!("`ml-sniffing sniff /dev/null --xdp-mode drv` as the reader, paced 1 Mpps:\n");
    println!("| sent | send rate (Mpps) | seen | rows written | ring full |");
    println!("|---|---|---|---|---|");
    println!(
        "| {COUNT} | {:.2} | {} | {} | {} |\n",
        run.send_mpps,
        number_after(&report, "packets seen"),
        number_after(&report, "Rows written"),
        number_after(&report, "records dropped (ring full)"),
    );
    Ok(())
}
