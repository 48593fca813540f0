//! Honest evaluation of a head recipe: group-aware k-fold cross-validation over labelled image
//! datasets, per task (e.g. Dredze personal / public / combined, Image Spam Hunter, all), with a
//! calibrated operating point chosen inside each training fold.
//!
//! For every fold the recipe ([`fit_recipe`]) sees only the other folds: it holds out a
//! group-aware validation part of them, trains (early stopping on validation when asked), fits a
//! temperature on validation, and picks the spam threshold that keeps validation ham→spam false
//! positives within the target. The held-out fold is then scored once. Reported numbers pool the
//! out-of-fold scores of all folds: weighted F1 and ham→spam false positives both at the most
//! probable class and at the recipe's own threshold, spam recall at 1% and 0.1% false positives,
//! ROC AUC and average precision, with ROC and precision–recall plots.

pub mod fused;
pub mod groups;
pub mod operating_point;
pub mod report;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Result, TrainerError};
use crate::features::FeatureStore;
use crate::head::data::canonical_class_order;
use crate::head::{FeatureSource, HeadWeights, LabelledFeatures, NoTrainProgress, Split, TrainDevice, TrainOptions};
use crate::metrics::{ConfusionMatrix, MetricsSummary};
use groups::{NEAR_DUPLICATE_DISTANCE, dhash, group_by_hash, group_kfold, read_manifest_groups};
use operating_point::{Curves, fit_temperature, threshold_for_false_positive_rate};

/// How many values [`Pool::with_image_signals`] appends.
pub const IMAGE_SIGNALS: usize = 9;

/// log₂(1 + distinct colours) (counted up to 2¹⁶) and the share of pixels whose grey-level
/// gradient |dx| + |dy| exceeds 64: text-on-flat-background spam has few colours and sharp edges.
pub fn colour_and_edge_signals(rgb: &image::RgbImage) -> [f32; 2] {
    let mut colours = HashSet::new();
    for px in rgb.pixels() {
        if colours.len() >= 1 << 16 {
            break;
        }
        colours.insert(px.0);
    }
    let (w, h) = rgb.dimensions();
    let grey = |x: u32, y: u32| {
        let p = rgb.get_pixel(x, y).0;
        (u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000
    };
    let mut edges = 0u64;
    for y in 0..h.saturating_sub(1) {
        for x in 0..w.saturating_sub(1) {
            let g = grey(x, y);
            if g.abs_diff(grey(x + 1, y)) + g.abs_diff(grey(x, y + 1)) > 64 {
                edges += 1;
            }
        }
    }
    let inner = u64::from(w.saturating_sub(1)) * u64::from(h.saturating_sub(1));
    [(1.0 + colours.len() as f32).log2(), edges as f32 / inner.max(1) as f32]
}

/// [`TaskResult::model`] of the image head alone.
pub const MODEL_IMAGE: &str = "image";
/// [`TaskResult::model`] of the text model alone.
pub const MODEL_TEXT: &str = "text";
/// [`TaskResult::model`] of the fused head.
pub const MODEL_FUSED: &str = "fused";

/// The class whose false positives an operating point bounds, and the class it protects.
pub const SPAM: &str = "spam";
/// See [`SPAM`].
pub const HAM: &str = "ham";

/// A labelled image dataset: its folder (for `manifest.tsv` groups and image files) and the
/// feature store made from it by `spamlens-train features`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Short name used in task definitions and reports.
    pub name: String,
    /// Dataset root (`ROOT/<label>/…`).
    pub root: PathBuf,
    /// Its feature store.
    pub store: PathBuf,
}

/// A task: the rows of some datasets, optionally only those under a path prefix
/// (`dredze2007/spam/personal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    /// Task name in reports.
    pub name: String,
    /// `(dataset name, path prefix)`; an empty prefix takes the whole dataset.
    pub members: Vec<(String, String)>,
}

impl TaskSpec {
    /// Parses `NAME=DATASET[/PREFIX][+DATASET[/PREFIX]…]`.
    pub fn parse(text: &str) -> Result<TaskSpec> {
        let bad = |reason: &str| TrainerError::Dataset {
            path: PathBuf::new(),
            reason: format!("task '{text}': {reason} (expected NAME=DATASET[/PREFIX][+DATASET[/PREFIX]…])"),
        };
        let (name, members) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
        if name.trim().is_empty() {
            return Err(bad("empty name"));
        }
        let members: Vec<(String, String)> = members
            .split('+')
            .map(|m| match m.trim().split_once('/') {
                Some((d, prefix)) => (d.to_owned(), format!("{}/", prefix.trim_end_matches('/'))),
                None => (m.trim().to_owned(), String::new()),
            })
            .collect();
        if members.iter().any(|(d, _)| d.is_empty()) {
            return Err(bad("empty dataset name"));
        }
        Ok(TaskSpec { name: name.trim().to_owned(), members })
    }

