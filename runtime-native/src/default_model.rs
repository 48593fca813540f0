//! The built-in default model: the committed head (`models/default/head.onnx`, compiled into the
//! binary) attached to the backbone fetched by `spamlens-train backbone fetch`, combined once and
//! cached so later runs load it directly. Natively it runs with f32 weights; the browser gets the
//! same model with int8 convolution weights ([`default_browser_model`]): a quarter of the download,
//! the same compute once widened at load, within 1 point of the f32 recall (models/evaluation/).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use spamlens_core::scan::sha256_hex;
use spamlens_trainer::backbone;

/// The default head graph (f16 weights), trained by the command in `models/default/MODEL_CARD.md`.
pub const DEFAULT_HEAD: &[u8] = include_bytes!("../../models/default/head.onnx");

/// The command that makes the backbone, for messages.
pub const FETCH_COMMAND: &str =
    "spamlens-train backbone fetch   (in a checkout: cargo run -p spamlens-trainer -- backbone fetch)";

/// Where the combined default model is cached: the spamlens cache folder, keyed by both inputs'
/// sha256 so a new head or backbone never reuses a stale combination.
fn cached_path(head_sha: &str, backbone_sha: &str) -> PathBuf {
    backbone::default_cache_dir().join("models").join(format!(
        "spamlens-default-{}-{}.onnx",
        &head_sha[..12],
        &backbone_sha[..12]
    ))
}

/// Returns the path of the combined default model, building it if needed. `backbone_hint` is an
/// explicit backbone path (`--backbone`).
pub fn default_model(backbone_hint: Option<&Path>) -> Result<PathBuf> {
    let backbone_path = backbone::locate_backbone(backbone_hint).map_err(|e| {
        anyhow!(
            "no model to classify with: {e}.\n\
             spamlens combines its built-in head with the pretrained ResNet-50 backbone, which is not \
             in git (~100 MB). Make it once with:\n    {FETCH_COMMAND}\n\
             or pass --model MODEL.onnx (a combined model from `spamlens-train train`)."
        )
    })?;
    let backbone_bytes =
        std::fs::read(&backbone_path).with_context(|| format!("reading {}", backbone_path.display()))?;
    let path = cached_path(&sha256_hex(DEFAULT_HEAD), &sha256_hex(&backbone_bytes));
    if path.is_file() {
        return Ok(path);
    }
    tracing::info!(backbone = %backbone_path.display(), cache = %path.display(), "combining the built-in head with the backbone (once)");
    let head = spamlens_trainer::export::read_head_graph(DEFAULT_HEAD, "built-in head")?;
    let combined =
        spamlens_trainer::export::combine(&backbone_bytes, &backbone_path.display().to_string(), &head, false)
            .with_context(|| format!("attaching the built-in head to {}", backbone_path.display()))?;
    backbone::write_atomically(&path, &combined)?;
    Ok(path)
}

/// The built-in default model with int8 convolution weights (`spamlens-train quantize`), what the
/// demo page serves: made once from [`default_model`] and cached beside it.
pub fn default_browser_model(backbone_hint: Option<&Path>) -> Result<PathBuf> {
    let f32_path = default_model(backbone_hint)?;
    let path = f32_path.with_extension("int8.onnx");
    if path.is_file() {
        return Ok(path);
    }
    let bytes = std::fs::read(&f32_path).with_context(|| format!("reading {}", f32_path.display()))?;
    let (quantized, report) = spamlens_trainer::export::quantize_conv_weights(&bytes, &f32_path.display().to_string())?;
    tracing::info!(
        cache = %path.display(),
        bytes = report.bytes_after,
        "storing the built-in model's convolution weights as int8 for the browser (once)"
    );
    backbone::write_atomically(&path, &quantized)?;
    Ok(path)
}
