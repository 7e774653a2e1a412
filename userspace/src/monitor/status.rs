//! The status line (once a second on stderr) and back-pressure: when the
//! ring buffer overflows or fills up, the kernel is asked to sample one
//! packet in N (`--sample auto`, the default), and the status line says so.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::HumanCount;
use ml_sniffing_common::maps::Counters;

use super::Totals;
use crate::capture::live::Control;

/// How often the status line is printed.
pub const EVERY: Duration = Duration::from_secs(1);
/// The most packets auto-sampling skips: 1 in this many is kept.
pub const MAX_AUTO_SAMPLE: u32 = 1024;

/// Which packets the kernel hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// All, and 1 in N (N doubling) while the reader cannot keep up.
    Auto,
    /// Always 1 in N.
    Fixed(u32),
}

impl FromStr for Sampling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Sampling::Auto);
        }
        one_in(s)
            .map(Sampling::Fixed)
            .map_err(|_| format!("`{s}` is not `auto` or `1/N` with N at least 1"))
    }
}

/// `1/N` or `N` (one packet in N, N at least 1): the syntax of `--sample`
/// in `sniff` and `run`.
pub fn one_in(s: &str) -> Result<u32, String> {
    let n = s.strip_prefix("1/").unwrap_or(s);
    match n.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not `1/N` or `N` with N at least 1")),
    }
}

/// What back-pressure decided this second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    Keep,
    /// Sample more sparsely: 1 in this many.
    Raise(u32),
    /// The reader keeps up again: sample 1 in this many.
    Lower(u32),
}

/// Auto-sampling's rule: dropped records, or a ring buffer more than half
/// full, double N; ten calm seconds (no drops, under 5 % full) halve it.
pub fn pressure(current: u32, dropped: u64, fill: f64, calm_seconds: u32) -> Pressure {
    let current = current.max(1);
    if (dropped > 0 || fill > 0.5) && current < MAX_AUTO_SAMPLE {
        Pressure::Raise((current * 2).min(MAX_AUTO_SAMPLE))
    } else if current > 1 && dropped == 0 && fill < 0.05 && calm_seconds >= 10 {
        Pressure::Lower(current / 2)
    } else {
        Pressure::Keep
    }
}

pub struct Status {
    sampling: Sampling,
    /// 1 in this many packets is handed over now.
    sample_every: u32,
    applied: bool,
    started: Instant,
    last: Instant,
    last_totals: Totals,
    last_kernel: Option<Counters>,
    calm_seconds: u32,
}

impl Status {
    pub fn new(sampling: Sampling) -> Self {
        let now = Instant::now();
        Status {
            sampling,
            sample_every: match sampling {
                Sampling::Auto => 1,
                Sampling::Fixed(n) => n,
            },
            applied: false,
            started: now,
            last: now,
            last_totals: Totals::default(),
            last_kernel: None,
            calm_seconds: 0,
        }
    }

    /// 1 in this many packets is handed over now.
    pub fn sample_every(&self) -> u32 {
        self.sample_every
    }

    /// Once a second: prints the status line, and adjusts sampling.
    pub fn tick(
        &mut self,
        kernel: Option<&mut Control>,
        totals: Totals,
        model_version: Option<u32>,
        warming: usize,
    ) -> Result<()> {
        let mut kernel = kernel;
        if let (Some(k), false) = (kernel.as_deref_mut(), self.applied) {
            k.set_sample_every(self.sample_every)?;
            self.applied = true;
        }
        let elapsed = self.last.elapsed();
        if elapsed < EVERY {
            return Ok(());
        }
        self.last = Instant::now();
        let secs = elapsed.as_secs_f64();
        let rate = |now: u64, before: u64| HumanCount(((now - before) as f64 / secs) as u64);
        let mut line = format!("status: {:>6.1} s", self.started.elapsed().as_secs_f64());
        if let Some(k) = kernel {
            let counters = k.counters()?;
            let before = self.last_kernel.unwrap_or_default();
            let dropped = counters.ring_full - before.ring_full;
            let (backlog, capacity) = k.take_backlog();
            let fill = backlog as f64 / capacity.max(1) as f64;
            line.push_str(&format!(
                " | {} pkt/s | {} dropped/s | ring {:.1}%",
                rate(counters.seen, before.seen),
                rate(counters.ring_full, before.ring_full),
                100.0 * fill
            ));
            if self.sampling == Sampling::Auto {
                self.calm_seconds = if dropped == 0 && fill < 0.05 {
                    self.calm_seconds + 1
                } else {
                    0
                };
                match pressure(self.sample_every, dropped, fill, self.calm_seconds) {
                    Pressure::Keep => {}
                    Pressure::Raise(n) => {
                        eprintln!(
                            "warning: scoring cannot keep up ({dropped} records dropped, ring \
                             buffer {:.0}% full): the kernel now hands over 1 packet in {n} \
                             (--sample auto; every packet is still counted in its flow)",
                            100.0 * fill
                        );
                        k.set_sample_every(n)?;
                        self.sample_every = n;
                        self.calm_seconds = 0;
                    }
                    Pressure::Lower(n) => {
                        eprintln!(
                            "Scoring keeps up again: the kernel now hands over 1 packet in {n}."
                        );
                        k.set_sample_every(n)?;
                        self.sample_every = n;
                        self.calm_seconds = 0;
                    }
                }
            }
            self.last_kernel = Some(counters);
        }
        line.push_str(&format!(
            " | {} rec/s | {} scored/s | {} anomalies/s",
            rate(totals.records, self.last_totals.records),
            rate(totals.scored, self.last_totals.scored),
            rate(totals.anomalies, self.last_totals.anomalies)
        ));
        if self.sample_every > 1 {
            line.push_str(&format!(" | sampling 1/{}", self.sample_every));
        }
        match model_version {
            Some(v) => line.push_str(&format!(" | model v{v}")),
            None => line.push_str(&format!(" | warm-up {}", HumanCount(warming as u64))),
        }
        eprintln!("{line}");
        self.last_totals = totals;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_parses() {
        assert_eq!("auto".parse::<Sampling>().unwrap(), Sampling::Auto);
        assert_eq!("1/8".parse::<Sampling>().unwrap(), Sampling::Fixed(8));
        assert_eq!("4".parse::<Sampling>().unwrap(), Sampling::Fixed(4));
        assert!("1/0".parse::<Sampling>().is_err());
        assert!("half".parse::<Sampling>().is_err());
    }

    #[test]
    fn back_pressure_doubles_on_drops_and_relaxes_when_calm() {
        assert_eq!(pressure(1, 10, 0.0, 0), Pressure::Raise(2));
        assert_eq!(pressure(4, 0, 0.6, 0), Pressure::Raise(8));
        assert_eq!(pressure(MAX_AUTO_SAMPLE, 10, 0.9, 0), Pressure::Keep);
        assert_eq!(pressure(8, 0, 0.01, 10), Pressure::Lower(4));
        assert_eq!(pressure(8, 0, 0.01, 3), Pressure::Keep);
        assert_eq!(pressure(1, 0, 0.0, 100), Pressure::Keep);
    }
}
