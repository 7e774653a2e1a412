//! AF_XDP capture (`sniff --capture af-xdp`, `capture::afxdp`): in network
//! namespaces and veth pairs these tests create (RAII guards remove them on
//! every path).
//!
//! Frames are built by `ml_sniffing_common::build` and sent whole from the
//! peer namespace through an AF_PACKET socket. Records made from AF_XDP
//! frames are compared with those of the record path: with `sniff` in both
//! modes on the same frames, and frame by frame with the record program
//! itself (BPF_PROG_TEST_RUN). The privileged tests need root (CI runs as
//! root) and the eBPF objects built into the binary; they live in
//! `privileged` so `cargo xtask test` runs them one at a time.

mod support;

use assert_cmd::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");

/// Flag combinations that cannot work are refused with one sentence before
/// anything needs root or the kernel.
#[test]
fn impossible_flag_combinations_are_one_sentence() {
    for (args, message) in [
        (
            &["--consume"][..],
            "--consume applies to AF_XDP capture only: add --capture af-xdp",
        ),
        (
            &["--queues", "0"],
            "--queues applies to AF_XDP capture only: add --capture af-xdp",
        ),
        (
            &["--write-pcap", "x.pcapng"],
            "--write-pcap needs --capture af-xdp: the record path never sees whole frames",
        ),
        (
            &["--capture", "af-xdp", "--xdp-mode", "skb"],
            "frames can be re-injected into the host stack only with the XDP program in driver mode \
             (in generic mode the kernel would run it again on every re-injected frame): \
             use --xdp-mode drv, or --consume to keep the frames from the host stack",
        ),
        (
            &["--capture", "af-xdp", "--consume", "--xdp-mode", "skb", "--af-xdp-bind", "zero-copy"],
            "AF_XDP zero-copy needs the XDP program in driver mode: use --xdp-mode drv (or auto)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args(["sniff", "-", "-i", "lo"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("Error: {message}\n"),
            "{args:?}"
        );
        assert!(!dir.path().join("x.pcapng").exists());
    }
    let out = Command::new(BIN)
        .args([
            "sniff",
            "out.csv",
            "--read",
            "x.pcap",
            "--capture",
            "af-xdp",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: --capture and the AF_XDP options apply to live captures, not to --read\n"
    );
}

mod privileged {
    use std::collections::HashMap;
    use std::net::{IpAddr, UdpSocket};
    use std::ops::ControlFlow;
    use std::path::Path;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use anyhow::Result;
    use ml_sniffing::capture::afxdp::Queues;
    use ml_sniffing::capture::live::{
        self, CaptureMode, CaptureOptions, CapturedFrame, RecordSink,
    };
    use ml_sniffing::capture::pcap::CaptureReader;
    use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
    use ml_sniffing_common::record::PacketRecord;

    use crate::support::netns::{NetNs, VethPair};
    use crate::support::process::{describe, ChildGuard};
    use crate::support::raw::RawSocket;
    use crate::support::report::{counter, read_rows, seconds_to_us};
    use crate::support::root::can_run_kernel_tests;

    use super::BIN;

    const WAIT: Duration = Duration::from_secs(20);
    /// The TAP devices AF_XDP captures create are named `mlsxr<N>`.
    const TAP_PREFIX: &str = "mlsxr";

    /// A capture namespace and a peer namespace joined by a veth pair,
    /// `10.99.0.1/24` on the capture end and `10.99.0.2/24` on the peer's,
    /// each knowing the other's MAC address (so that IP traffic flows
    /// without ARP, whose requests `--consume` would swallow). Field order
    /// is drop order: the pair goes before the namespaces.
    struct Lab {
        link: VethPair,
        capture: NetNs,
        peer: NetNs,
    }

    impl Lab {
        fn new() -> Lab {
            Lab::with_queues(1)
        }

        fn with_queues(queues: u32) -> Lab {
            let capture = NetNs::new("xcap").unwrap();
            let peer = NetNs::new("xpeer").unwrap();
            let link = VethPair::with_queues(&capture, &peer, queues).unwrap();
            capture
                .ip(&["addr", "add", "10.99.0.1/24", "dev", &link.a.name])
                .unwrap();
            peer.ip(&["addr", "add", "10.99.0.2/24", "dev", &link.b.name])
                .unwrap();
            let lab = Lab {
                link,
                capture,
                peer,
            };
            let mac_a = lab.mac(&lab.capture, &lab.link.a.name);
            let mac_b = lab.mac(&lab.peer, &lab.link.b.name);
            lab.capture
                .ip(&[
                    "neigh",
                    "replace",
                    "10.99.0.2",
                    "lladdr",
                    &mac_b,
                    "dev",
                    &lab.link.a.name,
                ])
                .unwrap();
            lab.peer
                .ip(&[
                    "neigh",
                    "replace",
                    "10.99.0.1",
                    "lladdr",
                    &mac_a,
                    "dev",
                    &lab.link.b.name,
                ])
                .unwrap();
            lab
        }

        fn mac(&self, ns: &NetNs, iface: &str) -> String {
            let out = std::process::Command::new("ip")
                .args(["-n", ns.name(), "-j", "link", "show", "dev", iface])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v[0]["address"].as_str().unwrap().to_owned()
        }

        fn iface(&self) -> &str {
            &self.link.a.name
        }

        fn sender(&self) -> RawSocket {
            let peer_if = self.link.b.name.clone();
            self.peer.enter(move || RawSocket::bind(&peer_if)).unwrap()
        }

        fn sniff(&self, args: &[&str]) -> ChildGuard {
            let mut cmd = self.capture.command(BIN);
            cmd.arg("sniff").args(args);
            ChildGuard::spawn(&mut cmd).unwrap()
        }

        /// The sockets are bound and the TAP device made before the program
        /// is attached: once it is, the capture is ready.
        fn wait_attached(&self) -> serde_json::Value {
            self.capture.wait_for_xdp(self.iface(), WAIT).unwrap()
        }

        fn taps(&self) -> Vec<String> {
            self.capture
                .links()
                .unwrap()
                .into_iter()
                .filter(|l| l.starts_with(TAP_PREFIX))
                .collect()
        }

        /// Nothing attached, no TAP device left.
        fn assert_clean(&self) {
            let deadline = Instant::now() + WAIT;
            while self.capture.xdp_attachment(self.iface()).unwrap().is_some()
                || !self.taps().is_empty()
            {
                assert!(
                    Instant::now() < deadline,
                    "still attached or a TAP device left: {:?} {:?}",
                    self.capture.xdp_attachment(self.iface()).unwrap(),
                    self.taps()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn epoch_us() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64
    }

    /// IP frames of every kind the parser knows: UDP, TCP with flag
    /// combinations (three on one flow), ICMP, IPv6 (UDP, ICMPv6 behind an
    /// extension header), VLAN and QinQ.
    fn known_frames() -> Vec<Vec<u8>> {
        let (a, b) = (ip("10.10.0.2"), ip("10.10.0.1"));
        let (a6, b6) = (ip("2001:db8::2"), ip("2001:db8::1"));
        let tcp = |src, dst, flags| Transport::Tcp { src, dst, flags };
        let udp = |src, dst| Transport::Udp { src, dst };
        [
            FrameSpec::new(a, b, udp(40000, 53)).payload(20),
            FrameSpec::new(a, b, tcp(41000, 80, tcp_flags::SYN)),
            FrameSpec::new(b, a, tcp(80, 41000, tcp_flags::SYN | tcp_flags::ACK)).ttl(63),
            FrameSpec::new(a, b, tcp(41000, 80, tcp_flags::ACK | tcp_flags::PSH)).payload(100),
            FrameSpec::new(a, b, udp(40000, 53)).payload(33),
            FrameSpec::new(a, b, tcp(41000, 80, tcp_flags::FIN | tcp_flags::ACK)),
            FrameSpec::new(a, b, Transport::Icmp { kind: 8, code: 0 })
                .payload(56)
                .ttl(128),
            FrameSpec::new(a6, b6, udp(5353, 5353)).payload(12).ttl(255),
            FrameSpec::new(a6, b6, Transport::Icmp { kind: 128, code: 0 }).ipv6_extension(60),
            FrameSpec::new(a, b, udp(40000, 53)).payload(1).vlan(42),
            FrameSpec::new(a6, b6, tcp(443, 50000, tcp_flags::ACK))
                .vlan(100)
                .vlan(200),
        ]
        .iter()
        .map(FrameSpec::build)
        .collect()
    }

    use crate::support::frames::non_records;

    /// Sends `frames`, pausing now and then so the veth's queue never
    /// overflows.
    fn send_all(sender: &RawSocket, frames: &[Vec<u8>]) {
        for (i, f) in frames.iter().enumerate() {
            sender.send(f).unwrap();
            if i % 32 == 31 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// The same frames captured by `sniff` in record mode and in AF_XDP
    /// mode give the same rows (timestamps and flow gaps aside, which
    /// depend on when the frames arrived; the AF_XDP gaps are checked
    /// against its timestamps). The pcapng written alongside holds exactly
    /// the frames sent, with the rows' timestamps, and reads back with this
    /// project's reader and, when installed, `tcpdump -r`.
    #[test]
    fn af_xdp_rows_equal_record_rows_and_the_pcap_holds_the_frames() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let dir = tempfile::tempdir().unwrap();
        let frames = known_frames();
        let extra = non_records();
        let count = frames.len().to_string();
        let pcap = dir.path().join("frames.pcapng");
        let mut rows = Vec::new();
        let mut reports = Vec::new();
        let (mut start_us, mut end_us) = (0, 0);
        for af_xdp in [false, true] {
            let out = dir.path().join(format!("rows-{af_xdp}.csv"));
            let mut args = vec![out.to_str().unwrap(), "-i", lab.iface(), "-c", &count];
            if af_xdp {
                args.extend([
                    "--capture",
                    "af-xdp",
                    "--write-pcap",
                    pcap.to_str().unwrap(),
                ]);
            }
            let sniff = lab.sniff(&args);
            let xdp = lab.wait_attached();
            assert_eq!(xdp["mode"].as_u64(), Some(1), "driver mode: {xdp}");
            start_us = epoch_us();
            let sender = lab.sender();
            send_all(&sender, &extra);
            send_all(&sender, &frames);
            let result = sniff.wait(WAIT).unwrap();
            end_us = epoch_us();
            assert!(result.status.success(), "{}", describe(&result));
            rows.push(read_rows(&std::fs::read_to_string(&out).unwrap()));
            reports.push(String::from_utf8_lossy(&result.stdout).into_owned());
            lab.assert_clean();
        }
        let (record_rows, af_rows) = (&rows[0], &rows[1]);
        assert_eq!(record_rows.len(), frames.len());
        assert_eq!(af_rows.len(), frames.len());
        let mut last_seen: HashMap<String, u64> = HashMap::new();
        for (i, (r, a)) in record_rows.iter().zip(af_rows).enumerate() {
            for (column, value) in r {
                if column != "timestamp" && column != "flow_gap" {
                    assert_eq!(&a[column], value, "row {i}, column {column}");
                }
            }
            // The AF_XDP flow gaps follow its own timestamps.
            let ts = seconds_to_us(&a["timestamp"]);
            assert!((start_us..=end_us).contains(&ts), "row {i}: {ts}");
            let flow = format!(
                "{} {} {} {} {}",
                a["source_ip"],
                a["destination_ip"],
                a["source_port"],
                a["destination_port"],
                a["protocol"]
            );
            let gap = seconds_to_us(&a["flow_gap"]);
            match last_seen.insert(flow, ts) {
                None => assert_eq!(gap, 0, "row {i}: first packet of its flow"),
                Some(before) => assert!(gap.abs_diff(ts - before) <= 1, "row {i}: gap {gap}"),
            }
        }

        let report = &reports[1];
        assert_eq!(
            counter(report, "frames received"),
            (frames.len() + extra.len()) as u64
        );
        assert_eq!(counter(report, "frames dropped by the sockets"), 0);
        assert_eq!(counter(report, "records emitted"), frames.len() as u64);
        assert_eq!(counter(report, "frames unparsed"), 1);
        assert_eq!(counter(report, "frames not IP"), 1);
        assert_eq!(
            counter(report, "frames re-injected"),
            (frames.len() + extra.len()) as u64
        );
        assert!(report.contains(&format!(
            "Frames saved to {} (pcapng): {}",
            pcap.display(),
            frames.len() + extra.len()
        )));

        // The pcapng: every frame sent, in order, whole, with the records'
        // timestamps (the rows show them truncated to microseconds).
        let sent: Vec<&Vec<u8>> = extra.iter().chain(&frames).collect();
        let mut reader = CaptureReader::open(&pcap).unwrap();
        let mut got = Vec::new();
        while let Some(f) = reader.next_frame().unwrap() {
            assert_eq!(f.wire_len as usize, f.data.len());
            got.push((f.data.to_vec(), f.timestamp_ns));
        }
        assert_eq!(got.len(), sent.len());
        for (i, ((data, _), want)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(data, *want, "frame {i}");
        }
        for (row, (_, ts)) in af_rows.iter().zip(&got[extra.len()..]) {
            assert_eq!(seconds_to_us(&row["timestamp"]), ts / 1000);
        }
        tcpdump_reads(&pcap, &sent);
    }

    /// `tcpdump -r FILE -xx` prints every frame, whole (when tcpdump is
    /// installed: Debian's `tcpdump` package).
    fn tcpdump_reads(pcap: &Path, sent: &[&Vec<u8>]) {
        let out = match std::process::Command::new("tcpdump")
            .args(["-r"])
            .arg(pcap)
            .args(["-nn", "-xx"])
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "skipped (tcpdump check): tcpdump is not installed (apt-get install tcpdump)"
                );
                return;
            }
            Err(e) => panic!("cannot run tcpdump: {e}"),
        };
        assert!(
            out.status.success(),
            "tcpdump -r failed: {}",
            describe(&out)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            match trimmed.strip_prefix("0x") {
                Some(rest) if line.starts_with(char::is_whitespace) => {
                    let hex = rest.split_once(':').map_or("", |(_, h)| h);
                    let bytes = frames.last_mut().expect("a packet line before its bytes");
                    for group in hex.split_whitespace() {
                        for pair in group.as_bytes().chunks(2) {
                            let s = std::str::from_utf8(pair).unwrap();
                            bytes.push(u8::from_str_radix(s, 16).unwrap());
                        }
                    }
                }
                _ => frames.push(Vec::new()),
            }
        }
        assert_eq!(frames.len(), sent.len(), "tcpdump printed:\n{text}");
        for (i, (got, want)) in frames.iter().zip(sent).enumerate() {
            assert_eq!(got, *want, "frame {i} as tcpdump reads it");
        }
    }

    /// Joins an in-process capture; one that has not ended within `WAIT`
    /// (a frame it waits for was lost) is ended as CTRL+C would, and the
    /// test fails.
    fn join_capture<T>(capture: std::thread::JoinHandle<Result<T>>) -> T {
        let deadline = Instant::now() + WAIT;
        while !capture.is_finished() {
            if Instant::now() > deadline {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
                let _ = capture.join();
                panic!("the capture did not end within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        capture.join().unwrap().unwrap()
    }

    /// Collects every frame with its record until the sentinel frame.
    struct Collect {
        frames: Vec<(Vec<u8>, Option<PacketRecord>)>,
        sentinel: Vec<u8>,
        done: bool,
    }

    impl RecordSink for Collect {
        fn records(&mut self, _batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
            Ok(if self.done {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        }

        fn frame(&mut self, frame: &CapturedFrame<'_>) -> Result<()> {
            if frame.data == &self.sentinel[..] {
                self.done = true;
            } else {
                self.frames
                    .push((frame.data.to_vec(), frame.record.copied()));
            }
            Ok(())
        }
    }

    /// Frames for the frame-by-frame comparison: every header kind, each
    /// cut at every length, with random bytes changed (seeded), and random
    /// byte strings.
    fn differential_frames() -> Vec<Vec<u8>> {
        let mut frames = known_frames();
        frames.extend(non_records());
        crate::support::frames::variations(frames, 3, 1500, 300)
    }

    /// Each frame's AF_XDP record (shared parser and flow table in
    /// userspace) equals the record the record program makes of the same
    /// frame in the kernel (BPF_PROG_TEST_RUN, same order, so the same flow
    /// counters): the same fields, the same outcome (record, not IP,
    /// unparsed). Only the timestamp and flow gap differ (taken at
    /// different times); the AF_XDP gaps are checked against its
    /// timestamps.
    #[test]
    fn af_xdp_records_equal_the_record_programs_frame_by_frame() {
        use ml_sniffing::capture::programs;
        use ml_sniffing::capture::ringbuf::drain_ring;
        use ml_sniffing::capture::xdp::{Loaded, XdpMode};
        use ml_sniffing_common::maps::Config;

        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let frames = differential_frames();
        let sentinel = FrameSpec::new(
            ip("10.99.0.2"),
            ip("10.99.0.1"),
            Transport::Udp { src: 9, dst: 9 },
        )
        .payload(9)
        .build();
        let iface = lab.iface().to_owned();
        let sink = Collect {
            frames: Vec::new(),
            sentinel: sentinel.clone(),
            done: false,
        };
        let capture = lab.capture.spawn(move || {
            let mut options = CaptureOptions::new(iface);
            options.capture = CaptureMode::AfXdp;
            options.af_xdp.consume = true;
            let mut sink = sink;
            let summary = live::capture(&options, &mut sink)?;
            Ok((sink, summary))
        });
        lab.wait_attached();
        let sender = lab.sender();
        send_all(&sender, &frames);
        sender.send(&sentinel).unwrap();
        let (sink, summary) = join_capture(capture);
        assert_eq!(summary.reason, live::StopReason::SinkDone);
        let af = summary.af_xdp.as_ref().unwrap();
        assert!(af.all_accounted(), "{af:?}");
        assert_eq!(af.lost(), 0);
        assert_eq!(sink.frames.len(), frames.len(), "every frame arrived once");
        for (i, ((got, _), sent)) in sink.frames.iter().zip(&frames).enumerate() {
            assert_eq!(got, sent, "frame {i} arrived as sent");
        }
        lab.assert_clean();

        // The record program on the same frames, attached to the (now idle)
        // capture interface so that test runs skip the dispatcher's RCU
        // wait.
        let loaded = Loaded::new(programs::capture().unwrap(), Config::default()).unwrap();
        let iface = lab.iface().to_owned();
        let (mut attached, mut ring) = lab
            .capture
            .enter(move || {
                let mut loaded = loaded;
                let ring = loaded.take_ring()?;
                Ok((loaded.attach(&iface, XdpMode::Drv)?, ring))
            })
            .unwrap();
        let mut bad = 0;
        let mut last_seen: HashMap<_, u64> = HashMap::new();
        let mut outcomes = [0usize; 2];
        for (i, (frame, af_record)) in sink.frames.iter().enumerate() {
            attached.loaded().test_run(frame, 1).unwrap();
            let mut kernel = Vec::new();
            drain_ring(&mut ring, &mut kernel, 4, &mut bad);
            match (af_record, kernel.first()) {
                (None, None) => outcomes[0] += 1,
                (Some(a), Some(k)) => {
                    outcomes[1] += 1;
                    // The two runs see the frames at other times: the timing
                    // and the time-decayed behaviour differ (the behaviour
                    // update itself is compared bit for bit on the same
                    // timestamps in kernel_capture's differential test).
                    let strip = |r: &PacketRecord| PacketRecord {
                        timestamp_ns: 0,
                        flow_gap_ns: 0,
                        behaviour: Default::default(),
                        ..*r
                    };
                    assert_eq!(strip(a), strip(k), "frame {i}: {frame:02x?}");
                    let gap = a.flow_gap_ns;
                    match last_seen.insert(a.flow_key(), a.timestamp_ns) {
                        None => assert_eq!(gap, 0, "frame {i}"),
                        Some(before) => {
                            assert_eq!(gap, a.timestamp_ns.saturating_sub(before), "frame {i}")
                        }
                    }
                }
                (a, k) => panic!("frame {i}: AF_XDP record {a:?}, kernel record {k:?}"),
            }
        }
        assert_eq!(bad, 0);
        let kernel_counters = attached.counters().unwrap();
        attached.detach().unwrap();
        let c = summary.counters;
        assert_eq!(c.seen, frames.len() as u64 + 1, "the sentinel too");
        assert_eq!(c.emitted, kernel_counters.emitted + 1);
        assert_eq!(c.unparsed, kernel_counters.unparsed);
        assert_eq!(c.not_ip, kernel_counters.not_ip);
        assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
    }

    /// Runs `n` UDP echo exchanges from the peer; returns how many were
    /// answered.
    fn echo(client: &UdpSocket, n: usize) -> usize {
        let mut answered = 0;
        let mut buf = [0u8; 64];
        for i in 0..n {
            let msg = format!("ping {i}");
            client.send_to(msg.as_bytes(), "10.99.0.1:7").unwrap();
            if let Ok((len, _)) = client.recv_from(&mut buf) {
                if &buf[..len] == msg.as_bytes() {
                    answered += 1;
                }
            }
        }
        answered
    }

    /// While an AF_XDP capture runs, the host still answers a UDP echo
    /// across the pair (frames are re-injected into its stack); with
    /// `--consume` it does not, although the requests are captured. Before
    /// and after, the echo works.
    #[test]
    fn the_host_answers_udp_echo_during_capture_unless_consume() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let server = lab
            .capture
            .enter(|| Ok(UdpSocket::bind("10.99.0.1:7")?))
            .unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_server = stop.clone();
        let serving = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop_server.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((len, from)) = server.recv_from(&mut buf) {
                    let _ = server.send_to(&buf[..len], from);
                }
            }
        });
        let client = lab
            .peer
            .enter(|| Ok(UdpSocket::bind("10.99.0.2:0")?))
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        assert_eq!(echo(&client, 3), 3, "the echo works before capturing");

        for (consume, requests, answered) in [(false, 20, 20), (true, 5, 0)] {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("echo.csv");
            let mut args = vec![
                out.to_str().unwrap(),
                "-i",
                lab.iface(),
                "--capture",
                "af-xdp",
            ];
            if consume {
                args.push("--consume");
            }
            let sniff = lab.sniff(&args);
            lab.wait_attached();
            assert_eq!(
                !consume,
                !lab.taps().is_empty(),
                "a TAP device unless --consume"
            );
            assert_eq!(echo(&client, requests), answered, "--consume: {consume}");
            sniff.signal(libc::SIGTERM).unwrap();
            let result = sniff.wait(WAIT).unwrap();
            assert!(result.status.success(), "{}", describe(&result));
            let report = String::from_utf8_lossy(&result.stdout);
            let rows = read_rows(&std::fs::read_to_string(&out).unwrap());
            let captured = rows
                .iter()
                .filter(|r| r["destination_port"] == "7" && r["protocol"] == "udp")
                .count();
            assert_eq!(captured, requests, "every request captured:\n{report}");
            if consume {
                assert!(report.contains("frames consumed (--consume)"), "{report}");
            } else {
                assert!(counter(&report, "frames re-injected") >= 20, "{report}");
                assert_eq!(counter(&report, "re-injections failed"), 0, "{report}");
            }
            lab.assert_clean();
            assert_eq!(echo(&client, 3), 3, "the echo works after capturing");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        serving.join().unwrap();
    }

    /// SIGTERM ends an AF_XDP capture cleanly; after SIGKILL the kernel
    /// removes the program, the sockets and the TAP device itself. Either
    /// way the queue can be captured again at once (no socket stays bound).
    #[test]
    fn nothing_stays_attached_or_bound_after_sigterm_or_sigkill() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let udp = FrameSpec::new(
            ip("10.99.0.2"),
            ip("10.99.0.1"),
            Transport::Udp { src: 5, dst: 6 },
        )
        .build();
        for signal in [libc::SIGTERM, libc::SIGKILL, libc::SIGINT] {
            let sniff = lab.sniff(&["-", "-i", lab.iface(), "--capture", "af-xdp"]);
            lab.wait_attached();
            assert_eq!(
                lab.taps().len(),
                1,
                "the TAP device exists during the capture"
            );
            let sender = lab.sender();
            for _ in 0..3 {
                sender.send(&udp).unwrap();
            }
            // Rows reach stdout while the capture runs.
            std::thread::sleep(Duration::from_millis(300));
            sniff.signal(signal).unwrap();
            let result = sniff.wait(WAIT);
            if signal != libc::SIGKILL {
                let result = result.unwrap();
                assert!(result.status.success(), "{}", describe(&result));
                let stderr = String::from_utf8_lossy(&result.stderr);
                assert!(stderr.contains("Rows written: 3 ("), "{stderr}");
                assert_eq!(read_rows(&String::from_utf8_lossy(&result.stdout)).len(), 3);
            }
            lab.assert_clean();
        }
    }

    /// An interface deleted during an AF_XDP capture ends it with the
    /// report and one sentence; the TAP device goes too.
    #[test]
    fn a_vanished_interface_ends_an_af_xdp_capture() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let iface = lab.iface().to_owned();
        let sniff = lab.sniff(&["-", "-i", &iface, "--capture", "af-xdp"]);
        lab.wait_attached();
        assert_eq!(lab.taps().len(), 1);
        lab.capture.ip(&["link", "del", &iface]).unwrap();
        let result = sniff.wait(WAIT).unwrap();
        assert_eq!(result.status.code(), Some(1), "{}", describe(&result));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            stderr.contains("AF_XDP counters"),
            "the report comes first: {stderr}"
        );
        assert!(
            stderr.ends_with(&format!(
                "Error: {iface} vanished during the capture (deleted, or moved to another \
                 network namespace): the capture ended; nothing is left attached\n"
            )),
            "{stderr}"
        );
        assert!(lab.taps().is_empty(), "the TAP device is removed");
    }

    /// This process's sockets that a spawned child would inherit.
    fn sockets_without_cloexec() -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // SAFETY: F_GETFD reads a flag; a closed fd gives -1.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            let target = target.to_string_lossy().into_owned();
            if target.starts_with("socket:") && flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                found.push(format!("fd {fd}: {target}"));
            }
        }
        found
    }

    /// `--queues all` binds one socket per receive queue and gets every
    /// frame; `--queues 0` leaves the other queues' frames to the host,
    /// counted; a queue that does not exist is one sentence; so is
    /// zero-copy on a veth.
    #[test]
    fn queues_are_selected_and_checked() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::with_queues(3);
        let frames: Vec<Vec<u8>> = (0..300u16)
            .map(|i| {
                FrameSpec::new(
                    ip("10.99.0.2"),
                    ip("10.99.0.1"),
                    Transport::Udp {
                        src: 10_000 + i,
                        dst: 20_000 + i * 7,
                    },
                )
                .build()
            })
            .collect();
        for (queues, all) in [("all", true), ("0", false)] {
            let iface = lab.iface().to_owned();
            let expected = if all { Some(frames.len()) } else { None };
            let capture = lab.capture.spawn(move || {
                let mut options = CaptureOptions::new(iface);
                options.capture = CaptureMode::AfXdp;
                options.af_xdp.consume = true;
                options.af_xdp.queues = queues.parse::<Queues>().unwrap();
                // The first run takes records in place, the second in batches.
                let mut sink = Count {
                    records: 0,
                    stop_at: expected,
                    queues: HashMap::new(),
                    in_place: all,
                    last_frame_ns: 0,
                };
                let summary = live::capture(&options, &mut sink)?;
                Ok((sink, summary))
            });
            lab.wait_attached();
            // A process another test thread spawns now must not inherit
            // the capture's sockets (it would keep the queues bound).
            assert_eq!(sockets_without_cloexec(), Vec::<String>::new());
            let sender = lab.sender();
            send_all(&sender, &frames);
            if !all {
                // No count to reach: end the capture the way CTRL+C does.
                std::thread::sleep(Duration::from_millis(500));
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
            }
            let (sink, summary) = join_capture(capture);
            let af = summary.af_xdp.unwrap();
            assert!(af.all_accounted(), "{af:?}");
            if all {
                assert_eq!(af.queues.len(), 3);
                assert_eq!(sink.records, frames.len() as u64);
                let by_queue: u64 = sink.queues.values().sum();
                assert_eq!(by_queue, frames.len() as u64);
            } else {
                assert_eq!(af.queues.len(), 1);
                assert_eq!(af.queues[0].queue, 0);
                assert!(sink.queues.keys().all(|&q| q == 0));
                assert_eq!(
                    af.received() + af.kernel.no_socket,
                    frames.len() as u64,
                    "{af:?}"
                );
            }
            lab.assert_clean();
        }

        for (args, message) in [
            (
                &["--queues", "5"][..],
                format!(
                    "{} has 3 receive queues (0-2): there is no queue 5",
                    lab.iface()
                ),
            ),
            (
                &["--af-xdp-bind", "zero-copy"],
                format!(
                    "{} does not support AF_XDP zero-copy: use --af-xdp-bind copy (or auto)",
                    lab.iface()
                ),
            ),
        ] {
            let mut all = vec!["-", "-i", lab.iface(), "--capture", "af-xdp"];
            all.extend_from_slice(args);
            let out = lab.sniff(&all).wait(WAIT).unwrap();
            assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.ends_with(&format!("Error: {message}\n")), "{stderr}");
            lab.assert_clean();
        }
    }

    /// Loopback has no XDP driver mode: re-injection is impossible there,
    /// which one sentence says (nothing is left behind); with `--consume`
    /// the capture runs (generic mode).
    #[test]
    fn an_interface_without_driver_mode_needs_consume() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let out = lab
            .sniff(&["-", "-i", "lo", "--capture", "af-xdp"])
            .wait(WAIT)
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).ends_with(
                "Error: lo has no XDP driver mode, which re-injecting frames into the host stack \
                 needs: add --consume (frames are then kept from the host stack), or capture \
                 records with --capture xdp\n"
            ),
            "{}",
            describe(&out)
        );
        assert!(lab.taps().is_empty());
        let sniff = lab.sniff(&["-", "-i", "lo", "--capture", "af-xdp", "--consume"]);
        let xdp = lab.capture.wait_for_xdp("lo", WAIT).unwrap();
        assert_eq!(xdp["mode"].as_u64(), Some(2), "generic mode: {xdp}");
        sniff.signal(libc::SIGTERM).unwrap();
        let out = sniff.wait(WAIT).unwrap();
        // Nothing was sent: the usual "no packets" failure, after a clean
        // stop.
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Rows written: 0 (terminated"),
            "{}",
            describe(&out)
        );
        assert_eq!(lab.capture.xdp_attachment("lo").unwrap(), None);
    }

    /// Counts records and frames per queue; done after `stop_at` records.
    struct Count {
        records: u64,
        stop_at: Option<usize>,
        queues: HashMap<u32, u64>,
        in_place: bool,
        /// The timestamp of the last frame handed over.
        last_frame_ns: u64,
    }

    impl Count {
        fn counted(&mut self, n: u64) -> ControlFlow<()> {
            self.records += n;
            match self.stop_at {
                Some(stop) if self.records >= stop as u64 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }

    impl RecordSink for Count {
        fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
            assert!(!self.in_place, "batches only for sinks that take them");
            Ok(self.counted(batch.len() as u64))
        }

        fn in_place(&self) -> bool {
            self.in_place
        }

        /// Right after its frame, with the frame's time (the record keeps
        /// the kernel's clock, as on the record path).
        fn record_in_place(
            &mut self,
            record: &PacketRecord,
            epoch_ns: u64,
        ) -> Result<ControlFlow<()>> {
            assert!(self.in_place);
            assert_eq!(epoch_ns, self.last_frame_ns);
            assert!(record.timestamp_ns < epoch_ns, "kernel time, not epoch");
            Ok(self.counted(1))
        }

        fn frame(&mut self, frame: &CapturedFrame<'_>) -> Result<()> {
            *self.queues.entry(frame.queue).or_default() += 1;
            self.last_frame_ns = frame.timestamp_ns;
            if let Some(record) = frame.record {
                assert_eq!(record.timestamp_ns, frame.timestamp_ns);
                assert_eq!(record.frame_len as usize, frame.data.len());
            }
            Ok(())
        }
    }
}