    /// The paper's tasks on the shared development sets (section 6): Dredze personal (ham vs
    /// personal spam), public (ham vs the public spam archive), combined, Image Spam Hunter, and
    /// everything together. Only those whose datasets are given.
    pub fn standard(datasets: &[DatasetSpec]) -> Vec<TaskSpec> {
        let has = |n: &str| datasets.iter().any(|d| d.name == n);
        let mut tasks = Vec::new();
        if has("dredze2007") {
            for spec in [
                "dredze-personal=dredze2007/ham+dredze2007/spam/personal",
                "dredze-public=dredze2007/ham+dredze2007/spam/archive",
                "dredze-combined=dredze2007",
            ] {
                tasks.extend(TaskSpec::parse(spec));
            }
        }
        if has("image-spam-hunter") {
            tasks.extend(TaskSpec::parse("image-spam-hunter=image-spam-hunter"));
        }
        if datasets.len() > 1 {
            tasks.push(TaskSpec {
                name: "all".into(),
                members: datasets.iter().map(|d| (d.name.clone(), String::new())).collect(),
            });
        } else if tasks.is_empty() {
            tasks.extend(
                datasets
                    .iter()
                    .map(|d| TaskSpec { name: d.name.clone(), members: vec![(d.name.clone(), String::new())] }),
            );
        }
        tasks
    }
}

/// One image of the pool.
#[derive(Debug, Clone)]
pub struct PoolRow {
    /// Index into the datasets.
    pub dataset: usize,
    /// sha256 of the image bytes.
    pub sha256: String,
    /// Path relative to the dataset root.
    pub path: String,
    /// Label name.
    pub label: String,
    /// Near-duplicate group (shared across datasets when the manifests say so).
    pub group: usize,
    /// Decoded width and height, and the file format (for [`Pool::with_image_signals`]).
    pub size: (u32, u32),
    /// See `size`.
    pub format: String,
}

/// Every image of the given datasets, once (byte-identical copies dropped), with its features and
/// its near-duplicate group.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The datasets, in the order given.
    pub datasets: Vec<DatasetSpec>,
    /// One row per image.
    pub rows: Vec<PoolRow>,
    /// Features, row-major, `rows.len() × dim`.
    pub features: Vec<f32>,
    /// Feature width.
    pub dim: usize,
    /// Where the features came from (all stores must agree).
    pub source: FeatureSource,
    /// How groups were formed, per dataset (`manifest.tsv` or dHash).
    pub grouping: Vec<String>,
    /// What OCR read in each row's image (`None` inside: OCR failed on it), once loaded with
    /// [`Pool::with_texts`].
    pub texts: Option<Vec<Option<spamlens_core::ocr::OcrText>>>,
    /// The OCR setup of the loaded texts.
    pub ocr_engine: Option<spamlens_core::ocr::EngineIdentity>,
    /// Other features of the same images that held-out rows are also scored with, once loaded with
    /// [`Pool::with_scoring_features`]: how a head trained on one backbone's features does behind
    /// another backbone (the int8 model ships the f32-trained head over int8 weights).
    pub scoring: Option<ScoringFeatures>,
}

/// Features that held-out rows are also scored with, besides the training features.
#[derive(Debug, Clone)]
pub struct ScoringFeatures {
    /// What the results scored with them are called: `image (<label>)`, `fused (<label>)`.
    pub label: String,
    /// Row-major, aligned with [`Pool::rows`].
    pub features: Vec<f32>,
    /// Where they came from.
    pub source: FeatureSource,
}

impl Pool {
    /// Reads the stores and forms the groups: a dataset's `manifest.tsv` `group` column where it has
    /// one (its rows must all be listed), else dHash groups computed from its image files.
    pub fn load(datasets: &[DatasetSpec]) -> Result<Pool> {
        let mut rows = Vec::new();
        let mut features = Vec::new();
        let mut dim = 0;
        let mut source: Option<FeatureSource> = None;
        let mut seen = HashSet::new();
        let mut group_keys: Vec<String> = Vec::new();
        let mut grouping = Vec::new();
        let mut hashed: Vec<(usize, u64)> = Vec::new();
        for (index, spec) in datasets.iter().enumerate() {
            let store = FeatureStore::read(&spec.store)?;
            let this = FeatureSource::Backbone {
                sha256: store.provenance.backbone_sha256.clone(),
                preprocessing: store.provenance.preprocessing.clone(),
            };
            match &source {
                None => {
                    source = Some(this);
                    dim = store.feature_dim;
                }
                Some(first) if *first != this || dim != store.feature_dim => {
                    return Err(TrainerError::Store {
                        path: spec.store.clone(),
                        reason: format!(
                            "its features ({}, {} wide) differ from the first store's ({}, {dim} wide); \
                             stores of different backbones or preprocessings cannot be mixed",
                            this.describe(),
                            store.feature_dim,
                            first.describe()
                        ),
                    });
                }
                Some(_) => {}
            }
            let manifest = read_manifest_groups(&spec.root)?;
            grouping.push(match &manifest {
                Some(_) => format!("{}: manifest.tsv groups", spec.name),
                None => format!("{}: dHash groups (Hamming ≤ {NEAR_DUPLICATE_DISTANCE})", spec.name),
            });
            for row in store.rows {
                if !seen.insert(row.sha256.clone()) {
                    continue;
                }
                let key = match &manifest {
                    Some(groups) => match groups.get(&row.path) {
                        Some(g) => format!("manifest:{g}"),
                        None => {
                            return Err(TrainerError::Dataset {
                                path: spec.root.join("manifest.tsv"),
                                reason: format!("'{}' (in {}) is not listed", row.path, spec.store.display()),
                            });
                        }
                    },
                    None => {
                        let file = spec.root.join(&row.path);
                        let bytes = std::fs::read(&file).map_err(|e| TrainerError::io(&file, e))?;
                        let decoded =
                            spamlens_core::decode_rgb(&bytes, &row.path, &spamlens_core::DecodeLimits::DEFAULT)?;
                        hashed.push((rows.len(), dhash(&decoded.rgb)));
                        String::new()
                    }
                };
                features.extend_from_slice(&row.features);
                group_keys.push(key);
                rows.push(PoolRow {
                    dataset: index,
                    sha256: row.sha256.clone(),
                    path: row.path,
                    label: row.label,
                    group: 0,
                    size: (row.width, row.height),
                    format: row.format,
                });
            }
        }
        let hash_groups = group_by_hash(&hashed.iter().map(|(_, h)| *h).collect::<Vec<_>>(), NEAR_DUPLICATE_DISTANCE);
        for ((row, _), g) in hashed.iter().zip(hash_groups) {
            group_keys[*row] = format!("dhash:{g}");
        }
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (row, key) in rows.iter_mut().zip(group_keys) {
            let next = ids.len();
            row.group = *ids.entry(key).or_insert(next);
        }
        let source =
            source.ok_or_else(|| TrainerError::Dataset { path: PathBuf::new(), reason: "no dataset given".into() })?;
        Ok(Pool {
            datasets: datasets.to_vec(),
            rows,
            features,
            dim,
            source,
            grouping,
            texts: None,
            ocr_engine: None,
            scoring: None,
        })
    }

