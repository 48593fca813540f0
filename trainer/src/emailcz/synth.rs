//! A generator of realistic Email.cz-format lines, so ingest is tested and benchmarked at full scale
//! (778,768 lines) without the 2.66 GB download.
//!
//! - Reactions per image follow Table 3 (the share with more than k reactions, k = 0..9); above 9 a
//!   heavy (Pareto, α = 0.8, capped at 50,000) tail stands in for the few images of big campaigns
//!   that bring the paper's mean to 13.64 reactions per image.
//! - The dominant reaction of an image follows Table 4's shares; each reaction agrees with it with
//!   a per-image probability (half the images fully consistent, the rest uniform in 0.4..1).
//! - Reactions are grouped into users (90% one reaction, 8% two, 2% three); a quarter of the
//!   multi-reaction users disagree with themselves.
//! - Features are 2048 non-negative floats (a quarter exactly zero, the rest exponential with mean
//!   0.5) printed the way numpy prints a TensorFlow float32 (`repr`: the shortest digits that read
//!   back to the same float32, `0.0`, `0.16809222`, `3.0517578e-05`), ~10 bytes per value as in the
//!   real file (16 GB / 778,768 lines / 2048 values).

use std::io::Write;

pub use crate::random::SplitMix64;

use super::filter::Reaction;
use super::reader::EMAILCZ_FEATURE_DIM;

/// Table 3: images with more than k reactions, k = 0..9, out of 778,768.
pub const TABLE3: [u64; 10] =
    [778_768, 422_541, 318_234, 263_478, 228_131, 201_003, 182_244, 167_866, 155_431, 143_242];
/// Table 4: shares of MARK_SPAM, MARK_AD, UNMARK_SPAM ("non-spam"), MARK_NONAD ("non-ad").
pub const TABLE4: [(Reaction, f64); 4] = [
    (Reaction::MarkSpam, 0.5292),
    (Reaction::MarkAd, 0.1394),
    (Reaction::UnmarkSpam, 0.0643),
    (Reaction::MarkNonad, 0.2671),
];
/// Lines in the real dataset.
pub const FULL_SIZE_LINES: u64 = 778_768;

/// Number of reactions for one image (Table 3 and the tail above 9).
pub fn sample_reaction_count(rng: &mut SplitMix64) -> usize {
    let u = rng.unit() * TABLE3[0] as f64;
    // P(r > k) = TABLE3[k] / TABLE3[0]; find the largest k with u < TABLE3[k].
    let mut count = 1;
    for (k, &more) in TABLE3.iter().enumerate().skip(1) {
        if u < more as f64 {
            count = k + 1;
        }
    }
    if count < TABLE3.len() {
        return count;
    }
    // More than 9: 9 + ceil(Pareto(δ, α)), δ chosen so that P(r > 10 | r > 9) matches Table 3's trend.
    let alpha = 0.8;
    let delta = (TABLE3[9] as f64 / TABLE3[8] as f64).powf(1.0 / alpha);
    let excess = delta * (1.0 - rng.unit()).powf(-1.0 / alpha);
    9 + (excess.ceil() as usize).clamp(1, 50_000)
}

fn pick_dominant(rng: &mut SplitMix64) -> Reaction {
    let mut u = rng.unit();
    for (reaction, share) in TABLE4 {
        if u < share {
            return reaction;
        }
        u -= share;
    }
    Reaction::MarkSpam
}

fn other_than(rng: &mut SplitMix64, reaction: Reaction) -> Reaction {
    let others: Vec<Reaction> = Reaction::ALL.iter().copied().filter(|r| *r != reaction).collect();
    others[(rng.next_u64() % others.len() as u64) as usize]
}

