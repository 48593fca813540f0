//! The OCR store: what the OCR engine read in every image of a dataset, cached so the group-aware
//! evaluation (and every retraining) runs OCR once per image.
//!
//! One JSON Lines file per dataset and OCR setup: a header line with the engine's identity
//! (engine, version, languages and trained-data sha256s, page segmentation, dpi) and the image
//! preparation, then one line per image keyed by its sha256. A store made by another setup is
//! never reused: its file name carries the setup's key
//! ([`store_path`]: `<dataset>.ocr-<key>.jsonl`), and [`OcrStore::read`] checks the header. Images
//! OCR could not read (time limit, engine error) are kept with their error, so a re-run does not
//! retry them and the evaluation treats them as a runtime would: no text, image-only verdict.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spamlens_core::ocr::{EngineIdentity, OcrImageSpec, OcrText};
use spamlens_core::{DecodeLimits, decode_rgb};

use crate::dataset;
use crate::error::{Result, TrainerError};

/// The header line of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrStoreHeader {
    /// Format version of the file.
    pub spamlens_ocr_store: u32,
    /// The engine that read the images.
    pub engine: EngineIdentity,
    /// How images were prepared ([`OcrImageSpec::describe`]).
    pub image: String,
}

impl OcrStoreHeader {
    /// The header of a store made with `engine` and `image`.
    pub fn new(engine: &EngineIdentity, image: &OcrImageSpec) -> OcrStoreHeader {
        OcrStoreHeader { spamlens_ocr_store: 1, engine: engine.clone(), image: image.describe() }
    }

    /// 12 hex digits naming this setup (engine, version, data, settings, preparation).
    pub fn key(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))[..12].to_owned()
    }
}

/// One image's OCR result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrRow {
    /// sha256 of the image bytes.
    pub sha256: String,
    /// Path relative to the dataset root (the first seen, for identical files).
    pub path: String,
    /// What was read (empty when the image holds no text or could not be read).
    pub text: OcrText,
    /// Milliseconds the engine took (preparation included).
    pub millis: f64,
    /// Why the text could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl OcrRow {
    /// The text when it was read; `None` when OCR failed (the runtime then decides by the image alone).
    pub fn read_text(&self) -> Option<&OcrText> {
        self.error.is_none().then_some(&self.text)
    }
}

/// A store in memory.
#[derive(Debug, Clone)]
pub struct OcrStore {
    /// The setup that made it.
    pub header: OcrStoreHeader,
    /// Rows by sha256.
    pub rows: HashMap<String, OcrRow>,
}

/// The store is written after every this many images read (and at the end).
const CHECKPOINT_EVERY: usize = 250;

/// `<features_dir>/<dataset>.ocr-<key>.jsonl`.
pub fn store_path(features_dir: &Path, dataset_name: &str, header: &OcrStoreHeader) -> PathBuf {
    features_dir.join(format!("{dataset_name}.ocr-{}.jsonl", header.key()))
}

impl OcrStore {
    /// An empty store for a setup.
    pub fn new(header: OcrStoreHeader) -> OcrStore {
        OcrStore { header, rows: HashMap::new() }
    }

