//! The AVX-512 walk over [`NodeLines`]: 16 rows side by side, one line (three
//! tree levels) per step.
//!
//! Rows are ranked, a tile at a time, into a scratch of 16 keys per row
//! (64 bytes, one register; `NodeLines::row_key`). A step of one row: load
//! the line's 8 node keys, permute the row's register by them (`vpermd`
//! reads the feature in their low bits), compare with the same keys
//! (`vpcmpud`, a mask), look the exit up in [`EXIT`], read the next
//! line's number: 7 instructions for three levels, and 16 rows give the
//! CPU 16 independent chains of loads.
//!
//! Rows need different numbers of lines to reach their leaf. A group of
//! 16 rows takes a fixed number of steps with no branch per row (rows at
//! their leaf step in place); then each row at its leaf adds the leaf's
//! probabilities to its sums, and each other row is appended to a list,
//! branch-free (a row adds the zero leaf instead). The list is walked the
//! same way, fewer steps per wave, until it is empty. Every row meets each
//! tree once and trees come one after the other, so each row's sums are
//! added in tree order: the pointer trees' order, bit-identical results.
//! When every leaf is one class with probability 1 (fully grown forests),
//! rows count votes in 16 bits instead (`NodeLines::vote_slots`): the
//! counts are exactly those sums, and a count is one add where a sum was
//! a conversion, a load, an add and a store per 4 classes.
//!
//! While a tree is walked, its successor's lines and leaf values are
//! prefetched into L2, a few lines per group of rows: the forest (24 MB of
//! lines, 18 MB of leaf values) does not fit the caches. BENCHMARKS.md
//! gives the figures, git the variants tried.

use std::arch::x86_64::*;

use super::node_lines::{NodeLines, EXIT};
use crate::rforest::stop::{lead, Stop};
use crate::Block;

/// Rows walked side by side (one register each; more spill).
const LANES: usize = 16;

/// Keys per row in the scratch: one 64-byte register for up to 16
/// features, two for 17 to 32.
const fn row_keys(wide: bool) -> usize {
    if wide {
        32
    } else {
        16
    }
}

/// Rows per tile. Every tree reads the tile's row keys (64 bytes a row)
/// again, so where the L2 is large (2 MiB or more) they should stay in it
/// (3/4 of it); where it is small, large tiles (fewer passes over the
/// forest) measured better.
pub fn tile_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| tile_rows_for(l2_bytes()))
}

/// [`tile_rows`] for an L2 of `l2` bytes (0: unknown), sized for rows of
/// one register (forests of up to 16 features, the only ones measured).
pub(crate) fn tile_rows_for(l2: usize) -> usize {
    const LARGE_TILE: usize = 50_000;
    let row_bytes = row_keys(false) * std::mem::size_of::<u32>();
    if l2 >= 2 << 20 {
        (l2 / 4 * 3 / row_bytes).min(LARGE_TILE)
    } else {
        LARGE_TILE
    }
}

/// The L2 cache of this core in bytes, from CPUID leaf 0x8000_0006 (ECX
/// bits 31..16, in KiB, on Intel and AMD alike); 0 when the CPU does not
/// report it.
fn l2_bytes() -> usize {
    if __cpuid(0x8000_0000).eax < 0x8000_0006 {
        return 0;
    }
    ((__cpuid(0x8000_0006).ecx >> 16) as usize) << 10
}

/// Steps of the first wave and of the later ones (capped by the tree's
/// depth in lines): the best measured on the benchmark forest (6.07 lines
/// per walk on average).
pub const FIRST_WAVE_STEPS: usize = 7;
pub const LATER_WAVE_STEPS: usize = 3;

/// Whether this CPU runs the walk.
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("popcnt")
}

