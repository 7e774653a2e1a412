//! `run --web`: the live dashboard of a monitor capturing in a network
//! namespace the test creates, opened in headless Chromium inside that
//! namespace: the page shows the monitor's numbers and the scan's alert.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use support::browser::{chromium, rendered};
use support::lab::Lab;
use support::process::{describe, ChildGuard};
use support::raw::RawSocket;
use support::root::can_run_kernel_tests;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");
const WEB: &str = "127.0.0.1:8080";

fn get(path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(WEB)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string()))
}

fn send(sock: &RawSocket, frames: impl Iterator<Item = Vec<u8>>) {
    for (i, frame) in frames.enumerate() {
        sock.send(&frame).unwrap();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn client(i: usize) -> Vec<u8> {
    FrameSpec::new(
        format!("10.20.0.{}", 2 + i % 4).parse().unwrap(),
        "10.20.0.1".parse().unwrap(),
        Transport::Udp {
            src: 40000 + (i / 4 % 8) as u16,
            dst: 53,
        },
    )
    .payload(40 + i % 20)
    .build()
}

fn probe(port: u16) -> Vec<u8> {
    FrameSpec::new(
        "10.66.0.9".parse().unwrap(),
        "10.20.0.1".parse().unwrap(),
        Transport::Tcp {
            src: 61000,
            dst: port,
            flags: tcp_flags::SYN,
        },
    )
    .build()
}

mod privileged {
    use super::*;

    #[test]
    fn the_dashboard_shows_the_counts_and_the_scan_alert() {
        if !can_run_kernel_tests() {
            return;
        }
        let Some(browser) = chromium() else { return };
        let lab = Lab::new();
        let mut cmd = lab.capture.command(BIN);
        cmd.args([
            "run",
            "--iface",
            lab.iface(),
            "--warmup",
            "600",
            "-q",
            "--web",
            WEB,
        ]);
        let started = std::time::SystemTime::now();
        let monitor = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        send(&sock, (0..1500).map(client));
        send(&sock, (1..=200).map(probe));
        // The snapshot that holds the scan's alert (published each second).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut state = serde_json::Value::Null;
        while Instant::now() < deadline {
            let body = lab.capture.enter(|| get("/state.json")).unwrap_or_default();
            state = serde_json::from_str(&body).unwrap_or_default();
            if state["totals"]["records"] == 1700 && state["totals"]["alerts"] == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(state["totals"]["records"], 1700, "{state}");
        assert_eq!(state["totals"]["alerts"], 1, "{state}");
        // When it was raised, on the wall clock (the page shows it).
        let unix = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        let alert = &state["alerts_open"][0];
        let raised = alert["raised"].as_f64().expect("a raised time");
        assert!(
            unix(started) <= raised && raised <= unix(std::time::SystemTime::now()),
            "{alert}"
        );
        let dom = rendered(
            &browser,
            &format!("http://{WEB}/"),
            3000,
            &["ip", "netns", "exec", lab.capture.name()],
        );
        // For the README's screenshot: `ML_SNIFFING_SAVE_DOM=FILE`.
        if let Some(path) = std::env::var_os("ML_SNIFFING_SAVE_DOM") {
            std::fs::write(path, &dom).unwrap();
        }
        assert!(
            dom.contains("data-updates=\""),
            "the page received snapshots: {dom}"
        );
        assert!(dom.contains("| 1,700 records |"), "the record count: {dom}");
        assert!(dom.contains("<td>scan</td>"), "the scan alert: {dom}");
        assert!(dom.contains("10.66.0.9"), "the scanner: {dom}");
        assert!(dom.contains("<rect"), "the score histogram: {dom}");
        assert!(dom.contains("<polyline"), "the rate charts: {dom}");
        monitor.signal(libc::SIGINT).unwrap();
        let output = monitor.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("Dashboard at http://127.0.0.1:8080/")
        );
        lab.assert_detached();
    }
}
