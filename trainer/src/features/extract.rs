//! Extracting backbone features of a dataset folder into a feature store.
//!
//! 1. Every file is hashed (sha256 of its bytes) in parallel.
//! 2. Files whose hash the existing store already has reuse its features; identical bytes found
//!    twice in this run are computed once.
//! 3. The remaining unique images are split into batches; `jobs` workers each read, decode and
//!    preprocess a batch and run it through the backbone (single-threaded tract per worker, so
//!    one worker decodes while another infers and every core is busy).
//! 4. A failed image (unreadable, corrupt, over a limit) is recorded with its error and counted,
//!    never fatal. The store is checkpointed as work completes and written atomically at the end,
//!    with the failures in a `.failures.jsonl` file beside it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use spamlens_core::{DecodeLimits, PreparedImage, prepare_image};

use super::Backbone;
use super::store::{FeatureRow, FeatureStore};
use crate::dataset::{self, DatasetEntry};
use crate::error::{Result, TrainerError};

/// Tuning knobs of [`extract_to_store`].
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Images per backbone call.
    pub batch_size: usize,
    /// Parallel workers (each decodes and runs its own batches).
    pub jobs: usize,
    /// Decode limits applied to every image.
    pub limits: DecodeLimits,
    /// Write the store after this many newly computed images, so an interrupted run keeps its work.
    pub checkpoint_every: usize,
    /// Ignore (and replace) an existing store instead of reusing it; required when its backbone differs.
    pub rebuild: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            batch_size: 8,
            jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            limits: DecodeLimits::DEFAULT,
            checkpoint_every: 1000,
            rebuild: false,
        }
    }
}

/// Progress callbacks; called from worker threads, hence `Sync`.
pub trait ExtractProgress: Sync {
    /// Hashing `total` files starts.
    fn hashing(&self, total: usize);
    /// One more file hashed.
    fn hashed(&self);
    /// Computing features of `total` unique images starts.
    fn computing(&self, total: usize);
    /// `done` more images finished (successfully or not).
    fn computed(&self, done: usize);
    /// All work is finished.
    fn finished(&self);
}

/// An [`ExtractProgress`] that shows nothing.
pub struct NoExtractProgress;

impl ExtractProgress for NoExtractProgress {
    fn hashing(&self, _total: usize) {}
    fn hashed(&self) {}
    fn computing(&self, _total: usize) {}
    fn computed(&self, _done: usize) {}
    fn finished(&self) {}
}

/// An image that could not be turned into features.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Path relative to the dataset root.
    pub path: String,
    /// sha256 of its bytes, when they could be read.
    pub sha256: Option<String>,
    /// What went wrong.
    pub error: String,
}

/// What [`extract_to_store`] did.
#[derive(Debug, Clone, Default)]
pub struct ExtractReport {
    /// Image files found in the dataset.
    pub files: usize,
    /// Files whose features came from the existing store.
    pub reused: usize,
    /// Unique images run through the backbone now.
    pub computed: usize,
    /// Files that had the same bytes as another file of this run (computed once).
    pub duplicates: usize,
    /// Files that failed.
    pub failures: Vec<Failure>,
    /// Rows of the old store whose file is no longer in the dataset.
    pub removed: usize,
    /// Rows in the written store.
    pub rows: usize,
    /// Seconds spent decoding and running the backbone.
    pub compute_seconds: f64,
    /// Total seconds.
    pub total_seconds: f64,
    /// Where the failures were written (if any failed).
    pub failures_file: Option<PathBuf>,
}

impl ExtractReport {
    /// Newly computed images per second of compute time.
    pub fn images_per_second(&self) -> f64 {
        if self.compute_seconds > 0.0 { self.computed as f64 / self.compute_seconds } else { 0.0 }
    }
}

/// What is known about one unique image.
#[derive(Debug, Clone)]
struct ImageFeatures {
    width: u32,
    height: u32,
    format: String,
    features: Vec<f32>,
}

struct HashedEntry<'d> {
    entry: &'d DatasetEntry,
    sha256: String,
}

/// The failures file written beside a store: `features.parquet` → `features.failures.jsonl`.
pub fn failures_path(store: &Path) -> PathBuf {
    store.with_extension("failures.jsonl")
}