    /// The experiment of the quality issue's "cheap extra signals": appends what the image itself
    /// says — log₂ width, log₂ height, log₂ aspect ratio, the format (JPEG, PNG, GIF, other)
    /// one-hot, log₂ of its number of distinct colours and its edge density (share of pixels
    /// whose grey-level gradient |dx| + |dy| exceeds 64) — to every feature vector. The images are
    /// decoded again for the last two. A head trained so takes [`IMAGE_SIGNALS`] more inputs than
    /// the backbone gives, so it cannot be exported into the one-input graph.
    pub fn with_image_signals(mut self) -> Result<Pool> {
        use rayon::prelude::*;
        let pixel_signals: Vec<[f32; 2]> = self
            .rows
            .par_iter()
            .map(|row| {
                let file = self.datasets[row.dataset].root.join(&row.path);
                let bytes = std::fs::read(&file).map_err(|e| TrainerError::io(&file, e))?;
                let decoded = spamlens_core::decode_rgb(&bytes, &row.path, &spamlens_core::DecodeLimits::DEFAULT)?;
                Ok(colour_and_edge_signals(&decoded.rgb))
            })
            .collect::<Result<_>>()?;
        let dim = self.dim + IMAGE_SIGNALS;
        let mut features = Vec::with_capacity(self.rows.len() * dim);
        for ((row, chunk), [colours, edges]) in
            self.rows.iter().zip(self.features.chunks_exact(self.dim)).zip(pixel_signals)
        {
            features.extend_from_slice(chunk);
            let (w, h) = (row.size.0.max(1) as f32, row.size.1.max(1) as f32);
            let format = row.format.to_ascii_uppercase();
            let one_hot = |name: &str| f32::from(u8::from(format == name));
            let other = f32::from(u8::from(!["JPEG", "PNG", "GIF"].contains(&format.as_str())));
            features.extend([
                w.log2(),
                h.log2(),
                (w / h).log2(),
                one_hot("JPEG"),
                one_hot("PNG"),
                one_hot("GIF"),
                other,
                colours,
                edges,
            ]);
        }
        self.features = features;
        self.dim = dim;
        Ok(self)
    }

    /// Attaches what OCR read in every row's image, one store per dataset (in dataset order); a
    /// row whose image a store lacks is an error naming both.
    pub fn with_texts(mut self, stores: &[crate::ocr_store::OcrStore]) -> Result<Pool> {
        if stores.len() != self.datasets.len() {
            return Err(TrainerError::Dataset {
                path: PathBuf::new(),
                reason: format!("{} OCR stores for {} datasets", stores.len(), self.datasets.len()),
            });
        }
        if let Some(first) = stores.first()
            && let Some(other) = stores.iter().find(|s| s.header != first.header)
        {
            return Err(TrainerError::Dataset {
                path: PathBuf::new(),
                reason: format!(
                    "the OCR stores were made by different setups ({} {} vs {} {})",
                    first.header.engine.engine,
                    first.header.engine.version,
                    other.header.engine.engine,
                    other.header.engine.version
                ),
            });
        }
        let texts = self
            .rows
            .iter()
            .map(|row| {
                let store = &stores[row.dataset];
                let found = store.rows.get(&row.sha256).ok_or_else(|| TrainerError::Dataset {
                    path: self.datasets[row.dataset].root.clone(),
                    reason: format!("'{}' is in the feature store but not in the OCR store", row.path),
                })?;
                Ok(found.read_text().cloned())
            })
            .collect::<Result<Vec<_>>>()?;
        self.ocr_engine = stores.first().map(|s| s.header.engine.clone());
        self.texts = Some(texts);
        Ok(self)
    }

