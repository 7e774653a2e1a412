//! Frame sets for differential tests (kernel against userspace): the given
//! frames, every one cut short, seeded mutations of them, and random bytes.

use rand::{Rng, SeedableRng};

/// `whole` followed by each frame cut at every `cut_step`-th length from 14
/// bytes, `mutated` copies with 1-3 random bytes changed, and `random`
/// frames of random bytes (seeded: the same set every run).
pub fn variations(
    whole: Vec<Vec<u8>>,
    cut_step: usize,
    mutated: usize,
    random: usize,
) -> Vec<Vec<u8>> {
    let mut frames = whole.clone();
    for f in &whole {
        for len in (14..f.len()).step_by(cut_step) {
            frames.push(f[..len].to_vec());
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for _ in 0..mutated {
        let mut f = whole[rng.gen_range(0..whole.len())].clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(12..f.len());
            f[at] = rng.gen();
        }
        frames.push(f);
    }
    for _ in 0..random {
        let len = rng.gen_range(14..200);
        frames.push((0..len).map(|_| rng.gen()).collect());
    }
    frames
}
