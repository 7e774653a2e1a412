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

/// Frames that must not become records: an ARP request (not IP) and an
/// IPv4 header claiming 16 bytes (IHL 4: unparsed).
pub fn non_records() -> Vec<Vec<u8>> {
    use ml_sniffing_common::build::{FrameSpec, Transport};
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x09]);
    arp.extend_from_slice(&0x0806u16.to_be_bytes());
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    let mut bad = FrameSpec::new(
        "10.10.0.2".parse().unwrap(),
        "10.10.0.1".parse().unwrap(),
        Transport::Udp { src: 1, dst: 2 },
    )
    .build();
    bad[14] = 0x44;
    vec![arp, bad]
}