    /// The rows of a task, in pool order.
    pub fn task_rows(&self, task: &TaskSpec) -> Result<Vec<usize>> {
        for (dataset, _) in &task.members {
            if !self.datasets.iter().any(|d| &d.name == dataset) {
                return Err(TrainerError::Dataset {
                    path: PathBuf::new(),
                    reason: format!("task '{}' names dataset '{dataset}', which was not given", task.name),
                });
            }
        }
        Ok((0..self.rows.len())
            .filter(|&r| {
                let row = &self.rows[r];
                task.members
                    .iter()
                    .any(|(d, prefix)| self.datasets[row.dataset].name == *d && row.path.starts_with(prefix.as_str()))
            })
            .collect())
    }

    /// Loads the features held-out rows are scored with from `stores` (one per dataset, made from
    /// the same images with another backbone, e.g. `spamlens-train quantize`'s); every pool row must
    /// be in them, with the same width and preprocessing.
    pub fn with_scoring_features(mut self, stores: &[PathBuf], label: &str) -> Result<Pool> {
        let mut by_sha: HashMap<String, Vec<f32>> = HashMap::new();
        let mut source: Option<FeatureSource> = None;
        for path in stores {
            let store = FeatureStore::read(path)?;
            if store.feature_dim != self.dim {
                return Err(TrainerError::Store {
                    path: path.clone(),
                    reason: format!("{} features per image, the training stores have {}", store.feature_dim, self.dim),
                });
            }
            let this = FeatureSource::Backbone {
                sha256: store.provenance.backbone_sha256.clone(),
                preprocessing: store.provenance.preprocessing.clone(),
            };
            let same_preprocessing = matches!((&this, &self.source),
                (FeatureSource::Backbone { preprocessing: a, .. }, FeatureSource::Backbone { preprocessing: b, .. }) if a == b);
            if !same_preprocessing || source.as_ref().is_some_and(|s| *s != this) {
                return Err(TrainerError::Store {
                    path: path.clone(),
                    reason: format!(
                        "its features ({}) do not match the other scoring stores or the training stores' preprocessing",
                        this.describe()
                    ),
                });
            }
            source = Some(this);
            for row in store.rows {
                by_sha.insert(row.sha256, row.features);
            }
        }
        let source = source.ok_or_else(|| TrainerError::Dataset {
            path: PathBuf::new(),
            reason: "no scoring feature store given".into(),
        })?;
        let mut features = Vec::with_capacity(self.features.len());
        for row in &self.rows {
            let found = by_sha.get(&row.sha256).ok_or_else(|| TrainerError::Store {
                path: stores.first().cloned().unwrap_or_default(),
                reason: format!(
                    "no scoring features for {}:{} (sha256 {})",
                    self.datasets[row.dataset].name, row.path, row.sha256
                ),
            })?;
            features.extend_from_slice(found);
        }
        self.scoring = Some(ScoringFeatures { label: label.to_owned(), features, source });
        Ok(self)
    }

    /// The model name of results scored with feature view `index` ([`TaskFolds::views`]): `model`
    /// for the training features, `model (<label>)` for the scoring features.
    pub fn view_model_name(&self, model: &str, index: usize) -> String {
        match (&self.scoring, index) {
            (Some(scoring), 1) => format!("{model} ({})", scoring.label),
            _ => model.to_owned(),
        }
    }

    /// The rows as they are scored when held out: [`Pool::labelled`] with the scoring features,
    /// or `None` when held-out rows are scored with the training features.
    pub fn scoring_labelled(&self, rows: &[usize]) -> Option<LabelledFeatures> {
        let scoring = self.scoring.as_ref()?;
        Some(self.labelled_from(&scoring.features, &scoring.source, rows))
    }

    /// The rows as training data: features, labels in canonical class order, names.
    pub fn labelled(&self, rows: &[usize]) -> LabelledFeatures {
        self.labelled_from(&self.features, &self.source, rows)
    }

