//! Phase timings on stderr when `ML_SNIFFING_TIMINGS` is set: where the time
//! and memory of a long run go (used to write BENCHMARKS.md).

use std::time::Instant;

pub struct Timings {
    start: Instant,
    enabled: bool,
}

impl Timings {
    pub fn start() -> Self {
        Timings {
            start: Instant::now(),
            enabled: std::env::var_os("ML_SNIFFING_TIMINGS").is_some(),
        }
    }

    /// Reports that `phase` ended, with the time since start and the
    /// resident memory now.
    pub fn mark(&self, phase: &str) {
        if !self.enabled {
            return;
        }
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        eprintln!(
            "timing: {phase:<12} done at {:>7.3} s, RSS {:>6.1} MB",
            self.start.elapsed().as_secs_f64(),
            rss_kib as f64 * 1024.0 / 1e6
        );
    }
}
