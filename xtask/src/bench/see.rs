//! The dashboard and the reports (`cargo xtask bench --only see`).
//!
//! Dashboard: `run --read` on the evaluation mixture (`cargo xtask eval`
//! writes it) with and without `--web`, alternating, while a client
//! follows the server-sent events and polls `/state.json`: the replay's
//! cost of the dashboard and how the server answers meanwhile. Then live
//! at 1 Mpps on a veth pair (as root): how long after an alert is raised
//! the page receives it.
//!
//! Reports: `detect --report` on the generated 1,000,000-row CSV (the time
//! the report adds, from `ML_SNIFFING_TIMINGS`), and headless Chromium
//! opening it against an empty page.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::BenchOptions;
use crate::util;

const ROUNDS: usize = 5;

pub fn run(options: &BenchOptions) -> Result<()> {
    util::cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "ml-sniffing",
        "--bin",
        "ml-sniffing",
    ])?;
    let bin = util::target_dir().join("release/ml-sniffing");
    dashboard(&bin)?;
    live(&bin)?;
    reports(&bin, options)
}

/// The live monitor on a veth pair at 1 Mpps (as root): ordinary frames,
/// then a SYN flood from a new source, then ordinary frames again, with a
/// dashboard client in the capture's namespace. The flood is there to
/// raise an alert (at the same rate as the ordinary source, only its start
/// stands out): what is measured is how soon the page shows it.
fn live(bin: &Path) -> Result<()> {
    use super::kernel::{lab, objects, Generator};
    use ml_sniffing::capture::xdp;
    use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("(live dashboard not measured: it needs root for its namespaces)");
        return Ok(());
    }
    const RATE: f64 = 1e6;
    let (_, tx) = objects()?;
    let ordinary = FrameSpec::new(
        "10.1.0.2".parse()?,
        "10.1.0.1".parse()?,
        Transport::Udp {
            src: 40_000,
            dst: 53,
        },
    )
    .payload(18)
    .build();
    let flood = FrameSpec::new(
        "10.66.0.9".parse()?,
        "10.1.0.1".parse()?,
        Transport::Tcp {
            src: 61_000,
            dst: 80,
            flags: tcp_flags::SYN,
        },
    )
    .build();
    let lab = lab()?;
    let web: SocketAddr = "127.0.0.1:8080".parse()?;
    let monitor = lab
        .capture
        .command(bin)
        .args(["run", "--quiet", "--xdp-mode", "drv", "-i"])
        .arg(&lab.link.a.name)
        .args(["--web", &web.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start ml-sniffing run")?;
    lab.capture
        .wait_for_xdp(&lab.link.a.name, Duration::from_secs(20))?;
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let done = Arc::clone(&done);
        lab.capture.spawn(move || follow(web, &done))
    };
    let ebpf = xdp::load_object(&tx, "xdp_tx", |_| {})?;
    let (gen_if, idle) = (lab.link.b.name.clone(), lab.idle.a.name.clone());
    let phases = [
        (ordinary.clone(), 3_000_000),
        (flood, 2_000_000),
        (ordinary, 2_000_000),
    ];
    let (sent, secs) = lab.generator.enter(move || {
        let ifindex = xdp::interface_index(&gen_if)?;
        let mut generator = Generator {
            ebpf,
            ifindex,
            idle,
        };
        let (mut sent, mut secs) = (0, 0.0);
        for (frame, count) in &phases {
            secs += generator.send(frame, *count, Some(RATE))?.0.as_secs_f64();
            sent += count;
        }
        Ok((sent, secs))
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    let out = monitor.wait_with_output()?;
    done.store(true, Ordering::Relaxed);
    let f = client.join().expect("the client thread")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("Summary:"))
        .unwrap_or("(no summary)");
    let mut delays: Vec<f64> = f.delays.values().cloned().collect();
    println!(
        "\nLive, `run --quiet --xdp-mode drv --web ADDR` (warm-up on the first 50,000 packets) on a veth pair: {sent} frames \
         at {:.2} Mpps (ordinary, a SYN flood from a new source, ordinary), a client in the \
         namespace following `/events` and fetching `/state.json` every 100 ms.\n\n\
         | snapshots | largest gap s | alerts shown | raised to shown, median s | max s | \
         `/state.json` max ms |\n|---|---|---|---|---|---|\n\
         | {} | {:.2} | {} | {:.2} | {:.2} | {:.1} |\n\nThe monitor's summary: {summary}",
        sent as f64 / secs / 1e6,
        f.snapshots,
        f.largest_gap,
        delays.len(),
        median(&mut delays),
        delays.iter().cloned().fold(0.0, f64::max),
        f.slowest_state * 1e3,
    );
    Ok(())
}

fn dashboard(bin: &Path) -> Result<()> {
    let dir = util::target_dir().join("eval/seed-1");
    let (mix, labels) = (dir.join("mix.pcap"), dir.join("labels.csv"));
    if !mix.exists() || !labels.exists() {
        println!(
            "(dashboard not measured: {} is missing; `cargo xtask eval` writes it)",
            mix.display()
        );
        return Ok(());
    }
    let labels = std::fs::read_to_string(&labels)?;
    let packets = labels.lines().count().saturating_sub(1);
    let warmup = labels.lines().filter(|l| l.contains(",train,")).count();
    println!(
        "`ml-sniffing run --read {} --warmup {warmup} --quiet [--web ADDR]`, {packets} packets, \
         {ROUNDS} rounds alternating; with `--web` a client follows `/events` and fetches \
         `/state.json` every 100 ms.\n",
        mix.display()
    );
    let (mut plain, mut web, mut metrics) = (Vec::new(), Vec::new(), Vec::new());
    let mut followed = Vec::new();
    let mut scrapes = Vec::new();
    for _ in 0..ROUNDS {
        plain.push(replay(bin, &mix, warmup, None)?.0);
        let (secs, seen) = replay(bin, &mix, warmup, Some(free_port()?))?;
        web.push(secs);
        followed.push(seen.context("the dashboard client saw nothing")?);
        let (secs, scraped) = scraped_replay(bin, &mix, warmup, free_port()?)?;
        metrics.push(secs);
        scrapes.push(scraped);
    }
    let rate = |s: f64| packets as f64 / s;
    println!(
        "| replay | median s | fastest s | slowest s | packets/s (median) |\n|---|---|---|---|---|"
    );
    for (name, runs) in [
        ("without `--web`", &mut plain),
        ("with `--web`", &mut web),
        ("with `--metrics`, scraped every second", &mut metrics),
    ] {
        let m = median(runs);
        println!(
            "| {name} | {m:.2} | {:.2} | {:.2} | {:.0} |",
            runs[0],
            runs[runs.len() - 1],
            rate(m)
        );
    }
    println!(
        "\nWith `--web` / without: {:.3}. With `--metrics` / without: {:.3} ({} scrapes \
         answered in all, the slowest in {:.1} ms).\n",
        median(&mut web) / median(&mut plain),
        median(&mut metrics) / median(&mut plain),
        scrapes.iter().map(|s: &(usize, f64)| s.0).sum::<usize>(),
        scrapes.iter().map(|s| s.1).fold(0.0, f64::max) * 1e3
    );
    let slowest = followed.iter().map(|f| f.slowest_state).fold(0.0, f64::max);
    println!(
        "The slowest `/state.json` answer during the replays: {:.1} ms. (A replay lasts about \
         two seconds, too short to time alerts by: the live run below does.)",
        slowest * 1e3
    );
    Ok(())
}

/// What a dashboard client saw during one replay.
#[derive(Default)]
struct Followed {
    snapshots: usize,
    /// Seconds between consecutive snapshots, the largest.
    largest_gap: f64,
    /// Per alert id: seconds from `raised` to the first snapshot showing it.
    delays: HashMap<u64, f64>,
    /// The slowest `/state.json` answer, seconds.
    slowest_state: f64,
}

fn free_port() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// One replay: its wall time, and with `web` what a client saw.
fn replay(
    bin: &Path,
    mix: &Path,
    warmup: usize,
    web: Option<SocketAddr>,
) -> Result<(f64, Option<Followed>)> {
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--read"])
        .arg(mix)
        .args(["--warmup", &warmup.to_string(), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(address) = web {
        cmd.args(["--web", &address.to_string()]);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().context("cannot start ml-sniffing run")?;
    let done = Arc::new(AtomicBool::new(false));
    let client = web.map(|address| {
        let done = Arc::clone(&done);
        std::thread::spawn(move || follow(address, &done))
    });
    let status = child.wait()?;
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    anyhow::ensure!(status.success(), "ml-sniffing run failed");
    let seen = match client {
        Some(c) => Some(c.join().expect("the client thread")?),
        None => None,
    };
    Ok((secs, seen))
}

/// A replay with `--metrics` while a scraper fetches `/metrics` every
/// second, as Prometheus would: its wall time, the scrapes answered and the
/// slowest answer.
fn scraped_replay(
    bin: &Path,
    mix: &Path,
    warmup: usize,
    address: SocketAddr,
) -> Result<(f64, (usize, f64))> {
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--read"])
        .arg(mix)
        .args(["--warmup", &warmup.to_string(), "--quiet"])
        .args(["--metrics", &address.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().context("cannot start ml-sniffing run")?;
    let done = Arc::new(AtomicBool::new(false));
    let scraper = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let (mut answered, mut slowest) = (0, 0.0f64);
            while !done.load(Ordering::Relaxed) {
                let asked = Instant::now();
                if let Ok(mut s) = connect(address, "/metrics") {
                    let mut body = String::new();
                    if s.read_to_string(&mut body).is_ok() && body.contains("ml_sniffing_records") {
                        answered += 1;
                        slowest = slowest.max(asked.elapsed().as_secs_f64());
                    }
                }
                // Every second, checking for the end meanwhile.
                while asked.elapsed() < Duration::from_secs(1) && !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            (answered, slowest)
        })
    };
    let status = child.wait()?;
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    anyhow::ensure!(status.success(), "ml-sniffing run --metrics failed");
    Ok((secs, scraper.join().expect("the scraper thread")))
}

fn connect(address: SocketAddr, path: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(address)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    Ok(s)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Follows `/events` until the monitor ends, with a poller of
/// `/state.json` beside it.
fn follow(address: SocketAddr, done: &AtomicBool) -> Result<Followed> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        match connect(address, "/events") {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline && !done.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e.context("cannot reach the dashboard")),
        }
    };
    std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            let mut slowest = 0.0f64;
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                if let Ok(mut s) = connect(address, "/state.json") {
                    let mut body = String::new();
                    if s.read_to_string(&mut body).is_ok() {
                        slowest = slowest.max(start.elapsed().as_secs_f64());
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            slowest
        });
        let mut f = Followed::default();
        let mut last: Option<Instant> = None;
        for line in BufReader::new(events).lines() {
            let Ok(line) = line else { break };
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            let (now, at) = (Instant::now(), unix_now());
            if let Some(l) = last {
                f.largest_gap = f.largest_gap.max((now - l).as_secs_f64());
            }
            last = Some(now);
            f.snapshots += 1;
            let snapshot: serde_json::Value = serde_json::from_str(data)?;
            for list in ["alerts_open", "alerts_recent"] {
                for a in snapshot[list].as_array().into_iter().flatten() {
                    if let (Some(id), Some(raised)) = (a["id"].as_u64(), a["raised"].as_f64()) {
                        f.delays.entry(id).or_insert(at - raised);
                    }
                }
            }
        }
        f.slowest_state = poller.join().expect("the poller thread");
        Ok(f)
    })
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn reports(bin: &Path, options: &BenchOptions) -> Result<()> {
    let dir = util::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join(format!("seed-format-{}.csv", options.rows));
    if !csv.exists() {
        eprintln!("generating {} ...", csv.display());
        super::detect::generate_csv(&csv, options.rows)?;
    }
    let report = dir.join("detect-report.html");
    let mut adds = Vec::new();
    for _ in 0..ROUNDS {
        let output = Command::new(bin)
            .arg("detect")
            .arg(&csv)
            .arg("--output")
            .arg(dir.join("detect-out.csv"))
            .arg("--report")
            .arg(&report)
            .env("ML_SNIFFING_TIMINGS", "1")
            .stdout(Stdio::null())
            .output()
            .context("cannot start ml-sniffing detect")?;
        anyhow::ensure!(output.status.success(), "detect --report failed");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let at = |stage: &str| -> Result<f64> {
            let line = stderr
                .lines()
                .find(|l| l.starts_with(&format!("timing: {stage} ")))
                .with_context(|| format!("no {stage} timing in: {stderr}"))?;
            let secs = line.split("done at").nth(1).context("no time")?;
            Ok(secs.split_whitespace().next().context("no time")?.parse()?)
        };
        adds.push(at("report")? - at("write")?);
    }
    println!(
        "\n`detect {} --output OUT --report FILE.html` ({} rows): the report adds a median {:.2} s \
         ({ROUNDS} runs); the file is {:.1} MB.\n",
        csv.display(),
        options.rows,
        median(&mut adds),
        std::fs::metadata(&report)?.len() as f64 / 1e6
    );
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    else {
        println!("(no Chromium here: opening the report was not timed)");
        return Ok(());
    };
    let empty = dir.join("empty.html");
    std::fs::write(&empty, "<!doctype html><title>empty</title>")?;
    let open = |page: &Path| -> Result<f64> {
        let profile = tempfile::tempdir()?;
        let start = Instant::now();
        let status = Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("file://{}", page.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "{browser} failed on {}", page.display());
        Ok(start.elapsed().as_secs_f64())
    };
    let (mut blank, mut full) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        blank.push(open(&empty)?);
        full.push(open(&report)?);
    }
    let (blank, full) = (median(&mut blank), median(&mut full));
    println!(
        "| headless {browser} `--dump-dom` | median s |\n|---|---|\n| an empty page | {blank:.2} |\n\
         | the report | {full:.2} |\n\nOpening the report beyond the browser's start: {:.2} s.",
        full - blank
    );
    Ok(())
}
