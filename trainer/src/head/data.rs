//! Labelled feature vectors for the head: loaded from feature stores or an Email.cz ingest, split
//! stratified by class, and gathered into batches without copying the whole set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use spamlens_model::weights::FeatureSource;

use crate::emailcz::{EmailCzDataset, ImageClass};
use crate::error::{Result, TrainerError};
use crate::features::store::{FeatureStore, StoreProvenance};
use crate::random::SplitMix64;

/// The canonical class order: the paper's three classes first, anything else after, alphabetically.
/// Keeping `ham` at index 0 and `spam` at 1 makes heads trained on different sets line up.
pub fn canonical_class_order<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    names.sort_by_key(|n| {
        let rank = ImageClass::ALL.iter().position(|c| c.as_str() == n).unwrap_or(ImageClass::ALL.len());
        (rank, n.clone())
    });
    names.dedup();
    names
}

/// Feature vectors with a class index each, in one flat row-major buffer.
#[derive(Debug, Clone)]
pub struct LabelledFeatures {
    /// `len() × dim` floats.
    pub features: Vec<f32>,
    /// Width of one feature vector.
    pub dim: usize,
    /// Class index per row, into `classes`.
    pub labels: Vec<usize>,
    /// Class names in index order.
    pub classes: Vec<String>,
    /// A name per row for reports (store path, or `line N` of an Email.cz file).
    pub names: Vec<String>,
    /// Where the features came from.
    pub source: FeatureSource,
    /// Human-readable description of the data (files, filters).
    pub description: String,
}

impl LabelledFeatures {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `index`'s features.
    pub fn row(&self, index: usize) -> &[f32] {
        &self.features[index * self.dim..(index + 1) * self.dim]
    }

    /// Rows per class, in class order.
    pub fn class_counts(&self, indices: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &i in indices {
            counts[self.labels[i]] += 1;
        }
        counts
    }