/// Working memory of one walk, reused across tiles.
struct Scratch {
    /// 16 or 32 keys per row ([`row_keys`]): the tile's rows, padding rows
    /// up to a multiple of `LANES`, and `LANES` all-zero parking rows from
    /// index `parked_row` (one per lane: padding lanes never share a row,
    /// so their sums never make a lane wait for another's store).
    keys: Vec<u32>,
    /// `padded_classes` sums per row (and the parking rows).
    sums: Vec<f64>,
    /// With [`NodeLines::votes`], the walk counts votes here instead
    /// (`vote_stride` per row), then writes them to `sums`.
    votes: Vec<u16>,
    /// Rows of the tile whose class is not decided yet (all of them
    /// without a [`Stop`]): the rows the next tree walks.
    active: Vec<u32>,
    /// Rows still walking: (row, line).
    items: Vec<(u32, u32)>,
    next_items: Vec<(u32, u32)>,
}

/// Adds each row's probability sums over all trees (from zero, in tree
/// order) to `out` (`block.len() * n_classes`), as
/// [`NodeLines::add_probabilities_scalar`] does.
///
/// # Safety
/// The CPU must support the features [`available`] checks.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,bmi1,bmi2,popcnt")]
pub unsafe fn add_probabilities(lines: &NodeLines, block: Block, out: &mut [f64]) {
    // SAFETY: the caller's contract.
    unsafe {
        add_probabilities_with(
            lines,
            block,
            out,
            tile_rows(),
            FIRST_WAVE_STEPS,
            LATER_WAVE_STEPS,
        )
    }
}

/// [`add_probabilities`] with chosen tile size and wave lengths (all at
/// least 1), for tests and tuning.
///
/// # Safety
/// The CPU must support the features [`available`] checks.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,bmi1,bmi2,popcnt")]
pub unsafe fn add_probabilities_with(
    lines: &NodeLines,
    block: Block,
    out: &mut [f64],
    tile_rows: usize,
    first_wave: usize,
    later_waves: usize,
) {
    let c = lines.n_classes;
    assert_eq!(out.len(), block.len() * c, "one sum per row and class");
    let walk = Walk {
        tile_rows,
        first_wave,
        later_waves,
        stop: None,
    };
    // SAFETY: the caller's contract.
    unsafe {
        walk_tiles(lines, block, &walk, |start, sums| {
            let p = lines.padded_classes;
            for (o, r) in out[start * c..]
                .chunks_exact_mut(c)
                .zip(sums.chunks_exact(p))
            {
                for (o, s) in o.iter_mut().zip(r) {
                    *o += s;
                }
            }
        });
    }
}

/// The class of each row (the index of its largest probability, first on
/// ties), as the argmax of [`add_probabilities`]'s sums divided by the
/// number of trees, into `out` (`block.len()`). A row leaves the walk as
/// soon as the trees left cannot change its class (`stop::Stop`). Returns the
/// number of (row, tree) walks taken.
///
/// # Safety
/// The CPU must support the features [`available`] checks.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,bmi1,bmi2,popcnt")]
pub unsafe fn predict_classes(lines: &NodeLines, block: Block, out: &mut [u32]) -> usize {
    assert_eq!(out.len(), block.len(), "one class per row");
    let walk = Walk {
        tile_rows: tile_rows(),
        first_wave: FIRST_WAVE_STEPS,
        later_waves: LATER_WAVE_STEPS,
        stop: Stop::new(lines.n_trees(), &lines.leaf_values),
    };
    let n_trees = lines.n_trees() as f64;
    // SAFETY: the caller's contract.
    unsafe {
        walk_tiles(lines, block, &walk, |start, sums| {
            let (c, p) = (lines.n_classes, lines.padded_classes);
            for (o, row) in out[start..].iter_mut().zip(sums.chunks_exact(p)) {
                *o = crate::rforest::argmax(row[..c].iter().map(|s| s / n_trees));
            }
        })
    }
}

/// How a walk goes: tile size, wave lengths (all at least 1) and whether
/// rows stop once their class is decided.
struct Walk {
    tile_rows: usize,
    first_wave: usize,
    later_waves: usize,
    stop: Option<Stop>,
}

