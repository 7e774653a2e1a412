//! Kernel time to epoch time.
//!
//! The XDP program stamps records with `bpf_ktime_get_ns`, which is
//! CLOCK_MONOTONIC. The offset to CLOCK_REALTIME is measured by reading the
//! real-time clock between two monotonic reads and keeping the tightest of a
//! few tries, so it is good to a few microseconds; [`KernelClock::refresh`]
//! follows NTP adjustments of the real-time clock during long captures.

use std::time::Duration;

/// Converts kernel monotonic nanoseconds to epoch nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct KernelClock {
    /// realtime - monotonic, in ns.
    offset_ns: i128,
}

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks always exist.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    debug_assert_eq!(rc, 0);
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_MONOTONIC now, in ns (what `bpf_ktime_get_ns` returns).
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC) as u64
}

impl KernelClock {
    /// Measures the offset now.
    pub fn new() -> Self {
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..5 {
            let before = read(libc::CLOCK_MONOTONIC);
            let real = read(libc::CLOCK_REALTIME);
            let after = read(libc::CLOCK_MONOTONIC);
            let width = after - before;
            let offset = real - (before + width / 2);
            if best.is_none_or(|(w, _)| width < w) {
                best = Some((width, offset));
            }
        }
        KernelClock {
            offset_ns: best.map_or(0, |(_, o)| o),
        }
    }

    /// Measures the offset again (the real-time clock may have been adjusted).
    pub fn refresh(&mut self) {
        *self = KernelClock::new();
    }

    /// Epoch nanoseconds of a kernel monotonic timestamp.
    pub fn to_epoch_ns(&self, monotonic_ns: u64) -> u64 {
        (monotonic_ns as i128 + self.offset_ns).max(0) as u64
    }

    /// How often a long capture should [`refresh`](Self::refresh).
    pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
}

impl Default for KernelClock {
    fn default() -> Self {
        KernelClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn converted_monotonic_time_matches_the_system_clock_to_the_millisecond() {
        let clock = KernelClock::new();
        for _ in 0..100 {
            let kernel = monotonic_ns();
            let system = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i128;
            let converted = clock.to_epoch_ns(kernel) as i128;
            // The two reads are a few hundred ns apart; the target is 1 ms.
            assert!(
                (converted - system).abs() < 1_000_000,
                "off by {} ns",
                converted - system
            );
        }
    }

    #[test]
    fn the_offset_is_the_difference_of_the_clocks() {
        let clock = KernelClock { offset_ns: 1_000 };
        assert_eq!(clock.to_epoch_ns(5), 1_005);
        let clock = KernelClock { offset_ns: -10 };
        assert_eq!(clock.to_epoch_ns(5), 0, "never before the epoch");
    }
}
