//! Offline captures: packets/s of the capture reader + shared parser + flow
//! table alone, of `sniff --read` into a CSV file and into /dev/null, with
//! tcpdump reading the same file beside them as the anchor.
//!
//! The capture is generated (seeded): a mix of IPv4 TCP/UDP/ICMP and IPv6
//! TCP/UDP over 20,000 flows, a tenth of them VLAN-tagged, classic pcap.

use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::BenchOptions;
use crate::util;

const FLOWS: usize = 20_000;
const RUNS: usize = 3;

pub fn run(options: &BenchOptions) -> Result<()> {
    let packets = options.packets;
    let dir = TempDir::new()?;
    let capture = dir.path.join("bench.pcap");
    let started = Instant::now();
    generate(&capture, packets, 42)?;
    let size = std::fs::metadata(&capture)?.len();
    println!(
        "Generated {packets} packets ({:.1} MB) in {:.1} s: {}\n",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        capture.display()
    );

    util::cargo(&[
        "build",
        "--release",
        "--locked",
        "--quiet",
        "-p",
        "ml-sniffing",
        "--bin",
        "ml-sniffing",
        "--example",
        "parse_capture",
    ])?;
    let release = util::target_dir().join("release");
    let bin = release.join("ml-sniffing");
    let parse = release.join("examples/parse_capture");
    let csv = dir.path.join("out.csv");
    let quarter = (packets / 4).max(1).to_string();

    println!("| what | command | best of {RUNS} | packets/s (wall) | packets/s (CPU) | peak RSS |");
    println!("|---|---|---|---|---|---|");
    let row = |what: &str, shown: &str, cmd: &mut dyn FnMut() -> Command, n: usize| match best_of(
        RUNS, cmd,
    ) {
        Ok(m) => println!(
            "| {what} | `{shown}` | {:.3} s | {} | {} | {:.1} MiB |",
            m.wall.as_secs_f64(),
            rate(n, m.wall),
            rate(n, m.cpu),
            m.max_rss_kib as f64 / 1024.0
        ),
        Err(e) => println!("| {what} | `{shown}` | failed: {e:#} | | | |"),
    };
    row(
        "(a) reader + parser + flow table, records discarded",
        "parse_capture FILE",
        &mut || {
            let mut c = Command::new(&parse);
            c.arg(&capture);
            c
        },
        packets,
    );
    row(
        "(b) sniff --read into a CSV file",
        "ml-sniffing sniff OUT.csv --read FILE",
        &mut || {
            let mut c = Command::new(&bin);
            c.arg("sniff").arg(&csv).arg("--read").arg(&capture);
            c
        },
        packets,
    );
    row(
        "(c) sniff --read into /dev/null (CSV formatted, not stored)",
        "ml-sniffing sniff /dev/null --read FILE",
        &mut || {
            let mut c = Command::new(&bin);
            c.args(["sniff", "/dev/null", "--read"]).arg(&capture);
            c
        },
        packets,
    );
    row(
        "(c') as (c), first quarter of the file only (memory check)",
        "ml-sniffing sniff /dev/null --read FILE -c N/4",
        &mut || {
            let mut c = Command::new(&bin);
            c.args(["sniff", "/dev/null", "--read"])
                .arg(&capture)
                .args(["-c", &quarter]);
            c
        },
        packets / 4,
    );
    if Command::new("tcpdump")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        row(
            "anchor: tcpdump copies the records",
            "tcpdump -r FILE -w /dev/null",
            &mut || {
                let mut c = Command::new("tcpdump");
                c.arg("-r").arg(&capture).args(["-w", "/dev/null"]);
                c
            },
            packets,
        );
        row(
            "anchor: tcpdump prints every packet",
            "tcpdump -nr FILE > /dev/null",
            &mut || {
                let mut c = Command::new("tcpdump");
                c.arg("-nr").arg(&capture);
                c
            },
            packets,
        );
    } else {
        println!("\ntcpdump not installed: anchor skipped");
    }
    println!(
        "\n1 core per run (single-threaded); packets/s (CPU) divides by user + system time. \
         Target for (a): >= 5,000,000 packets/s."
    );
    Ok(())
}