/// Walks `block` tile after tile, handing each tile's first row and its
/// rows' sums (`padded_classes` per row, the classes first) to `done`;
/// returns the number of (row, tree) walks.
///
/// # Safety
/// The CPU must support the features [`available`] checks.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,bmi1,bmi2,popcnt")]
unsafe fn walk_tiles(
    lines: &NodeLines,
    block: Block,
    walk: &Walk,
    mut done: impl FnMut(usize, &[f64]),
) -> usize {
    assert!(block.n_features() >= lines.n_features, "too few features");
    assert!(walk.tile_rows >= 1 && walk.first_wave >= 1 && walk.later_waves >= 1);
    // Tiles of equal size (no small last tile, whose groups would be too
    // few to prefetch the next tree).
    let tile_rows = block
        .len()
        .div_ceil(block.len().div_ceil(walk.tile_rows).max(1))
        .max(1);
    let cap = tile_rows.min(block.len()).div_ceil(LANES) * LANES;
    let wide = lines.n_features > 16;
    let mut walked = 0;
    let mut s = Scratch {
        keys: vec![0; (cap + LANES) * row_keys(wide)],
        sums: vec![0.0; (cap + LANES) * lines.padded_classes],
        votes: if lines.votes() {
            vec![0; (cap + LANES) * lines.vote_stride()]
        } else {
            Vec::new()
        },
        active: Vec::with_capacity(cap),
        items: Vec::with_capacity(cap + LANES),
        next_items: Vec::with_capacity(cap + LANES),
    };
    for start in (0..block.len()).step_by(tile_rows) {
        let end = (start + tile_rows).min(block.len());
        let tile = block.rows(start, end);
        // SAFETY: the caller guarantees the CPU features. One, two or any
        // number of 4-class vectors per leaf (a loop of constant length
        // unrolls; the general loop costs branches per row), rows of one or
        // two registers, votes, shared or numbered leaf values.
        walked += unsafe {
            macro_rules! walk {
                ($vectors:literal, $wide:literal) => {
                    if lines.votes() {
                        walk_tile::<$vectors, $wide, true, true>(lines, tile, &mut s, walk)
                    } else if lines.shared_values {
                        walk_tile::<$vectors, $wide, true, false>(lines, tile, &mut s, walk)
                    } else {
                        walk_tile::<$vectors, $wide, false, false>(lines, tile, &mut s, walk)
                    }
                };
            }
            match (lines.padded_classes / 4, wide) {
                (1, false) => walk!(1, false),
                (2, false) => walk!(2, false),
                (_, false) => walk!(0, false),
                (1, true) => walk!(1, true),
                (_, true) => walk!(0, true),
            }
        };
        done(start, &s.sums[..(end - start) * lines.padded_classes]);
    }
    walked
}

/// Walks every tree over one tile, leaving each row's sums in `s.sums`;
/// returns the number of (row, tree) walks.
/// `VECTORS`: the number of 4-class vectors per leaf, or 0 for any; `WIDE`:
/// rows of 32 keys (more than 16 features); `SHARED`: the lines'
/// `shared_values`; `VOTES`: [`NodeLines::votes`].
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,bmi1,bmi2,popcnt")]
unsafe fn walk_tile<
    const VECTORS: usize,
    const WIDE: bool,
    const SHARED: bool,
    const VOTES: bool,
