//! `run --kafka BROKERS --topic PREFIX`: the EVE events (alerts to
//! `PREFIX-alert`, stats to `PREFIX-stats`; with `--flows`, flow events to
//! `PREFIX-flow`) sent to Kafka, each alert and flow keyed by its flow's
//! Community ID so that one flow's events stay in one
//! partition. The monitor hands events to a bounded backlog and never
//! waits: a thread of its own delivers them, keeps them while the broker is
//! away, and resumes when it returns. An event that finds the backlog full
//! is dropped and counted; so is one still undelivered when the monitor has
//! waited [`FLUSH`] for the broker at exit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde_json::Value;
use tokio::sync::mpsc;

/// Events taken from the backlog and sent together at most.
const BATCH: usize = 1000;
/// How long the monitor waits at exit for events to be delivered.
pub const FLUSH: Duration = Duration::from_secs(5);
/// Waits between attempts while the broker is away.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MOST: Duration = Duration::from_secs(2);

/// Where the events go.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    pub brokers: Vec<String>,
    pub prefix: String,
    /// Events kept at most while the broker is away.
    pub backlog: usize,
    /// Flow events (`run --flows`) instead of alerts and stats.
    pub flows: bool,
}

/// What became of the events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KafkaCounts {
    pub delivered: u64,
    /// Dropped because the backlog was full.
    pub dropped: u64,
    /// Still undelivered when the monitor stopped waiting at exit.
    pub undelivered: u64,
}

impl KafkaCounts {
    /// The summary line: `Kafka: D {what} delivered to BROKERS, ...`.
    pub fn line(&self, what: &str, brokers: &str) -> String {
        format!(
            "Kafka: {} {what} delivered to {brokers}, {} dropped (the backlog was full while \
             the broker was away), {} undelivered at exit.\n",
            self.delivered, self.dropped, self.undelivered
        )
    }
}

struct Event {
    topic: Topic,
    key: Option<String>,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Topic {
    Alert,
    Stats,
    Flow,
}

#[derive(Default)]
struct Shared {
    delivered: AtomicU64,
    undelivered: AtomicU64,
    /// Set at exit: deliver what is left until the deadline, then stop.
    stopping: AtomicBool,
    /// The broker did not answer the last attempt.
    away: AtomicBool,
}

pub struct Kafka {
    tx: Option<mpsc::Sender<Event>>,
    dropped: u64,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    pub options: KafkaOptions,
}

impl Kafka {
    /// Starts the delivery thread; the broker need not be up yet.
    pub fn start(options: KafkaOptions) -> Result<Self> {
        let (tx, rx) = mpsc::channel(options.backlog.max(1));
        let shared = Arc::new(Shared::default());
        let thread = {
            let (options, shared) = (options.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("kafka".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(deliver(options, rx, &shared));
                })
                .context("cannot start the Kafka thread")?
        };
        Ok(Kafka {
            tx: Some(tx),
            dropped: 0,
            shared,
            thread: Some(thread),
            options,
        })
    }

    /// An alert event, keyed by its flow's Community ID.
    pub fn alert(&mut self, event: &Value) {
        let key = event["community_id"].as_str().map(str::to_string);
        self.send(Topic::Alert, key, event);
    }

    pub fn stats(&mut self, event: &Value) {
        self.send(Topic::Stats, None, event);
    }

    /// A flow event (`run --flows`), keyed by its Community ID.
    pub fn flow(&mut self, event: &Value) {
        let key = event["community_id"].as_str().map(str::to_string);
        self.send(Topic::Flow, key, event);
    }

    fn send(&mut self, topic: Topic, key: Option<String>, event: &Value) {
        let Some(tx) = &self.tx else { return };
        let event = Event {
            topic,
            key,
            value: event.to_string(),
        };
        if tx.try_send(event).is_err() {
            self.dropped += 1;
        }
    }

    /// The counts so far (delivered ones as the thread reports them).
    pub fn counts(&self) -> KafkaCounts {
        KafkaCounts {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            dropped: self.dropped,
            undelivered: self.shared.undelivered.load(Ordering::Relaxed),
        }
    }

    /// Delivers what is waiting (for at most [`FLUSH`]) and stops.
    pub fn finish(&mut self) -> KafkaCounts {
        if self.tx.is_some() && self.shared.away.load(Ordering::Relaxed) {
            eprintln!(
                "Kafka: the broker is away; waiting at most {} s for it before exit...",
                FLUSH.as_secs()
            );
        }
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.counts()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The topic's name.
fn topic_name(prefix: &str, topic: Topic) -> String {
    match topic {
        Topic::Alert => format!("{prefix}-alert"),
        Topic::Stats => format!("{prefix}-stats"),
        Topic::Flow => format!("{prefix}-flow"),
    }
}

/// A connected client and each topic's partitions.
struct Connection {
    partitions: HashMap<Topic, Vec<PartitionClient>>,
    /// The `sensor` header of every record: this host's name.
    sensor: Vec<u8>,
}

/// This host's name, for the `sensor` header.
fn host_name() -> Vec<u8> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().as_bytes().to_vec())
        .unwrap_or_default()
}

async fn connect(options: &KafkaOptions) -> Result<Connection> {
    let client: Client = ClientBuilder::new(options.brokers.clone())
        .client_id("ml-sniffing")
        .backoff_config(rskafka::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
            deadline: Some(Duration::from_secs(3)),
        })
        .build()
        .await?;
    let existing = client.list_topics().await?;
    let mut partitions = HashMap::new();
    let topics: &[Topic] = if options.flows {
        &[Topic::Flow]
    } else {
        &[Topic::Alert, Topic::Stats]
    };
    for &topic in topics {
        let name = topic_name(&options.prefix, topic);
        let count = match existing.iter().find(|t| t.name == name) {
            Some(t) => t.partitions.len().max(1) as i32,
            None => {
                client
                    .controller_client()?
                    .create_topic(&name, 1, 1, 5_000)
                    .await
                    .with_context(|| format!("cannot create the topic {name}"))?;
                1
            }
        };
        let mut clients = Vec::new();
        for p in 0..count {
            clients.push(
                client
                    .partition_client(name.clone(), p, UnknownTopicHandling::Retry)
                    .await?,
            );
        }
        partitions.insert(topic, clients);
    }
    Ok(Connection {
        partitions,
        sensor: host_name(),
    })
}

