//! `spamlens-trainer`: everything that turns data into models.
//!
//! - [`dataset`]: image-folder datasets (`ROOT/<label>/...`).
//! - [`features`]: batch feature extraction into a Parquet feature store, cached by content hash.
//! - [`emailcz`]: the Email.cz reaction dataset: filters, streaming ingest, synthetic generator.
//! - [`experiment`]: one training run end to end (data, split, training, export, report).
//! - [`fusion`]: the fused head (image head, OCR text model, fusion layer) and how it is fitted.
//! - [`text_model`]: logistic regression over sparse n-grams and dense measures.
//! - [`grid`]: the paper's Table 6/7 grid over the Email.cz reaction filters.
//! - [`head`]: the classifier head in Burn: data, model, training loop, inference.
//! - [`report`]: training reports (JSON, Markdown) and PNG plots.
//! - [`text_filter`]: the CLA_ANN text filter: mail corpora, training, the paper's evaluation.
//! - [`ocr_store`]: what OCR read in every image of a dataset, cached per image and OCR setup.
//! - [`metrics`]: confusion matrix, per-class and weighted F1, ham→spam false-positive rate.
//! - [`operating_point`]: temperature calibration, the threshold for a target ham→spam rate, ROC/PR
//!   curves; used by training (validation AUC) and by evaluation, so neither depends on the other.
//!
//! The backbone, the graphs and the ONNX writer are the model contract, in `spamlens-model`.
//!
//! Long-running functions report progress through small callback traits, so the binary decides how
//! to show it (progress bars) and tests can stay silent.

pub mod dataset;
pub mod emailcz;
pub mod error;
pub mod evaluation;
pub mod experiment;
pub mod features;
pub mod fusion;
pub mod grid;
pub mod head;
pub mod metrics;
pub mod ocr_store;
pub mod operating_point;
pub mod random;
pub mod report;
pub mod text_filter;
pub mod text_model;

pub use error::{Result, TrainerError};
/// Download and checksum errors, as [`TrainerError::Fetch`] carries them.
pub use spamlens_fetch::FetchError;