    /// Reads a store; refuses one made by another setup than `expected` (when given). A malformed
    /// line is an error naming the line.
    pub fn read(path: &Path, expected: Option<&OcrStoreHeader>) -> Result<OcrStore> {
        let bad = |reason: String| TrainerError::Store { path: path.to_path_buf(), reason };
        let file = std::fs::File::open(path).map_err(|e| TrainerError::io(path, e))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let header_line = lines.next().ok_or_else(|| bad("empty file (no header line)".into()))?;
        let header: OcrStoreHeader = serde_json::from_str(&header_line.map_err(|e| TrainerError::io(path, e))?)
            .map_err(|e| bad(format!("line 1 is not an OCR store header ({e})")))?;
        if let Some(expected) = expected
            && *expected != header
        {
            return Err(bad(format!(
                "made by {} {} ({}) with '{}', not by this setup ({} {}, {}); run OCR again into a new store",
                header.engine.engine,
                header.engine.version,
                header.engine.languages(),
                header.image,
                expected.engine.engine,
                expected.engine.version,
                expected.engine.languages()
            )));
        }
        let mut rows = HashMap::new();
        for (index, line) in lines.enumerate() {
            let line = line.map_err(|e| TrainerError::io(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let row: OcrRow = serde_json::from_str(&line).map_err(|e| bad(format!("line {}: {e}", index + 2)))?;
            rows.insert(row.sha256.clone(), row);
        }
        Ok(OcrStore { header, rows })
    }

    /// Writes the store atomically, rows sorted by path.
    pub fn write(&self, path: &Path) -> Result<()> {
        let encode = |e: serde_json::Error| TrainerError::Store { path: path.to_path_buf(), reason: e.to_string() };
        let mut out = Vec::new();
        serde_json::to_writer(&mut out, &self.header).map_err(encode)?;
        out.push(b'\n');
        let mut rows: Vec<&OcrRow> = self.rows.values().collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path).then(a.sha256.cmp(&b.sha256)));
        for row in rows {
            serde_json::to_writer(&mut out, row).map_err(encode)?;
            out.push(b'\n');
        }
        Ok(spamlens_fetch::write_atomically(path, &out)?)
    }
}

/// Progress of [`read_dataset`]; called from worker threads.
pub trait OcrProgress: Sync {
    /// `total` images are to be read.
    fn start(&self, total: usize);
    /// One more image was read (or failed).
    fn advance(&self);
    /// Done.
    fn finish(&self);
}

/// An [`OcrProgress`] that shows nothing.
pub struct NoOcrProgress;

impl OcrProgress for NoOcrProgress {
    fn start(&self, _total: usize) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

/// What [`read_dataset`] did.
#[derive(Debug, Clone, Default)]
pub struct OcrReport {
    /// Image files in the dataset.
    pub files: usize,
    /// Unique images read now.
    pub read: usize,
    /// Images whose result came from the store.
    pub reused: usize,
    /// Images OCR could not read (kept in the store with their error).
    pub failed: usize,
    /// Files that could not be decoded at all (not in the store).
    pub undecodable: usize,
    /// Engine milliseconds per image read now, sorted (for medians and percentiles).
    pub millis: Vec<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Reads the text of every image of the dataset at `root` into the store at `store_path` (created
/// or extended), with `jobs` threads sharing `pool`'s engines.
pub fn read_dataset(
    root: &Path,
    store_path: &Path,
    pool: &spamlens_ocr::EnginePool,
    image: &OcrImageSpec,
    jobs: usize,
    progress: &dyn OcrProgress,
) -> Result<(OcrStore, OcrReport)> {
    let started = Instant::now();
    let header = OcrStoreHeader::new(pool.identity(), image);
    let store = if store_path.is_file() { OcrStore::read(store_path, Some(&header))? } else { OcrStore::new(header) };
    let dataset = dataset::scan(root)?;
    let mut report = OcrReport { files: dataset.entries.len(), ..OcrReport::default() };
    let hashed: Vec<(String, &dataset::DatasetEntry)> = dataset
        .entries
        .par_iter()
        .map(|entry| {
            let bytes = std::fs::read(&entry.path).map_err(|e| TrainerError::io(&entry.path, e))?;
            Ok((hex::encode(Sha256::digest(&bytes)), entry))
        })
        .collect::<Result<_>>()?;
    let mut todo: Vec<(String, &dataset::DatasetEntry)> = Vec::new();
    let mut queued = std::collections::HashSet::new();
    for (sha, entry) in hashed {
        if store.rows.contains_key(&sha) {
            report.reused += 1;
        } else if queued.insert(sha.clone()) {
            todo.push((sha, entry));
        }
    }
    progress.start(todo.len());
    let shared = Mutex::new((store, report));
    let thread_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| TrainerError::Dataset { path: root.to_path_buf(), reason: format!("thread pool: {e}") })?;
    let checkpoint_failed = Mutex::new(None);
    thread_pool.install(|| {
        todo.par_iter().for_each(|(sha, entry)| {
            let outcome = read_one(entry, sha, pool, image);
            let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
            let (store, report) = &mut *guard;
            match outcome {
                Ok(row) => {
                    report.read += 1;
                    report.failed += usize::from(row.error.is_some());
                    report.millis.push(row.millis);
                    store.rows.insert(row.sha256.clone(), row);
                    // Checkpoint now and then, so an interrupted run keeps its work.
                    if report.read % CHECKPOINT_EVERY == 0
                        && let Err(e) = store.write(store_path)
                    {
                        *checkpoint_failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    }
                }
                Err(_) => report.undecodable += 1,
            }
            drop(guard);
            progress.advance();
        });
    });
    progress.finish();
    if let Some(e) = checkpoint_failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let (store, mut report) = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    report.millis.sort_by(f64::total_cmp);
    store.write(store_path)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok((store, report))
}

fn read_one(
    entry: &dataset::DatasetEntry,
    sha256: &str,
    pool: &spamlens_ocr::EnginePool,
    image: &OcrImageSpec,
) -> Result<OcrRow> {
    let bytes = std::fs::read(&entry.path).map_err(|e| TrainerError::io(&entry.path, e))?;
    let decoded = decode_rgb(&bytes, &entry.relative, &DecodeLimits::DEFAULT)?;
    let started = Instant::now();
    let outcome = pool.read_text(&decoded.rgb, image, &entry.relative);
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let (text, error) = match outcome {
        Ok(text) => (text, None),
        Err(e) => (OcrText::empty(decoded.width(), decoded.height()), Some(e.to_string())),
    };
    Ok(OcrRow { sha256: sha256.to_owned(), path: entry.relative.clone(), text, millis, error })
}

/// The value at quantile `q` (0–1) of sorted values (nearest rank), 0 when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamlens_core::ocr::{OcrWord, TrainedData};

