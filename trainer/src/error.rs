//! The trainer library's error type: each variant names the file, URL or tensor it is about.

use std::path::PathBuf;

/// Errors of the trainer library.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Downloading or verifying a pinned file failed (its error names the URL or file).
    #[error(transparent)]
    Fetch(#[from] spamlens_fetch::FetchError),

    /// An ONNX graph being built is inconsistent.
    #[error("building ONNX graph: {0}")]
    Graph(String),

    /// Predictions and labels do not fit together.
    #[error("metrics: {0}")]
    Metrics(String),

    /// The dataset folder is unusable.
    #[error("dataset {path}: {reason}")]
    Dataset { path: PathBuf, reason: String },

    /// A feature store is unreadable or does not match what it is used with.
    #[error("feature store {path}: {reason}")]
    Store { path: PathBuf, reason: String },

    /// The text filter could not be trained or evaluated.
    #[error("text filter: {0}")]
    TextFilter(String),

    /// A plot could not be drawn or written.
    #[error("plot {path}: {reason}")]
    Plot { path: PathBuf, reason: String },

    /// The requested training device is unavailable.
    #[error("device: {0}")]
    Device(String),

    /// Building, reading or combining a graph, or making the backbone, failed.
    #[error(transparent)]
    Model(#[from] spamlens_model::ModelError),

    /// The shared core library failed (model loading, inference).
    #[error(transparent)]
    Core(#[from] spamlens_core::Error),
}

impl TrainerError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainerError::Io { path: path.into(), source }
    }
}

/// `Result` with [`TrainerError`].
pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
