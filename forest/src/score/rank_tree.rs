//! A feature's sorted distinct thresholds laid out for ranking row values
//! (`NodeLines::row_keys`): a static B-tree of 64-byte lines.
//!
//! Level 0 is the sorted keys in lines of 16; each level above holds the
//! last key of every line of the level below, until one line is left. A
//! search reads one line per level, top down: the number of its keys below
//! the searched key (one vector compare and a popcount) is the line to
//! read next, and at level 0 the rank itself. On the benchmark forest
//! (78,000-107,000 thresholds per feature) that is 5 lines per search
//! where a binary search read 17 keys on as many lines, one dependent load
//! after the other.

/// Keys per line.
const LINE: usize = 16;

/// Keys greater than any searched key are never counted: the padding.
const PAD: u32 = u32::MAX;

/// 16 sorted keys on one cache line.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Line([u32; LINE]);

/// Sorted distinct keys, searched by [`RankTree::rank`] (plain) and
/// [`RankTree::ranks_avx512`] (line by line, many keys in lockstep).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RankTree {
    /// The number of keys.
    len: usize,
    /// `levels[0]`: the keys, padded with [`PAD`] to whole lines with at
    /// least one pad, so the last line ends with a pad. `levels[k + 1]`:
    /// the last key of each line of `levels[k]`, padded to whole lines;
    /// the last level is one line. A level's last real key is then a pad,
    /// so a search never counts all of a level's lines as below it.
    levels: Vec<Vec<Line>>,
}

impl RankTree {
    /// The tree of `sorted` (ascending, distinct, no [`PAD`]).
    pub(crate) fn new(sorted: &[u32]) -> RankTree {
        debug_assert!(sorted.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(sorted.last() != Some(&PAD));
        let mut levels = vec![lines_of(sorted.iter().copied().chain([PAD]))];
        while levels.last().expect("level 0").len() > 1 {
            let below = levels.last().expect("a level");
            levels.push(lines_of(below.iter().map(|line| line.0[LINE - 1])));
        }
        RankTree {
            len: sorted.len(),
            levels,
        }
    }

    /// Before `searches` searches: asks the CPU to bring every line into
    /// its L2 cache, one after the other (a stream it fetches well), when
    /// the searches are enough to touch most lines anyway. They then find
    /// level 0 there instead of in memory, where the walk's forest and rows
    /// had pushed it (4.4 -> 3.3 ms to rank the benchmark's 50,000 rows).
    /// A small batch only reads the lines it needs.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn prefetch_for(&self, searches: usize) {
        use std::arch::x86_64::*;
        if searches < self.levels[0].len() {
            return;
        }
        for line in self.levels.iter().flatten() {
            // SAFETY: a hint on an address inside a live slice.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(line.0.as_ptr() as *const i8) };
        }
    }

    /// The keys, ascending.
    pub(crate) fn sorted(&self) -> &[u32] {
        &bytemuck::cast_slice::<Line, u32>(&self.levels[0])[..self.len]
    }

    /// The number of keys below `key`: the plain search, the reference for
    /// [`RankTree::ranks_avx512`].
    pub(crate) fn rank(&self, key: u32) -> usize {
        self.sorted().partition_point(|&k| k < key)
    }

    /// [`RankTree::rank`] of each of `keys`, down the levels in lockstep
    /// (the keys' line loads are independent, so they overlap), a line
    /// compared in one instruction. Written plainly (a mask built key by
    /// key), the compiler made 16 scalar compares of it: slower than the
    /// binary search (8-9 ms against 6 ms for the benchmark's 50,000 rows).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn ranks_avx512<const N: usize>(&self, keys: &[u32; N]) -> [usize; N] {
        use std::arch::x86_64::*;
        // Before a level: the line to read in it; after: the number of its
        // keys below the searched key.
        let mut at = [0usize; N];
        for level in self.levels.iter().rev() {
            for (at, &key) in at.iter_mut().zip(keys) {
                // In bounds: the level above counted fewer of its keys
                // than this level has lines (its last real key is a pad).
                let line = &level[*at];
                // SAFETY: a Line is 64 bytes aligned to 64; the CPU
                // features are the caller's.
                let below = unsafe {
                    let line = _mm512_load_si512(line.0.as_ptr() as *const __m512i);
                    _mm512_cmplt_epu32_mask(line, _mm512_set1_epi32(key as i32))
                };
                *at = *at * LINE + below.count_ones() as usize;
            }
        }
        at
    }
}

/// `keys` in lines, the last one padded with [`PAD`].
fn lines_of(keys: impl Iterator<Item = u32>) -> Vec<Line> {
    let keys: Vec<u32> = keys.collect();
    keys.chunks(LINE)
        .map(|chunk| {
            let mut line = Line([PAD; LINE]);
            line.0[..chunk.len()].copy_from_slice(chunk);
            line
        })
        .collect()
}
