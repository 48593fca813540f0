//! The trained head as ONNX: on its own (input `features` `[N, 2048]`) or attached to the backbone's
//! `features` tensor as one combined graph (input: the preprocessed image), both with output
//! `probabilities` `[N, classes]` and the contract in `metadata_props` (keys from
//! `spamlens_core::classifier`).

use prost::Message;
use serde::Serialize;
use spamlens_core::classifier::{
    IMAGE_PROBABILITIES_OUTPUT, KIND_COMBINED, KIND_HEAD, META_BACKBONE_SHA256, META_CREATED,
    META_FEATURE_BACKBONE_SHA256, META_FEATURE_SOURCE, META_HEAD, META_IMAGE_THRESHOLDS, META_KIND, META_LABELS,
    META_METRICS, META_OCR, META_OPERATING_POINT, META_PRECISION, META_PREPROCESSING, META_THRESHOLDS, META_TRAINING,
    META_VERSION, OCR_LAYOUT_INPUT, OCR_NGRAMS_INPUT, PROBABILITIES_OUTPUT, TEXT_PROBABILITIES_OUTPUT,
};
use spamlens_core::ocr::{LAYOUT_FEATURES, OcrContract};
use spamlens_core::{FEATURE_DIM, FEATURES_OUTPUT};
use tract_onnx::pb;

use crate::error::{ModelError, Result};
use crate::onnx::{Attribute, OnnxGraphBuilder, OutputSpec};
use crate::weights::{DenseLayer, FeatureSource, HeadWeights};

/// [`META_FEATURE_SOURCE`] of heads trained on spamlens backbone features.
pub const SOURCE_BACKBONE: &str = "spamlens-backbone";
/// [`META_FEATURE_SOURCE`] of heads trained on the Email.cz dataset's features.
pub const SOURCE_EMAILCZ: &str = "emailcz-v1";

/// How the head's weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats: exactly the trained values.
    F32,
    /// 16-bit floats behind a `Cast`: half the size (the committed default head fits in git).
    F16,
}

impl Precision {
    /// `f32` or `f16`, as the metadata says.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

/// What a head graph records about its training, besides the weights.
#[derive(Debug, Clone)]
pub struct HeadProvenance {
    /// Where the training features came from.
    pub source: FeatureSource,
    /// Training data summary (JSON).
    pub training: serde_json::Value,
    /// Held-out metrics (JSON), if there was a test side.
    pub metrics: Option<serde_json::Value>,
    /// The operating point: `(class, threshold)` pairs written as `spamlens.thresholds` (empty:
    /// the label is the most probable class).
    pub thresholds: Vec<(String, f32)>,
    /// How the thresholds were chosen and what they gave (JSON, `spamlens.operating_point`).
    pub operating_point: Option<serde_json::Value>,
}

/// Metadata key: the text-only output's operating point (informational; runtimes decide by the
/// fused or the image-only output).
pub const META_TEXT_THRESHOLDS: &str = "spamlens.text_thresholds";

/// Width of the fusion layer's input for `classes` classes: image log-probabilities, then text
/// log-probabilities.
pub fn fusion_inputs(classes: usize) -> usize {
    2 * classes
}

/// The text side of a fused head as the graph holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TextGraph {
    /// The text model over `[n-grams | layout]` (raw logits).
    pub text: DenseLayer,
    /// The text-only output's temperature.
    pub text_temperature: f32,
    /// The fusion layer over `[image log-p | text log-p]`.
    pub fusion: DenseLayer,
    /// The OCR contract.
    pub contract: OcrContract,
    /// The image-only output's operating point.
    pub image_thresholds: Vec<(String, f32)>,
    /// The text-only output's operating point.
    pub text_thresholds: Vec<(String, f32)>,
}

impl TextGraph {
    /// Width of the n-gram input.
    pub fn buckets(&self) -> usize {
        self.text.inputs.saturating_sub(LAYOUT_FEATURES)
    }

    fn check(&self, weights: &HeadWeights) -> Result<()> {
        let classes = weights.labels.len();
        let featurizer = self.contract.text_featurizer().ok_or_else(|| {
            ModelError::Graph(format!("text featurizer '{}' is not one spamlens implements", self.contract.featurizer))
        })?;
        let ok = self.text.inputs == featurizer.buckets as usize + LAYOUT_FEATURES
            && self.text.outputs == classes
            && self.fusion.inputs == fusion_inputs(classes)
            && self.fusion.outputs == classes
            && self.text.weight.len() == self.text.inputs * self.text.outputs
            && self.fusion.weight.len() == self.fusion.inputs * self.fusion.outputs
            && self.text_temperature.is_finite()
            && self.text_temperature > 0.0;
        if ok {
            Ok(())
        } else {
            Err(ModelError::Graph(format!(
                "text model {}→{} and fusion {}→{} do not fit {} buckets and {classes} classes",
                self.text.inputs, self.text.outputs, self.fusion.inputs, self.fusion.outputs, featurizer.buckets
            )))
        }
    }
}

