//! A Kafka-compatible broker for the tests: tansu (crates.io), installed
//! with `cargo install` when missing, run on a loopback port with in-memory
//! storage and stopped on drop; and a consumer that reads a topic whole.

use std::net::TcpStream;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::ClientBuilder;

use super::process::ChildGuard;

const TANSU_VERSION: &str = "0.6.0";

fn found(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The tansu binary: on the PATH, in cargo's bin folder, or installed there
/// now (several minutes the first time).
pub fn tansu() -> String {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME")
        .join("bin/tansu");
    for path in found("tansu")
        .into_iter()
        .chain(cargo_bin.exists().then(|| cargo_bin.display().to_string()))
    {
        if has_memory_storage(&path) {
            return path;
        }
    }
    eprintln!(
        "installing tansu {TANSU_VERSION} (a Kafka-compatible broker) with cargo install: \
         several minutes the first time"
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "--locked",
            "--quiet",
            "--force",
            "tansu",
            "--version",
            TANSU_VERSION,
        ])
        // In-memory storage (`memory://`) is its object-store engine.
        .args(["--features", "dynostore"])
        .status()
        .expect("cargo install runs");
    assert!(status.success(), "cargo install tansu failed");
    cargo_bin.display().to_string()
}

/// Whether this tansu was built with the in-memory storage the tests use
/// (a build without it fails at once, naming the feature).
fn has_memory_storage(tansu: &str) -> bool {
    Command::new(tansu)
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("dynostore"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running broker.
pub struct Broker {
    _process: ChildGuard,
    pub address: String,
}

impl Broker {
    /// Starts a broker on `port` and waits until it accepts connections.
    pub fn start(tansu: &str, port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(tansu);
        cmd.args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"]);
        let process = ChildGuard::spawn(&mut cmd).unwrap();
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            _process: process,
            address,
        }
    }
}

/// Every record of `topic` (partition by partition): its key and value
/// (each record must carry a `sensor` header).
/// Empty when the topic does not exist.
pub fn consume(address: &str, topic: &str) -> Vec<(Option<String>, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![address.to_string()])
            .build()
            .await
            .expect("the broker answers");
        let topics = client.list_topics().await.expect("topics listed");
        let Some(t) = topics.into_iter().find(|t| t.name == topic) else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for p in t.partitions {
            let partition = client
                .partition_client(topic.to_string(), p, UnknownTopicHandling::Error)
                .await
                .unwrap();
            let mut offset = 0;
            loop {
                let (records, high) = partition
                    .fetch_records(offset, 1..10_000_000, 200)
                    .await
                    .unwrap();
                for r in &records {
                    assert!(r.record.headers.contains_key("sensor"), "a sensor header");
                    let text = |b: &Option<Vec<u8>>| {
                        b.as_ref().map(|v| String::from_utf8(v.clone()).unwrap())
                    };
                    all.push((
                        text(&r.record.key),
                        text(&r.record.value).unwrap_or_default(),
                    ));
                    offset = r.offset + 1;
                }
                if records.is_empty() || offset >= high {
                    break;
                }
            }
        }
        all
    })
}