    fn identity(version: &str) -> EngineIdentity {
        EngineIdentity {
            engine: "tesseract".into(),
            version: version.into(),
            engine_mode: "lstm".into(),
            page_segmentation: 3,
            dpi: 300,
            data: vec![TrainedData { language: "eng".into(), sha256: "aa".into() }],
        }
    }

    #[test]
    fn stores_round_trip_and_refuse_another_setup() {
        let dir = tempfile::tempdir().unwrap();
        let header = OcrStoreHeader::new(&identity("5.3.0"), &OcrImageSpec::V1);
        let path = store_path(dir.path(), "set", &header);
        assert!(path.to_string_lossy().ends_with(&format!("set.ocr-{}.jsonl", header.key())));
        let mut store = OcrStore::new(header.clone());
        let text = OcrText {
            width: 10,
            height: 5,
            words: vec![OcrWord { text: "Buy".into(), confidence: 91.0, bbox: [1, 1, 4, 3], line: 0 }],
        };
        store.rows.insert(
            "ab".into(),
            OcrRow { sha256: "ab".into(), path: "spam/a.png".into(), text, millis: 12.5, error: None },
        );
        store.rows.insert(
            "cd".into(),
            OcrRow {
                sha256: "cd".into(),
                path: "ham/b.png".into(),
                text: OcrText::empty(3, 3),
                millis: 10_000.0,
                error: Some("ham/b.png: OCR stopped after the 10000 ms time limit".into()),
            },
        );
        store.write(&path).unwrap();
        let back = OcrStore::read(&path, Some(&header)).unwrap();
        assert_eq!(back.rows, store.rows);
        assert!(back.rows["cd"].read_text().is_none());
        let other = OcrStoreHeader::new(&identity("5.4.0"), &OcrImageSpec::V1);
        assert_ne!(other.key(), header.key());
        let err = OcrStore::read(&path, Some(&other)).unwrap_err().to_string();
        assert!(err.contains("not by this setup (tesseract 5.4.0"), "{err}");
        std::fs::write(&path, format!("{}\n{{\"sha256\": 3}}\n", serde_json::to_string(&header).unwrap())).unwrap();
        let err = OcrStore::read(&path, None).unwrap_err().to_string();
        assert!(err.contains("line 2:"), "{err}");
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.95), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
