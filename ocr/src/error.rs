//! Why OCR could not be set up. (Errors reading one image are `spamlens_core::Error::Ocr` and
//! `OcrTimedOut`: they cost that image its text, not the run.)

use std::path::PathBuf;

/// Setting up OCR failed: the trained data is missing or wrong, or the engine would not start.
#[derive(Debug, thiserror::Error)]
pub enum OcrSetupError {
    /// No folder holds the pinned trained data.
    #[error(
        "no OCR trained data found ({looked_at}); run `spamlens-train ocr-data fetch`, install Debian's \
         tesseract-ocr-eng, tesseract-ocr-rus and tesseract-ocr-chi-sim, pass --tessdata DIR, or turn OCR off \
         with --no-ocr"
    )]
    DataMissing { looked_at: String },

    /// A trained-data file is not the pinned one.
    #[error("{path}: sha256 is {actual}, spamlens uses {expected} ({what}); refusing to use it")]
    DataMismatch { path: PathBuf, what: String, expected: String, actual: String },

    /// A Debian package did not hold what it should.
    #[error("{package}: {reason}")]
    Package { package: String, reason: String },

    /// Fetching or reading a file failed.
    #[error(transparent)]
    Fetch(#[from] spamlens_fetch::FetchError),

    /// libtesseract refused to start.
    #[error("Tesseract {version} could not load {languages} from {datapath}: {reason}")]
    EngineInit { version: String, languages: String, datapath: PathBuf, reason: String },
}

/// `Result` with [`OcrSetupError`].
pub type Result<T, E = OcrSetupError> = std::result::Result<T, E>;
