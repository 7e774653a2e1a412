//! Kernel capture: the XDP program and `sniff`, in network namespaces and
//! veth pairs these tests create (RAII guards remove them on every path).
//!
//! Frames are built by `ml_sniffing_common::build` with known headers and
//! sent whole from a peer namespace through an AF_PACKET socket; the
//! expected rows are derived from the frames' specifications, not from the
//! parser. All tests need root (CI runs as root) and the XDP program built
//! into the binary; they live in `privileged` so `cargo xtask test` runs
//! them one at a time.

mod support;

mod privileged {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::path::Path;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};

    use crate::support::lab::Lab;
    use crate::support::process::{describe, ChildGuard};
    use crate::support::report::{counter, read_rows, seconds_to_us};
    use crate::support::root::can_run_kernel_tests;

    const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");
    const WAIT: Duration = Duration::from_secs(20);

    /// `ml-sniffing sniff ARGS` inside the capture namespace.
    fn sniff(lab: &Lab, args: &[&str]) -> ChildGuard {
        let mut cmd = lab.capture.command(BIN);
        cmd.arg("sniff").args(args);
        ChildGuard::spawn(&mut cmd).unwrap()
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

    /// What a row must hold, from the frame's specification.
    #[derive(Clone, Debug)]
    struct Expected {
        frame: Vec<u8>,
        src: IpAddr,
        dst: IpAddr,
        protocol: &'static str,
        src_port: u16,
        dst_port: u16,
        ttl: u8,
        tcp_flags: u8,
        vlan_id: u16,
    }

    fn expect(spec: &FrameSpec) -> Expected {
        let (protocol, src_port, dst_port, flags) = match (&spec.transport, spec.src) {
            (Transport::Tcp { src, dst, flags }, _) => ("tcp", *src, *dst, *flags),
            (Transport::Udp { src, dst }, _) => ("udp", *src, *dst, 0),
            // ICMP rows carry the type and code in the port columns.
            (Transport::Icmp { kind, code }, IpAddr::V4(_)) => {
                ("icmp", *kind as u16, *code as u16, 0)
            }
            (Transport::Icmp { kind, code }, IpAddr::V6(_)) => {
                ("ipv6-icmp", *kind as u16, *code as u16, 0)
            }
            (Transport::Other { .. }, _) => panic!("not used here"),
        };
        Expected {
            frame: spec.build(),
            src: spec.src,
            dst: spec.dst,
            protocol,
            src_port,
            dst_port,
            ttl: spec.ttl,
            tcp_flags: flags,
            vlan_id: spec.vlans.first().copied().unwrap_or(0),
        }
    }

    /// The known packets: UDP, TCP with flag combinations (three on one
    /// flow), ICMP, IPv6 (UDP, ICMPv6 behind an extension header), a VLAN-
    /// tagged frame and a QinQ one.
    fn known_packets() -> Vec<Expected> {
        let (a, b) = (ip("10.10.0.2"), ip("10.10.0.1"));
        let (a6, b6) = (ip("2001:db8::2"), ip("2001:db8::1"));
        let tcp = |src, dst, flags| Transport::Tcp { src, dst, flags };
        let udp = |src, dst| Transport::Udp { src, dst };
        let specs = vec![
            FrameSpec::new(a, b, udp(40000, 53)).payload(20),
            FrameSpec::new(a, b, tcp(41000, 80, tcp_flags::SYN)),
            FrameSpec::new(b, a, tcp(80, 41000, tcp_flags::SYN | tcp_flags::ACK)).ttl(63),
            FrameSpec::new(a, b, tcp(41000, 80, tcp_flags::ACK | tcp_flags::PSH)).payload(100),
            FrameSpec::new(a, b, udp(40000, 53)).payload(33),
            FrameSpec::new(a, b, tcp(41000, 80, tcp_flags::FIN | tcp_flags::ACK)),
            FrameSpec::new(a, b, tcp(41001, 81, tcp_flags::RST)),
            FrameSpec::new(
                a,
                b,
                tcp(
                    41002,
                    82,
                    tcp_flags::CWR | tcp_flags::ECE | tcp_flags::URG | tcp_flags::SYN,
                ),
            ),
            FrameSpec::new(a, b, Transport::Icmp { kind: 8, code: 0 })
                .payload(56)
                .ttl(128),
            FrameSpec::new(a6, b6, udp(5353, 5353)).payload(12).ttl(255),
            FrameSpec::new(a6, b6, Transport::Icmp { kind: 128, code: 0 }).ipv6_extension(60),
            FrameSpec::new(a, b, udp(40000, 53)).payload(1).vlan(42),
            FrameSpec::new(a6, b6, tcp(443, 50000, tcp_flags::ACK))
                .vlan(100)
                .vlan(200),
        ];
        specs.iter().map(expect).collect()
    }

    use crate::support::frames::non_records;

    /// Checks every row against its frame, and the flow counters against a
    /// count kept here per (source, destination, ports, protocol).
    fn check_rows(rows: &[HashMap<String, String>], sent: &[Expected], start_us: u64, end_us: u64) {
        assert_eq!(rows.len(), sent.len(), "one row per IP packet sent");
        // (source, destination, ports, protocol) -> (packets, bytes, last timestamp)
        type Flow<'a> = (IpAddr, IpAddr, u16, u16, &'a str);
        let mut flows: HashMap<Flow, (u64, u64, u64)> = HashMap::new();
        let mut last_ts = 0;
        for (i, (row, want)) in rows.iter().zip(sent).enumerate() {
            let get = |k: &str| {
                row.get(k)
                    .unwrap_or_else(|| panic!("no column {k}"))
                    .as_str()
            };
            let ts = seconds_to_us(get("timestamp"));
            assert!(
                (start_us..=end_us).contains(&ts),
                "row {i}: timestamp {ts} outside the test's {start_us}..={end_us}"
            );
            assert!(ts >= last_ts, "row {i}: timestamps go back");
            last_ts = ts;
            assert_eq!(get("source_ip"), want.src.to_string(), "row {i}");
            assert_eq!(get("destination_ip"), want.dst.to_string(), "row {i}");
            assert_eq!(get("protocol"), want.protocol, "row {i}");
            assert_eq!(
                get("length"),
                want.frame.len().to_string(),
                "row {i}: whole frame"
            );
            assert_eq!(get("source_port"), want.src_port.to_string(), "row {i}");
            assert_eq!(
                get("destination_port"),
                want.dst_port.to_string(),
                "row {i}"
            );
            assert_eq!(get("ttl"), want.ttl.to_string(), "row {i}");
            assert_eq!(get("tcp_flags"), want.tcp_flags.to_string(), "row {i}");
            assert_eq!(get("vlan_id"), want.vlan_id.to_string(), "row {i}");
            assert_eq!(
                get("ip_version"),
                if want.src.is_ipv4() { "4" } else { "6" },
                "row {i}"
            );
            assert_eq!(get("fragment"), "0", "row {i}");

            let key = (
                want.src,
                want.dst,
                want.src_port,
                want.dst_port,
                want.protocol,
            );
            let flow = flows.entry(key).or_insert((0, 0, 0));
            let previous_ts = flow.2;
            flow.0 += 1;
            flow.1 += want.frame.len() as u64;
            flow.2 = ts;
            assert_eq!(
                get("flow_packets"),
                flow.0.to_string(),
                "row {i}: flow packets"
            );
            assert_eq!(get("flow_bytes"), flow.1.to_string(), "row {i}: flow bytes");
            let gap_us = seconds_to_us(get("flow_gap"));
            if flow.0 == 1 {
                assert_eq!(gap_us, 0, "row {i}: a flow's first packet has no gap");
            } else {
                // Both sides are truncated to microseconds.
                let between = ts - previous_ts;
                assert!(
                    gap_us.abs_diff(between) <= 1,
                    "row {i}: gap {gap_us} µs, timestamps {between} µs apart"
                );
            }
        }
    }

    /// `sniff --xdp-mode MODE` on the known packets, the program attached
    /// in `attach_mode`; `mtu`: the veth pair's MTU first.
    fn known_packets_in_mode(mode: &str, attach_mode: u64, mtu: Option<&str>) {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        if let Some(mtu) = mtu {
            lab.set_mtu(mtu);
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("capture.csv");
        let sent = known_packets();
        let count = sent.len().to_string();
        let start_us = epoch_us();
        let sniff = sniff(
            &lab,
            &[
                out.to_str().unwrap(),
                "-i",
                lab.iface(),
                "-c",
                &count,
                "--xdp-mode",
                mode,
            ],
        );
        let xdp = lab.wait_attached(WAIT);
        assert_eq!(
            xdp["mode"].as_u64(),
            Some(attach_mode),
            "attach mode: {xdp}"
        );
        let sender = lab.sender();
        for frame in non_records() {
            sender.send(&frame).unwrap();
        }
        for p in &sent {
            sender.send(&p.frame).unwrap();
        }
        let result = sniff.wait(WAIT).unwrap();
        let end_us = epoch_us();
        assert!(result.status.success(), "{}", describe(&result));
        let stdout = String::from_utf8_lossy(&result.stdout);
        assert!(
            stdout.contains(&format!("Captured packets saved to {}", out.display())),
            "{stdout}"
        );
        let fell_back = format!("note: {}'s driver refused XDP in driver mode", lab.iface());
        assert_eq!(
            String::from_utf8_lossy(&result.stderr).contains(&fell_back),
            mode == "auto" && attach_mode == 2,
            "{}",
            describe(&result)
        );
        assert_eq!(counter(&stdout, "Rows written"), sent.len() as u64);
        assert_eq!(counter(&stdout, "packets seen"), sent.len() as u64 + 2);
        assert_eq!(counter(&stdout, "records emitted"), sent.len() as u64);
        assert_eq!(counter(&stdout, "records dropped (ring full)"), 0);
        assert_eq!(counter(&stdout, "frames unparsed"), 1);
        assert_eq!(counter(&stdout, "frames not IP"), 1);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with(
            "timestamp,source_ip,destination_ip,protocol,length,source_port,destination_port,ttl,\
             tcp_flags,vlan_id,flow_packets,flow_bytes,flow_gap,"
        ));
        check_rows(&read_rows(&text), &sent, start_us, end_us);
        lab.assert_detached();
    }

    /// ip's `xdp.mode`: 1 driver, 2 generic (XDP_ATTACHED_DRV / _SKB).
    #[test]
    fn known_packets_driver_mode() {
        known_packets_in_mode("drv", 1, None);
    }

    #[test]
    fn known_packets_generic_mode() {
        known_packets_in_mode("skb", 2, None);
    }

    /// `auto` asks for the kernel's choice, driver mode on veth.
    #[test]
    fn known_packets_auto_mode() {
        known_packets_in_mode("auto", 1, None);
    }

    /// veth refuses driver-mode XDP above a page-sized MTU (as virtio_net
    /// refuses it without spare queues): `auto` falls back to generic mode
    /// and says so; `drv` fails with one sentence, leaving nothing behind.
    #[test]
    fn auto_mode_falls_back_to_generic_when_the_driver_refuses() {
        known_packets_in_mode("auto", 2, Some("9000"));
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        lab.set_mtu("9000");
        let result = sniff(&lab, &["-", "-i", lab.iface(), "--xdp-mode", "drv"])
            .wait(WAIT)
            .unwrap();
        assert_eq!(result.status.code(), Some(1), "{}", describe(&result));
        assert!(
            String::from_utf8_lossy(&result.stderr).ends_with(&format!(
                "Error: {}'s driver refused XDP in driver mode (Numerical result out of range \
                 (os error 34)): use --xdp-mode skb or auto\n",
                lab.iface()
            )),
            "{}",
            describe(&result)
        );
        // Nothing on stdout: the CSV header waits for the capture to start.
        assert!(result.stdout.is_empty(), "{}", describe(&result));
        lab.assert_detached();
    }

    /// A filter expression on a live capture: the XDP program (and, with
    /// `--capture af-xdp`, the session) keeps only what it matches and
    /// counts the rest; an expression outside the live subset is refused in
    /// one sentence before anything is attached.
    #[test]
    fn live_filters_keep_what_they_match() {
        if !can_run_kernel_tests() {
            return;
        }
        for engine in [&["--capture", "xdp"][..], &["--capture", "af-xdp"][..]] {
            let lab = Lab::new();
            let mut args = vec!["-", "-i", lab.iface(), "-c", "3"];
            args.extend_from_slice(engine);
            args.extend(["udp", "dst", "port", "53", "and", "not", "host", "10.0.0.9"]);
            let sniff = sniff(&lab, &args);
            lab.wait_attached(WAIT);
            let sender = lab.sender();
            let dns = expect(&FrameSpec::new(
                ip("10.0.0.2"),
                ip("10.0.0.1"),
                Transport::Udp { src: 4000, dst: 53 },
            ));
            let other = |src: &str, dst_port: u16| {
                FrameSpec::new(
                    ip(src),
                    ip("10.0.0.1"),
                    Transport::Udp {
                        src: 4000,
                        dst: dst_port,
                    },
                )
                .build()
            };
            let start_us = epoch_us();
            for _ in 0..3 {
                sender.send(&other("10.0.0.2", 80)).unwrap();
                sender.send(&other("10.0.0.9", 53)).unwrap();
                sender.send(&dns.frame).unwrap();
            }
            let result = sniff.wait(WAIT).unwrap();
            assert!(result.status.success(), "{engine:?}: {}", describe(&result));
            let stdout = String::from_utf8_lossy(&result.stdout);
            let stderr = String::from_utf8_lossy(&result.stderr);
            check_rows(
                &read_rows(&stdout),
                &[dns.clone(), dns.clone(), dns],
                start_us,
                epoch_us(),
            );
            assert!(
                counter(&stderr, "packets filtered out") >= 5,
                "{engine:?}: {stderr}"
            );
            lab.assert_detached();
        }
        let lab = Lab::new();
        let refused = sniff(
            &lab,
            &["-", "-i", lab.iface(), "tcp[13]", "&", "2", "!=", "0"],
        )
        .wait(WAIT)
        .unwrap();
        assert_eq!(refused.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr
                .starts_with("Error: `tcp[13]` is not in the filter syntax live captures support"),
            "{stderr}"
        );
        lab.assert_detached();
    }

    /// `--ipv4-only` leaves IPv6 out (counted as filtered); `-` writes rows
    /// to stdout and the report to stderr.
    #[test]
    fn ipv4_only_to_stdout() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let sniff = sniff(
            &lab,
            &[
                "-",
                "--interface",
                lab.iface(),
                "--packet-count",
                "2",
                "--ipv4-only",
            ],
        );
        lab.wait_attached(WAIT);
        let sender = lab.sender();
        let v4 = expect(&FrameSpec::new(
            ip("10.0.0.2"),
            ip("10.0.0.1"),
            Transport::Udp { src: 1, dst: 2 },
        ));
        let v6 = FrameSpec::new(
            ip("fd00::2"),
            ip("fd00::1"),
            Transport::Udp { src: 1, dst: 2 },
        )
        .build();
        let start_us = epoch_us();
        sender.send(&v6).unwrap();
        sender.send(&v4.frame).unwrap();
        sender.send(&v6).unwrap();
        sender.send(&v4.frame).unwrap();
        let result = sniff.wait(WAIT).unwrap();
        assert!(result.status.success(), "{}", describe(&result));
        let stdout = String::from_utf8_lossy(&result.stdout);
        let stderr = String::from_utf8_lossy(&result.stderr);
        check_rows(&read_rows(&stdout), &[v4.clone(), v4], start_us, epoch_us());
        assert_eq!(counter(&stderr, "packets filtered out"), 2);
        assert_eq!(counter(&stderr, "Rows written"), 2);
        lab.assert_detached();
    }

    /// SIGTERM and SIGINT end a capture cleanly: rows already captured are
    /// in the file, the report is printed, nothing stays attached.
    #[test]
    fn signals_end_the_capture_and_detach() {
        if !can_run_kernel_tests() {
            return;
        }
        for (signal, reason) in [(libc::SIGTERM, "terminated"), (libc::SIGINT, "interrupted")] {
            let lab = Lab::new();
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("capture.csv");
            let sniff = sniff(&lab, &[out.to_str().unwrap(), "-i", lab.iface()]);
            lab.wait_attached(WAIT);
            let sender = lab.sender();
            let udp = FrameSpec::new(
                ip("10.0.0.2"),
                ip("10.0.0.1"),
                Transport::Udp { src: 7, dst: 9 },
            )
            .build();
            for _ in 0..5 {
                sender.send(&udp).unwrap();
            }
            // Rows reach the file while the capture runs (flushed every 100 ms).
            let deadline = std::time::Instant::now() + WAIT;
            while std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .count()
                < 6
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "rows never reached the file"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            sniff.signal(signal).unwrap();
            let result = sniff.wait(WAIT).unwrap();
            assert!(result.status.success(), "{}", describe(&result));
            let stdout = String::from_utf8_lossy(&result.stdout);
            assert!(
                stdout.contains(&format!("Rows written: 5 ({reason}")),
                "{stdout}"
            );
            assert_eq!(counter(&stdout, "records emitted"), 5);
            let rows = read_rows(&std::fs::read_to_string(&out).unwrap());
            assert_eq!(rows.len(), 5);
            assert_eq!(rows[4]["flow_packets"], "5");
            lab.assert_detached();
        }
    }

    /// The disk fills during a live capture: the CSV ends on its last
    /// whole row, the report (rows in the file, the kernel's counters) is
    /// printed, then the error; nothing stays attached.
    #[test]
    fn a_full_disk_ends_the_capture_on_a_whole_row_with_the_report() {
        use crate::support::tmpfs::SmallDisk;
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let disk = SmallDisk::new("64k").unwrap();
        let out = disk.file("capture.csv");
        let mut sniff = sniff(&lab, &[out.to_str().unwrap(), "-i", lab.iface()]);
        lab.wait_attached(WAIT);
        let sender = lab.sender();
        // 64 KiB hold about 700 rows: send until the capture gives up.
        let mut sent = 0u32;
        while sniff.running() && sent < 200_000 {
            let udp = FrameSpec::new(
                ip("10.0.0.2"),
                ip("10.0.0.1"),
                Transport::Udp {
                    src: 1000 + (sent % 5000) as u16,
                    dst: 9,
                },
            )
            .build();
            sender.send(&udp).unwrap();
            sent += 1;
            if sent.is_multiple_of(100) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let result = sniff.wait(WAIT).unwrap();
        assert_eq!(result.status.code(), Some(1), "{}", describe(&result));
        let stdout = String::from_utf8_lossy(&result.stdout);
        assert!(
            stderr(&result).contains("No space left on device"),
            "{}",
            describe(&result)
        );
        assert!(
            stdout.contains("(stopped by an error, detached from"),
            "{stdout}"
        );
        let rows = counter(&stdout, "Rows written");
        let seen = counter(&stdout, "packets seen");
        assert!(rows > 0 && seen >= rows, "{stdout}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.ends_with('\n'), "the file ends on a whole row");
        // Every row has all its cells (the reader refuses ragged rows).
        assert_eq!(read_rows(&text).len() as u64, rows, "{stdout}");
        lab.assert_detached();
    }

    /// Waits until `path` holds `rows` rows (and its header).
    fn wait_for_rows(path: &Path, rows: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        while std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
            < rows + 1
        {
            assert!(
                std::time::Instant::now() < deadline,
                "rows never reached the file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn udp_frame() -> Vec<u8> {
        FrameSpec::new(
            ip("10.0.0.2"),
            ip("10.0.0.1"),
            Transport::Udp { src: 7, dst: 9 },
        )
        .build()
    }

    /// A capture on an interface that is down says so (it used to wait
    /// silently), and captures once the interface is up.
    #[test]
    fn a_down_interface_is_announced_and_captured_once_up() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let iface = lab.iface().to_owned();
        lab.capture.ip(&["link", "set", &iface, "down"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("capture.csv");
        let sniff = sniff(&lab, &[out.to_str().unwrap(), "-i", &iface]);
        lab.wait_attached(WAIT);
        lab.capture.ip(&["link", "set", &iface, "up"]).unwrap();
        let sender = lab.sender();
        // Until the link is up at both ends, frames go nowhere: send until
        // three reached the file.
        let deadline = std::time::Instant::now() + WAIT;
        while read_rows(&std::fs::read_to_string(&out).unwrap_or_else(|_| "h\n".into())).len() < 3 {
            assert!(std::time::Instant::now() < deadline, "nothing captured");
            let _ = sender.send(&udp_frame());
            std::thread::sleep(Duration::from_millis(50));
        }
        sniff.signal(libc::SIGTERM).unwrap();
        let result = sniff.wait(WAIT).unwrap();
        assert!(result.status.success(), "{}", describe(&result));
        let stderr = stderr(&result);
        assert!(
            stderr.contains(&format!(
                "warning: {iface} is down: no packets will arrive until it is up"
            )),
            "{stderr}"
        );
        lab.assert_detached();
    }

    /// An interface deleted during a capture ends it: the rows so far are
    /// in the file, the report is printed, then one sentence saying what
    /// happened (it used to go unnoticed, capturing nothing forever).
    #[test]
    fn a_vanished_interface_ends_the_capture_with_the_report() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let iface = lab.iface().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("capture.csv");
        let sniff = sniff(&lab, &[out.to_str().unwrap(), "-i", &iface]);
        lab.wait_attached(WAIT);
        let sender = lab.sender();
        for _ in 0..5 {
            sender.send(&udp_frame()).unwrap();
        }
        wait_for_rows(&out, 5);
        lab.capture.ip(&["link", "del", &iface]).unwrap();
        let result = sniff.wait(WAIT).unwrap();
        assert_eq!(result.status.code(), Some(1), "{}", describe(&result));
        assert!(
            stderr(&result).ends_with(&format!(
                "Error: {iface} vanished during the capture (deleted, or moved to another \
                 network namespace): the capture ended; nothing is left attached\n"
            )),
            "{}",
            describe(&result)
        );
        let stdout = String::from_utf8_lossy(&result.stdout);
        assert!(
            stdout.contains(&format!(
                "Rows written: 5 (the interface vanished, detached from {iface})"
            )),
            "{stdout}"
        );
        assert_eq!(counter(&stdout, "records emitted"), 5);
        assert_eq!(read_rows(&std::fs::read_to_string(&out).unwrap()).len(), 5);
    }

    /// Even SIGKILL (no destructor runs) leaves nothing attached: the
    /// program is attached through a bpf_link owned by the process.
    #[test]
    fn sigkill_leaves_nothing_attached() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let sniff = sniff(&lab, &["-", "-i", lab.iface()]);
        lab.wait_attached(WAIT);
        sniff.signal(libc::SIGKILL).unwrap();
        let _ = sniff.wait(WAIT);
        // The kernel releases the link when the last fd closes.
        let deadline = std::time::Instant::now() + WAIT;
        while lab.capture.xdp_attachment(lab.iface()).unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "still attached after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn run_to_end(lab: &Lab, args: &[&str]) -> std::process::Output {
        sniff(lab, args).wait(WAIT).unwrap()
    }

    fn stderr(out: &std::process::Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Each failure is one clear sentence and exit status 1.
    #[test]
    fn failures_are_one_sentence() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();

        let out = run_to_end(&lab, &["-", "-i", "mls-nosuch0"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).ends_with("Error: there is no network interface named \"mls-nosuch0\"\n"),
            "{}",
            describe(&out)
        );

        // A second capture on an interface that already has one: the
        // advice names the process holding the link (`ip link set dev IF
        // xdp off`, the old advice, cannot remove a bpf_link), and
        // following it frees the interface.
        let first = sniff(&lab, &["-", "-i", lab.iface()]);
        lab.wait_attached(WAIT);
        let out = run_to_end(&lab, &["-", "-i", lab.iface()]);
        assert_eq!(out.status.code(), Some(1));
        let iface = lab.iface();
        let pid = first.id();
        let said = stderr(&out);
        assert!(
            said.contains(&format!(
                "Error: {iface} already has an XDP program attached through a bpf_link held by \
                 process {pid} (ml-sniffing, link "
            )),
            "{}",
            describe(&out)
        );
        assert!(
            said.contains(&format!("stop that process (e.g. `kill {pid}`;")),
            "{said}"
        );
        assert!(
            lab.capture
                .ip(&["link", "set", "dev", iface, "xdp", "off"])
                .is_err(),
            "the old advice does not work on a link"
        );
        first.signal(libc::SIGTERM).unwrap();
        let _ = first.wait(WAIT).unwrap();
        lab.assert_detached();

        // Not root: the same command as nobody (privileges dropped inside
        // the namespace, since entering it needs root).
        let mut cmd_inside = lab.capture.command("setpriv");
        cmd_inside
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                BIN,
                "sniff",
                "-",
                "-i",
            ])
            .arg(lab.iface());
        let out = ChildGuard::spawn(&mut cmd_inside)
            .unwrap()
            .wait(WAIT)
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            stderr(&out).ends_with(
                "Error: capturing with XDP needs root, or the capabilities CAP_BPF, CAP_PERFMON \
                 and CAP_NET_ADMIN (this process lacks CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN): run \
                 it with sudo, or give the binary those capabilities (sudo setcap \
                 cap_bpf,cap_perfmon,cap_net_admin+ep BINARY)\n"
            ),
            "{}",
            describe(&out)
        );

        // Nothing arrived: no file, the original's message.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.csv");
        let sniff = sniff(&lab, &[path.to_str().unwrap(), "-i", lab.iface()]);
        lab.wait_attached(WAIT);
        sniff.signal(libc::SIGTERM).unwrap();
        let out = sniff.wait(WAIT).unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            stderr(&out).contains("Error: No packets were captured on"),
            "{}",
            describe(&out)
        );
        assert!(
            !Path::new(&path).exists(),
            "no file when nothing was captured"
        );
        lab.assert_detached();
    }

    /// `sniff` as root with capabilities taken out of its bounding set
    /// (`setpriv`, inside the namespace).
    fn sniff_without(lab: &Lab, dropped: &str, args: &[&str]) -> ChildGuard {
        let mut cmd = lab.capture.command("setpriv");
        cmd.arg(format!("--bounding-set={dropped}"))
            .args(["--", BIN, "sniff", "-", "-i", lab.iface()])
            .args(args);
        ChildGuard::spawn(&mut cmd).unwrap()
    }

    /// CAP_BPF and CAP_NET_ADMIN are not enough to load the program (the
    /// verifier wants CAP_PERFMON for its packet pointer arithmetic): the
    /// advice says so in one sentence, with no verifier log (it used to
    /// print 1.8 KB of it); with the three the capture works; AF_XDP also
    /// needs CAP_NET_RAW.
    #[test]
    fn the_capability_advice_is_what_the_kernel_needs() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let out = sniff_without(&lab, "-sys_admin,-perfmon", &[])
            .wait(WAIT)
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_eq!(
            stderr(&out),
            "Error: capturing with XDP needs root, or the capabilities CAP_BPF, CAP_PERFMON and \
             CAP_NET_ADMIN (this process lacks CAP_PERFMON): run it with sudo, or give the binary \
             those capabilities (sudo setcap cap_bpf,cap_perfmon,cap_net_admin+ep BINARY)\n"
        );

        // CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, no CAP_SYS_ADMIN: enough.
        let sniff = sniff_without(&lab, "-sys_admin", &[]);
        lab.wait_attached(WAIT);
        sniff.signal(libc::SIGTERM).unwrap();
        let out = sniff.wait(WAIT).unwrap();
        assert!(
            stderr(&out).contains("Rows written: 0 (terminated"),
            "{}",
            describe(&out)
        );
        lab.assert_detached();

        let out = sniff_without(&lab, "-sys_admin,-net_raw", &["--capture", "af-xdp"])
            .wait(WAIT)
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            stderr(&out).starts_with(
                "Error: capturing with AF_XDP needs root, or the capabilities CAP_BPF, \
                 CAP_PERFMON, CAP_NET_ADMIN and CAP_NET_RAW (this process lacks CAP_NET_RAW)"
            ),
            "{}",
            describe(&out)
        );
        lab.assert_detached();
    }

    /// Frames for the differential test: every header kind, then each one
    /// cut at every length and with random bytes changed (seeded), and
    /// random byte strings.
    fn differential_frames() -> Vec<Vec<u8>> {
        let mut frames: Vec<Vec<u8>> = known_packets().into_iter().map(|e| e.frame).collect();
        frames.extend(non_records());
        let (a, b) = (ip("192.0.2.1"), ip("198.51.100.7"));
        let udp = Transport::Udp { src: 53, dst: 4000 };
        let gre = Transport::Other {
            protocol: 47,
            header: vec![0; 4],
        };
        frames.push(FrameSpec::new(a, b, gre).build());
        frames.push(
            FrameSpec::new(a, b, udp.clone())
                .vlan(1)
                .vlan(2)
                .vlan(3)
                .build(),
        );
        let mut first_fragment = FrameSpec::new(a, b, udp.clone()).payload(100).build();
        first_fragment[20] = 0x20;
        let mut later_fragment = first_fragment.clone();
        later_fragment[20] = 0x00;
        later_fragment[21] = 0x10;
        frames.push(first_fragment);
        frames.push(later_fragment);
        let mut options = FrameSpec::new(a, b, udp).build();
        options.splice(34..34, [1u8; 8]);
        options[14] = 0x47;
        let total = u16::from_be_bytes([options[16], options[17]]) + 8;
        options[16..18].copy_from_slice(&total.to_be_bytes());
        frames.push(options);
        frames.push(
            FrameSpec::new(
                ip("fd00::1"),
                ip("fd00::2"),
                Transport::Udp { src: 1, dst: 2 },
            )
            .ipv6_extension(0)
            .ipv6_extension(43)
            .ipv6_extension(60)
            .build(),
        );

        crate::support::frames::variations(frames, 1, 3000, 500)
    }

    /// The same frames through the kernel program (BPF_PROG_TEST_RUN) and
    /// through the userspace parser and state tables give identical
    /// records (flow counters and host and pair behaviour included, bit for
    /// bit) and outcome counts.
    #[test]
    fn kernel_and_userspace_give_identical_records() {
        use ml_sniffing::capture::programs;
        use ml_sniffing::capture::ringbuf::drain_ring;
        use ml_sniffing::capture::state::StateTables;
        use ml_sniffing::capture::xdp::Loaded;
        use ml_sniffing_common::maps::{Config, Counters};
        use ml_sniffing_common::parser::{parse, Link, Outcome};
        use ml_sniffing_common::record::PacketRecord;

        if !can_run_kernel_tests() {
            return;
        }
        const XDP_PASS: u32 = 2;
        let mut loaded = Loaded::new(programs::capture().unwrap(), Config::default()).unwrap();
        let mut ring = loaded.take_ring().unwrap();
        let mut tables = StateTables::default();
        let mut want_counters = Counters::default();
        let mut malformed_items = 0;
        let mut repeated_hosts = 0;
        let mut outcomes: HashMap<&str, usize> = HashMap::new();
        let frames = differential_frames();
        for (i, frame) in frames.iter().enumerate() {
            let run = loaded.test_run(frame, 1).unwrap();
            assert_eq!(run.return_value, XDP_PASS, "frame {i}: always XDP_PASS");
            let mut got = Vec::new();
            drain_ring(&mut ring, &mut got, 16, &mut malformed_items);
            want_counters.seen += 1;
            let mut want = PacketRecord::default();
            match parse(&frame[..], Link::Ethernet, frame.len(), &mut want) {
                Outcome::Ip => {
                    *outcomes.entry("ip").or_default() += 1;
                    want_counters.emitted += 1;
                    assert_eq!(got.len(), 1, "frame {i}: one record for {frame:02x?}");
                    let kernel = got[0];
                    want.timestamp_ns = kernel.timestamp_ns;
                    want.frame_len = frame.len() as u32;
                    tables.count(&mut want);
                    assert_eq!(kernel, want, "frame {i}: {frame:02x?}");
                    if want.behaviour.src.packets[0] > 16 {
                        repeated_hosts += 1;
                    }
                }
                Outcome::NotIp { .. } => {
                    *outcomes.entry("not ip").or_default() += 1;
                    want_counters.not_ip += 1;
                    assert!(got.is_empty(), "frame {i}: no record for a non-IP frame");
                }
                Outcome::Malformed(_) => {
                    *outcomes.entry("malformed").or_default() += 1;
                    want_counters.unparsed += 1;
                    assert!(got.is_empty(), "frame {i}: no record for a malformed frame");
                }
            }
        }
        assert_eq!(malformed_items, 0);
        assert_eq!(loaded.counters().unwrap(), want_counters);
        // Hosts come back, so decayed state is compared, not only first
        // packets.
        assert!(repeated_hosts >= 100, "{repeated_hosts}");
        // The frames exercise every outcome, many times.
        for kind in ["ip", "not ip", "malformed"] {
            assert!(
                outcomes.get(kind).copied().unwrap_or(0) >= 20,
                "{kind}: {outcomes:?}"
            );
        }
    }

    /// Flow records: the kernel program's (BPF_PROG_TEST_RUN; those a FIN
    /// or RST ended from their ring, the rest from the map) equal, bit for
    /// bit, the userspace flow table's for the same packets at the same
    /// times (the kernel's, read from the packet records it also writes).
    #[test]
    fn kernel_and_userspace_keep_identical_flow_records() {
        use ml_sniffing::capture::flow_records::FlowTable;
        use ml_sniffing::capture::kernel_flows::{drain_flow_ring, records, take_map};
        use ml_sniffing::capture::programs;
        use ml_sniffing::capture::ringbuf::drain_ring;
        use ml_sniffing::capture::xdp::Loaded;
        use ml_sniffing_common::flow_stats::FlowStats;
        use ml_sniffing_common::maps::Config;
        use ml_sniffing_common::parser::{parse, Link, Outcome};
        use ml_sniffing_common::record::PacketRecord;

        if !can_run_kernel_tests() {
            return;
        }
        let config = Config {
            flags: Config::FLOW_RECORDS,
            ..Config::default()
        };
        let mut loaded = Loaded::new(programs::capture().unwrap(), config).unwrap();
        let mut ring = loaded.take_ring().unwrap();
        let mut flow_ring = loaded.take_flow_ring().unwrap();
        let map = take_map(&mut loaded).unwrap();
        let year = Duration::from_secs(365 * 86_400);
        let mut table = FlowTable::new(year, year);
        let (mut malformed, mut packets) = (0, 0);
        let (mut kernel_closed, mut user_closed) = (Vec::new(), Vec::new());
        // Then 30 conversations of 12 packets both ways, a few ms apart (so
        // that gaps are not all 0 ms), half of them closed by a FIN.
        let mut frames = differential_frames();
        let (c, s) = (ip("10.1.0.1"), ip("10.1.0.2"));
        let mut paced = std::collections::HashSet::new();
        for n in 0..12u16 {
            for port in 1000..1030u16 {
                let last = n == 11 && port % 2 == 0;
                let flags = if last {
                    tcp_flags::FIN | tcp_flags::ACK
                } else {
                    tcp_flags::ACK
                };
                let (src, dst, sp, dp) = if n % 3 == 1 {
                    (s, c, 80, port)
                } else {
                    (c, s, port, 80)
                };
                let tcp = Transport::Tcp {
                    src: sp,
                    dst: dp,
                    flags,
                };
                paced.insert(frames.len());
                frames.push(
                    FrameSpec::new(src, dst, tcp)
                        .payload(10 * n as usize + 1)
                        .build(),
                );
            }
        }
        for (i, frame) in frames.iter().enumerate() {
            if paced.contains(&i) && i % 7 == 0 {
                std::thread::sleep(Duration::from_millis(1 + (i % 3) as u64));
            }
            loaded.test_run(frame, 1).unwrap();
            let mut got = Vec::new();
            drain_ring(&mut ring, &mut got, 16, &mut malformed);
            drain_flow_ring(&mut flow_ring, &mut kernel_closed).unwrap();
            let mut want = PacketRecord::default();
            if parse(&frame[..], Link::Ethernet, frame.len(), &mut want) != Outcome::Ip {
                continue;
            }
            assert_eq!(got.len(), 1, "frame {i}");
            packets += 1;
            want.timestamp_ns = got[0].timestamp_ns;
            want.frame_len = frame.len() as u32;
            let mut done = Vec::new();
            table.add(&want, &mut done);
            user_closed.extend(done.into_iter().map(|f| f.stats));
            assert_eq!(
                kernel_closed.len(),
                user_closed.len(),
                "frame {i}: {frame:02x?}"
            );
        }
        assert_eq!(kernel_closed, user_closed, "flows ended by FIN or RST");
        let mut kernel_open = records(&map).unwrap();
        let mut user_open: Vec<_> = table.open_flows().map(|(k, (_, f))| (*k, *f)).collect();
        let order = |v: &mut Vec<(_, FlowStats)>| v.sort_by_key(|(k, _)| format!("{k:?}"));
        order(&mut kernel_open);
        order(&mut user_open);
        assert_eq!(kernel_open.len(), user_open.len());
        assert!(kernel_open == user_open, "the flows still open differ");
        let counters = loaded.counters().unwrap();
        assert_eq!(counters.flows_exported, kernel_closed.len() as u64);
        assert_eq!((counters.flow_overflow, counters.flow_ring_full), (0, 0));
        // Enough of everything to mean something.
        let all = || kernel_open.iter().map(|(_, f)| f).chain(&kernel_closed);
        let long = all().filter(|f| f.both.packets >= 12).count();
        let gaps = all()
            .filter(|f| f.both.gap_max > 0 && f.dst2src.packets > 0)
            .count();
        assert!(kernel_closed.len() >= 100, "{} closed", kernel_closed.len());
        assert!(long >= 30, "{long} flows of 12 packets or more");
        assert!(gaps >= 30, "{gaps} two-way flows with gaps over 0 ms");
        assert!(packets >= 2000, "{packets} packets");
    }

    /// The filter program in the kernel decides as the userspace copy of
    /// the same code does, frame by frame, for expressions of every kind of
    /// test (BPF_PROG_TEST_RUN; a filtered frame is counted, not emitted).
    #[test]
    fn kernel_filters_decide_as_userspace_does() {
        use ml_sniffing::capture::live_filter::compile;
        use ml_sniffing::capture::programs;
        use ml_sniffing::capture::ringbuf::drain_ring;
        use ml_sniffing::capture::xdp::Loaded;
        use ml_sniffing_common::filter::matches;
        use ml_sniffing_common::maps::Config;
        use ml_sniffing_common::parser::{parse, Link, Outcome};
        use ml_sniffing_common::record::PacketRecord;

        if !can_run_kernel_tests() {
            return;
        }
        let frames = differential_frames();
        let config = Config {
            sample_every: 0,
            flags: Config::FILTER | Config::SKIP_FLOW,
        };
        let mut checked = 0;
        for expression in [
            "udp",
            "tcp port 80 or udp dst port 4000",
            "not (host 192.0.2.1 or net fd00::/16)",
            "src net 10.0.0.0/8 and portrange 1-1024",
            "ip6 and not tcp",
            "ip proto 47 or (src and dst net 192.0.0.0/2)",
        ] {
            let program = compile(expression).unwrap();
            let mut loaded = Loaded::new(programs::capture().unwrap(), config).unwrap();
            loaded.set_filter(&program).unwrap();
            let mut ring = loaded.take_ring().unwrap();
            let (mut kept, mut dropped) = (0u64, 0u64);
            for frame in &frames {
                let mut want = PacketRecord::default();
                if parse(&frame[..], Link::Ethernet, frame.len(), &mut want) != Outcome::Ip {
                    continue;
                }
                let before = loaded.counters().unwrap().filtered;
                loaded.test_run(frame, 1).unwrap();
                let filtered = loaded.counters().unwrap().filtered - before;
                let mut got = Vec::new();
                let mut bad = 0;
                drain_ring(&mut ring, &mut got, 16, &mut bad);
                let userspace = matches(&program, &want);
                assert_eq!(
                    (got.len(), filtered),
                    if userspace { (1, 0) } else { (0, 1) },
                    "`{expression}` on {frame:02x?}"
                );
                if userspace {
                    kept += 1;
                } else {
                    dropped += 1;
                }
                checked += 1;
            }
            assert!(
                kept > 0 && dropped > 0,
                "`{expression}`: {kept} kept, {dropped} filtered"
            );
        }
        assert!(checked > 1000, "{checked}");
    }

    /// 1-in-N sampling in the kernel: about one packet in N becomes a record,
    /// every packet is counted (emitted or sampled out) and still counts in
    /// its flow, so the records' flow counters keep growing by the packets
    /// left out; `--ipv4-only` counts IPv6 as filtered.
    #[test]
    fn sampling_and_filtering_are_counted() {
        use ml_sniffing::capture::programs;
        use ml_sniffing::capture::ringbuf::drain_ring;
        use ml_sniffing::capture::xdp::Loaded;
        use ml_sniffing_common::maps::Config;

        if !can_run_kernel_tests() {
            return;
        }
        const N: u64 = 4_000;
        let config = Config {
            sample_every: 4,
            flags: Config::IPV4_ONLY,
        };
        let mut loaded = Loaded::new(programs::capture().unwrap(), config).unwrap();
        let mut ring = loaded.take_ring().unwrap();
        let v4 = FrameSpec::new(
            ip("10.0.0.2"),
            ip("10.0.0.1"),
            Transport::Udp { src: 1, dst: 2 },
        )
        .build();
        let v6 = FrameSpec::new(
            ip("fd00::2"),
            ip("fd00::1"),
            Transport::Udp { src: 1, dst: 2 },
        )
        .build();
        for _ in 0..N {
            loaded.test_run(&v4, 1).unwrap();
        }
        loaded.test_run(&v6, 10).unwrap();
        let mut records = Vec::new();
        let mut bad = 0;
        while drain_ring(&mut ring, &mut records, 1024, &mut bad) > 0 {}
        let c = loaded.counters().unwrap();
        assert_eq!(c.seen, N + 10);
        assert_eq!(c.filtered, 10, "IPv6 under IPV4_ONLY");
        assert_eq!(c.emitted + c.sampled_out, N);
        assert_eq!(records.len() as u64, c.emitted);
        // Binomial(4000, 1/4): mean 1000, standard deviation 27.
        assert!(
            (850..=1150).contains(&c.emitted),
            "{} of {N} emitted",
            c.emitted
        );
        let packets: Vec<u64> = records.iter().map(|r| r.flow_packets).collect();
        assert!(
            packets.windows(2).all(|w| w[0] < w[1]),
            "flow counters grow"
        );
        assert!(*packets.last().unwrap() <= N);
        assert!(
            packets.windows(2).any(|w| w[1] - w[0] > 1),
            "packets left out by sampling still count in their flow"
        );
        for r in &records {
            assert_eq!(r.flow_bytes, r.flow_packets * v4.len() as u64);
        }
    }
}
