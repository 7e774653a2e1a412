//! `sniff` failures that need neither root nor a network namespace: each is
//! one sentence on stderr, status 1, and no output file. (Captures
//! themselves are tested in kernel_capture.rs.)

use assert_cmd::Command;

fn sniff(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("ml-sniffing")
        .expect("binary built")
        .arg("sniff")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_interface_is_named_and_no_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let out = sniff(&[path.to_str().unwrap(), "-i", "mls-nosuch0", "-c", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let expected = if ml_sniffing::capture::programs::built() {
        "Error: there is no network interface named \"mls-nosuch0\"\n".to_string()
    } else {
        format!("Error: {}\n", ml_sniffing::capture::programs::NOT_BUILT)
    };
    assert_eq!(stderr(&out), expected);
    assert!(!path.exists());
}

#[test]
fn bad_options_are_refused() {
    for args in [
        ["-", "-i", "lo", "--packet-count", "0"],
        ["-", "-i", "lo", "--sample", "0"],
        ["-", "-i", "lo", "--xdp-mode", "hw"],
    ] {
        let out = sniff(&args);
        assert_eq!(out.status.code(), Some(2), "clap usage error for {args:?}");
        assert!(stderr(&out).contains("invalid value"), "{}", stderr(&out));
    }
}

#[test]
fn an_interface_or_a_capture_file_is_required_and_live_options_need_an_interface() {
    let out = sniff(&["out.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--interface"), "{}", stderr(&out));
    let out = sniff(&["out.csv", "--read", "x.pcap", "--xdp-mode", "skb"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}