/// Writes the head-only graph: `features` `[N, input_dim]` → Gemm/Relu… → Softmax → `probabilities`.
pub fn head_graph(weights: &HeadWeights, provenance: &HeadProvenance, precision: Precision) -> Result<Vec<u8>> {
    let mut b = OnnxGraphBuilder::new("spamlens-head");
    b.doc_string("spamlens classifier head over ResNet-50 features; softmax probabilities per label");
    b.input(FEATURES_OUTPUT, &[weights.input_dim()])?;
    append_head(&mut b, weights, None, precision)?;
    b.output(&OutputSpec { name: PROBABILITIES_OUTPUT.into(), dims: vec![None, Some(weights.labels.len())] });
    b.metadata(META_KIND, KIND_HEAD);
    head_metadata(&mut b, weights, provenance, precision);
    b.encode()
}

/// Tensor name of layer `index`'s weight or bias inside a head graph.
fn param_name(index: usize, what: &str) -> String {
    format!("head/dense{index}/{what}")
}

/// One dense layer as a Gemm node: `prefix/weight` and `prefix/bias` initialisers (16-bit behind a
/// `Cast` for [`Precision::F16`]), output `prefix/out`.
fn dense_node(
    b: &mut OnnxGraphBuilder,
    prefix: &str,
    input: &str,
    layer: &DenseLayer,
    precision: Precision,
) -> Result<String> {
    let (w, bias) = (format!("{prefix}/weight"), format!("{prefix}/bias"));
    match precision {
        Precision::F32 => {
            b.initializer(&w, &[layer.inputs, layer.outputs], &layer.weight)?;
            b.initializer(&bias, &[layer.outputs], &layer.bias)?;
        }
        Precision::F16 => {
            let (w16, b16) = (format!("{w}_f16"), format!("{bias}_f16"));
            b.initializer_f16(&w16, &[layer.inputs, layer.outputs], &layer.weight)?;
            b.initializer_f16(&b16, &[layer.outputs], &layer.bias)?;
            let to_float = [("to", Attribute::Int(pb::tensor_proto::DataType::Float as i64))];
            b.node("Cast", &format!("{prefix}/cast_weight"), &[&w16], &[&w], &to_float)?;
            b.node("Cast", &format!("{prefix}/cast_bias"), &[&b16], &[&bias], &to_float)?;
        }
    }
    let y = format!("{prefix}/out");
    b.node("Gemm", prefix, &[input, &w, &bias], &[&y], &[])?;
    Ok(y)
}

/// The image head's layers on `features`; returns the name of its logits tensor.
fn append_head_logits(b: &mut OnnxGraphBuilder, weights: &HeadWeights, precision: Precision) -> Result<String> {
    let mut x = FEATURES_OUTPUT.to_owned();
    let last = weights.layers.len() - 1;
    for (i, layer) in weights.layers.iter().enumerate() {
        let y = dense_node(b, &format!("head/dense{i}"), &x, layer, precision)?;
        x = if i < last {
            let r = format!("head/dense{i}/relu");
            b.node("Relu", &r, &[&y], &[&r], &[])?;
            r
        } else {
            y
        };
    }
    Ok(x)
}