    /// Copies the rows `indices` into one `indices.len() × dim` buffer (a batch).
    pub fn gather(&self, indices: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            out.extend_from_slice(self.row(i));
        }
        out
    }

    /// The labels of `indices`.
    pub fn gather_labels(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// Reads and concatenates feature stores. All must come from the same backbone; labels are the
    /// stores' `label` column (the dataset's first folder level).
    pub fn from_stores(paths: &[PathBuf]) -> Result<LabelledFeatures> {
        let first = paths
            .first()
            .ok_or_else(|| TrainerError::Dataset { path: PathBuf::new(), reason: "no feature store given".into() })?;
        let mut stores = Vec::with_capacity(paths.len());
        for path in paths {
            stores.push((path.clone(), FeatureStore::read(path)?));
        }
        let reference: StoreProvenance = stores[0].1.provenance.clone();
        let dim = stores[0].1.feature_dim;
        for (path, store) in &stores {
            if store.provenance.backbone_sha256 != reference.backbone_sha256 {
                return Err(TrainerError::Store {
                    path: path.clone(),
                    reason: format!(
                        "features come from backbone {}, but {} holds features of backbone {}; \
                         features of different backbones cannot be mixed",
                        store.provenance.backbone_sha256,
                        first.display(),
                        reference.backbone_sha256
                    ),
                });
            }
            if store.provenance.preprocessing != reference.preprocessing {
                return Err(TrainerError::Store {
                    path: path.clone(),
                    reason: format!(
                        "features were preprocessed as '{}', but {} holds features preprocessed as '{}'; \
                         features of different preprocessings (centre crop, letterbox) cannot be mixed",
                        store.provenance.preprocessing,
                        first.display(),
                        reference.preprocessing
                    ),
                });
            }
            if store.feature_dim != dim {
                return Err(TrainerError::Store {
                    path: path.clone(),
                    reason: format!("{} features per row, {} has {dim}", store.feature_dim, first.display()),
                });
            }
            if store.rows.is_empty() {
                return Err(TrainerError::Store { path: path.clone(), reason: "the store has no rows".into() });
            }
        }
        let classes = canonical_class_order(stores.iter().flat_map(|(_, s)| s.rows.iter().map(|r| r.label.as_str())));
        for class in &classes {
            if class.contains(',') || class.is_empty() {
                return Err(TrainerError::Dataset {
                    path: first.clone(),
                    reason: format!("label '{class}' is empty or holds a comma; labels are stored comma-separated"),
                });
            }
        }
        let total: usize = stores.iter().map(|(_, s)| s.rows.len()).sum();
        let mut features = Vec::with_capacity(total * dim);
        let mut labels = Vec::with_capacity(total);
        let mut names = Vec::with_capacity(total);
        // Identical images (same sha256) in two stores are kept once: a duplicate on both sides of a
        // split would inflate the test score.
        let mut seen = std::collections::HashSet::new();
        let mut duplicates = 0usize;
        for (path, store) in stores {
            for row in store.rows {
                if !seen.insert(row.sha256) {
                    duplicates += 1;
                    continue;
                }
                features.extend_from_slice(&row.features);
                labels.push(classes.iter().position(|c| *c == row.label).unwrap_or_default());
                names.push(format!("{}:{}", path.display(), row.path));
            }
        }
        let description = format!(
            "feature stores {}{}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            if duplicates > 0 { format!(" ({duplicates} byte-identical duplicates dropped)") } else { String::new() }
        );
        Ok(LabelledFeatures {
            features,
            dim,
            labels,
            classes,
            names,
            source: FeatureSource::Backbone {
                sha256: reference.backbone_sha256,
                preprocessing: reference.preprocessing,
            },
            description,
        })
    }

    /// Takes over an Email.cz ingest (no copy of the features). Classes are those present, in the
    /// paper's order (ham, spam, ad).
    pub fn from_emailcz(dataset: EmailCzDataset, path: &Path, filter_description: &str) -> Result<LabelledFeatures> {
        if dataset.is_empty() {
            return Err(TrainerError::Dataset {
                path: path.to_path_buf(),
                reason: "no image passed the filters".into(),
            });
        }
        let present: Vec<&str> =
            ImageClass::ALL.iter().filter(|c| dataset.labels.contains(c)).map(|c| c.as_str()).collect();
        let classes = canonical_class_order(present);
        let labels =
            dataset.labels.iter().map(|c| classes.iter().position(|n| n == c.as_str()).unwrap_or_default()).collect();
        let names = dataset.lines.iter().map(|l| format!("line {l}")).collect();
        Ok(LabelledFeatures {
            features: dataset.features,
            dim: crate::emailcz::reader::EMAILCZ_FEATURE_DIM,
            labels,
            classes,
            names,
            source: FeatureSource::EmailCz,
            description: format!("Email.cz file {} ({filter_description})", path.display()),
        })
    }

    /// Appends `other` (the test side given as separate stores) and returns the index ranges of both
    /// parts. Classes are merged in canonical order; sources must agree.
    pub fn concat(mut self, other: LabelledFeatures) -> Result<(LabelledFeatures, Vec<usize>, Vec<usize>)> {
        if self.source != other.source || self.dim != other.dim {
            return Err(TrainerError::Dataset {
                path: PathBuf::from(&other.description),
                reason: format!(
                    "test features come from {}, training features from {}; they must match",
                    other.source.describe(),
                    self.source.describe()
                ),
            });
        }
        let classes = canonical_class_order(self.classes.iter().chain(&other.classes).map(String::as_str));
        let remap = |old: &[String], labels: &mut Vec<usize>| {
            for l in labels.iter_mut() {
                *l = classes.iter().position(|c| *c == old[*l]).unwrap_or_default();
            }
        };
        remap(&self.classes, &mut self.labels);
        let mut other_labels = other.labels;
        remap(&other.classes, &mut other_labels);
        let train: Vec<usize> = (0..self.len()).collect();
        let test: Vec<usize> = (self.len()..self.len() + other_labels.len()).collect();
        self.features.extend_from_slice(&other.features);
        self.labels.extend(other_labels);
        self.names.extend(other.names);
        self.classes = classes;
        self.description = format!("train: {}; test: {}", self.description, other.description);
        Ok((self, train, test))
    }
}

