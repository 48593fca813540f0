//! Near-duplicate groups and group-aware folds.
//!
//! Spam campaigns send hundreds of near-identical images; a split that puts one copy in training
//! and another in the test over-states quality. Rows are grouped — by the dataset's `manifest.tsv`
//! `group` column where there is one, else by a 64-bit difference hash (dHash, the manifests'
//! recipe: grayscale, 9 × 8 bilinear, one bit per horizontal pixel pair) joined at Hamming
//! distance ≤ 3 — and no group is ever split across folds.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Result, TrainerError};
use crate::random::SplitMix64;

/// Hamming distance at or below which two dHashes are near-duplicates (the manifests' rule).
pub const NEAR_DUPLICATE_DISTANCE: u32 = 3;

/// `path → group` from a dataset's `manifest.tsv` (columns named in its header line; `path` and
/// `group` are required). `None` when the dataset has no manifest.
pub fn read_manifest_groups(root: &Path) -> Result<Option<HashMap<String, String>>> {
    let path = root.join("manifest.tsv");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainerError::io(&path, e)),
    };
    let bad = |reason: String| TrainerError::Dataset { path: path.clone(), reason };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let column = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| bad(format!("no '{name}' column in the header")))
    };
    let (path_col, group_col) = (column("path")?, column("group")?);
    let mut groups = HashMap::new();
    for (number, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        match (fields.get(path_col), fields.get(group_col)) {
            (Some(p), Some(g)) if !p.is_empty() && !g.is_empty() => {
                groups.insert((*p).to_owned(), (*g).to_owned());
            }
            _ => return Err(bad(format!("line {}: no path or group", number + 2))),
        }
    }
    Ok(Some(groups))
}

/// The 64-bit difference hash of an image: grayscale, resized to 9 × 8 (bilinear), bit `i` set
/// when pixel `i`'s left neighbour is brighter than its right one (row-major).
pub fn dhash(rgb: &image::RgbImage) -> u64 {
    let gray = image::DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
    let small = image::imageops::resize(&gray, 9, 8, image::imageops::FilterType::Triangle);
    let mut hash = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            let bit = small.get_pixel(x, y)[0] > small.get_pixel(x + 1, y)[0];
            hash = (hash << 1) | u64::from(bit);
        }
    }
    hash
}

/// Joins items whose hashes are within `max_distance` bits (union-find, all pairs): one group id
/// per item, numbered from 0 in order of first appearance.
pub fn group_by_hash(hashes: &[u64], max_distance: u32) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..hashes.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..hashes.len() {
        for j in i + 1..hashes.len() {
            if (hashes[i] ^ hashes[j]).count_ones() <= max_distance {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut ids = HashMap::new();
    (0..hashes.len())
        .map(|i| {
            let r = root(&mut parent, i);
            let next = ids.len();
            *ids.entry(r).or_insert(next)
        })
        .collect()
}

/// Assigns every row to one of `k` folds so that each group sits in one fold and each class is
/// spread evenly: groups (largest first, ties in seeded random order) go to the fold where their
/// classes are least represented so far. Returns the fold of each row.
pub fn group_kfold(labels: &[usize], groups: &[usize], classes: usize, k: usize, seed: u64) -> Result<Vec<usize>> {
    if k < 2 || labels.len() != groups.len() {
        return Err(TrainerError::Dataset {
            path: Default::default(),
            reason: format!("group k-fold needs k ≥ 2 and one group per row (k = {k})"),
        });
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (row, &g) in groups.iter().enumerate() {
        members.entry(g).or_default().push(row);
    }
    let mut order: Vec<usize> = members.keys().copied().collect();
    order.sort_unstable();
    SplitMix64::new(seed).shuffle(&mut order);
    order.sort_by_key(|g| std::cmp::Reverse(members[g].len()));
    let mut totals = vec![0usize; classes];
    labels.iter().for_each(|&l| totals[l] += 1);
    let mut per_fold = vec![vec![0usize; classes]; k];
    let mut fold_of = vec![0usize; labels.len()];
    for g in order {
        let mut counts = vec![0usize; classes];
        members[&g].iter().for_each(|&r| counts[labels[r]] += 1);
        let cost = |f: usize| -> f64 {
            (0..classes)
                .filter(|&c| counts[c] > 0)
                .map(|c| (per_fold[f][c] + counts[c]) as f64 / totals[c].max(1) as f64)
                .fold(0.0, f64::max)
        };
        let fold = (0..k).min_by(|&a, &b| cost(a).total_cmp(&cost(b))).unwrap_or(0);
        (0..classes).for_each(|c| per_fold[fold][c] += counts[c]);
        members[&g].iter().for_each(|&r| fold_of[r] = fold);
    }
    Ok(fold_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_hashes_join_and_far_ones_do_not() {
        let hashes = [0b0000u64, 0b0111, 0b1111_0000_0000, 0b0111 | (1 << 40), u64::MAX];
        let groups = group_by_hash(&hashes, 3);
        assert_eq!(groups[0], groups[1]);
        assert_eq!(groups[1], groups[3], "chains join (union-find)");
        assert_ne!(groups[0], groups[2]);
        assert_ne!(groups[0], groups[4]);
    }

    #[test]
    fn dhash_ignores_scale_but_not_content() {
        let gradient = |w: u32, h: u32| image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x * 255 / w) as u8; 3]));
        let a = dhash(&gradient(90, 80));
        let b = dhash(&gradient(180, 160));
        assert!((a ^ b).count_ones() <= NEAR_DUPLICATE_DISTANCE);
        let flipped = image::imageops::flip_horizontal(&gradient(90, 80));
        assert!((a ^ dhash(&flipped)).count_ones() > 32);
    }

    #[test]
    fn folds_keep_groups_whole_and_classes_balanced() {
        // 300 rows, groups of 1..=6 rows, a third spam.
        let mut labels = Vec::new();
        let mut groups = Vec::new();
        let mut rng = SplitMix64::new(7);
        let mut g = 0;
        while labels.len() < 300 {
            let size = 1 + rng.below(6) as usize;
            let label = usize::from(g % 3 == 0);
            for _ in 0..size {
                labels.push(label);
                groups.push(g);
            }
            g += 1;
        }
        let folds = group_kfold(&labels, &groups, 2, 5, 1).unwrap();
        for (i, j) in (0..labels.len()).flat_map(|i| (0..labels.len()).map(move |j| (i, j))) {
            if groups[i] == groups[j] {
                assert_eq!(folds[i], folds[j], "a group is split");
            }
        }
        for class in 0..2 {
            let total = labels.iter().filter(|&&l| l == class).count() as f64;
            for fold in 0..5 {
                let n = (0..labels.len()).filter(|&r| folds[r] == fold && labels[r] == class).count() as f64;
                assert!((n / total - 0.2).abs() < 0.05, "class {class} fold {fold}: {n} of {total}");
            }
        }
        assert_eq!(folds, group_kfold(&labels, &groups, 2, 5, 1).unwrap(), "deterministic");
        assert!(group_kfold(&labels, &groups, 2, 1, 1).is_err());
    }
}
