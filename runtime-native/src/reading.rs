//! Reading the text in images natively: the OCR flags every command shares, and the check that the
//! local engine and trained data are the ones a fused model was trained with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use spamlens_core::Classifier;
use spamlens_core::ocr::{OcrImage, OcrImageSpec, OcrText};
use spamlens_ocr::{EnginePool, TesseractSettings, tessdata};

/// OCR flags of `classify`, `scan`, `feedback` and `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct OcrArgs {
    /// Do not read the text in images (faster; a model that reads text then decides by the image
    /// alone, at its image-only operating point).
    #[arg(long)]
    pub no_ocr: bool,
    /// Folder with the OCR trained data (eng, rus, chi_sim .traineddata). Default:
    /// $SPAMLENS_TESSDATA, the cache filled by `spamlens-train ocr-data fetch`, then Debian's
    /// /usr/share/tesseract-ocr/5/tessdata.
    #[arg(long, value_name = "DIR", conflicts_with = "no_ocr")]
    pub tessdata: Option<PathBuf>,
    /// OCR time limit per image in milliseconds (past it the image is decided by the image alone).
    #[arg(long, default_value_t = TesseractSettings::DEFAULT.time_limit.as_millis() as u64)]
    pub ocr_time_limit_ms: u64,
}

impl Default for OcrArgs {
    fn default() -> Self {
        OcrArgs {
            no_ocr: false,
            tessdata: None,
            ocr_time_limit_ms: TesseractSettings::DEFAULT.time_limit.as_millis() as u64,
        }
    }
}

/// The OCR engines of a run, or none.
#[derive(Debug, Clone, Default)]
pub struct Ocr {
    pool: Option<Arc<EnginePool>>,
}

impl Ocr {
    /// Starts the engines when `classifier` reads text and OCR is on (checking the model's OCR
    /// contract against them), and turns reading off in the classifier when OCR is off.
    pub fn for_classifier(classifier: Classifier, args: &OcrArgs) -> Result<(Classifier, Ocr)> {
        let Some(text) = classifier.declared_text_inputs() else {
            return Ok((classifier, Ocr::default()));
        };
        if args.no_ocr {
            tracing::info!("OCR off (--no-ocr): images are decided by the image-only output");
            return Ok((classifier.without_text(), Ocr::default()));
        }
        let ocr = Ocr::start(args)?;
        let pool = ocr.pool.as_ref().context("OCR engines")?;
        text.contract().check(pool.identity()).map_err(|difference| {
            anyhow::anyhow!(
                "model {} reads text with another OCR setup than this machine's: {difference}; install the \
                 trained data it names (`spamlens-train ocr-data fetch`), or pass --no-ocr to classify by the \
                 image alone",
                classifier.model().name()
            )
        })?;
        Ok((classifier, ocr))
    }

    /// Starts the engines (for reading text without a model: feedback).
    pub fn start(args: &OcrArgs) -> Result<Ocr> {
        if args.no_ocr {
            return Ok(Ocr::default());
        }
        let data = tessdata::locate(args.tessdata.as_deref(), &spamlens_model::backbone::default_cache_dir())?;
        let settings = TesseractSettings {
            time_limit: Duration::from_millis(args.ocr_time_limit_ms.max(1)),
            ..TesseractSettings::DEFAULT
        };
        let pool = EnginePool::new(data, settings).context("starting the OCR engine")?;
        tracing::info!(
            engine = %format!("{} {}", pool.identity().engine, pool.identity().version),
            languages = %pool.identity().languages(),
            tessdata = %pool.data().path().display(),
            "OCR ready"
        );
        Ok(Ocr { pool: Some(Arc::new(pool)) })
    }

    /// Whether engines are running.
    pub fn is_on(&self) -> bool {
        self.pool.is_some()
    }

    /// The engine pool.
    pub fn pool(&self) -> Option<&Arc<EnginePool>> {
        self.pool.as_ref()
    }

    /// Reads a prepared image's text, reporting the engine time to `timed`.
    pub fn recognize(
        &self,
        image: &OcrImage,
        input: &str,
        timed: &(dyn Fn(Duration) + Sync),
    ) -> spamlens_core::Result<OcrText> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| spamlens_core::Error::Ocr { input: input.to_owned(), reason: "OCR is off".into() })?;
        let started = Instant::now();
        let outcome = pool.recognize(image, input);
        timed(started.elapsed());
        outcome
    }

    /// The text of an image's bytes, read without a model (the image preparation every fused model
    /// so far declares); `None` when OCR is off. For learning from a message's images.
    pub fn read_bytes(&self, bytes: &[u8], input: &str) -> Option<spamlens_core::Result<OcrText>> {
        let pool = self.pool.as_ref()?;
        Some(
            spamlens_core::decode_rgb(bytes, input, &spamlens_core::DecodeLimits::DEFAULT)
                .and_then(|decoded| pool.read_text(&decoded.rgb, &OcrImageSpec::V1, input)),
        )
    }
}