/// Extracts features of the dataset at `root` into the store at `store_path` (see module docs).
pub fn extract_to_store(
    root: &Path,
    store_path: &Path,
    backbone: &Backbone,
    options: &ExtractOptions,
    progress: &dyn ExtractProgress,
) -> Result<ExtractReport> {
    let started = Instant::now();
    let dataset = dataset::scan(root)?;
    let mut report = ExtractReport { files: dataset.entries.len(), ..Default::default() };
    // What the dataset itself left out (a feedback log's malformed lines, inconsistent reactions).
    for problem in &dataset.problems {
        report.failures.push(Failure { path: root.display().to_string(), sha256: None, error: problem.clone() });
    }

    // Features known from the existing store, by content hash.
    let mut known: HashMap<String, ImageFeatures> = HashMap::new();
    let mut old_paths = Vec::new();
    if store_path.exists() && !options.rebuild {
        let old = FeatureStore::read(store_path)?;
        if old.provenance.backbone_sha256 != backbone.provenance.backbone_sha256 {
            return Err(TrainerError::Store {
                path: store_path.to_path_buf(),
                reason: format!(
                    "was made with backbone {} but this run uses {}; features of different backbones cannot be mixed \
                     (use --rebuild to replace the store, or another --out)",
                    old.provenance.backbone_sha256, backbone.provenance.backbone_sha256
                ),
            });
        }
        if old.provenance.preprocessing != backbone.provenance.preprocessing {
            return Err(TrainerError::Store {
                path: store_path.to_path_buf(),
                reason: format!(
                    "was made with preprocessing '{}' but this run uses '{}'; features of different preprocessings \
                     cannot be mixed (use --rebuild to replace the store, or another --out)",
                    old.provenance.preprocessing, backbone.provenance.preprocessing
                ),
            });
        }
        for row in old.rows {
            old_paths.push(row.path.clone());
            known.entry(row.sha256).or_insert(ImageFeatures {
                width: row.width,
                height: row.height,
                format: row.format,
                features: row.features,
            });
        }
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .thread_name(|i| format!("spamlens-extract-{i}"))
        .build()
        .map_err(|e| TrainerError::Dataset { path: root.to_path_buf(), reason: format!("thread pool: {e}") })?;

    // 1. Hash.
    progress.hashing(dataset.entries.len());
    let hashed: Vec<std::result::Result<HashedEntry, Failure>> = pool.install(|| {
        dataset
            .entries
            .par_iter()
            .map(|entry| {
                let result = hash_file(entry, &options.limits);
                progress.hashed();
                result
            })
            .collect()
    });
    let mut entries = Vec::with_capacity(hashed.len());
    for item in hashed {
        match item {
            Ok(entry) => entries.push(entry),
            Err(failure) => report.failures.push(failure),
        }
    }

    // 2. Plan: reuse, deduplicate, compute the rest.
    let mut to_compute: Vec<&HashedEntry> = Vec::new();
    let mut planned: HashMap<&str, ()> = HashMap::new();
    for entry in &entries {
        if known.contains_key(&entry.sha256) {
            report.reused += 1;
        } else if planned.insert(entry.sha256.as_str(), ()).is_some() {
            report.duplicates += 1;
        } else {
            to_compute.push(entry);
        }
    }
    let current: std::collections::HashSet<&str> = entries.iter().map(|e| e.entry.relative.as_str()).collect();
    report.removed = old_paths.iter().filter(|p| !current.contains(p.as_str())).count();

    // 3. Compute in parallel batches; this thread collects, reports and checkpoints.
    let compute_started = Instant::now();
    progress.computing(to_compute.len());
    let (sender, receiver) = crossbeam_channel::unbounded::<BatchResult>();
    let batches: Vec<&[&HashedEntry]> = to_compute.chunks(options.batch_size.max(1)).collect();
    let mut since_checkpoint = 0usize;
    let mut checkpoint_error = None;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pool.install(|| {
                batches.par_iter().for_each_with(sender, |sender, batch| {
                    let _ = sender.send(run_batch(batch, backbone, &options.limits));
                });
            });
        });
        for result in receiver.iter() {
            progress.computed(result.done);
            since_checkpoint += result.features.len();
            report.computed += result.features.len();
            for (sha, features) in result.features {
                known.insert(sha, features);
            }
            report.failures.extend(result.failures);
            if since_checkpoint >= options.checkpoint_every.max(1) && checkpoint_error.is_none() {
                since_checkpoint = 0;
                if let Err(e) = write_store(store_path, &entries, &known, backbone) {
                    checkpoint_error = Some(e);
                }
            }
        }
    });
    if let Some(e) = checkpoint_error {
        return Err(e);
    }
    report.compute_seconds = compute_started.elapsed().as_secs_f64();

    // Identical bytes share the outcome of their one computation, failures included.
    let failed: HashMap<String, (String, String)> = report
        .failures
        .iter()
        .filter_map(|f| f.sha256.clone().map(|sha| (sha, (f.path.clone(), f.error.clone()))))
        .collect();
    let listed: std::collections::HashSet<String> = report.failures.iter().map(|f| f.path.clone()).collect();
    for entry in &entries {
        if !known.contains_key(&entry.sha256)
            && let Some((original, error)) = failed.get(&entry.sha256)
            && !listed.contains(&entry.entry.relative)
        {
            report.failures.push(Failure {
                path: entry.entry.relative.clone(),
                sha256: Some(entry.sha256.clone()),
                error: format!("{}: same bytes as {original}, which failed: {error}", entry.entry.relative),
            });
        }
    }
    report.failures.sort_by(|a, b| a.path.cmp(&b.path));

    // 4. Write the store and the failures.
    report.rows = write_store(store_path, &entries, &known, backbone)?;
    let failures_file = failures_path(store_path);
    if report.failures.is_empty() {
        if failures_file.exists() {
            std::fs::remove_file(&failures_file).map_err(|e| TrainerError::io(&failures_file, e))?;
        }
    } else {
        write_failures(&failures_file, &report.failures)?;
        report.failures_file = Some(failures_file);
    }
    progress.finished();
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn hash_file<'d>(entry: &'d DatasetEntry, limits: &DecodeLimits) -> std::result::Result<HashedEntry<'d>, Failure> {
    let fail = |error: String| Failure { path: entry.relative.clone(), sha256: None, error };
    let size = std::fs::metadata(&entry.path).map_err(|e| fail(format!("{}: cannot read: {e}", entry.relative)))?.len();
    if size > limits.max_input_bytes as u64 {
        return Err(fail(format!(
            "{}: {size} bytes of encoded image, over the input-size limit of {} bytes",
            entry.relative, limits.max_input_bytes
        )));
    }
    let bytes = std::fs::read(&entry.path).map_err(|e| fail(format!("{}: cannot read: {e}", entry.relative)))?;
    Ok(HashedEntry { entry, sha256: hex::encode(Sha256::digest(&bytes)) })
}