/// The image head, its softmax as `probabilities` (a model without text), or as
/// `image_probabilities` plus the text model and the fusion (a fused model).
fn append_head(
    b: &mut OnnxGraphBuilder,
    weights: &HeadWeights,
    text: Option<&TextGraph>,
    precision: Precision,
) -> Result<()> {
    let logits = append_head_logits(b, weights, precision)?;
    let softmax = [("axis", Attribute::Int(1))];
    let Some(text) = text else {
        b.node("Softmax", "head/softmax", &[&logits], &[PROBABILITIES_OUTPUT], &softmax)?;
        return Ok(());
    };
    b.node("Softmax", "head/softmax", &[&logits], &[IMAGE_PROBABILITIES_OUTPUT], &softmax)?;
    b.node("LogSoftmax", "head/log_softmax", &[&logits], &["head/log_probabilities"], &softmax)?;
    let concat = [("axis", Attribute::Int(1))];
    b.node("Concat", "text/input", &[OCR_NGRAMS_INPUT, OCR_LAYOUT_INPUT], &["text/input"], &concat)?;
    let text_logits = dense_node(b, "text/dense", "text/input", &text.text, precision)?;
    b.initializer("text/inverse_temperature", &[1], &[1.0 / text.text_temperature])?;
    b.node("Mul", "text/calibrate", &[&text_logits, "text/inverse_temperature"], &["text/calibrated"], &[])?;
    b.node("Softmax", "text/softmax", &["text/calibrated"], &[TEXT_PROBABILITIES_OUTPUT], &softmax)?;
    b.node("LogSoftmax", "text/log_softmax", &[&text_logits], &["text/log_probabilities"], &softmax)?;
    b.node(
        "Concat",
        "fusion/input",
        &["head/log_probabilities", "text/log_probabilities"],
        &["fusion/input"],
        &concat,
    )?;
    // The fusion layer is small and sensitive: always 32-bit.
    let fused = dense_node(b, "fusion/dense", "fusion/input", &text.fusion, Precision::F32)?;
    b.node("Softmax", "fusion/softmax", &[&fused], &[PROBABILITIES_OUTPUT], &softmax)?;
    Ok(())
}

/// Declares a fused graph's text inputs and outputs (the image input or `features` is declared by
/// the caller).
fn declare_text_io(b: &mut OnnxGraphBuilder, text: &TextGraph, classes: usize) -> Result<()> {
    b.input(OCR_NGRAMS_INPUT, &[text.buckets()])?;
    b.input(OCR_LAYOUT_INPUT, &[LAYOUT_FEATURES])?;
    for name in [IMAGE_PROBABILITIES_OUTPUT, TEXT_PROBABILITIES_OUTPUT] {
        b.output(&OutputSpec { name: name.into(), dims: vec![None, Some(classes)] });
    }
    Ok(())
}

/// Writes a fused head graph: inputs `features`, `ocr_ngrams`, `ocr_layout`; outputs
/// `probabilities` (fused), `image_probabilities`, `text_probabilities`; the OCR contract and both
/// operating points in the metadata.
pub fn fused_head_graph(
    weights: &HeadWeights,
    text: &TextGraph,
    provenance: &HeadProvenance,
    precision: Precision,
) -> Result<Vec<u8>> {
    text.check(weights)?;
    let mut b = OnnxGraphBuilder::new("spamlens-fused-head");
    b.doc_string(
        "spamlens fused head: image head over ResNet-50 features, text model over OCR n-grams and layout, fusion \
         layer over both log-probabilities; softmax probabilities per label (fused, image-only, text-only)",
    );
    b.input(FEATURES_OUTPUT, &[weights.input_dim()])?;
    declare_text_io(&mut b, text, weights.labels.len())?;
    append_head(&mut b, weights, Some(text), precision)?;
    b.output(&OutputSpec { name: PROBABILITIES_OUTPUT.into(), dims: vec![None, Some(weights.labels.len())] });
    b.metadata(META_KIND, KIND_HEAD);
    head_metadata(&mut b, weights, provenance, precision);
    text_metadata(&mut b, weights, text);
    b.encode()
}

fn text_metadata(b: &mut OnnxGraphBuilder, weights: &HeadWeights, text: &TextGraph) {
    b.metadata(META_OCR, &text.contract.to_json());
    let pairs = |t: &[(String, f32)]| t.iter().map(|(class, v)| format!("{class}={v}")).collect::<Vec<_>>().join(",");
    b.metadata(META_IMAGE_THRESHOLDS, &pairs(&text.image_thresholds));
    b.metadata(META_TEXT_THRESHOLDS, &pairs(&text.text_thresholds));
    b.metadata(
        META_HEAD,
        &format!(
            "image: {}; text: {} n-grams + {LAYOUT_FEATURES} layout → {} (logistic); fusion: {} → {} (logistic)",
            weights.describe(),
            text.buckets(),
            text.text.outputs,
            text.fusion.inputs,
            text.fusion.outputs
        ),
    );
}