    /// [`Pool::labelled`] with the features taken from `all` (row-major, aligned with the rows).
    fn labelled_from(&self, all: &[f32], source: &FeatureSource, rows: &[usize]) -> LabelledFeatures {
        let classes = canonical_class_order(rows.iter().map(|&r| self.rows[r].label.as_str()));
        let mut features = Vec::with_capacity(rows.len() * self.dim);
        for &r in rows {
            features.extend_from_slice(&all[r * self.dim..(r + 1) * self.dim]);
        }
        LabelledFeatures {
            features,
            dim: self.dim,
            labels: rows
                .iter()
                .map(|&r| classes.iter().position(|c| *c == self.rows[r].label).unwrap_or_default())
                .collect(),
            classes,
            names: rows
                .iter()
                .map(|&r| format!("{}:{}", self.datasets[self.rows[r].dataset].name, self.rows[r].path))
                .collect(),
            source: source.clone(),
            description: format!(
                "{} images of {}",
                rows.len(),
                self.datasets.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// How a head is trained and its operating point chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    /// Training hyper-parameters (early stopping, if set, watches the validation part).
    pub train: TrainOptions,
    /// The validation part is one of this many group-aware folds of the training rows.
    pub validation_folds: usize,
    /// Fit a temperature on the validation part (calibrated probabilities).
    pub calibrate: bool,
    /// Target ham→spam false-positive rate for the spam threshold (on validation ham).
    pub target_false_positive_rate: f64,
    /// Heads trained with seeds `seed, seed + 1, …` on the same split and merged into one head
    /// whose logits are their mean ([`HeadWeights::average_logits`]); 1: a single head.
    pub ensemble: usize,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            train: TrainOptions::default(),
            validation_folds: 5,
            calibrate: true,
            target_false_positive_rate: 0.01,
            ensemble: 1,
        }
    }
}

/// What [`fit_recipe`] made.
#[derive(Debug, Clone)]
pub struct FittedHead {
    /// The head, temperature already folded into its last layer.
    pub weights: HeadWeights,
    /// The fitted temperature (1 without calibration).
    pub temperature: f32,
    /// The spam threshold (`None` when the task has no spam and ham classes).
    pub spam_threshold: Option<f32>,
    /// The epoch kept (the members' mean, rounded, for an ensemble).
    pub best_epoch: usize,
    /// Rows trained on / used for validation.
    pub train_rows: usize,
    /// See `train_rows`.
    pub validation_rows: usize,
    /// Validation ham→spam false-positive rate at the threshold.
    pub validation_false_positive_rate: Option<f64>,
}

/// Trains a head on `rows` of `data` with `recipe`: a group-aware validation part is held out of
/// `rows` (`groups[i]` is row `i`'s group, indexed like `data`), then calibration and the
/// threshold are fitted on it.
pub fn fit_recipe(
    data: &LabelledFeatures,
    rows: &[usize],
    groups: &[usize],
    recipe: &Recipe,
    device: TrainDevice,
    seed: u64,
) -> Result<FittedHead> {
    let split = validation_split(data, rows, groups, recipe.validation_folds, seed)?;
    fit_recipe_on_split(data, &split, recipe, device)
}

/// The group-aware validation part of `rows` (`split.test`, one of `validation_folds` folds) and
/// the rest (`split.train`); the same for the same seed.
pub fn validation_split(
    data: &LabelledFeatures,
    rows: &[usize],
    groups: &[usize],
    validation_folds: usize,
    seed: u64,
) -> Result<Split> {
    let labels: Vec<usize> = rows.iter().map(|&r| data.labels[r]).collect();
    let row_groups: Vec<usize> = rows.iter().map(|&r| groups[r]).collect();
    let inner = group_kfold(&labels, &row_groups, data.classes.len(), validation_folds.max(2), seed)?;
    Ok(Split {
        train: rows.iter().zip(&inner).filter(|(_, f)| **f != 0).map(|(r, _)| *r).collect(),
        test: rows.iter().zip(&inner).filter(|(_, f)| **f == 0).map(|(r, _)| *r).collect(),
    })
}

/// [`fit_recipe`] on a given split: trains on `split.train`, calibrates and sets the threshold on
/// `split.test` (the validation part).
pub fn fit_recipe_on_split(
    data: &LabelledFeatures,
    split: &Split,
    recipe: &Recipe,
    device: TrainDevice,
) -> Result<FittedHead> {
    let mut members = Vec::with_capacity(recipe.ensemble.max(1));
    let mut epochs = Vec::with_capacity(recipe.ensemble.max(1));
    for member in 0..recipe.ensemble.max(1) as u64 {
        let options = TrainOptions { seed: recipe.train.seed.wrapping_add(member), ..recipe.train.clone() };
        let outcome = crate::head::train(data, split, &options, device, &mut NoTrainProgress)?;
        epochs.push(outcome.best_epoch);
        members.push(outcome.weights);
    }
    let mut weights = HeadWeights::average_logits(&members)?;
    let validation = data.gather(&split.test);
    let validation_labels = data.gather_labels(&split.test);
    let classes = data.classes.len();
    let temperature = if recipe.calibrate {
        fit_temperature(&weights.log_probabilities(&validation), &validation_labels, classes)
    } else {
        1.0
    };
    weights.scale_logits(temperature);
    let (spam_threshold, validation_false_positive_rate) = spam_threshold(
        &data.classes,
        &weights.probabilities(&validation),
        &validation_labels,
        recipe.target_false_positive_rate,
    );
    Ok(FittedHead {
        weights,
        temperature,
        spam_threshold,
        best_epoch: (epochs.iter().sum::<usize>() as f64 / epochs.len().max(1) as f64).round() as usize,
        train_rows: split.train.len(),
        validation_rows: split.test.len(),
        validation_false_positive_rate,
    })
}

/// The spam threshold for at most `target_fp` ham→spam false positives on labelled rows of
/// probabilities (`classes` per row), and the rate it gives there; `None` without spam and ham.
pub fn spam_threshold(
    class_names: &[String],
    probabilities: &[f32],
    labels: &[usize],
    target_fp: f64,
) -> (Option<f32>, Option<f64>) {
    let classes = class_names.len();
    let spam = class_names.iter().position(|c| c == SPAM);
    let ham = class_names.iter().position(|c| c == HAM);
    let (Some(spam), Some(ham)) = (spam, ham) else { return (None, None) };
    let ham_scores: Vec<f32> =
        probabilities.chunks_exact(classes).zip(labels).filter(|(_, l)| **l == ham).map(|(p, _)| p[spam]).collect();
    let t = threshold_for_false_positive_rate(&ham_scores, target_fp, 0.5);
    let fp = ham_scores.iter().filter(|&&s| s >= t).count() as f64 / ham_scores.len().max(1) as f64;
    (Some(t), Some(fp))
}

/// A cross-validation request.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    /// Number of outer folds.
    pub folds: usize,
    /// Seeds the folds (the recipe's own seed seeds the weights).
    pub seed: u64,
    /// The recipe under test.
    pub recipe: Recipe,
    /// Whether the image's own size and format were appended to its features.
    pub image_signals: bool,
    /// The text side, when the images' OCR text is evaluated too (image, text and fused models).
    pub text: Option<crate::fusion::TextRecipe>,
}