>(
    lines: &NodeLines,
    tile: Block,
    s: &mut Scratch,
    walk: &Walk,
) -> usize {
    let n = tile.len();
    let padded = n.div_ceil(LANES) * LANES;
    let parked_row = padded;
    let p = lines.padded_classes;
    let stride = row_keys(WIDE);
    assert!(lines.n_features <= stride);
    let end = parked_row + LANES;
    assert!(s.sums.len() >= end * p && s.keys.len() >= end * stride);
    // Keys, row-major: a row is one or two 64-byte registers. Feature by
    // feature, so one feature's thresholds stay in cache while ranking.
    s.keys[..end * stride].fill(0);
    for f in 0..lines.n_features {
        // SAFETY: the caller guarantees the CPU features.
        unsafe { lines.row_keys(f, tile.column(f), |r, key| s.keys[r * stride + f] = key) };
    }
    s.sums[..end * p].fill(0.0);
    let v = lines.vote_stride();
    if VOTES {
        assert!(s.votes.len() >= end * v);
        s.votes[..end * v].fill(0);
    }
    s.active.clear();
    s.active.extend(0..n as u32);
    let n_trees = lines.n_trees();
    let mut walked = 0;
    for t in 0..n_trees {
        if s.active.is_empty() {
            break;
        }
        walked += s.active.len();
        let first = lines.tree_lines[t] as usize;
        let tree = &lines.lines[first..lines.tree_lines[t + 1] as usize];
        let steps = lines.tree_steps[t] as usize;
        // Lines of the next tree to prefetch per group of the first wave.
        let prefetch = if t + 1 < n_trees {
            let recs =
                &lines.lines[lines.tree_lines[t + 1] as usize..lines.tree_lines[t + 2] as usize];
            let leaves = &lines.leaf_values
                [lines.tree_leaves[t + 1] as usize * p..lines.tree_leaves[t + 2] as usize * p];
            Prefetch::new(
                bytes_of(recs),
                bytes_of(leaves),
                s.active.len().div_ceil(LANES),
            )
        } else {
            Prefetch::new(&[], &[], 1)
        };
        let left = n_trees - t - 1;
        let decisive_lead = match walk.stop {
            Some(stop) if stop.worth_checking(t + 1, left) => stop.lead_needed(left),
            _ => f64::INFINITY,
        };
        s.next_items.clear();
        // The first wave: every active row, from the root (padding lanes
        // walk the all-zero parking row).
        let mut prefetch = prefetch;
        for group in s.active.chunks(LANES) {
            prefetch.some();
            let mut rows: [u32; LANES] = std::array::from_fn(|l| (parked_row + l) as u32);
            rows[..group.len()].copy_from_slice(group);
            // SAFETY: rows < n or parking rows: keys and sums exist (both
            // asserted above); line 0 is the root; the list has room
            // (capacity cap + LANES, each row listed at most once); the CPU
            // features are the caller's.
            unsafe {
                walk_group::<VECTORS, WIDE, SHARED, VOTES>(
                    tree,
                    &s.keys,
                    rows,
                    [0; LANES],
                    walk.first_wave.min(steps),
                    lines,
                    &mut s.sums,
                    &mut s.votes,
                    &mut s.next_items,
                )
            };
        }
        // Later waves: the rows still walking, from where they are.
        while !s.next_items.is_empty() {
            std::mem::swap(&mut s.items, &mut s.next_items);
            let parking = lines.parking[t] as u32;
            let padding = s.items.len().next_multiple_of(LANES) - s.items.len();
            s.items
                .extend((0..padding).map(|l| ((parked_row + l) as u32, parking)));
            s.next_items.clear();
            for group in s.items.chunks_exact(LANES) {
                let (mut rows, mut at) = ([0u32; LANES], [0u32; LANES]);
                for l in 0..LANES {
                    (rows[l], at[l]) = group[l];
                }
                // SAFETY: items hold rows below parked_row + LANES and
                // lines of this tree (written by `walk_group` or parking
                // pairs).
                unsafe {
                    walk_group::<VECTORS, WIDE, SHARED, VOTES>(
                        tree,
                        &s.keys,
                        rows,
                        at,
                        walk.later_waves.min(steps),
                        lines,
                        &mut s.sums,
                        &mut s.votes,
                        &mut s.next_items,
                    )
                };
            }
        }
        // Rows whose class the trees left cannot change stop here, in a
        // pass of their own: checking inside the walk made every step
        // slower (35 -> 45 cycles per row and tree on the benchmark).
        // Branch-free compaction: whether a row stops is data.
        if decisive_lead.is_finite() {
            let c = lines.n_classes;
            let mut kept = 0;
            for i in 0..s.active.len() {
                let r = s.active[i] as usize;
                s.active[kept] = r as u32;
                let lead = if VOTES {
                    lead(&s.votes[r * v..][..c])
                } else {
                    lead(&s.sums[r * p..][..c])
                };
                kept += (lead <= decisive_lead) as usize;
            }
            s.active.truncate(kept);
        }
    }
    if VOTES {
        // Counts are exact, so they are the sums of one-hot leaf values
        // in any order.
        let c = lines.n_classes;
        for (sums, votes) in s.sums[..n * p]
            .chunks_exact_mut(p)
            .zip(s.votes.chunks_exact(v))
        {
            for (s, &v) in sums[..c].iter_mut().zip(votes) {
                *s = v as f64;
            }
        }
    }
    walked
}