fn head_metadata(b: &mut OnnxGraphBuilder, weights: &HeadWeights, provenance: &HeadProvenance, precision: Precision) {
    b.metadata(META_LABELS, &weights.labels.join(","));
    b.metadata(META_HEAD, &weights.describe());
    match &provenance.source {
        FeatureSource::Backbone { sha256, preprocessing } => {
            b.metadata(META_FEATURE_SOURCE, SOURCE_BACKBONE);
            b.metadata(META_FEATURE_BACKBONE_SHA256, sha256);
            b.metadata(META_PREPROCESSING, preprocessing);
        }
        FeatureSource::EmailCz => {
            b.metadata(META_FEATURE_SOURCE, SOURCE_EMAILCZ);
            b.metadata(META_FEATURE_BACKBONE_SHA256, "");
        }
    }
    b.metadata(META_TRAINING, &provenance.training.to_string());
    if let Some(metrics) = &provenance.metrics {
        b.metadata(META_METRICS, &metrics.to_string());
    }
    if !provenance.thresholds.is_empty() {
        let pairs: Vec<String> = provenance.thresholds.iter().map(|(class, t)| format!("{class}={t}")).collect();
        b.metadata(META_THRESHOLDS, &pairs.join(","));
    }
    if let Some(point) = &provenance.operating_point {
        b.metadata(META_OPERATING_POINT, &point.to_string());
    }
    b.metadata(META_PRECISION, precision.as_str());
    b.metadata(META_VERSION, env!("CARGO_PKG_VERSION"));
    b.metadata(META_CREATED, &creation_time());
}

/// A head graph read back: its weights (f16 widened to f32) and metadata.
#[derive(Debug, Clone)]
pub struct HeadGraph {
    /// The weights.
    pub weights: HeadWeights,
    /// The text side of a fused head.
    pub text: Option<TextGraph>,
    /// Every `metadata_props` entry, in file order.
    pub metadata: Vec<(String, String)>,
}

impl HeadGraph {
    /// The value of a metadata entry.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Reads a head graph written by [`head_graph`] (named `name` in errors).
pub fn read_head_graph(bytes: &[u8], name: &str) -> Result<HeadGraph> {
    let bad = |reason: String| ModelError::Graph(format!("{name}: {reason}"));
    let model = pb::ModelProto::decode(bytes).map_err(|e| bad(format!("not an ONNX protobuf ({e})")))?;
    let metadata: Vec<(String, String)> = model.metadata_props.into_iter().map(|p| (p.key, p.value)).collect();
    let meta = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    if meta(META_KIND).as_deref() != Some(KIND_HEAD) {
        return Err(bad(format!("metadata '{META_KIND}' is not '{KIND_HEAD}'; not a spamlens head graph")));
    }
    let labels: Vec<String> = meta(META_LABELS).unwrap_or_default().split(',').map(str::to_owned).collect();
    let graph = model.graph.ok_or_else(|| bad("no graph".into()))?;
    let tensor = |tensor_name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let t = graph
            .initializer
            .iter()
            .find(|t| t.name == tensor_name || t.name == format!("{tensor_name}_f16"))
            .ok_or_else(|| bad(format!("missing initializer {tensor_name}")))?;
        let dims: Vec<usize> = t.dims.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
        let values: Vec<f32> = if t.data_type == pb::tensor_proto::DataType::Float as i32 {
            t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        } else if t.data_type == pb::tensor_proto::DataType::Float16 as i32 {
            t.raw_data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        } else {
            return Err(bad(format!(
                "initializer {} has data type {}, expected float or float16",
                t.name, t.data_type
            )));
        };
        if values.len() != dims.iter().product::<usize>() {
            return Err(bad(format!("initializer {} holds {} values for dims {dims:?}", t.name, values.len())));
        }
        Ok((dims, values))
    };
    let mut layers = Vec::new();
    while graph.initializer.iter().any(|t| t.name.starts_with(&param_name(layers.len(), "weight"))) {
        let i = layers.len();
        let (dims, weight) = tensor(&param_name(i, "weight"))?;
        let (_, bias) = tensor(&param_name(i, "bias"))?;
        let [inputs, outputs] = dims[..] else { return Err(bad(format!("layer {i} weight is not 2-D: {dims:?}"))) };
        layers.push(DenseLayer { inputs, outputs, weight, bias });
    }
    let weights = HeadWeights::new(layers, labels).map_err(|e| bad(e.to_string()))?;
    let text = match meta(META_OCR) {
        None => None,
        Some(json) => {
            let contract = OcrContract::from_json(&json).map_err(|e| bad(format!("metadata '{META_OCR}': {e}")))?;
            let layer = |prefix: &str| -> Result<DenseLayer> {
                let (dims, weight) = tensor(&format!("{prefix}/weight"))?;
                let (_, bias) = tensor(&format!("{prefix}/bias"))?;
                let [inputs, outputs] = dims[..] else {
                    return Err(bad(format!("{prefix} weight is not 2-D: {dims:?}")));
                };
                Ok(DenseLayer { inputs, outputs, weight, bias })
            };
            let (_, inverse) = tensor("text/inverse_temperature")?;
            let thresholds = |key: &str| -> Result<Vec<(String, f32)>> {
                let parsed =
                    spamlens_core::classifier::parse_thresholds(&meta(key).unwrap_or_default(), &weights.labels)
                        .map_err(bad)?;
                Ok(parsed.into_iter().map(|(i, t)| (weights.labels[i].clone(), t)).collect())
            };
            let graph = TextGraph {
                text: layer("text/dense")?,
                text_temperature: 1.0 / inverse.first().copied().unwrap_or(1.0),
                fusion: layer("fusion/dense")?,
                contract,
                image_thresholds: thresholds(META_IMAGE_THRESHOLDS)?,
                text_thresholds: thresholds(META_TEXT_THRESHOLDS)?,
            };
            graph.check(&weights).map_err(|e| bad(e.to_string()))?;
            Some(graph)
        }
    };
    Ok(HeadGraph { weights, text, metadata })
}

