//! Overload (`cargo xtask bench --only overload`, as root): the live
//! monitor under a flood it cannot keep up with. `ml-sniffing run --model
//! M` (release, a 1,000-tree Isolation Forest: about five times the
//! default's scoring work) on the capture end of the kernel benchmark's veth
//! pair, fed flat out by the live-frames generator (see `kernel.rs`), with
//! the default `--sample auto`.
//!
//! Each stderr line is timestamped as it arrives. Measured: the gaps
//! between status lines while the flood runs (target: one a second,
//! ±0.5 s), the time from the flood's start to the first sampling warning
//! (an upper bound of the time from the ring passing half full to sampling,
//! since the ring cannot fill before the flood starts; target 2 s), the
//! time from SIGINT, sent while the flood still runs, to the process's exit
//! (target 1 s), and whether every record is accounted for.
//!
//! Two runs: a flood of a fixed count, SIGINT once it is over (then every
//! frame sent is accounted for: seen by the program or dropped by the
//! interface before it; every packet seen has one outcome; every record
//! emitted was scored or counted as left in the ring); and a flood that
//! runs until the monitor has exited, SIGINT after a few seconds of it
//! (frames sent after the program detached reach no counter, so only the
//! monitor's own accounting is checked). Then the same SIGINT-during-flood
//! run of `sniff /dev/null`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ml_sniffing::capture::xdp;
use ml_sniffing_common::build::{FrameSpec, Transport};

use super::kernel::{drops, lab, number_after, objects, Generator, Lab};
use super::monitor::training_model;
use super::BenchOptions;
use crate::util;

/// Frames of the fixed-count flood.
const COUNT: u64 = 20_000_000;
/// How long the open-ended flood runs before SIGINT.
const BEFORE_SIGINT: Duration = Duration::from_secs(6);

pub fn run(_options: &BenchOptions) -> Result<()> {
    let (_, tx) = objects()?;
    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let binary = util::target_dir().join("release/ml-sniffing");
    let dir = tempfile::tempdir()?;
    let model = training_model(&binary, dir.path(), 1000)?;
    let frame = FrameSpec::new(
        "10.1.0.2".parse()?,
        "10.1.0.1".parse()?,
        Transport::Udp {
            src: 40_000,
            dst: 53,
        },
    )
    .payload(18)
    .build();
    let monitor = |iface: &str| -> Vec<String> {
        [
            "run",
            "--model",
            &model,
            "--quiet",
            "--xdp-mode",
            "drv",
            "-i",
            iface,
        ]
        .map(String::from)
        .to_vec()
    };
    let sniff = |iface: &str| -> Vec<String> {
        ["sniff", "/dev/null", "--xdp-mode", "drv", "-i", iface]
            .map(String::from)
            .to_vec()
    };
    println!(
        "`ml-sniffing run --model M --quiet --xdp-mode drv` (1,000 trees, `--sample auto`), \
         flooded flat out by the live-frames generator (66-byte UDP frame):\n"
    );
    println!("| run | sent | send rate (Mpps) | status lines | status gap min / median / max (s) | flood start -> sampling (s) | SIGINT -> exit (s) | seen | scored | left in ring | ring full | sampled out | last sampling | all accounted |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let fixed = one(&binary, &tx, &frame, monitor, Flood::Count(COUNT))?;
    fixed.row("fixed count, SIGINT after it")?;
    let open = one(&binary, &tx, &frame, monitor, Flood::UntilExit)?;
    open.row("SIGINT during the flood")?;
    let s = one(&binary, &tx, &frame, sniff, Flood::UntilExit)?;
    println!(
        "\n`ml-sniffing sniff /dev/null --xdp-mode drv`, SIGINT during the flood: {} frames sent \
         ({:.2} Mpps), exit {:.3} s after SIGINT; seen {}, rows written {}.\n",
        s.sent,
        s.send_mpps,
        s.exit_after_sigint.as_secs_f64(),
        number_after(&s.stdout, "packets seen"),
        number_after(&s.stdout, "Rows written"),
    );
    Ok(())
}

#[derive(Clone, Copy)]
enum Flood {
    /// This many frames, then SIGINT a second later.
    Count(u64),
    /// Until the capture has exited; SIGINT after `BEFORE_SIGINT`.
    UntilExit,
}

/// What one run gave.
struct Outcome {
    sent: u64,
    send_mpps: f64,
    /// Frames the capture interface dropped before the program, while the
    /// capture ran.
    iface_drops: u64,
    fixed_count: bool,
    /// Arrival of each stderr line, from the flood's start.
    lines: Vec<(Duration, String)>,
    /// When the flood ended (`Count`) or SIGINT was sent, from its start.
    flood_end: Duration,
    exit_after_sigint: Duration,
    stdout: String,
}

fn one(
    binary: &std::path::Path,
    tx: &[u8],
    frame: &[u8],
    args: impl FnOnce(&str) -> Vec<String>,
    flood: Flood,
) -> Result<Outcome> {
    let lab = lab()?;
    let mut child = lab
        .capture
        .command(binary)
        .args(args(&lab.link.a.name))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start ml-sniffing")?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let start = Arc::new(Mutex::new(Instant::now()));
    let stderr = child.stderr.take().context("no stderr")?;
    let (l, s) = (lines.clone(), start.clone());
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let at = s.lock().unwrap().elapsed();
            l.lock().unwrap().push((at, line));
        }
    });
    let mut stdout = child.stdout.take().context("no stdout")?;
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    lab.capture
        .wait_for_xdp(&lab.link.a.name, Duration::from_secs(20))?;
    let drops_before = drops(&lab)?;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let generator = start_flood(&lab, tx, frame, flood, stop.clone(), sent.clone())?;
    *start.lock().unwrap() = Instant::now();
    let flood_started = Instant::now();
    let flood_end = match flood {
        Flood::Count(_) => {
            let elapsed = join(generator)?;
            std::thread::sleep(Duration::from_secs(1));
            (elapsed, None)
        }
        Flood::UntilExit => {
            std::thread::sleep(BEFORE_SIGINT);
            (flood_started.elapsed(), Some(generator))
        }
    };
    let iface_drops_at_sigint = drops(&lab)? - drops_before;
    let sigint = Instant::now();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let exit_after_sigint = wait_exit(&mut child)?.duration_since(sigint);
    let send_elapsed = match flood_end.1 {
        Some(generator) => {
            stop.store(true, Ordering::Relaxed);
            join(generator)?
        }
        None => flood_end.0,
    };
    reader.join().ok();
    let stdout = out_reader.join().unwrap_or_default();
    let lines = std::mem::take(&mut *lines.lock().unwrap());
    if std::env::var_os("ML_SNIFFING_BENCH_VERBOSE").is_some() {
        for (at, l) in &lines {
            eprintln!("{:8.3} {l}", at.as_secs_f64());
        }
        eprintln!("{stdout}");
    }
    let sent = sent.load(Ordering::Relaxed);
    Ok(Outcome {
        sent,
        send_mpps: sent as f64 / send_elapsed.as_secs_f64() / 1e6,
        iface_drops: iface_drops_at_sigint,
        fixed_count: matches!(flood, Flood::Count(_)),
        lines,
        flood_end: flood_end.0,
        exit_after_sigint,
        stdout,
    })
}

