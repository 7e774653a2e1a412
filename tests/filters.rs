//! Filter expressions on captures: for every shared attack capture and a
//! few benign ones, the frames `sniff -r CAPTURE EXPRESSION` reads agree
//! with `tcpdump -r CAPTURE EXPRESSION | wc -l` for 20 expressions
//! (tcpdump is installed with apt when missing; both use libpcap).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");

const EXPRESSIONS: [&str; 20] = [
    "tcp",
    "udp",
    "icmp",
    "ip6",
    "not ip6",
    "port 22",
    "tcp port 21 or tcp port 20",
    "udp port 53",
    "portrange 1-1024",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "net 10.0.0.0/8",
    "net 192.168.0.0/16 and tcp",
    "greater 1000",
    "less 100",
    "ip[6:2] & 0x1fff != 0",
    "not (tcp or udp)",
    "src portrange 1024-65535 and dst port 80",
    "vlan or arp",
    "ip proto 47 or icmp6",
];

fn tcpdump() -> String {
    let found = || {
        ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
            .into_iter()
            .find(|p| Path::new(p).exists())
    };
    if let Some(p) = found() {
        return p.to_string();
    }
    assert!(
        support::browser::apt_install("tcpdump"),
        "cannot install tcpdump with apt-get"
    );
    found().expect("tcpdump installed").to_string()
}

/// The packets tcpdump prints, `None` when it refuses the expression for
/// the capture's link type (`vlan` on raw IP).
fn tcpdump_count(tcpdump: &str, capture: &Path, expression: &str) -> Option<usize> {
    let out = Command::new(tcpdump)
        .args(["-nn", "-r"])
        .arg(capture)
        .arg(expression)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| out.stdout.iter().filter(|&&b| b == b'\n').count())
}

/// The frames `sniff` kept: read minus filtered out (its report), 0 when
/// it said none matched, `None` when it refused the expression.
fn sniff_count(capture: &Path, expression: &str) -> Option<usize> {
    let out = Command::new(BIN)
        .args(["sniff", "/dev/null", "-r"])
        .arg(capture)
        .arg(expression)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("is not valid") {
            return None;
        }
        if stderr.contains("matches the filter") {
            return Some(0);
        }
        // Frames matched, none of them IP: "none of the N frames in ...".
        let n = stderr
            .split("none of the ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
        assert!(
            n.is_some() && stderr.contains("is an IP packet"),
            "sniff on {} with `{expression}`: {stderr}",
            capture.display()
        );
        return n;
    }
    let number = |label: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no `{label}` in: {stdout}"))
    };
    Some(number("frames read") - number("filtered out"))
}

fn captures(data: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(data.join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut benign: Vec<PathBuf> = std::fs::read_dir(data.join("benign"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    benign.sort();
    all.extend(benign.into_iter().step_by(20));
    all.sort();
    all
}

#[test]
fn counts_agree_with_tcpdump_on_the_shared_captures() {
    let Some(data) = support::data::shared_data() else {
        return;
    };
    let tcpdump = tcpdump();
    let mut differences = Vec::new();
    let mut compared = 0;
    for capture in captures(&data) {
        for expression in EXPRESSIONS {
            let (theirs, ours) = (
                tcpdump_count(&tcpdump, &capture, expression),
                sniff_count(&capture, expression),
            );
            compared += 1;
            if theirs != ours {
                differences.push(format!(
                    "{} `{expression}`: tcpdump {theirs:?}, sniff {ours:?}",
                    capture.display()
                ));
            }
        }
    }
    assert!(compared >= 200, "{compared} comparisons");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn a_wrong_expression_is_one_sentence() {
    let Some(data) = support::data::shared_data() else {
        return;
    };
    tcpdump(); // brings libpcap
    let out = Command::new(BIN)
        .args(["sniff", "/dev/null", "-r"])
        .arg(data.join("pcap/ssh.pcap"))
        .args(["tcp", "port", "eighty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Error: the filter `tcp port eighty` is not valid: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Expressions of the live subset.
const LIVE: [&str; 10] = [
    "tcp",
    "udp port 53",
    "not (tcp or udp)",
    "portrange 1-1024",
    "src portrange 1024-65535 and dst port 80",
    "net 192.168.0.0/16 and tcp",
    "ip6 or icmp",
    "ip proto 6 and not port 443",
    "src and dst net 10.0.0.0/8",
    "host 192.168.10.5 or net 172.16.0.0 mask 255.240.0.0",
];

/// The live subset, compiled for the XDP program and run on the parsed
/// records of every IP frame of the shared captures, decides as libpcap
/// does on the frames themselves. (Frames libpcap reads differently by
/// design are left out and counted: 802.1Q-tagged ones, which its
/// expressions only match after `vlan`, and IPv6 with extension headers,
/// where it reads the first next-header and the XDP program the transport.)
#[test]
fn the_live_subset_decides_as_libpcap_on_the_shared_captures() {
    use ml_sniffing::capture::filter::Filter;
    use ml_sniffing::capture::live_filter::compile;
    use ml_sniffing::capture::pcap::CaptureReader;
    use ml_sniffing_common::filter::matches;
    use ml_sniffing_common::parser::{parse, Outcome};
    use ml_sniffing_common::record::{PacketRecord, FLAG_VLAN};

    let Some(data) = support::data::shared_data() else {
        return;
    };
    tcpdump(); // brings libpcap
    let mut compared = 0u64;
    let mut left_out = 0u64;
    let mut differences = Vec::new();
    for expression in LIVE {
        let program = compile(expression).unwrap();
        let mut libpcap = Filter::new(expression).unwrap();
        for capture in captures(&data) {
            let mut reader = CaptureReader::open(&capture).unwrap();
            while let Some(frame) = reader.next_frame().unwrap() {
                let mut record = PacketRecord::default();
                if parse(frame.data, frame.link, frame.wire_len as usize, &mut record)
                    != Outcome::Ip
                {
                    continue;
                }
                let extension = record.ip_version == 6 && {
                    let next = match frame.link {
                        ml_sniffing_common::parser::Link::Ethernet => frame.data.get(20),
                        _ => None,
                    };
                    next.is_some_and(|&n| n != record.protocol)
                };
                if record.flags & FLAG_VLAN != 0 || extension {
                    left_out += 1;
                    continue;
                }
                let (ours, theirs) = (
                    matches(&program, &record),
                    libpcap
                        .matches(frame.link, frame.data, frame.wire_len)
                        .unwrap(),
                );
                compared += 1;
                if ours != theirs && differences.len() < 20 {
                    differences.push(format!(
                        "`{expression}` on a frame of {}: live {ours}, libpcap {theirs}",
                        capture.display()
                    ));
                }
            }
        }
    }
    eprintln!("{compared} decisions compared, {left_out} left out (VLAN, IPv6 extension headers)");
    assert!(compared > 100_000, "{compared}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