/// The partition of a keyed event: the same key, the same partition.
fn partition_of(key: Option<&str>, partitions: usize) -> usize {
    let hash = key.map_or(0, |k| {
        k.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        })
    });
    (hash % partitions.max(1) as u64) as usize
}

impl Connection {
    /// Sends `pending` in order, partition by partition; removes what was
    /// delivered, also when a later partition fails.
    async fn produce(&self, pending: &mut Vec<Event>, shared: &Shared) -> Result<()> {
        while !pending.is_empty() {
            let (topic, key) = (pending[0].topic, pending[0].key.clone());
            let clients = &self.partitions[&topic];
            let p = partition_of(key.as_deref(), clients.len());
            let same: Vec<usize> = (0..pending.len())
                .filter(|&i| {
                    pending[i].topic == topic
                        && partition_of(pending[i].key.as_deref(), clients.len()) == p
                })
                .collect();
            let now = chrono::Utc::now();
            let records = same
                .iter()
                .map(|&i| Record {
                    key: pending[i].key.as_ref().map(|k| k.clone().into_bytes()),
                    value: Some(pending[i].value.clone().into_bytes()),
                    headers: [("sensor".to_string(), self.sensor.clone())].into(),
                    timestamp: now,
                })
                .collect();
            clients[p]
                .produce(records, Compression::NoCompression)
                .await?;
            shared
                .delivered
                .fetch_add(same.len() as u64, Ordering::Relaxed);
            let mut i = 0;
            pending.retain(|_| {
                let keep = same.binary_search(&i).is_err();
                i += 1;
                keep
            });
        }
        Ok(())
    }
}

async fn deliver(options: KafkaOptions, mut rx: mpsc::Receiver<Event>, shared: &Shared) {
    let mut pending: Vec<Event> = Vec::new();
    let mut connection: Option<Connection> = None;
    let mut closed = false;
    let mut wait = RETRY_FIRST;
    let mut deadline: Option<Instant> = None;
    let mut warned = false;
    loop {
        if shared.stopping.load(Ordering::Relaxed) && deadline.is_none() {
            deadline = Some(Instant::now() + FLUSH);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if pending.is_empty() {
            if closed {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(Some(e)) => pending.push(e),
                Ok(None) => closed = true,
                Err(_) => {}
            }
        }
        if pending.is_empty() {
            continue;
        }
        if connection.is_none() {
            match connect(&options).await {
                Ok(c) => {
                    if warned {
                        eprintln!(
                            "Kafka: {} reached again; delivering.",
                            options.brokers.join(",")
                        );
                        warned = false;
                    }
                    connection = Some(c);
                    shared.away.store(false, Ordering::Relaxed);
                    wait = RETRY_FIRST;
                }
                Err(e) => {
                    shared.away.store(true, Ordering::Relaxed);
                    if !warned {
                        eprintln!(
                            "warning: Kafka: cannot reach {} ({e:#}); events wait in the \
                             backlog (at most {}) and are sent when it answers.",
                            options.brokers.join(","),
                            options.backlog
                        );
                        warned = true;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MOST);
                    continue;
                }
            }
        }
        // Connected: the batch is topped up (not before, so that the
        // events waiting for the broker stay in the bounded backlog).
        while pending.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => pending.push(e),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        let c = connection.as_ref().expect("connected");
        if let Err(e) = c.produce(&mut pending, shared).await {
            if !warned {
                eprintln!(
                    "warning: Kafka: sending to {} failed ({e:#}); retrying.",
                    options.brokers.join(",")
                );
                warned = true;
            }
            connection = None;
            shared.away.store(true, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_MOST);
        }
    }
    rx.close();
    let mut left = pending.len() as u64;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    shared.undelivered.store(left, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_one_partition() {
        let a = partition_of(Some("1:abc="), 7);
        assert_eq!(a, partition_of(Some("1:abc="), 7));
        assert!(a < 7);
        assert_eq!(partition_of(None, 3), 0);
        assert_eq!(partition_of(Some("x"), 1), 0);
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|i| partition_of(Some(&format!("1:{i}")), 4))
            .collect();
        assert_eq!(spread.len(), 4, "keys spread over the partitions");
    }

    /// With no broker, events wait in the backlog; beyond it they are
    /// dropped and counted, and what is left at exit is counted too.
    #[test]
    fn without_a_broker_nothing_is_lost_silently() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut k = Kafka::start(KafkaOptions {
            brokers: vec![format!("127.0.0.1:{port}")],
            prefix: "t".into(),
            backlog: 10,
            flows: false,
        })
        .unwrap();
        let event = serde_json::json!({"event_type": "alert", "community_id": "1:x"});
        for _ in 0..25 {
            k.alert(&event);
        }
        let counts = k.finish();
        assert_eq!(counts.delivered, 0);
        assert!(counts.dropped >= 14, "{counts:?}");
        assert_eq!(counts.dropped + counts.undelivered, 25, "{counts:?}");
    }
}