struct BatchResult {
    done: usize,
    features: Vec<(String, ImageFeatures)>,
    failures: Vec<Failure>,
}

/// Reads, decodes and preprocesses one batch, then runs the backbone on the images that worked.
fn run_batch(batch: &[&HashedEntry], backbone: &Backbone, limits: &DecodeLimits) -> BatchResult {
    let mut failures = Vec::new();
    let mut prepared: Vec<(&HashedEntry, PreparedImage)> = Vec::with_capacity(batch.len());
    for item in batch {
        let relative = &item.entry.relative;
        let result =
            std::fs::read(&item.entry.path).map_err(|e| format!("{relative}: cannot read: {e}")).and_then(|bytes| {
                // The file may have changed since it was hashed; features must match the hash.
                if hex::encode(Sha256::digest(&bytes)) != item.sha256 {
                    return Err(format!("{relative}: file changed while extracting"));
                }
                prepare_image(&bytes, relative, limits, &backbone.preprocessing).map_err(|e| e.to_string())
            });
        match result {
            Ok(image) => prepared.push((item, image)),
            Err(error) => failures.push(Failure { path: relative.clone(), sha256: Some(item.sha256.clone()), error }),
        }
    }
    let mut features = Vec::with_capacity(prepared.len());
    if !prepared.is_empty() {
        // Every view of every image in one backbone call; an image's feature is the mean over its
        // views (one view unless the fit is `tiles`).
        let views: usize = prepared.iter().map(|(_, image)| image.views).sum();
        let mut input = Vec::with_capacity(views * backbone.preprocessing.values_per_image());
        for (_, image) in &prepared {
            input.extend_from_slice(&image.tensor);
        }
        let output = backbone.model.run(input, views).and_then(|out| out.take(&backbone.provenance.feature_tensor));
        match output {
            Ok(tensor) => {
                let mut rows = tensor.rows();
                for (item, image) in &prepared {
                    let scale = 1.0 / image.views.max(1) as f32;
                    let mut mean = vec![0.0f32; tensor.row_len()];
                    for row in rows.by_ref().take(image.views) {
                        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v * scale);
                    }
                    features.push((
                        item.sha256.clone(),
                        ImageFeatures {
                            width: image.width,
                            height: image.height,
                            format: image.format.to_string(),
                            features: mean,
                        },
                    ));
                }
            }
            Err(e) => {
                for (item, _) in &prepared {
                    failures.push(Failure {
                        path: item.entry.relative.clone(),
                        sha256: Some(item.sha256.clone()),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    BatchResult { done: batch.len(), features, failures }
}

/// Writes one row per dataset file whose features are known, in path order; returns the row count.
fn write_store(
    store_path: &Path,
    entries: &[HashedEntry],
    known: &HashMap<String, ImageFeatures>,
    backbone: &Backbone,
) -> Result<usize> {
    let mut rows: Vec<FeatureRow> = entries
        .iter()
        .filter_map(|e| {
            known.get(&e.sha256).map(|f| FeatureRow {
                sha256: e.sha256.clone(),
                path: e.entry.relative.clone(),
                label: e.entry.label.clone(),
                subset: e.entry.subset.clone(),
                width: f.width,
                height: f.height,
                format: f.format.clone(),
                features: f.features.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let feature_dim = rows.first().map(|r| r.features.len()).unwrap_or(spamlens_core::FEATURE_DIM);
    let store = FeatureStore { rows, provenance: backbone.provenance.clone(), feature_dim };
    store.write(store_path)?;
    Ok(store.rows.len())
}

fn write_failures(path: &Path, failures: &[Failure]) -> Result<()> {
    let mut out = Vec::new();
    for failure in failures {
        // Serialising plain strings cannot fail.
        serde_json::to_writer(&mut out, failure).map_err(|e| TrainerError::io(path, e.into()))?;
        out.push(b'\n');
    }
    let mut file = std::fs::File::create(path).map_err(|e| TrainerError::io(path, e))?;
    file.write_all(&out).map_err(|e| TrainerError::io(path, e))
}