/// Attaches a head to a backbone: the backbone graph with its outputs replaced by the head's
/// `probabilities`, dead nodes (the ImageNet classifier) pruned, and metadata from both.
///
/// Refused (unless `force`) when the head was trained on other features than this backbone's: an
/// Email.cz head (a different network's features) or a head from another backbone version.
pub fn combine(backbone: &[u8], backbone_name: &str, head: &HeadGraph, force: bool) -> Result<Vec<u8>> {
    let backbone_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(backbone));
    let model = pb::ModelProto::decode(backbone)
        .map_err(|e| ModelError::Graph(format!("{backbone_name}: not an ONNX protobuf ({e})")))?;
    let refuse = |reason: String| -> Result<()> {
        if force {
            tracing::warn!("combining anyway (--force): {reason}");
            Ok(())
        } else {
            Err(ModelError::Incompatible(reason))
        }
    };
    match head.meta(META_FEATURE_SOURCE) {
        Some(SOURCE_BACKBONE) => {
            let trained_on = head.meta(META_FEATURE_BACKBONE_SHA256).unwrap_or_default();
            if trained_on != backbone_sha {
                refuse(format!(
                    "the head was trained on features of backbone {trained_on}, but {backbone_name} is {backbone_sha}"
                ))?;
            }
        }
        Some(SOURCE_EMAILCZ) => refuse(
            "the head was trained on Email.cz features, which come from a different network (TF-slim resnet_v1_50 \
             pool5, caffe preprocessing) than the spamlens backbone; its outputs on our features are meaningless"
                .to_owned(),
        )?,
        other => refuse(format!("the head does not say what features it was trained on ({other:?})"))?,
    }

    let mut b = OnnxGraphBuilder::from_model(model)?;
    let backbone_meta = b.take_metadata();
    let backbone_value = |key: &str| backbone_meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    if !b.defines(FEATURES_OUTPUT) {
        return Err(ModelError::Graph(format!("{backbone_name}: no '{FEATURES_OUTPUT}' tensor to attach the head to")));
    }
    let feature_dim = backbone_value("feature_dim").and_then(|d| d.parse().ok()).unwrap_or(FEATURE_DIM);
    if feature_dim != head.weights.input_dim() {
        return Err(ModelError::Graph(format!(
            "{backbone_name} gives {feature_dim} features, the head takes {}",
            head.weights.input_dim()
        )));
    }
    let backbone_preprocessing = backbone_value("preprocessing").ok_or_else(|| {
        ModelError::Graph(format!("{backbone_name}: no 'preprocessing' metadata; not a spamlens backbone"))
    })?;
    // The graph's contract is the one the head's features were made with: the backbone's
    // normalisation and input size, fitted (centre crop or letterbox) as the feature store was.
    let preprocessing = match head.meta(META_PREPROCESSING) {
        Some(trained) if trained != backbone_preprocessing => {
            let same_backbone_input = spamlens_core::Preprocessing::from_description(trained)
                .zip(spamlens_core::Preprocessing::from_description(&backbone_preprocessing))
                .is_some_and(|(t, b)| t.with_fit(b.fit) == b);
            let tiles = spamlens_core::Preprocessing::from_description(&backbone_preprocessing)
                .is_some_and(|b| b.with_fit(spamlens_core::Fit::Tiles).describe() == trained);
            if tiles {
                refuse(
                    "the head was trained on features averaged over several views per image (fit 'tiles'); \
                     the combined graph takes one view per image (centre crop or letterbox), so tiles \
                     stores serve `evaluate` experiments only"
                        .to_owned(),
                )?;
            }
            if !same_backbone_input {
                refuse(format!(
                    "the head's features were preprocessed as '{trained}', which {backbone_name} \
                     ('{backbone_preprocessing}') cannot take"
                ))?;
            }
            trained.to_owned()
        }
        _ => backbone_preprocessing,
    };
    b.clear_outputs();
    b.graph_name("spamlens-classifier");
    b.doc_string(if head.text.is_some() {
        "spamlens image-spam classifier: ResNet-50 backbone + trained head, OCR text model and fusion layer; softmax \
         probabilities per label (fused, image-only, text-only)"
    } else {
        "spamlens image-spam classifier: ResNet-50 backbone + trained head; softmax probabilities per label"
    });
    let precision = if head.meta(META_PRECISION) == Some("f16") { Precision::F16 } else { Precision::F32 };
    if let Some(text) = &head.text {
        declare_text_io(&mut b, text, head.weights.labels.len())?;
    }
    append_head(&mut b, &head.weights, head.text.as_ref(), precision)?;
    b.output(&OutputSpec { name: PROBABILITIES_OUTPUT.into(), dims: vec![None, Some(head.weights.labels.len())] });
    b.prune_to_outputs();
    for (key, value) in &head.metadata {
        b.metadata(key, value);
    }
    for (key, value) in &backbone_meta {
        b.metadata(&format!("backbone.{key}"), value);
    }
    b.metadata(META_KIND, KIND_COMBINED);
    b.metadata(META_PREPROCESSING, &preprocessing);
    b.metadata(META_BACKBONE_SHA256, &backbone_sha);
    b.metadata(META_VERSION, env!("CARGO_PKG_VERSION"));
    b.metadata(META_CREATED, &creation_time());
    b.encode()
}

