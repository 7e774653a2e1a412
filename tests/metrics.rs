//! `run --metrics`: a real Prometheus server scrapes a live monitor in a
//! network namespace the test creates, and its query API returns what the
//! monitor counted. The test installs Prometheus (Debian's package) when
//! it is missing, starts it in the namespace and stops it (RAII guards).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ml_sniffing_common::build::{FrameSpec, Transport};
use support::lab::Lab;
use support::process::{describe, ChildGuard};
use support::root::can_run_kernel_tests;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");
const METRICS: &str = "127.0.0.1:9477";
const PROMETHEUS: &str = "127.0.0.1:9090";

/// A plain HTTP GET; the body.
fn get(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string()))
}

/// The Prometheus binary, installed with apt when missing.
fn prometheus() -> String {
    let found = |name: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(path) = found("prometheus") {
        return path;
    }
    assert!(
        support::browser::apt_install("prometheus"),
        "cannot install prometheus with apt-get"
    );
    // The package may start a service of its own: this test runs its own
    // server, in the namespace.
    let _ = std::process::Command::new("systemctl")
        .args(["stop", "prometheus"])
        .status();
    found("prometheus").expect("prometheus installed")
}

fn frame(i: usize) -> Vec<u8> {
    FrameSpec::new(
        format!("10.20.0.{}", 2 + i % 4).parse().unwrap(),
        "10.20.0.1".parse().unwrap(),
        Transport::Udp {
            src: 40000 + (i % 8) as u16,
            dst: 53,
        },
    )
    .payload(40 + i % 20)
    .build()
}

/// The value of the first sample a Prometheus instant query returns.
fn query(lab: &Lab, expr: &str) -> Option<f64> {
    let path = format!("/api/v1/query?query={expr}");
    let body = lab.capture.enter(move || get(PROMETHEUS, &path)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ml-sniffing\n    \
             static_configs:\n      - targets: ['{METRICS}']\n"
        ),
    )
    .unwrap();
    path
}

mod privileged {
    use super::*;

    #[test]
    fn prometheus_scrapes_what_the_monitor_counts() {
        if !can_run_kernel_tests() {
            return;
        }
        let prometheus = prometheus();
        let lab = Lab::new();
        let dir = tempfile::tempdir().unwrap();
        let mut run = lab.capture.command(BIN);
        run.args(["run", "--iface", lab.iface(), "--warmup", "200", "-q"])
            .args(["--metrics", METRICS]);
        let monitor = ChildGuard::spawn(&mut run).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let config = write_config(dir.path());
        let mut server = lab.capture.command(&prometheus);
        server
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .arg("--log.level=warn");
        let server = ChildGuard::spawn(&mut server).unwrap();

        let sock = lab.sender();
        let sent = 600usize;
        for i in 0..sent {
            sock.send(&frame(i)).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Prometheus scrapes every second: wait for a scrape that saw them all.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut records = None;
        while Instant::now() < deadline {
            records = query(&lab, "ml_sniffing_records_total");
            if records.is_some_and(|r| r >= sent as f64) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(
            records,
            Some(sent as f64),
            "records as Prometheus scraped them"
        );
        assert_eq!(query(&lab, "up"), Some(1.0));
        assert_eq!(
            query(&lab, "ml_sniffing_packets_seen_total"),
            Some(sent as f64)
        );
        assert_eq!(query(&lab, "ml_sniffing_model_version"), Some(1.0));
        assert_eq!(
            query(
                &lab,
                "ml_sniffing_dropped_total%7Bcause%3D%22ring_full%22%7D"
            ),
            Some(0.0)
        );
        assert!(query(&lab, "ml_sniffing_scoring_seconds_count").is_some_and(|n| n >= 1.0));
        let exposition = lab.capture.enter(|| get(METRICS, "/metrics")).unwrap();
        assert!(
            exposition.ends_with("# EOF\n"),
            "OpenMetrics text: {exposition}"
        );

        drop(server);
        monitor.signal(libc::SIGINT).unwrap();
        let output = monitor.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        lab.assert_detached();
    }
}

mod privileged_af_xdp {
    use super::*;

    /// The number after `name` (a whole sample line) in an exposition.
    fn sample(exposition: &str, name: &str) -> Option<f64> {
        exposition
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn af_xdp_counters_are_served_per_queue() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let mut run = lab.capture.command(BIN);
        run.args(["run", "--iface", lab.iface(), "--warmup", "200", "-q"])
            .args(["--capture", "af-xdp", "--metrics", METRICS]);
        let monitor = ChildGuard::spawn(&mut run).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        let sent = 300usize;
        for i in 0..sent {
            sock.send(&frame(i)).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let received = r#"ml_sniffing_afxdp_queue_received_total{queue="0"}"#;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut exposition = String::new();
        while Instant::now() < deadline {
            exposition = lab
                .capture
                .enter(|| get(METRICS, "/metrics"))
                .unwrap_or_default();
            if sample(&exposition, received) == Some(sent as f64) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            sample(&exposition, received),
            Some(sent as f64),
            "{exposition}"
        );
        for name in ["dropped", "ring_full", "fill_ring_empty"] {
            let line = format!(r#"ml_sniffing_afxdp_queue_{name}_total{{queue="0"}}"#);
            assert_eq!(sample(&exposition, &line), Some(0.0), "{exposition}");
        }
        assert_eq!(
            sample(&exposition, "ml_sniffing_records_total"),
            Some(sent as f64)
        );
        monitor.signal(libc::SIGINT).unwrap();
        let output = monitor.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        lab.assert_detached();
    }
}
