//! AF_XDP capture against the record path (`cargo xtask bench --only
//! afxdp`, as root).
//!
//! On the veth pair of the kernel benchmark, frames from the live-frames
//! generator (XDP_TX run by BPF_PROG_TEST_RUN in the peer namespace) reach
//! `ml-sniffing sniff /dev/null` (release build) on the capture end, once
//! in record mode (`--capture xdp`) and once in AF_XDP mode, with the same
//! sender settings; then AF_XDP with re-injection into the host stack (the
//! default). For each run: frames received by userspace per second of
//! sending, and every lost frame with the counter that holds it (the
//! capture interface's rx_dropped for frames lost before the program, the
//! record ring's `ring_full`, the AF_XDP sockets' drops). "all accounted"
//! checks that these add up to the frames sent, exactly. Set
//! `ML_SNIFFING_BENCH_VERBOSE=1` to see each run's whole report.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ml_sniffing::capture::xdp;

use super::kernel::{drops, frames, lab, objects, Generator};
use super::BenchOptions;
use crate::util;

/// Frames per run.
const COUNT: u64 = 5_000_000;

/// One run's settings.
struct Run {
    name: &'static str,
    /// `sniff` arguments after the interface.
    args: &'static [&'static str],
    /// Sender rate (frames/s), flat out when `None`.
    rate: Option<f64>,
    count: u64,
}

/// `afxdp`
pub fn run(_options: &BenchOptions) -> Result<()> {
    let (_, tx) = objects()?;
    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let binary = util::target_dir().join("release/ml-sniffing");
    let frame = frames().remove(0).1;
    const RECORD: &[&str] = &["--capture", "xdp", "--xdp-mode", "drv"];
    const CONSUME: &[&str] = &["--capture", "af-xdp", "--consume", "--xdp-mode", "drv"];
    const REINJECT: &[&str] = &["--capture", "af-xdp"];
    let run = |name, args, rate, count| Run {
        name,
        args,
        rate,
        count,
    };
    let runs = [
        run("record path", RECORD, Some(1e6), COUNT),
        run("AF_XDP, `--consume`", CONSUME, Some(1e6), COUNT),
        run("record path", RECORD, Some(2e6), COUNT),
        run("AF_XDP, `--consume`", CONSUME, Some(2e6), COUNT),
        run("record path", RECORD, None, COUNT),
        run("AF_XDP, `--consume`", CONSUME, None, COUNT),
        run("AF_XDP, re-injected", REINJECT, Some(2e5), 1_000_000),
        run("AF_XDP, re-injected", REINJECT, Some(5e5), 1_000_000),
        run("AF_XDP, re-injected", REINJECT, None, 1_000_000),
    ];
    program_cost(&frame)?;
    println!(
        "`ml-sniffing sniff /dev/null -i IF ...` (release) on the capture end of a veth pair, \
         frames from the live-frames generator (the 66-byte IPv4 TCP frame):\n"
    );
    println!("| run | sender | sent | send rate (Mpps) | received | received (M/s) | lost | loss | dropped before the program | ring full / socket drops | reader CPU-s | all accounted |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for run in &runs {
        one(&binary, &tx, &frame, run)?;
    }
    println!();
    Ok(())
}