/// Formats a float32 as numpy's `repr` does: shortest round-trip digits, scientific notation with
/// a two-digit exponent below 1e-4 and from 1e16.
pub fn float32_repr(value: f32) -> String {
    if value == 0.0 {
        return "0.0".into();
    }
    let magnitude = value.abs();
    if !(1e-4..1e16).contains(&magnitude) {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (sign, digits) = exponent.strip_prefix('-').map_or(("+", exponent), |d| ("-", d));
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let text = format!("{value}");
    if text.contains('.') { text } else { format!("{text}.0") }
}

/// Writes one synthetic line (with its newline) to `out`.
pub fn write_line(rng: &mut SplitMix64, out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
    let reactions = sample_reaction_count(rng);
    let dominant = pick_dominant(rng);
    let agreement = if rng.unit() < 0.5 { 1.0 } else { 0.4 + 0.6 * rng.unit() };
    out.write_all(b"[[")?;
    let mut left = reactions;
    let mut first_user = true;
    while left > 0 {
        let u = rng.unit();
        let size = if u < 0.90 {
            1
        } else if u < 0.98 {
            2
        } else {
            3
        }
        .min(left);
        left -= size;
        let user_reaction = if rng.unit() < agreement { dominant } else { other_than(rng, dominant) };
        let disagrees = size > 1 && rng.unit() < 0.25;
        if !first_user {
            out.write_all(b", ")?;
        }
        first_user = false;
        out.write_all(b"[")?;
        for i in 0..size {
            let reaction = if disagrees && i == size - 1 { other_than(rng, user_reaction) } else { user_reaction };
            if i > 0 {
                out.write_all(b", ")?;
            }
            write!(out, "\"{}\"", reaction.as_str())?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"], [")?;
    for i in 0..EMAILCZ_FEATURE_DIM {
        if i > 0 {
            out.write_all(b", ")?;
        }
        let value = if rng.unit() < 0.25 { 0.0f32 } else { (-(1.0 - rng.unit()).ln() * 0.5) as f32 };
        out.write_all(float32_repr(value).as_bytes())?;
    }
    out.write_all(b"]]\n")
}

/// Lines generated per parallel block; each block has its own generator seeded from (seed, block),
/// so the output depends on the seed alone, not on the number of threads.
pub const BLOCK_LINES: u64 = 512;

/// Generates block `block` (lines `block·BLOCK_LINES ..`, at most `lines` in total) into memory.
pub fn generate_block(seed: u64, block: u64, lines: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ block.wrapping_mul(0xd1b5_4a32_d192_ed03));
    let count = BLOCK_LINES.min(lines.saturating_sub(block * BLOCK_LINES));
    let mut out = Vec::with_capacity(count as usize * 22_000);
    for _ in 0..count {
        // Writing into a Vec cannot fail.
        let _ = write_line(&mut rng, &mut out);
    }
    out
}

/// Writes `lines` synthetic lines with `seed` to `out`, generating blocks in parallel and writing
/// them in order; `progress` is called with the number of lines written so far.
pub fn write_lines(
    lines: u64,
    seed: u64,
    out: &mut (impl Write + ?Sized),
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    use rayon::prelude::*;
    let blocks = lines.div_ceil(BLOCK_LINES);
    let threads = rayon::current_num_threads() as u64;
    let mut block = 0;
    while block < blocks {
        let batch: Vec<u64> = (block..(block + threads * 2).min(blocks)).collect();
        let generated: Vec<Vec<u8>> = batch.par_iter().map(|&b| generate_block(seed, b, lines)).collect();
        for bytes in generated {
            out.write_all(&bytes)?;
        }
        block += batch.len() as u64;
        progress((block * BLOCK_LINES).min(lines));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_numpy_float32() {
        // repr(np.float32(x)) for each x.
        assert_eq!(float32_repr(0.0), "0.0");
        assert_eq!(float32_repr(1.0), "1.0");
        assert_eq!(float32_repr(0.1), "0.1");
        assert_eq!(float32_repr(0.168_092_22), "0.16809222");
        assert_eq!(float32_repr(3.051_757_8e-5), "3.0517578e-05");
        assert_eq!(float32_repr(1e-5), "1e-05");
        assert_eq!(float32_repr(12.5), "12.5");
        for value in [1.234e-7f32, 0.333_333_34, 9.999e-5, 7.0] {
            assert_eq!(float32_repr(value).parse::<f32>().unwrap(), value);
        }
    }

    #[test]
    fn reaction_counts_follow_table3() {
        let mut rng = SplitMix64::new(7);
        let n = 200_000;
        let counts: Vec<usize> = (0..n).map(|_| sample_reaction_count(&mut rng)).collect();
        for (k, &expected) in TABLE3.iter().enumerate() {
            let share = counts.iter().filter(|&&c| c > k).count() as f64 / n as f64;
            let want = expected as f64 / TABLE3[0] as f64;
            assert!((share - want).abs() < 0.005, "P(r > {k}) = {share:.4}, Table 3 says {want:.4}");
        }
    }
}