fn rate(n: usize, t: Duration) -> String {
    let per_s = n as f64 / t.as_secs_f64().max(1e-9);
    let mut digits = format!("{:.0}", per_s);
    let mut i = digits.len() as isize - 3;
    while i > 0 {
        digits.insert(i as usize, ',');
        i -= 3;
    }
    digits
}

/// Writes `packets` packets over `FLOWS` seeded flows.
fn generate(path: &Path, packets: usize, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let flows: Vec<Vec<u8>> = (0..FLOWS).map(|_| flow_frame(&mut rng)).collect();
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let header = PcapHeader {
        endianness: Endianness::Little,
        datalink: DataLink::ETHERNET,
        snaplen: 65_535,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, file), header)?;
    let mut ns: u64 = 1_700_000_000_000_000_000;
    for _ in 0..packets {
        ns += rng.gen_range(0..20_000);
        let frame = &flows[rng.gen_range(0..FLOWS)];
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(ns),
            frame.len() as u32,
            frame,
        ))?;
    }
    use std::io::Write;
    w.into_writer().flush()?;
    Ok(())
}

/// One flow's frame: 50% IPv4 TCP, 20% IPv4 UDP, 10% IPv4 ICMP, 20% IPv6
/// TCP or UDP; one in ten VLAN-tagged; 0 to 64 payload bytes.
fn flow_frame(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let kind = rng.gen_range(0..10);
    let (src, dst): (IpAddr, IpAddr) = if kind < 8 {
        (
            Ipv4Addr::from(rng.gen::<u32>()).into(),
            Ipv4Addr::from(rng.gen::<u32>()).into(),
        )
    } else {
        (
            Ipv6Addr::from(rng.gen::<u128>()).into(),
            Ipv6Addr::from(rng.gen::<u128>()).into(),
        )
    };
    let (sport, dport) = (rng.gen(), rng.gen());
    let transport = match kind {
        0..=4 | 8 => Transport::Tcp {
            src: sport,
            dst: dport,
            flags: tcp_flags::ACK | if kind == 0 { tcp_flags::PSH } else { 0 },
        },
        5 | 6 | 9 => Transport::Udp {
            src: sport,
            dst: dport,
        },
        _ => Transport::Icmp { kind: 8, code: 0 },
    };
    let mut spec = FrameSpec::new(src, dst, transport).payload(rng.gen_range(0..=64));
    if rng.gen_range(0..10) == 0 {
        spec = spec.vlan(rng.gen_range(1..4095));
    }
    spec.build()
}

struct Measure {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
}

/// Runs the command `runs` times (output discarded); the fastest wall time
/// with its CPU time, and the largest peak RSS.
fn best_of(runs: usize, make: &mut dyn FnMut() -> Command) -> Result<Measure> {
    let mut best: Option<Measure> = None;
    let mut max_rss = 0;
    for _ in 0..runs {
        let m = measure(make())?;
        max_rss = max_rss.max(m.max_rss_kib);
        if best.as_ref().is_none_or(|b| m.wall < b.wall) {
            best = Some(m);
        }
    }
    let mut best = best.context("no run")?;
    best.max_rss_kib = max_rss;
    Ok(best)
}

/// Wall time, CPU time and peak RSS of one child, from `wait4` (unlike
/// `measure::measure`, this also gives the CPU time, for rates per core).
fn measure(mut cmd: Command) -> Result<Measure> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the pid is our
    // child's, waited for exactly once (the Child handle is not waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if pid < 0 {
        bail!("waiting for {shown}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{shown} failed (status {status})");
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    Ok(Measure {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    })
}

/// A folder under the system temp dir, removed on every exit path (kept
/// when `ML_SNIFFING_BENCH_KEEP` is set, to profile with the same file).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("ml-sniffing-bench-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ML_SNIFFING_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
