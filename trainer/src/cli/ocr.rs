//! `spamlens-train ocr` (read the text of a dataset's images into an OCR store) and
//! `spamlens-train ocr-data fetch` (the pinned trained data).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spamlens_core::ocr::OcrImageSpec;
use spamlens_fetch::DownloadBar;
use spamlens_model::backbone;
use spamlens_ocr::tessdata::{self, FetchOrigin};
use spamlens_ocr::{EnginePool, TesseractSettings};
use spamlens_trainer::ocr_store::{self, OcrProgress, OcrStoreHeader};

use super::draw_target;

/// Where the engine's trained data is and how long one image may take.
#[derive(Args, Debug, Clone)]
pub struct OcrEngineArgs {
    /// Folder with eng, rus and chi_sim .traineddata (default: $SPAMLENS_TESSDATA, the cache that
    /// `ocr-data fetch` fills, then Debian's /usr/share/tesseract-ocr/5/tessdata).
    #[arg(long, value_name = "DIR")]
    pub tessdata: Option<PathBuf>,
    /// Download cache (default: $SPAMLENS_CACHE, $XDG_CACHE_HOME/spamlens or ~/.cache/spamlens).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// OCR time limit per image, in milliseconds.
    #[arg(long, default_value_t = TesseractSettings::DEFAULT.time_limit.as_millis() as u64)]
    pub ocr_time_limit_ms: u64,
}

impl OcrEngineArgs {
    /// Finds the trained data and starts the engines.
    pub fn pool(&self) -> Result<EnginePool> {
        let cache = self.cache_dir.clone().unwrap_or_else(backbone::default_cache_dir);
        let data = tessdata::locate(self.tessdata.as_deref(), &cache)?;
        let settings = TesseractSettings {
            time_limit: Duration::from_millis(self.ocr_time_limit_ms),
            ..TesseractSettings::DEFAULT
        };
        let pool = EnginePool::new(data, settings)?;
        tracing::info!(
            engine = %format!("{} {}", pool.identity().engine, pool.identity().version),
            languages = %pool.identity().languages(),
            tessdata = %pool.data().path().display(),
            "OCR engine ready"
        );
        Ok(pool)
    }
}

#[derive(Args, Debug)]
pub struct OcrArgs {
    /// Dataset root: ROOT/<label>/... (e.g. ../shared/data/imagespam/dredze2007).
    dataset: PathBuf,
    /// OCR store (JSON Lines; created or extended). Default:
    /// features/<dataset folder name>.ocr-<setup key>.jsonl.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    engine: OcrEngineArgs,
    /// Parallel workers (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum OcrDataCommand {
    /// Put the pinned trained data (Debian's tesseract-ocr-eng, -rus, -chi-sim 1:4.1.0-2) into the
    /// cache: copied from Debian's install when the same files are there, else downloaded from
    /// Debian's archive; every package and file is sha256-checked.
    Fetch {
        /// Download cache (default: $SPAMLENS_CACHE, $XDG_CACHE_HOME/spamlens or ~/.cache/spamlens).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

/// `spamlens-train ocr-data …`.
pub fn ocr_data(command: OcrDataCommand) -> Result<()> {
    match command {
        OcrDataCommand::Fetch { cache_dir } => {
            let cache = cache_dir.unwrap_or_else(backbone::default_cache_dir);
            let (dir, origins) = tessdata::fetch(&cache, &mut |pin| {
                Box::new(DownloadBar::named(format!("downloading {} {}", pin.package, pin.version)))
            })
            .context("fetching the OCR trained data")?;
            for (pin, origin) in origins {
                let how = match origin {
                    FetchOrigin::Cached => "cached".to_owned(),
                    FetchOrigin::CopiedFrom(path) => format!("copied from {}", path.display()),
                    FetchOrigin::Downloaded => format!("downloaded from {}", pin.url),
                };
                println!("{:<22} {} ({} bytes, sha256 {}): {how}", pin.file_name(), pin.package, pin.bytes, pin.sha256);
            }
            println!("OCR trained data ready in {} ({} bytes)", dir.path().display(), dir.bytes());
            Ok(())
        }
    }
}

/// The default store path of a dataset for the engines of `pool`.
pub fn default_store(features_dir: &Path, dataset: &Path, pool: &EnginePool) -> PathBuf {
    let name = dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
    ocr_store::store_path(features_dir, &name, &OcrStoreHeader::new(pool.identity(), &OcrImageSpec::V1))
}

/// `spamlens-train ocr DATASET`.
pub fn ocr(args: OcrArgs) -> Result<()> {
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let pool = args.engine.pool()?;
    let out = args.out.clone().unwrap_or_else(|| default_store(Path::new("features"), &args.dataset, &pool));
    let bar = OcrBar::new();
    let (store, report) = ocr_store::read_dataset(&args.dataset, &out, &pool, &OcrImageSpec::V1, jobs, &bar)
        .with_context(|| format!("reading the text of {}", args.dataset.display()))?;
    println!(
        "{}: {} rows ({} files: {} read now, {} reused, {} OCR failures kept with their error, {} undecodable)",
        out.display(),
        store.rows.len(),
        report.files,
        report.read,
        report.reused,
        report.failed,
        report.undecodable
    );
    if report.read > 0 {
        println!(
            "OCR: median {:.0} ms, p95 {:.0} ms, max {:.0} ms per image; {:.2} images/s with {jobs} workers ({:.0} s)",
            ocr_store::quantile(&report.millis, 0.5),
            ocr_store::quantile(&report.millis, 0.95),
            report.millis.last().copied().unwrap_or(0.0),
            report.read as f64 / report.seconds.max(1e-9),
            report.seconds
        );
    }
    Ok(())
}

/// Images-read progress bar.
pub struct OcrBar {
    bar: ProgressBar,
}

impl OcrBar {
    /// A bar on stderr.
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), draw_target());
        bar.set_style(
            ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} {per_sec:.1} images eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message("OCR");
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar }
    }
}

impl OcrProgress for OcrBar {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
    }
    fn advance(&self) {
        self.bar.inc(1);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