/// Now in RFC 3339 (UTC, seconds), or `SOURCE_DATE_EPOCH` when set, for reproducible files.
pub fn creation_time() -> String {
    let seconds =
        std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        });
    rfc3339_utc(seconds)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, Howard Hinnant's algorithm).
pub fn rfc3339_utc(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamlens_core::{Model, ModelOptions};

    fn toy_weights() -> HeadWeights {
        // 3 features → 2 hidden → 2 classes.
        HeadWeights::new(
            vec![
                DenseLayer {
                    inputs: 3,
                    outputs: 2,
                    weight: vec![1.0, -1.0, 0.5, 0.25, -2.0, 1.0],
                    bias: vec![0.1, -0.1],
                },
                DenseLayer { inputs: 2, outputs: 2, weight: vec![1.0, -1.0, -0.5, 2.0], bias: vec![0.0, 0.3] },
            ],
            vec!["ham".into(), "spam".into()],
        )
        .unwrap()
    }

    fn reference(weights: &HeadWeights, x: &[f32]) -> Vec<f32> {
        let mut v: Vec<f64> = x.iter().map(|&f| f64::from(f)).collect();
        for (i, layer) in weights.layers.iter().enumerate() {
            let mut y: Vec<f64> = layer.bias.iter().map(|&b| f64::from(b)).collect();
            for (r, xv) in v.iter().enumerate() {
                for (c, yv) in y.iter_mut().enumerate() {
                    *yv += xv * f64::from(layer.weight[r * layer.outputs + c]);
                }
            }
            if i + 1 < weights.layers.len() {
                y.iter_mut().for_each(|t| *t = t.max(0.0));
            }
            v = y;
        }
        let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = v.iter().map(|t| (t - max).exp()).sum();
        v.iter().map(|t| ((t - max).exp() / sum) as f32).collect()
    }

    fn provenance() -> HeadProvenance {
        HeadProvenance {
            source: FeatureSource::Backbone { sha256: "ab".repeat(32), preprocessing: "p".into() },
            training: serde_json::json!({"rows": 3}),
            metrics: None,
            thresholds: vec![],
            operating_point: None,
        }
    }

    #[test]
    fn head_graph_computes_the_head_in_both_precisions() {
        let weights = toy_weights();
        let x = [0.5f32, 2.0, 1.0, 0.0, 1.0, 3.0];
        for precision in [Precision::F32, Precision::F16] {
            let bytes = head_graph(&weights, &provenance(), precision).unwrap();
            let model = Model::from_bytes(&bytes, "head", &ModelOptions::default()).unwrap();
            assert_eq!(model.metadata().get(META_LABELS).map(String::as_str), Some("ham,spam"));
            let out = model.run(x.to_vec(), 2).unwrap().take(PROBABILITIES_OUTPUT).unwrap();
            for (row, input) in out.rows().zip(x.chunks(3)) {
                let expected = reference(&weights, input);
                for (a, e) in row.iter().zip(&expected) {
                    assert!((a - e).abs() < 1e-3, "{precision:?}: {row:?} vs {expected:?}");
                }
            }
            // Reading back gives the (rounded) weights and the metadata.
            let read = read_head_graph(&bytes, "head").unwrap();
            assert_eq!(read.weights.labels, weights.labels);
            assert_eq!(read.meta(META_PRECISION), Some(precision.as_str()));
            if precision == Precision::F32 {
                assert_eq!(read.weights, weights);
            }
        }
    }

    /// A three-feature "backbone": a Relu standing in for the ResNet.
    fn fake_backbone() -> Vec<u8> {
        let mut b = OnnxGraphBuilder::new("fake-backbone");
        b.input("input", &[3]).unwrap();
        b.node("Relu", "r", &["input"], &[FEATURES_OUTPUT], &[]).unwrap();
        b.output(&OutputSpec { name: FEATURES_OUTPUT.into(), dims: vec![None, Some(3)] });
        b.metadata("preprocessing", "p").metadata("feature_dim", "3");
        b.encode().unwrap()
    }

    #[test]
    fn emailcz_heads_and_foreign_backbones_are_refused_without_force() {
        let backbone = fake_backbone();

        let emailcz = HeadProvenance { source: FeatureSource::EmailCz, ..provenance() };
        let head = read_head_graph(&head_graph(&toy_weights(), &emailcz, Precision::F32).unwrap(), "h").unwrap();
        let err = combine(&backbone, "fake", &head, false).unwrap_err().to_string();
        assert!(err.contains("Email.cz") && err.contains("--force"), "{err}");
        assert!(combine(&backbone, "fake", &head, true).is_ok());

        let other = read_head_graph(&head_graph(&toy_weights(), &provenance(), Precision::F32).unwrap(), "h").unwrap();
        let err = combine(&backbone, "fake", &other, false).unwrap_err().to_string();
        assert!(err.contains("trained on features of backbone"), "{err}");

        // With the right backbone sha the combination goes through and runs.
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&backbone));
        let fitting = HeadProvenance {
            source: FeatureSource::Backbone { sha256: sha, preprocessing: "p".into() },
            ..provenance()
        };
        let head = read_head_graph(&head_graph(&toy_weights(), &fitting, Precision::F32).unwrap(), "h").unwrap();
        let combined = combine(&backbone, "fake", &head, false).unwrap();
        let model = Model::from_bytes(&combined, "combined", &ModelOptions::default()).unwrap();
        assert_eq!(model.output_names(), [PROBABILITIES_OUTPUT]);
        assert_eq!(model.metadata().get(META_KIND).map(String::as_str), Some(KIND_COMBINED));
        assert_eq!(model.metadata().get("backbone.preprocessing").map(String::as_str), Some("p"));
        let out = model.run(vec![-1.0, 2.0, 1.0], 1).unwrap().take(PROBABILITIES_OUTPUT).unwrap();
        let expected = reference(&toy_weights(), &[0.0, 2.0, 1.0]);
        assert!(out.values.iter().zip(&expected).all(|(a, e)| (a - e).abs() < 1e-6), "{out:?} vs {expected:?}");
    }

    /// A fused head with a 16-bucket featurizer: the head-only graph and the graph combined with a
    /// (fake) backbone compute what the trainer computes, and read back to the same text side.
    #[test]
    fn fused_graphs_compute_image_text_and_fused_probabilities() {
        use spamlens_core::classifier::{IMAGE_PROBABILITIES_OUTPUT, TEXT_PROBABILITIES_OUTPUT};
        use spamlens_core::ocr::{EngineIdentity, OcrImageSpec, TextFeaturizer, TrainedData};
        let featurizer = TextFeaturizer { buckets: 16, min_n: 1, max_n: 2 };
        let engine = EngineIdentity {
            engine: "tesseract".into(),
            version: "5.3.0".into(),
            engine_mode: "lstm".into(),
            page_segmentation: 3,
            dpi: 300,
            data: vec![TrainedData { language: "eng".into(), sha256: "aa".into() }],
        };
        let contract = OcrContract::new(&engine, &OcrImageSpec::V1, &featurizer);
        let inputs = 16 + LAYOUT_FEATURES;
        let text = DenseLayer {
            inputs,
            outputs: 2,
            weight: (0..inputs * 2).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect(),
            bias: vec![0.2, -0.1],
        };
        let fusion = DenseLayer {
            inputs: fusion_inputs(2),
            outputs: 2,
            weight: (0..fusion_inputs(2) * 2).map(|i| ((i * 5 % 7) as f32 - 3.0) / 4.0).collect(),
            bias: vec![0.0, 0.5],
        };
        let graph = TextGraph {
            text,
            text_temperature: 1.5,
            fusion,
            contract,
            image_thresholds: vec![("spam".into(), 0.9)],
            text_thresholds: vec![("spam".into(), 0.8)],
        };
        // Plain arithmetic from the same layers: logistic layers, then softmax.
        let affine = |l: &DenseLayer, x: &[f32]| -> Vec<f32> {
            let mut y = l.bias.clone();
            for (xi, row) in x.iter().zip(l.weight.chunks_exact(l.outputs)) {
                y.iter_mut().zip(row).for_each(|(yj, wj)| *yj += xi * wj);
            }
            y
        };
        let softmax = |z: &[f32]| -> Vec<f32> {
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = z.iter().map(|v| (v - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            e.iter().map(|v| v / sum).collect()
        };
        let features = [0.5f32, 2.0, 1.0];
        let mut ngrams = vec![0.0f32; 16];
        ngrams[3] = 0.6;
        ngrams[9] = 0.8;
        let layout: Vec<f32> = (0..LAYOUT_FEATURES).map(|i| i as f32 * 0.3).collect();
        let image = reference(&toy_weights(), &features);
        let text_logits = affine(&graph.text, &[ngrams.clone(), layout.clone()].concat());
        let mut fusion_row: Vec<f32> = image.iter().map(|p| p.ln()).collect();
        fusion_row.extend(softmax(&text_logits).iter().map(|p| p.ln()));
        let fused = softmax(&affine(&graph.fusion, &fusion_row));
        let text_only = softmax(&text_logits.iter().map(|z| z / 1.5).collect::<Vec<_>>());

        let bytes = fused_head_graph(&toy_weights(), &graph, &provenance(), Precision::F32).unwrap();
        let model = Model::from_bytes(&bytes, "fused", &ModelOptions::default()).unwrap();
        assert_eq!(model.inputs().len(), 3);
        let out = model.run_inputs(vec![features.to_vec(), ngrams.clone(), layout.clone()], 1).unwrap();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&out.get(PROBABILITIES_OUTPUT).unwrap().values, &fused), "fused");
        assert!(close(&out.get(IMAGE_PROBABILITIES_OUTPUT).unwrap().values, &image), "image");
        assert!(close(&out.get(TEXT_PROBABILITIES_OUTPUT).unwrap().values, &text_only), "text");
        let read = read_head_graph(&bytes, "fused").unwrap();
        assert_eq!(read.text.as_ref(), Some(&graph));

        // Combined with a backbone (a Relu standing in for the ResNet), the text inputs stay inputs.
        let backbone = fake_backbone();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&backbone));
        let fitting = HeadProvenance {
            source: FeatureSource::Backbone { sha256: sha, preprocessing: "p".into() },
            ..provenance()
        };
        let head_bytes = fused_head_graph(&toy_weights(), &graph, &fitting, Precision::F16).unwrap();
        let combined = combine(&backbone, "fake", &read_head_graph(&head_bytes, "h").unwrap(), false).unwrap();
        let model = Model::from_bytes(&combined, "combined", &ModelOptions::default()).unwrap();
        let names: Vec<&str> = model.inputs().iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["input", OCR_NGRAMS_INPUT, OCR_LAYOUT_INPUT]);
        assert!(model.metadata().contains_key(META_OCR) && model.metadata().contains_key(META_IMAGE_THRESHOLDS));
        let out = model.run_inputs(vec![features.to_vec(), ngrams, layout], 1).unwrap();
        let fused16 = &out.get(PROBABILITIES_OUTPUT).unwrap().values;
        assert!(fused16.iter().zip(&fused).all(|(a, b)| (a - b).abs() < 2e-3), "{fused16:?} vs {fused:?}");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_651_199), "2026-11-25T23:59:59Z");
    }
}