/// Metrics of one task, from the pooled out-of-fold scores.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// The task.
    pub task: TaskSpec,
    /// Which model's scores: `image` (the image head), `text` (OCR text alone) or `fused`.
    pub model: String,
    /// When the numbers are read off another task's cross-validation (a model trained on all the
    /// data, scored on this part of it): that task's name.
    pub trained_on: Option<String>,
    /// Rows per class, in `classes` order.
    pub counts: Vec<usize>,
    /// Class names.
    pub classes: Vec<String>,
    /// Near-duplicate groups among the task's rows.
    pub groups: usize,
    /// Labels at the most probable class.
    pub at_argmax: MetricsSummary,
    /// Labels at each fold's own spam threshold (the deployable operating point).
    pub at_threshold: Option<MetricsSummary>,
    /// Each fold's spam threshold.
    pub fold_thresholds: Vec<f32>,
    /// Each fold's temperature.
    pub fold_temperatures: Vec<f32>,
    /// Each fold's kept epoch.
    pub fold_epochs: Vec<usize>,
    /// Spam recall at ≤ 1% ham→spam false positives (best threshold on the pooled scores).
    pub recall_at_fp_1pct: Option<f64>,
    /// Spam recall at ≤ 0.1% ham→spam false positives.
    pub recall_at_fp_01pct: Option<f64>,
    /// ROC and precision–recall curves of the spam score (spam vs ham rows).
    #[serde(skip)]
    pub curves: Option<Curves>,
    /// Area under the ROC curve.
    pub roc_auc: Option<f64>,
    /// Average precision.
    pub average_precision: Option<f64>,
    /// Seconds spent.
    pub seconds: f64,
    /// The out-of-fold scores (kept for [`sub_result`]).
    #[serde(skip)]
    pub scores: Option<OutOfFold>,
}

impl TaskResult {
    /// The task's name, with "(trained on …)" when read off another task's cross-validation.
    pub fn display_name(&self) -> String {
        match &self.trained_on {
            Some(whole) => format!("{} (trained on {whole})", self.task.name),
            None => self.task.name.clone(),
        }
    }
}

/// A task's pool rows, their training data, near-duplicate groups and outer fold of each row.
pub(crate) struct TaskFolds {
    pub rows: Vec<usize>,
    pub data: LabelledFeatures,
    /// The rows' scoring features ([`Pool::scoring_labelled`]), if they differ from `data`.
    pub scoring: Option<LabelledFeatures>,
    pub groups: Vec<usize>,
    pub folds: Vec<usize>,
}

impl TaskFolds {
    /// What held-out rows are scored with: the training features, then the scoring features if
    /// the pool has them ([`Pool::view_model_name`] names the results of each).
    pub fn views(&self) -> Vec<&LabelledFeatures> {
        std::iter::once(&self.data).chain(self.scoring.as_ref()).collect()
    }
}

/// Splits one task into group-aware outer folds; a task of fewer than two classes is refused.
pub(crate) fn task_folds(pool: &Pool, task: &TaskSpec, cv: &CrossValidation) -> Result<TaskFolds> {
    let rows = pool.task_rows(task)?;
    let data = pool.labelled(&rows);
    if data.classes.len() < 2 {
        return Err(TrainerError::Dataset {
            path: PathBuf::new(),
            reason: format!("task '{}' has {} class(es); it needs two", task.name, data.classes.len()),
        });
    }
    let groups: Vec<usize> = rows.iter().map(|&r| pool.rows[r].group).collect();
    let folds = group_kfold(&data.labels, &groups, data.classes.len(), cv.folds, cv.seed)?;
    let scoring = pool.scoring_labelled(&rows);
    Ok(TaskFolds { rows, data, scoring, groups, folds })
}

