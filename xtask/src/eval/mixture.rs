//! The labelled mixture: benign captures looped over the whole timeline,
//! each attack capture once in its test part, every packet at a unique
//! microsecond.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::capture::{Capture, Label};

const SECOND_NS: u64 = 1_000_000_000;

/// The shape of the timeline.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    /// Epoch seconds of its start.
    pub base_s: u64,
    pub length_ns: u64,
    /// Where the test part starts (the training part is before).
    pub split_ns: u64,
    /// Benign captures start at a seeded time in `[0, start_window_ns)`.
    pub start_window_ns: u64,
    /// Seeded pause between two repetitions of a benign capture.
    pub pause_min_ns: u64,
    pub pause_max_ns: u64,
}

impl Default for Timeline {
    /// 15 minutes from 2023-11-14 22:13:20 UTC, the first 60 % for
    /// training; benign captures start in the first 2 minutes and pause 1
    /// to 5 s between repetitions.
    fn default() -> Self {
        let length_ns = 15 * 60 * SECOND_NS;
        Timeline {
            base_s: 1_700_000_000,
            length_ns,
            split_ns: length_ns / 10 * 6,
            start_window_ns: 120 * SECOND_NS,
            pause_min_ns: SECOND_NS,
            pause_max_ns: 5 * SECOND_NS,
        }
    }
}

/// One packet of the mixture: which packet of which capture, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Epoch microseconds, strictly increasing along the mixture.
    pub time_us: u64,
    /// Index in the capture list the mixture was built from.
    pub capture: u32,
    /// Index in that capture's packets.
    pub packet: u32,
}

/// Where a capture went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Timeline offset of its first repetition.
    pub start_ns: u64,
    /// Repetitions started (attacks: 1).
    pub repetitions: u32,
    /// Its packets in the mixture, before and after the split.
    pub train: u64,
    pub test: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mixture {
    /// In time order.
    pub slots: Vec<Slot>,
    /// `slots[..n_train]` is the training part.
    pub n_train: usize,
    /// One per capture, same order.
    pub placements: Vec<Placement>,
}

impl Mixture {
    /// Builds the mixture of `captures` (benign and attack, in a fixed
    /// order) for `seed`.
    pub fn build(captures: &[Capture], timeline: &Timeline, seed: u64) -> Mixture {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // (timeline offset in ns, capture, packet), in a fixed order.
        let mut events: Vec<(u64, u32, u32)> = Vec::new();
        let mut placements = vec![Placement::default(); captures.len()];
        for (c, capture) in captures.iter().enumerate() {
            if capture.packets.is_empty() {
                continue;
            }
            let c32 = c as u32;
            let duration = capture.duration_ns();
            let placement = &mut placements[c];
            match capture.label {
                Label::Benign => {
                    let mut start = rng.gen_range(0..timeline.start_window_ns);
                    placement.start_ns = start;
                    while start < timeline.length_ns {
                        placement.repetitions += 1;
                        for (p, packet) in capture.packets.iter().enumerate() {
                            let at = start + packet.offset_ns;
                            if at >= timeline.length_ns {
                                break;
                            }
                            events.push((at, c32, p as u32));
                        }
                        start +=
                            duration + rng.gen_range(timeline.pause_min_ns..=timeline.pause_max_ns);
                    }
                }
                Label::Attack => {
                    let room = timeline.length_ns - timeline.split_ns;
                    // Ends before the timeline's end; one longer than the
                    // whole test part starts at the split (and runs past).
                    let start = if duration < room {
                        timeline.split_ns + rng.gen_range(0..room - duration)
                    } else {
                        timeline.split_ns
                    };
                    placement.start_ns = start;
                    placement.repetitions = 1;
                    for (p, packet) in capture.packets.iter().enumerate() {
                        events.push((start + packet.offset_ns, c32, p as u32));
                    }
                }
            }
        }
        // Stable: equal times keep the order above.
        events.sort_by_key(|e| e.0);
        let base_us = timeline.base_s * 1_000_000;
        let mut slots = Vec::with_capacity(events.len());
        let mut last_us: Option<u64> = None;
        for (at_ns, capture, packet) in events {
            let mut time_us = base_us + at_ns / 1_000;
            if let Some(last) = last_us {
                time_us = time_us.max(last + 1);
            }
            last_us = Some(time_us);
            slots.push(Slot {
                time_us,
                capture,
                packet,
            });
        }
        let split_us = base_us + timeline.split_ns / 1_000;
        let n_train = slots.partition_point(|s| s.time_us < split_us);
        for (i, s) in slots.iter().enumerate() {
            let p = &mut placements[s.capture as usize];
            if i < n_train {
                p.train += 1;
            } else {
                p.test += 1;
            }
        }
        Mixture {
            slots,
            n_train,
            placements,
        }
    }

    /// The label of slot `i`.
    pub fn label(&self, captures: &[Capture], i: usize) -> Label {
        captures[self.slots[i].capture as usize].label
    }
}

#[cfg(test)]
mod tests {
    use super::super::capture::tests::synthetic;
    use super::*;

    fn captures() -> Vec<Capture> {
        vec![
            // 50 packets over 4.9 s, 200 packets over 0.2 ms (collisions).
            synthetic("a", Label::Benign, 1, 50, 100_000_000),
            synthetic("b", Label::Benign, 2, 200, 1_000),
            synthetic("x", Label::Attack, 9, 300, 10_000_000),
        ]
    }

    fn small() -> Timeline {
        Timeline {
            length_ns: 100 * SECOND_NS,
            split_ns: 60 * SECOND_NS,
            start_window_ns: 10 * SECOND_NS,
            ..Timeline::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_different_for_another() {
        let c = captures();
        let one = Mixture::build(&c, &small(), 1);
        assert_eq!(one, Mixture::build(&c, &small(), 1));
        assert_ne!(one.slots, Mixture::build(&c, &small(), 2).slots);
    }

    #[test]
    fn times_are_unique_and_parts_are_right() {
        let c = captures();
        let t = small();
        let m = Mixture::build(&c, &t, 7);
        assert!(m.slots.windows(2).all(|w| w[0].time_us < w[1].time_us));
        let split_us = t.base_s * 1_000_000 + t.split_ns / 1_000;
        assert!(m.slots[..m.n_train].iter().all(|s| s.time_us < split_us));
        assert!(m.slots[m.n_train..].iter().all(|s| s.time_us >= split_us));
        // Attacks: all of them, once, in the test part, before the end.
        let attack: Vec<&Slot> = m.slots.iter().filter(|s| s.capture == 2).collect();
        assert_eq!(attack.len(), 300);
        assert!(m.slots[..m.n_train].iter().all(|s| s.capture != 2));
        let end_us = t.base_s * 1_000_000 + t.length_ns / 1_000;
        assert!(attack.iter().all(|s| s.time_us < end_us));
        // Benign captures on both sides, looped.
        for c in 0..2 {
            let p = m.placements[c];
            assert!(p.train > 0 && p.test > 0, "{p:?}");
            assert!(p.repetitions > 1);
        }
        assert_eq!(m.placements[2].test, 300);
        // Each capture's packets keep their order inside a repetition.
        let a: Vec<u32> = m
            .slots
            .iter()
            .filter(|s| s.capture == 2)
            .map(|s| s.packet)
            .collect();
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_long_attack_starts_at_the_split() {
        let mut c = captures();
        c[2] = synthetic("x", Label::Attack, 9, 100, 500_000_000); // 49.5 s
        let t = small();
        let m = Mixture::build(&c, &t, 3);
        assert_eq!(m.placements[2].start_ns, t.split_ns);
    }
}