/// A train/test split as row indices into one [`LabelledFeatures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows (may be empty: train on everything).
    pub test: Vec<usize>,
}

/// Splits each class separately so both sides keep the class shares: a class of `n` rows puts
/// `round(n × test_fraction)` rows on the test side (at least one if `n ≥ 2` and the fraction is
/// positive, never all of them). Deterministic for a seed.
pub fn stratified_split(labels: &[usize], classes: usize, test_fraction: f64, seed: u64) -> Result<Split> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(TrainerError::Dataset {
            path: PathBuf::new(),
            reason: format!("test fraction {test_fraction} is outside [0, 1)"),
        });
    }
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut rng = SplitMix64::new(seed);
    let mut split = Split { train: Vec::new(), test: Vec::new() };
    for class in 0..classes {
        let Some(mut rows) = by_class.remove(&class) else { continue };
        rng.shuffle(&mut rows);
        let n = rows.len();
        let mut n_test = (n as f64 * test_fraction).round() as usize;
        if test_fraction > 0.0 && n >= 2 {
            n_test = n_test.clamp(1, n - 1);
        } else {
            n_test = n_test.min(n.saturating_sub(1));
        }
        split.test.extend_from_slice(&rows[..n_test]);
        split.train.extend_from_slice(&rows[n_test..]);
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// Class weights inversely proportional to class frequency in `indices`, normalised so a balanced
/// set gets 1.0 everywhere (`n / (classes × n_c)`, what scikit-learn calls "balanced" and the
/// reference code computes). A class absent from training gets 0.
pub fn balanced_class_weights(counts: &[usize]) -> Vec<f32> {
    let total: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts.iter().map(|&c| if c == 0 { 0.0 } else { total as f32 / (present as f32 * c as f32) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_puts_paper_classes_first() {
        assert_eq!(canonical_class_order(["spam", "zebra", "ham", "ad", "ham"]), ["ham", "spam", "ad", "zebra"]);
        assert_eq!(canonical_class_order(["spam", "ham"]), ["ham", "spam"]);
    }

    #[test]
    fn stratified_split_keeps_class_shares_and_is_seeded() {
        let labels: Vec<usize> = (0..1000).map(|i| usize::from(i % 10 == 0)).collect(); // 900 / 100
        let split = stratified_split(&labels, 2, 0.25, 7).unwrap();
        let count = |idx: &[usize], c| idx.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(count(&split.test, 0), 225);
        assert_eq!(count(&split.test, 1), 25);
        assert_eq!(split.train.len() + split.test.len(), 1000);
        let mut all: Vec<usize> = split.train.iter().chain(&split.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>(), "every row on exactly one side");
        assert_eq!(split, stratified_split(&labels, 2, 0.25, 7).unwrap());
        assert_ne!(split, stratified_split(&labels, 2, 0.25, 8).unwrap());
    }

    #[test]
    fn tiny_classes_keep_a_training_row() {
        let labels = vec![0, 0, 0, 0, 1, 1];
        let split = stratified_split(&labels, 2, 0.1, 1).unwrap();
        assert_eq!(split.test.iter().filter(|&&i| labels[i] == 1).count(), 1);
        assert_eq!(split.train.iter().filter(|&&i| labels[i] == 1).count(), 1);
        assert!(stratified_split(&labels, 2, 1.0, 1).is_err());
        assert_eq!(stratified_split(&labels, 2, 0.0, 1).unwrap().test, Vec::<usize>::new());
    }

    #[test]
    fn balanced_weights_are_inverse_frequency() {
        assert_eq!(balanced_class_weights(&[300, 100]), vec![400.0 / 600.0, 2.0]);
        assert_eq!(balanced_class_weights(&[50, 50, 0]), vec![1.0, 1.0, 0.0]);
    }
}