fn bytes_of<T>(v: &[T]) -> &[u8] {
    // SAFETY: any initialised memory can be read as bytes (NodeLine and f32
    // have no padding bytes left uninitialised: NodeLine's padding is an
    // explicit field).
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// Most lines prefetched per group of rows. A full tile needs about 7 per
/// group to bring in a whole tree; a small batch (a few groups) only gets
/// the start of the next tree (its top lines, the most visited: lines
/// are in breadth-first order) instead of streaming 200 KB per tree.
const MAX_PREFETCH_PER_GROUP: usize = 16;

/// Prefetches two byte ranges, a share per call.
struct Prefetch<'a> {
    a: &'a [u8],
    b: &'a [u8],
    at: usize,
    per_call: usize,
}

impl<'a> Prefetch<'a> {
    fn new(a: &'a [u8], b: &'a [u8], calls: usize) -> Self {
        let lines = (a.len() + b.len()).div_ceil(64);
        Prefetch {
            a,
            b,
            at: 0,
            per_call: lines.div_ceil(calls.max(1)).min(MAX_PREFETCH_PER_GROUP),
        }
    }

    #[inline(always)]
    fn some(&mut self) {
        for _ in 0..self.per_call {
            let at = self.at;
            let p = if at < self.a.len() {
                self.a[at..].as_ptr()
            } else if at - self.a.len() < self.b.len() {
                self.b[at - self.a.len()..].as_ptr()
            } else {
                return;
            };
            // SAFETY: a hint on an address inside a live slice.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p as *const i8) };
            self.at += 64;
        }
    }
}

/// Expands `$step!(l)` for each lane `l` in order. A loop over the lanes
/// that the compiler keeps rolled indexes the rows' registers at run time,
/// so it first writes them all to the stack (16 stores of 64 bytes per
/// group): the last step as such a loop cost 3-6 % of the classes/s.
macro_rules! for_each_lane {
    ($step:ident) => {
        $step!(0);
        $step!(1);
        $step!(2);
        $step!(3);
        $step!(4);
        $step!(5);
        $step!(6);
        $step!(7);
        $step!(8);
        $step!(9);
        $step!(10);
        $step!(11);
        $step!(12);
        $step!(13);
        $step!(14);
        $step!(15);
    };
}
const _: () = assert!(LANES == 16, "for_each_lane expands 16 lanes");

/// Walks `LANES` rows (`rows`, at lines `at`) through `tree` for `steps`
/// steps. Rows that reached their leaf add its probabilities to their sums
/// (`padded_classes` per row) or, with `VOTES`, count its class in `votes`
/// (`vote_stride` per row); the others are appended to `walking` (its
/// capacity must allow `LANES` more).
/// `VECTORS` is `padded_classes / 4`, or 0 for a loop over any number.
///
/// # Safety
/// Every row has [`row_keys`]`(WIDE)` keys in `keys`, `padded_classes`
/// sums in `sums` and, with `VOTES`, `vote_stride` counts in `votes`; every
/// `at` is a line of `tree` (a tree of `lines`), `steps >= 1`, and the
/// caller is compiled with the features of [`available`] (this function is
/// always inlined into it).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn walk_group<
    const VECTORS: usize,
    const WIDE: bool,
    const SHARED: bool,
    const VOTES: bool,