/// Starts the generator on a thread in the generator namespace: `Count`
/// frames, or chunks until `stop`.
fn start_flood(
    lab: &Lab,
    tx: &[u8],
    frame: &[u8],
    flood: Flood,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Result<std::thread::JoinHandle<Result<Duration>>> {
    const CHUNK: u64 = 500_000;
    let ebpf = xdp::load_object(tx, "xdp_tx", |_| {})?;
    let gen_if = lab.link.b.name.clone();
    let idle = lab.idle.a.name.clone();
    let frame = frame.to_vec();
    Ok(lab.generator.spawn(move || {
        let ifindex = xdp::interface_index(&gen_if)?;
        let mut g = Generator {
            ebpf,
            ifindex,
            idle,
        };
        let started = Instant::now();
        match flood {
            Flood::Count(n) => {
                g.send(&frame, n, None)?;
                sent.store(n, Ordering::Relaxed);
            }
            Flood::UntilExit => {
                while !stop.load(Ordering::Relaxed) {
                    g.send(&frame, CHUNK, None)?;
                    sent.fetch_add(CHUNK, Ordering::Relaxed);
                }
            }
        }
        Ok(started.elapsed())
    }))
}

fn join(handle: std::thread::JoinHandle<Result<Duration>>) -> Result<Duration> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?
}

/// Polls until the child exits (1 ms steps); when it did.
fn wait_exit(child: &mut Child) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            let at = Instant::now();
            if !status.success() {
                bail!("ml-sniffing failed ({status})");
            }
            return Ok(at);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("ml-sniffing did not exit within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Outcome {
    /// Prints the run's Markdown row.
    fn row(&self, name: &str) -> Result<()> {
        let status: Vec<Duration> = self
            .lines
            .iter()
            .filter(|(at, l)| l.starts_with("status:") && *at <= self.flood_end)
            .map(|(at, _)| *at)
            .collect();
        let mut gaps: Vec<f64> = status
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        gaps.sort_by(f64::total_cmp);
        let gap = |q: f64| gaps.get(((gaps.len() as f64 - 1.0) * q) as usize).copied();
        let sampling = self
            .lines
            .iter()
            .find(|(_, l)| l.starts_with("warning: scoring cannot keep up"))
            .map(|(at, _)| format!("{:.2}", at.as_secs_f64()))
            .unwrap_or_else(|| "never".into());
        let last_sampling = self
            .lines
            .iter()
            .rev()
            .find_map(|(_, l)| l.split(" | ").find(|f| f.starts_with("sampling ")))
            .unwrap_or("none")
            .to_owned();
        // "Kernel: S packets seen, E records emitted, D dropped (ring
        // buffer full), X sampled out, U unparsed, N not IP, F filtered."
        let kernel: Vec<u64> = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Kernel: "))
            .context("no Kernel line in the summary")?
            .split(", ")
            .map(|p| p.split(' ').next().unwrap_or("0").parse().unwrap_or(0))
            .collect();
        let (seen, emitted, ring_full, sampled_out) = (kernel[0], kernel[1], kernel[2], kernel[3]);
        let records = number_after(&self.stdout, "Summary: ");
        let left = self
            .stdout
            .lines()
            .find(|l| l.contains("records were still in the ring buffer"))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or(0u64);
        let accounted = seen == kernel[1..].iter().sum::<u64>()
            && records + left == emitted
            && (!self.fixed_count || seen + self.iface_drops == self.sent);
        let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
        println!(
            "| {name} | {} | {:.2} | {} | {} / {} / {} | {sampling} | {:.3} | {seen} | {records} | {left} | {ring_full} | {sampled_out} | {last_sampling} | {} |",
            self.sent,
            self.send_mpps,
            status.len(),
            fmt(gap(0.0)),
            fmt(gap(0.5)),
            fmt(gap(1.0)),
            self.exit_after_sigint.as_secs_f64(),
            if accounted { "yes" } else { "NO" }
        );
        Ok(())
    }
}
