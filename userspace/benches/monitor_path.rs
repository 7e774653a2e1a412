//! The monitor's userspace path on one thread: records (as the ring buffer
//! hands them over) through feature extraction, batching and scoring with
//! a 200-tree Isolation Forest, without the kernel. Run by `cargo xtask
//! bench --only monitor` (or `cargo bench -p ml-sniffing --bench monitor_path`).

use std::time::Instant;

use ml_sniffing::features::records::RecordFeatures;
use ml_sniffing::monitor::models::Detector;
use ml_sniffing::monitor::status::Sampling;
use ml_sniffing::monitor::{Monitor, MonitorOptions};
use ml_sniffing_common::record::{addr_bytes, PacketRecord};
use ml_sniffing_forest::iforest::IsolationForestParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const RECORDS: usize = 2_000_000;

fn records() -> Vec<PacketRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let hosts: Vec<[u8; 16]> = (0..64)
        .map(|i| addr_bytes(format!("10.0.{}.{}", i / 8, i % 8 + 1).parse().unwrap()))
        .collect();
    let mut t = 1_700_000_000_000_000_000u64;
    (0..RECORDS)
        .map(|_| {
            t += rng.gen_range(0..2_000);
            let tcp = rng.gen_bool(0.7);
            PacketRecord {
                timestamp_ns: t,
                src_addr: hosts[rng.gen_range(0..64)],
                dst_addr: hosts[rng.gen_range(0..64)],
                frame_len: rng.gen_range(60..1514),
                src_port: rng.gen_range(1024..65535),
                dst_port: [80, 443, 53, 22][rng.gen_range(0..4)],
                protocol: if tcp { 6 } else { 17 },
                ip_version: 4,
                ttl: 64,
                tcp_flags: if tcp { 0x10 } else { 0 },
                flow_packets: rng.gen_range(1..100),
                flow_bytes: rng.gen_range(60..100_000),
                flow_gap_ns: rng.gen_range(0..1_000_000_000),
                ..PacketRecord::default()
            }
        })
        .collect()
}

fn main() {
    let records = records();
    let features = RecordFeatures::default_set();
    let mut columns = vec![Vec::with_capacity(50_000); features.len()];
    for r in &records[..50_000] {
        for (f, c) in columns.iter_mut().enumerate() {
            c.push(features.value(f, r));
        }
    }
    let data = ml_sniffing_forest::FeatureMatrix::from_columns(features.names(), columns);
    let model = IsolationForestParams::default().fit(&data).unwrap();
    let options = MonitorOptions {
        warmup: 50_000,
        refit_every: None,
        params: IsolationForestParams::default(),
        alert_rate: 1e-4,
        batch: 1024,
        output: None,
        json: false,
        quiet: true,
        sampling: Sampling::Fixed(1),
        packet_count: None,
        replay: true,
        alerts: Default::default(),
        eve: None,
        metrics: None,
        web: None,
        kafka: None,
    };
    // The offset: the same share of packets alerts as before thresholds.
    let model_threshold = model.offset;
    let detector = Detector {
        model: std::sync::Arc::new(model),
        features,
        version: 1,
        threshold: Some(model_threshold),
        calibration: Default::default(),
    };
    println!("| path | threads | records | seconds | records/s |\n|---|---|---|---|---|");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let secs = pool.install(|| {
            let mut sink = std::io::sink();
            let mut monitor =
                Monitor::new(options.clone(), Some(detector.clone()), None, &mut sink).unwrap();
            let start = Instant::now();
            for r in &records {
                let _ = monitor.push(r, r.timestamp_ns).unwrap();
            }
            monitor.finish().unwrap();
            assert_eq!(monitor.totals().scored as usize, RECORDS);
            start.elapsed().as_secs_f64()
        });
        println!(
            "| records -> features -> batches of 1024 -> 200-tree Isolation Forest | {threads} | {RECORDS} | {secs:.3} | {:.0} |",
            RECORDS as f64 / secs
        );
    }
}
