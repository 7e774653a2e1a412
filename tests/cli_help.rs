//! What the binary says about itself: `--version` with the commit and what
//! is built in, shell completions and the man page from the clap
//! definitions.

use assert_cmd::Command;

fn ml() -> Command {
    Command::cargo_bin("ml-sniffing").expect("binary built")
}

fn stdout(args: &[&str]) -> String {
    let out = ml()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn version_names_the_commit_and_the_capture_engines() {
    let v = stdout(&["--version"]);
    let rest = v
        .strip_prefix(&format!(
            "ml-sniffing {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{v}"));
    let (commit, built) = rest.split_once("; ").unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
    assert!(
        built == "XDP, AF_XDP)\n" || built == "without the XDP program)\n",
        "{v}"
    );
    // Every subcommand says the same.
    assert_eq!(
        stdout(&["run", "--version"]),
        v.replacen("ml-sniffing", "ml-sniffing-run", 1)
    );
}

#[test]
fn completions_and_man_page_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&["completions", shell]);
        for word in [
            "sniff",
            "detect",
            "classify",
            "predict",
            "run",
            "--alert-rate",
        ] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    let man = stdout(&["manpage"]);
    assert!(man.contains(".TH ml-sniffing 1"), "{man}");
    for word in ["sniff", "detect", "classify", "predict", "run"] {
        assert!(man.contains(word), "{word}");
    }
    ml().args(["completions", "tcsh"]).assert().code(2);
}
