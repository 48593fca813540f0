//! The model contract's error type: each variant names the file, URL, layer or graph it is about.

use std::path::PathBuf;

/// Errors of building, reading, combining and quantising spamlens graphs, and of making the backbone.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
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

    /// The backbone tarball does not hold a usable TF.js layers model.
    #[error("{path}: {reason}")]
    Tarball { path: PathBuf, reason: String },

    /// The TF.js/Keras model uses something the converter does not support, or is inconsistent.
    #[error("converting layer '{layer}': {reason}")]
    Convert { layer: String, reason: String },

    /// An ONNX graph being built or read is inconsistent.
    #[error("building ONNX graph: {0}")]
    Graph(String),

    /// A backbone model could not be found where it was looked for.
    #[error(
        "no backbone model found (looked at: {looked_at}); run `spamlens-train backbone fetch` or pass --backbone PATH"
    )]
    BackboneMissing { looked_at: String },

    /// A head does not fit a backbone (trained on other features); `--force` overrides.
    #[error("{0}; pass --force to combine anyway")]
    Incompatible(String),

    /// The shared core library failed (model loading, inference, image decoding).
    #[error(transparent)]
    Core(#[from] spamlens_core::Error),
}

impl ModelError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }
}

/// `Result` with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
