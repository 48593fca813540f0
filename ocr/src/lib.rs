//! `spamlens-ocr`: reading the text in images natively.
//!
//! - [`tessdata`]: the trained data every spamlens runtime uses (Debian's `tesseract-ocr-eng`,
//!   `-rus` and `-chi-sim` 1:4.1.0-2, LSTM "fast" models), pinned by sha256: found in a folder
//!   of ours, in Debian's own install, or fetched from Debian's archive and verified.
//! - [`tesseract`]: [`TesseractEngine`], libtesseract (5.x) through `tesseract-sys`, implementing
//!   core's [`OcrEngine`](spamlens_core::ocr::OcrEngine) with a per-image time limit.
//! - [`pool`]: [`EnginePool`], engines shared by the threads of a CLI run or a server, each used
//!   by one thread at a time.
//!
//! The browser runs the same trained data in tesseract.js-core (Tesseract 5 compiled to wasm); both
//! hand their words to `spamlens_core::ocr`, which does everything after.

pub mod deb;
pub mod error;
pub mod pool;
pub mod tessdata;
pub mod tesseract;

pub use error::{OcrSetupError, Result};
pub use pool::EnginePool;
pub use tessdata::{TRAINED_DATA, TessdataDir, TrainedDataPin};

pub use tesseract::{TesseractEngine, TesseractSettings, library_version};