/// Runs group-aware k-fold cross-validation of `cv.recipe` on one task. `progress` is told each
/// finished fold. With scoring features ([`Pool::with_scoring_features`]) see
/// [`cross_validate_views`]; this returns the training features' result.
pub fn cross_validate(
    pool: &Pool,
    task: &TaskSpec,
    cv: &CrossValidation,
    device: TrainDevice,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TaskResult> {
    let mut results = cross_validate_views(pool, task, cv, device, progress)?;
    Ok(results.swap_remove(0))
}

/// [`cross_validate`], scoring each held-out row with every feature view the pool has: the
/// training features (model [`MODEL_IMAGE`]) and, when loaded, the scoring features (model
/// `image (<label>)`), by the same fitted heads, so the two differ only by the features.
pub fn cross_validate_views(
    pool: &Pool,
    task: &TaskSpec,
    cv: &CrossValidation,
    device: TrainDevice,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<TaskResult>> {
    let started = std::time::Instant::now();
    let split = task_folds(pool, task, cv)?;
    let views = split.views();
    let TaskFolds { rows, data, groups, folds, .. } = &split;
    let classes = data.classes.len();
    let mut probabilities = vec![vec![0.0f32; data.len() * classes]; views.len()];
    let mut threshold_of_row = vec![None; data.len()];
    let (mut fold_thresholds, mut fold_temperatures, mut fold_epochs) = (Vec::new(), Vec::new(), Vec::new());
    for fold in 0..cv.folds {
        let train_rows: Vec<usize> = (0..data.len()).filter(|&r| folds[r] != fold).collect();
        let test_rows: Vec<usize> = (0..data.len()).filter(|&r| folds[r] == fold).collect();
        let fitted = fit_recipe(data, &train_rows, groups, &cv.recipe, device, cv.seed.wrapping_add(fold as u64 + 1))?;
        for (view, out) in views.iter().zip(&mut probabilities) {
            let p = fitted.weights.probabilities(&view.gather(&test_rows));
            for (i, &r) in test_rows.iter().enumerate() {
                out[r * classes..(r + 1) * classes].copy_from_slice(&p[i * classes..(i + 1) * classes]);
            }
        }
        for &r in &test_rows {
            threshold_of_row[r] = fitted.spam_threshold;
        }
        fold_thresholds.extend(fitted.spam_threshold);
        fold_temperatures.push(fitted.temperature);
        fold_epochs.push(fitted.best_epoch);
        progress(fold + 1, cv.folds);
    }
    let group_count = groups.iter().collect::<HashSet<_>>().len();
    let mut results = Vec::with_capacity(views.len());
    for (index, probabilities) in probabilities.into_iter().enumerate() {
        let scores = OutOfFold {
            pool_rows: rows.clone(),
            labels: data.labels.clone(),
            probabilities,
            thresholds: threshold_of_row.clone(),
            spam_log_odds: None,
        };
        let mut result = summarise(task, &data.classes, &scores, group_count)?;
        result.model = pool.view_model_name(MODEL_IMAGE, index);
        result.fold_thresholds = fold_thresholds.clone();
        result.fold_temperatures = fold_temperatures.clone();
        result.fold_epochs = fold_epochs.clone();
        result.seconds = started.elapsed().as_secs_f64();
        result.scores = Some(scores);
        results.push(result);
    }
    Ok(results)
}

/// The out-of-fold scores of a cross-validation: every row scored by the head of the fold that
/// did not train on it, with that fold's spam threshold.
#[derive(Debug, Clone)]
pub struct OutOfFold {
    /// Pool row of each scored row.
    pub pool_rows: Vec<usize>,
    /// Class index of each row (the task's class order).
    pub labels: Vec<usize>,
    /// Probabilities, row-major.
    pub probabilities: Vec<f32>,
    /// The spam threshold of the fold that scored each row.
    pub thresholds: Vec<Option<f32>>,
    /// Spam log-odds of each row, when the model's logits were kept: the ROC and precision–recall
    /// curves rank by them, because confident rows' probabilities round to exactly 1 in f32 and
    /// would tie ham with spam at the strictest thresholds.
    pub spam_log_odds: Option<Vec<f32>>,
}

/// Spam log-odds of one row of logits: the spam logit against the log-sum-exp of the others.
pub(crate) fn spam_log_odds(logits: &[f32], spam: usize) -> f32 {
    let others = logits.iter().enumerate().filter(|&(c, _)| c != spam).map(|(_, &z)| z);
    let max = others.clone().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return f32::INFINITY;
    }
    logits[spam] - (max + others.map(|z| (z - max).exp()).sum::<f32>().ln())
}

/// The metrics of `task` read off another task's out-of-fold scores (the rows they share): how a
/// model trained on everything does on each part of it.
pub fn sub_result(pool: &Pool, whole: &TaskResult, task: &TaskSpec) -> Result<TaskResult> {
    let scores = whole.scores.as_ref().ok_or_else(|| TrainerError::Metrics("no out-of-fold scores kept".into()))?;
    let wanted: HashSet<usize> = pool.task_rows(task)?.into_iter().collect();
    let keep: Vec<usize> = (0..scores.pool_rows.len()).filter(|&i| wanted.contains(&scores.pool_rows[i])).collect();
    let classes = whole.classes.len();
    let subset = OutOfFold {
        pool_rows: keep.iter().map(|&i| scores.pool_rows[i]).collect(),
        labels: keep.iter().map(|&i| scores.labels[i]).collect(),
        probabilities: keep
            .iter()
            .flat_map(|&i| scores.probabilities[i * classes..(i + 1) * classes].to_vec())
            .collect(),
        thresholds: keep.iter().map(|&i| scores.thresholds[i]).collect(),
        spam_log_odds: scores.spam_log_odds.as_ref().map(|odds| keep.iter().map(|&i| odds[i]).collect()),
    };
    let groups = subset.pool_rows.iter().map(|&r| pool.rows[r].group).collect::<HashSet<_>>().len();
    let mut result = summarise(task, &whole.classes, &subset, groups)?;
    result.trained_on = Some(whole.task.name.clone());
    result.model = whole.model.clone();
    Ok(result)
}

pub(crate) fn summarise(
    task: &TaskSpec,
    class_names: &[String],
    scores: &OutOfFold,
    groups: usize,
) -> Result<TaskResult> {
    let classes = class_names.len();
    let names: Vec<&str> = class_names.iter().map(String::as_str).collect();
    let argmax = crate::head::inference::argmax_rows(&scores.probabilities, classes);
    let at_argmax = ConfusionMatrix::from_predictions(&names, &scores.labels, &argmax)?.summary();
    let spam = class_names.iter().position(|c| c == SPAM);
    let ham = class_names.iter().position(|c| c == HAM);
    let (mut at_threshold, mut curves) = (None, None);
    if let (Some(spam), Some(ham)) = (spam, ham) {
        let decided: Vec<usize> = scores
            .probabilities
            .chunks_exact(classes)
            .zip(&scores.thresholds)
            .map(|(row, t)| {
                let thresholds: Vec<(usize, f32)> = t.iter().map(|&t| (spam, t)).collect();
                spamlens_core::classifier::decide(row, &thresholds)
            })
            .collect();
        at_threshold = Some(ConfusionMatrix::from_predictions(&names, &scores.labels, &decided)?.summary());
        let binary: Vec<usize> =
            (0..scores.labels.len()).filter(|&r| scores.labels[r] == spam || scores.labels[r] == ham).collect();
        let spam_scores: Vec<f32> = match &scores.spam_log_odds {
            Some(odds) => binary.iter().map(|&r| odds[r]).collect(),
            None => binary.iter().map(|&r| scores.probabilities[r * classes + spam]).collect(),
        };
        let is_spam: Vec<bool> = binary.iter().map(|&r| scores.labels[r] == spam).collect();
        curves = Some(Curves::new(&spam_scores, &is_spam));
    }
    let mut counts = vec![0; classes];
    scores.labels.iter().for_each(|&l| counts[l] += 1);
    Ok(TaskResult {
        task: task.clone(),
        model: MODEL_IMAGE.to_owned(),
        trained_on: None,
        counts,
        classes: class_names.to_vec(),
        groups,
        at_argmax,
        at_threshold,
        fold_thresholds: Vec::new(),
        fold_temperatures: Vec::new(),
        fold_epochs: Vec::new(),
        recall_at_fp_1pct: curves.as_ref().map(|c| c.recall_at_false_positive_rate(0.01)),
        recall_at_fp_01pct: curves.as_ref().map(|c| c.recall_at_false_positive_rate(0.001)),
        roc_auc: curves.as_ref().map(|c| c.roc_auc),
        average_precision: curves.as_ref().map(|c| c.average_precision),
        curves,
        scores: None,
        seconds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_rank_by_log_odds_where_probabilities_saturate() {
        assert_eq!(spam_log_odds(&[0.0, 3.0], 1), 3.0);
        assert!((spam_log_odds(&[1.0, 2.0, 0.0], 1) - (2.0 - (1f32.exp() + 1.0).ln())).abs() < 1e-6);
        assert_eq!(spam_log_odds(&[5.0], 0), f32::INFINITY);

        // Four spam and one ham all at p(spam) = 1.0 in f32; the log-odds put the ham last.
        let task = TaskSpec { name: "t".into(), members: Vec::new() };
        let classes = ["ham".to_string(), "spam".to_string()];
        let labels = vec![1, 1, 1, 1, 0, 0];
        let probabilities = [0.0, 1.0].repeat(5).into_iter().chain([0.9, 0.1]).collect::<Vec<f32>>();
        let saturated = OutOfFold {
            pool_rows: (0..6).collect(),
            labels,
            probabilities,
            thresholds: vec![Some(0.5); 6],
            spam_log_odds: None,
        };
        let tied = summarise(&task, &classes, &saturated, 6).unwrap();
        assert_eq!(tied.recall_at_fp_1pct, Some(0.0), "a ham tied with every spam");
        let ranked = OutOfFold { spam_log_odds: Some(vec![40.0, 39.0, 38.0, 37.0, 20.0, -2.0]), ..saturated };
        let result = summarise(&task, &classes, &ranked, 6).unwrap();
        assert_eq!(result.recall_at_fp_1pct, Some(1.0));
        assert_eq!(result.roc_auc, Some(1.0));
        // Decisions at the threshold still read the probabilities: the saturated ham is a false positive.
        let at_threshold = result.at_threshold.unwrap();
        assert_eq!(at_threshold.ham_to_spam_false_positive_rate, Some(0.5));
    }

    #[test]
    fn text_like_images_have_few_colours_and_sharp_edges() {
        let stripes = image::RgbImage::from_fn(100, 100, |x, _| image::Rgb(if x % 10 < 5 { [0; 3] } else { [255; 3] }));
        let [colours, edges] = colour_and_edge_signals(&stripes);
        assert!((colours - 3f32.log2()).abs() < 1e-6, "{colours}");
        assert!((edges - 0.2).abs() < 0.02, "{edges}");
        let smooth = image::RgbImage::from_fn(256, 64, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let [colours, edges] = colour_and_edge_signals(&smooth);
        assert!(colours > 13.0, "{colours}");
        assert_eq!(edges, 0.0);
        assert_eq!(colour_and_edge_signals(&image::RgbImage::new(1, 1)), [1.0, 0.0]);
    }

    #[test]
    fn task_specs_parse_and_refuse_nonsense() {
        let t = TaskSpec::parse("personal=dredze2007/ham+dredze2007/spam/personal").unwrap();
        assert_eq!(t.name, "personal");
        assert_eq!(
            t.members,
            [("dredze2007".to_owned(), "ham/".to_owned()), ("dredze2007".to_owned(), "spam/personal/".to_owned())]
        );
        assert_eq!(TaskSpec::parse("all=a+b").unwrap().members[1], ("b".to_owned(), String::new()));
        for bad in ["nothing", "=a", "x=", "x=a+"] {
            assert!(TaskSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
