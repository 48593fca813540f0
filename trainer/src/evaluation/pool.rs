//! The pool of labelled rows an evaluation draws from: datasets, tasks (which datasets and labels
//! a task takes), features and the extra image signals, and the near-duplicate groups.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Result, TrainerError};
use crate::features::FeatureStore;
use crate::head::data::canonical_class_order;
use crate::head::{FeatureSource, LabelledFeatures};

use super::groups::{NEAR_DUPLICATE_DISTANCE, dhash, group_by_hash, read_manifest_groups};

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