fn one(binary: &std::path::Path, tx: &[u8], frame: &[u8], run: &Run) -> Result<()> {
    let lab = lab()?;
    let mut child = lab
        .capture
        .command(binary)
        .args(["sniff", "/dev/null", "-i", &lab.link.a.name])
        .args(run.args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start ml-sniffing")?;
    lab.capture
        .wait_for_xdp(&lab.link.a.name, Duration::from_secs(20))?;
    // The AF_XDP sockets are bound before the program is attached.
    std::thread::sleep(Duration::from_millis(200));
    let drops_before = drops(&lab)?;
    let ebpf = xdp::load_object(tx, "xdp_tx", |_| {})?;
    let gen_if = lab.link.b.name.clone();
    let idle = lab.idle.a.name.clone();
    let frame = frame.to_vec();
    let (count, rate) = (run.count, run.rate);
    let (elapsed, _) = lab.generator.enter(move || {
        let ifindex = xdp::interface_index(&gen_if)?;
        Generator {
            ebpf,
            ifindex,
            idle,
        }
        .send(&frame, count, rate)
    })?;
    // Let the reader catch up before stopping it.
    std::thread::sleep(Duration::from_millis(1000));
    let iface_drops = drops(&lab)? - drops_before;
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr)?;
    }
    let (status, cpu) = wait_with_cpu(child.id())?;
    if !status {
        bail!("ml-sniffing failed:\n{stdout}\n{stderr}");
    }
    let count_of = |label: &str| -> Option<u64> {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label)?.trim().strip_prefix(':'))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
    };
    if std::env::var_os("ML_SNIFFING_BENCH_VERBOSE").is_some() {
        eprintln!("{stdout}{stderr}");
    }
    let af_xdp = run.args.contains(&"af-xdp");
    let (received, kept_lost, before_program, accounted) = if af_xdp {
        let seen = count_of("frames seen by the program").unwrap_or(0);
        let received = count_of("frames received").unwrap_or(0);
        let socket_drops = count_of("frames dropped by the sockets").unwrap_or(0);
        let passed = count_of("frames on queues not captured").unwrap_or(0);
        let redirected = count_of("frames redirected to sockets").unwrap_or(0);
        // veth counts a frame its redirect could not place in a socket in
        // rx_dropped too: what is left was dropped before the program.
        let before = iface_drops.saturating_sub(socket_drops);
        let accounted = iface_drops >= socket_drops
            && seen + before == count
            && seen == redirected + passed
            && redirected == received + socket_drops;
        (received, socket_drops, before, accounted)
    } else {
        let seen = count_of("packets seen").unwrap_or(0);
        let rows = count_of("Rows written").unwrap_or(0);
        let ring_full = count_of("records dropped (ring full)").unwrap_or(0);
        let emitted = count_of("records emitted").unwrap_or(0);
        let accounted =
            seen + iface_drops == count && seen == emitted + ring_full && rows == emitted;
        (rows, ring_full, iface_drops, accounted)
    };
    let lost = count - received;
    println!(
        "| {} | {} | {count} | {:.2} | {received} | {:.2} | {lost} | {:.2} % | {before_program} | {kept_lost} | {:.2} | {} |",
        run.name,
        match rate {
            Some(r) => format!("paced {:.1} Mpps", r / 1e6),
            None => "flat out".into(),
        },
        count as f64 / elapsed.as_secs_f64() / 1e6,
        received as f64 / elapsed.as_secs_f64() / 1e6,
        100.0 * lost as f64 / count as f64,
        cpu.as_secs_f64(),
        if accounted { "yes" } else { "NO" },
    );
    Ok(())
}

/// The AF_XDP program's own cost per frame (BPF_PROG_TEST_RUN decides the
/// redirect without carrying it out, so the kernel's copy into the UMEM is
/// not included), with and without a socket for the frame's queue.
fn program_cost(frame: &[u8]) -> Result<()> {
    use ml_sniffing::capture::afxdp::kernel::XskPrograms;
    use ml_sniffing::capture::afxdp::queue::QueueSocket;
    use ml_sniffing::capture::afxdp::{BindMode, RingSizes};

    const REPEAT: u32 = 200_000;
    const ROUNDS: usize = 7;
    let xsk = std::fs::read(crate::ebpf::object_dir().join("ml-sniffing-xsk"))
        .context("reading the AF_XDP object")?;
    let lab = lab()?;
    let iface = lab.link.a.name.clone();
    let frame = frame.to_vec();
    let (no_socket, redirect) = lab.capture.enter(move || {
        let mut programs = XskPrograms::load(&xsk)?;
        let median = |programs: &mut XskPrograms, want: u32| -> Result<f64> {
            let mut per_round = Vec::new();
            for _ in 0..ROUNDS {
                let run = programs.test_run(&frame, REPEAT)?;
                if run.return_value != want {
                    bail!(
                        "the AF_XDP program returned {} instead of {want}",
                        run.return_value
                    );
                }
                per_round.push(run.duration.as_nanos() as f64);
            }
            per_round.sort_by(f64::total_cmp);
            Ok(per_round[ROUNDS / 2])
        };
        // XDP_PASS (2) without a socket, XDP_REDIRECT (4) with one.
        let no_socket = median(&mut programs, 2)?;
        let ifindex = xdp::interface_index(&iface)?;
        let socket = QueueSocket::bind(
            &iface,
            ifindex,
            0,
            RingSizes::plan(1, 1500, Some(64)),
            BindMode::Copy,
        )?;
        programs.set_socket(0, socket.fd())?;
        let redirect = median(&mut programs, 4)?;
        Ok((no_socket, redirect))
    })?;
    println!(
        "The AF_XDP program in the kernel, BPF_PROG_TEST_RUN, {REPEAT} runs x {ROUNDS} rounds \
         (median), ns/frame (the 66-byte frame; the copy into the UMEM is not included):\n"
    );
    println!("| queue without a socket (pass) | timestamp + redirect decided |");
    println!("|---|---|");
    println!("| {no_socket:.1} | {redirect:.1} |\n");
    Ok(())
}

/// Waits for the child `pid`; its success and the CPU time it used.
fn wait_with_cpu(pid: u32) -> Result<(bool, Duration)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a status word and a rusage struct.
    let rc = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!(
            "cannot wait for ml-sniffing: {}",
            std::io::Error::last_os_error()
        );
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok((ok, tv(usage.ru_utime) + tv(usage.ru_stime)))
}
