//! Shared helpers of the spamlens benches: where the reference backbone and images are.

use std::path::{Path, PathBuf};

/// The folder with the reference backbone: `$SPAMLENS_MODELS`, else `../shared/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SPAMLENS_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"))
}

/// The reference backbone ONNX; panics with a clear message when it is missing.
pub fn backbone_path() -> PathBuf {
    let path = models_dir().join("resnet50-v1-keras-imagenet.onnx");
    assert!(path.is_file(), "{} is missing (set SPAMLENS_MODELS)", path.display());
    path
}

/// The three shared test photos.
pub fn test_images() -> Vec<PathBuf> {
    let dir = models_dir().join("testimages");
    ["bald_eagle.jpeg", "pelican.jpeg", "grace_hopper.jpg"].iter().map(|n| dir.join(n)).collect()
}