>(
    tree: &[super::node_lines::NodeLine],
    keys: &[u32],
    rows: [u32; LANES],
    at: [u32; LANES],
    steps: usize,
    lines: &NodeLines,
    sums: &mut [f64],
    votes: &mut [u16],
    walking: &mut Vec<(u32, u32)>,
) {
    let p = lines.padded_classes;
    debug_assert!(VECTORS == 0 || VECTORS * 4 == p);
    let zero_leaf = lines.zero_leaf() as usize;
    let v = lines.vote_stride();
    debug_assert!(rows
        .iter()
        .all(|&r| (r as usize + 1) * row_keys(WIDE) <= keys.len()
            && (r as usize + 1) * p <= sums.len()
            && (!VOTES || (r as usize + 1) * v <= votes.len())));
    debug_assert!(at.iter().all(|&i| (i as usize) < tree.len()));
    debug_assert!(steps >= 1);
    debug_assert!(walking.capacity() >= walking.len() + LANES);
    // SAFETY (for the whole body): each row's keys and sums are inside
    // `keys` and `sums` (the caller's contract); lines are indexed by `at`
    // and by `next` entries, which `NodeLines::check` keeps inside the tree;
    // `EXIT` entries are below 8; leaf exits give leaves of the tree
    // (checked) and other rows the zero leaf, all inside `leaf_values`.
    unsafe {
        // Narrow rows stay in registers; wide ones (two registers each)
        // are read from the scratch at each step (L1).
        let mut row_regs = [_mm512_setzero_si512(); LANES];
        let mut row_ptrs = [keys.as_ptr(); LANES];
        let mut idx = [0usize; LANES];
        for l in 0..LANES {
            row_ptrs[l] = keys.as_ptr().add(rows[l] as usize * row_keys(WIDE));
            if !WIDE {
                row_regs[l] = _mm512_loadu_si512(row_ptrs[l] as *const __m512i);
            }
            idx[l] = at[l] as usize;
        }
        let base = tree.as_ptr();
        // One step of lane `l` from line `idx[l]`: (line, exit, next).
        macro_rules! step {
            ($l:expr) => {{
                let line = &*base.add(idx[$l]);
                // The node keys are also the permute's indices (their
                // feature bits); the upper 8 indices are unused.
                let t = _mm256_load_si256(line.keys.as_ptr() as *const __m256i);
                let features = _mm512_castsi256_si512(t);
                let x = if WIDE {
                    let row = row_ptrs[$l] as *const __m512i;
                    let (low, high) = (_mm512_loadu_si512(row), _mm512_loadu_si512(row.add(1)));
                    _mm512_permutex2var_epi32(low, features, high)
                } else {
                    _mm512_permutexvar_epi32(features, row_regs[$l])
                };
                let x = _mm512_castsi512_si256(x);
                let mask = _mm256_cmpgt_epu32_mask(x, t);
                let e = *EXIT.get_unchecked(mask as usize) as usize;
                (line, e, *line.next.get_unchecked(e) as usize)
            }};
        }
        for _ in 1..steps {
            for l in 0..LANES {
                idx[l] = step!(l).2;
            }
        }
        // The last step of every lane first, then the sums and the list:
        // the sums' loads and stores stay out of the steps' chains.
        let mut leaves = [0usize; LANES];
        macro_rules! last_step {
            ($l:expr) => {{
                let (line, e, next) = step!($l);
                let done = next == idx[$l];
                // Branch-free: a row at its leaf adds the leaf's values,
                // another one adds the zero leaf's and is appended to the
                // list.
                let keep = (done as usize).wrapping_neg();
                let leaf = NodeLines::leaf_of_by::<SHARED>(line, e) as usize;
                leaves[$l] = (leaf & keep) | (zero_leaf & !keep);
                idx[$l] = next | (!keep & (1 << 31));
            }};
        }
        for_each_lane!(last_step);
        let values = lines.leaf_values.as_ptr();
        let (list, mut cnt) = (walking.as_mut_ptr(), walking.len());
        for l in 0..LANES {
            let row = rows[l] as usize;
            if VOTES {
                // A class, or the slot after the classes for the zero leaf.
                let slot = *lines.vote_slots.get_unchecked(leaves[l]) as usize;
                *votes.get_unchecked_mut(row * v + slot) += 1;
            } else {
                let (v, s) = (values.add(leaves[l] * p), sums.as_mut_ptr().add(row * p));
                let vectors = if VECTORS == 0 { p / 4 } else { VECTORS };
                for q in (0..vectors).map(|q| 4 * q) {
                    let v = _mm256_cvtps_pd(_mm_loadu_ps(v.add(q)));
                    _mm256_storeu_pd(s.add(q), _mm256_add_pd(_mm256_loadu_pd(s.add(q)), v));
                }
            }
            // Bit 31 of `idx`: still walking.
            *list.add(cnt) = (row as u32, idx[l] as u32 & !(1 << 31));
            cnt += idx[l] >> 31;
        }
        walking.set_len(cnt);
    }
}
