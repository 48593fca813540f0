//! int8 compute: a statically quantised model whose convolutions run as `QLinearConv` on 8-bit
//! activations and int8 weights, so an engine with integer kernels (AVX-512 VNNI/AMX natively,
//! integer dot products in wasm) can use them and the weights stay int8 in memory.
//!
//! Weights are quantised as in [`quantize`](super::quantize): symmetric, one scale per output
//! channel. Activations get one scale per tensor and zero point 0, from ranges observed by running
//! the f32 model on calibration images ([`ActivationRanges`]). A convolution whose input and
//! output both fit uint8 (never negative, or only a ReLU reads the output: saturating at zero is
//! the ReLU) runs on uint8, any other on symmetric int8 (onnxruntime, the reference, needs one
//! type for both). Each convolution becomes `QuantizeLinear → QLinearConv → DequantizeLinear`,
//! except those reading fewer than [`MIN_INPUT_CHANNELS`] channels (the first one, on the image);
//! everything between convolutions (ReLU, residual additions, pooling, the head) stays f32, so
//! only the convolutions' inputs, weights and outputs are rounded.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;
use serde::{Deserialize, Serialize};
use spamlens_core::{Batching, DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};
use tract_onnx::pb;

use super::quantize::{META_WEIGHTS, float_values, quantize_per_channel};
use crate::error::{ModelError, Result};

/// The value of [`META_WEIGHTS`] for this scheme.
pub const WEIGHTS_INT8_STATIC: &str =
    "int8 per output channel, 8-bit activations per tensor calibrated on images (QLinearConv), int8 compute";

/// The metadata key that says how the activation ranges were calibrated.
pub const META_CALIBRATION: &str = "spamlens.calibration";

/// The share of an image's activation magnitudes a range covers: the largest few (one in ten
/// thousand) are clipped, so one outlier pixel does not coarsen the step for everything else.
pub const CALIBRATION_QUANTILE: f64 = 0.9999;

/// Convolutions reading fewer channels per group stay f32: the first layer reads the normalised
/// image (3 channels), where an 8-bit step costs the most detail, and its 147-long dot products
/// gain little from int8.
pub const MIN_INPUT_CHANNELS: i64 = 4;

/// The tensors a static quantisation needs ranges for: every convolution's data input and output,
/// in graph order, without repeats.
pub fn conv_activations(bytes: &[u8], name: &str) -> Result<Vec<String>> {
    let bad = |reason: String| ModelError::Graph(format!("{name}: {reason}"));
    let model = pb::ModelProto::decode(bytes).map_err(|e| bad(format!("not an ONNX protobuf ({e})")))?;
    let graph = model.graph.as_ref().ok_or_else(|| bad("the ONNX file has no graph".into()))?;
    let mut seen = HashSet::new();
    let mut tensors = Vec::new();
    for node in graph.node.iter().filter(|n| n.op_type == "Conv") {
        for tensor in node.input.first().into_iter().chain(node.output.first()) {
            if seen.insert(tensor.clone()) {
                tensors.push(tensor.clone());
            }
        }
    }
    if tensors.is_empty() {
        return Err(bad("no convolutions to calibrate".into()));
    }
    Ok(tensors)
}

/// A copy of the model that also outputs `tensors` (intermediate values), for calibration.
pub fn with_extra_outputs(bytes: &[u8], name: &str, tensors: &[String]) -> Result<Vec<u8>> {
    let bad = |reason: String| ModelError::Graph(format!("{name}: {reason}"));
    let mut model = pb::ModelProto::decode(bytes).map_err(|e| bad(format!("not an ONNX protobuf ({e})")))?;
    let graph = model.graph.as_mut().ok_or_else(|| bad("the ONNX file has no graph".into()))?;
    let existing: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    for tensor in tensors.iter().filter(|t| !existing.contains(*t)) {
        graph.output.push(pb::ValueInfoProto { name: tensor.clone(), ..Default::default() });
    }
    Ok(model.encode_to_vec())
}

/// What calibration saw of one activation tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivationRange {
    /// The range of |x|: per image its [`CALIBRATION_QUANTILE`], the largest over the images.
    pub magnitude: f32,
    /// The same for max(x, 0): what is left after a ReLU.
    pub positive: f32,
    /// The smallest value seen (≥ 0: the tensor never goes negative, so uint8 covers it).
    pub min: f32,
}

/// The ranges observed for each activation tensor over the calibration images. Saved as JSON
/// (`quantize --save-ranges`), they quantise the same graph again without the images.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActivationRanges {
    /// sha256 of the model the ranges were observed on.
    pub model_sha256: String,
    /// Images observed.
    pub images: usize,
    /// Calibration images left out because they do not decode, with the reason.
    pub skipped: Vec<String>,
    ranges: BTreeMap<String, ActivationRange>,
}

impl ActivationRanges {
    /// Records one image's values of `tensor`. Non-finite values are an error naming the tensor.
    pub fn observe(&mut self, tensor: &str, values: &[f32]) -> std::result::Result<(), String> {
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(format!("activation {tensor} holds a non-finite value ({v})"));
        }
        let seen = ActivationRange {
            magnitude: quantile(values.iter().map(|v| v.abs()).collect()),
            positive: quantile(values.iter().map(|v| v.max(0.0)).collect()),
            min: values.iter().copied().fold(f32::INFINITY, f32::min),
        };
        let entry = self.ranges.entry(tensor.to_owned()).or_insert(ActivationRange { min: f32::INFINITY, ..seen });
        entry.magnitude = entry.magnitude.max(seen.magnitude);
        entry.positive = entry.positive.max(seen.positive);
        entry.min = entry.min.min(seen.min);
        Ok(())
    }

    /// The range of `tensor`, if observed.
    pub fn get(&self, tensor: &str) -> Option<ActivationRange> {
        self.ranges.get(tensor).copied()
    }
}

/// The [`CALIBRATION_QUANTILE`] of `values` (0 for none).
fn quantile(mut values: Vec<f32>) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let index = ((values.len() - 1) as f64 * CALIBRATION_QUANTILE).round() as usize;
    *values.select_nth_unstable_by(index, f32::total_cmp).1
}

/// Runs the f32 model on calibration images (encoded files) and records the range of every
/// convolution's input and output. `on_image` is called after each image (progress). An image
/// that does not decode is left out and listed in [`ActivationRanges::skipped`].
pub fn calibrate<'a>(
    bytes: &[u8],
    name: &str,
    preprocessing: &Preprocessing,
    images: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    threads: usize,
    mut on_image: impl FnMut(),
) -> Result<ActivationRanges> {
    let tensors = conv_activations(bytes, name)?;
    let probe = with_extra_outputs(bytes, name, &tensors)?;
    let options = ModelOptions {
        intra_op_threads: Some(threads.max(1)),
        outputs: Some(tensors.clone()),
        batching: Batching::PerItem,
        ..ModelOptions::default()
    };
    let model = Model::from_bytes(&probe, name, &options)?;
    let mut ranges = ActivationRanges {
        model_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
        ..Default::default()
    };
    for (image_name, data) in images {
        let image = match prepare_image(data, image_name, &DecodeLimits::DEFAULT, preprocessing) {
            Ok(image) => image,
            Err(e) => {
                ranges.skipped.push(e.to_string());
                on_image();
                continue;
            }
        };
        let mut inputs = vec![image.tensor];
        // The convolutions read the image only; the other inputs (OCR features) do not reach them.
        for input in &model.inputs()[1..] {
            inputs.push(vec![0.0; input.values_per_item()]);
        }
        let outputs = model.run_inputs(inputs, 1)?;
        for tensor in &tensors {
            let values = &outputs.get(tensor)?.values;
            ranges
                .observe(tensor, values)
                .map_err(|e| ModelError::Graph(format!("{name}, image {image_name}: {e}")))?;
        }
        ranges.images += 1;
        on_image();
    }
    if ranges.images == 0 {
        return Err(ModelError::Graph(format!("{name}: no calibration image decoded ({})", ranges.skipped.join("; "))));
    }
    Ok(ranges)
}

/// What [`quantize_static`] did.
#[derive(Debug, Clone, Serialize)]
pub struct StaticQuantizationReport {
    /// Convolutions now computed as `QLinearConv`.
    pub convolutions: usize,
    /// Convolutions left in f32 (fewer than [`MIN_INPUT_CHANNELS`] input channels).
    pub kept_f32: usize,
    /// Activation tensors quantised (convolution inputs and outputs).
    pub activations: usize,
    /// File size before, in bytes.
    pub bytes_before: usize,
    /// File size after, in bytes.
    pub bytes_after: usize,
    /// Calibration images the ranges came from.
    pub calibration_images: usize,
}

/// Rewrites every `Conv` of an f32 model (weights and bias as initialisers) that reads at least
/// [`MIN_INPUT_CHANNELS`] channels as `QuantizeLinear → QLinearConv → DequantizeLinear` with the
/// activation scales from `ranges`.
/// The metadata is kept; [`META_WEIGHTS`], [`META_CALIBRATION`] and
/// `spamlens.weights_source_sha256` are added. `name` is used in errors.
pub fn quantize_static(
    bytes: &[u8],
    name: &str,
    ranges: &ActivationRanges,
) -> Result<(Vec<u8>, StaticQuantizationReport)> {
    let bad = |reason: String| ModelError::Graph(format!("{name}: {reason}"));
    let mut model = pb::ModelProto::decode(bytes).map_err(|e| bad(format!("not an ONNX protobuf ({e})")))?;
    if model.metadata_props.iter().any(|p| p.key == META_WEIGHTS) {
        return Err(bad(format!("its weights are already quantised ({META_WEIGHTS} is set)")));
    }
    let opset = model.opset_import.iter().filter(|o| o.domain.is_empty()).map(|o| o.version).max().unwrap_or(0);
    if opset < 13 {
        return Err(bad(format!("opset {opset}: per-channel QLinearConv scales need opset 13 or later")));
    }
    let graph = model.graph.as_mut().ok_or_else(|| bad("the ONNX file has no graph".into()))?;

    let initializers: HashMap<String, pb::TensorProto> =
        std::mem::take(&mut graph.initializer).into_iter().map(|t| (t.name.clone(), t)).collect();
    // How many nodes read each initialiser: a weight another node also reads stays.
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            *readers.entry(input.as_str()).or_default() += 1;
        }
    }
    let readers: HashMap<String, usize> = readers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();

    let mut added: Vec<pb::TensorProto> = Vec::new();
    let mut activation_scales: HashMap<(String, bool), (String, String, f32)> = HashMap::new();
    let mut quantized_inputs: HashSet<String> = HashSet::new();
    let mut removed: HashSet<String> = HashSet::new();
    let mut nodes = Vec::with_capacity(graph.node.len() * 3);
    let mut convolutions = 0;
    let mut kept_f32 = 0;

    // Tensors only a ReLU reads: their quantisation may saturate at zero, which is the ReLU.
    let mut relu_only: HashMap<&str, bool> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            let only = relu_only.entry(input.as_str()).or_insert(true);
            *only &= node.op_type == "Relu";
        }
    }
    for output in &graph.output {
        relu_only.insert(output.name.as_str(), false);
    }
    let relu_only: HashSet<String> =
        relu_only.into_iter().filter(|(_, only)| *only).map(|(name, _)| name.to_owned()).collect();

    // Whether a tensor fits uint8: its values are never negative, or only a ReLU reads it (then
    // saturating at zero is the ReLU).
    let fits_unsigned = |tensor: &str| -> Result<bool> {
        let range = ranges.get(tensor).ok_or_else(|| bad(format!("no calibrated range for activation {tensor}")))?;
        Ok(range.min >= 0.0 || relu_only.contains(tensor))
    };
    // One scale and zero point per activation tensor and type, created on first use.
    let mut activation =
        |tensor: &str, unsigned: bool, added: &mut Vec<pb::TensorProto>| -> Result<(String, String, f32)> {
            let key = (tensor.to_owned(), unsigned);
            if let Some(found) = activation_scales.get(&key) {
                return Ok(found.clone());
            }
            let range =
                ranges.get(tensor).ok_or_else(|| bad(format!("no calibrated range for activation {tensor}")))?;
            let (extent, levels, zero_type, suffix) = if unsigned {
                (range.positive, 255.0, pb::tensor_proto::DataType::Uint8, "uint8")
            } else {
                (range.magnitude, 127.0, pb::tensor_proto::DataType::Int8, "int8")
            };
            let scale = if extent > 0.0 && extent.is_finite() { extent / levels } else { 1.0 };
            let (scale_name, zero_name) = (format!("{tensor}.{suffix}_scale"), format!("{tensor}.{suffix}_zero_point"));
            added.push(scalar_f32(&scale_name, scale));
            added.push(pb::TensorProto {
                name: zero_name.clone(),
                data_type: zero_type as i32,
                raw_data: vec![0],
                ..Default::default()
            });
            let found = (scale_name, zero_name, scale);
            activation_scales.insert(key, found.clone());
            Ok(found)
        };

    for node in std::mem::take(&mut graph.node) {
        if node.op_type != "Conv" {
            nodes.push(node);
            continue;
        }
        let (x, w) = match (node.input.first(), node.input.get(1)) {
            (Some(x), Some(w)) => (x.clone(), w.clone()),
            _ => return Err(bad(format!("convolution {} has fewer than two inputs", node.name))),
        };
        let bias = node.input.get(2).filter(|b| !b.is_empty()).cloned();
        let y = node.output.first().cloned().ok_or_else(|| bad(format!("convolution {} has no output", node.name)))?;
        let weight = initializers
            .get(&w)
            .ok_or_else(|| bad(format!("convolution {}: weights {w} are not an initialiser", node.name)))?;
        if weight.dims.get(1).is_some_and(|&c| c < MIN_INPUT_CHANNELS) {
            kept_f32 += 1;
            nodes.push(node);
            continue;
        }
        let weights = float_values(weight).map_err(|reason| bad(format!("initializer {reason}")))?;
        let channels = weight
            .dims
            .first()
            .and_then(|&c| usize::try_from(c).ok())
            .filter(|&c| c > 0 && weights.len() % c == 0)
            .ok_or_else(|| bad(format!("weights {w}: dims {:?} do not fit {} values", weight.dims, weights.len())))?;
        let weight_dims = weight.dims.clone();
        let quantized = quantize_per_channel(&weights, channels);

        // onnxruntime (the reference) runs QLinearConv with input and output of one type only:
        // uint8 when both fit it, else int8.
        let unsigned = fits_unsigned(&x)? && fits_unsigned(&y)?;
        let (x_scale, x_zero, x_step) = activation(&x, unsigned, &mut added)?;
        let (y_scale, y_zero, _) = activation(&y, unsigned, &mut added)?;
        let x_int8 = format!("{x}.{}", if unsigned { "uint8" } else { "int8" });
        if quantized_inputs.insert(x_int8.clone()) {
            nodes.push(pb::NodeProto {
                name: format!("{x_int8}.quantize"),
                op_type: "QuantizeLinear".into(),
                input: vec![x.clone(), x_scale.clone(), x_zero.clone()],
                output: vec![x_int8.clone()],
                ..Default::default()
            });
        }
        let w_initializers = quantized.initializers(&w, weight_dims);
        let [w_int8, w_scale, w_zero] = w_initializers.each_ref().map(|t| t.name.clone());
        added.extend(w_initializers);
        let mut inputs = vec![x_int8, x_scale, x_zero, w_int8, w_scale, w_zero, y_scale.clone(), y_zero.clone()];
        if let Some(b) = &bias {
            let tensor = initializers
                .get(b)
                .ok_or_else(|| bad(format!("convolution {}: bias {b} is not an initialiser", node.name)))?;
            let values = float_values(tensor).map_err(|reason| bad(format!("initializer {reason}")))?;
            if values.len() != channels {
                return Err(bad(format!("bias {b} has {} values for {channels} output channels", values.len())));
            }
            // QLinearConv adds the bias in the accumulator's units: x step × the channel's weight step.
            let int32: Vec<u8> = values
                .iter()
                .zip(&quantized.scales)
                .map(|(&v, &s)| (f64::from(v) / (f64::from(x_step) * f64::from(s))).round())
                .map(|q| q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32)
                .flat_map(i32::to_le_bytes)
                .collect();
            let b_int32 = format!("{b}.int32");
            added.push(pb::TensorProto {
                name: b_int32.clone(),
                dims: vec![channels as i64],
                data_type: pb::tensor_proto::DataType::Int32 as i32,
                raw_data: int32,
                ..Default::default()
            });
            inputs.push(b_int32);
        }
        let y_int8 = format!("{y}.{}", if unsigned { "uint8" } else { "int8" });
        nodes.push(pb::NodeProto {
            name: format!("{}.qlinear", node.name),
            op_type: "QLinearConv".into(),
            input: inputs,
            output: vec![y_int8.clone()],
            attribute: node.attribute.clone(),
            ..Default::default()
        });
        nodes.push(pb::NodeProto {
            name: format!("{y}.dequantize"),
            op_type: "DequantizeLinear".into(),
            input: vec![y_int8, y_scale, y_zero],
            output: vec![y],
            ..Default::default()
        });
        for initializer in std::iter::once(&w).chain(bias.as_ref()) {
            if readers.get(initializer).copied().unwrap_or(0) <= 1 {
                removed.insert(initializer.clone());
            }
        }
        convolutions += 1;
    }
    if convolutions == 0 {
        return Err(bad("no convolutions to quantise".into()));
    }
    let activations = activation_scales.keys().map(|(tensor, _)| tensor).collect::<HashSet<_>>().len();
    graph.node = nodes;
    let mut kept: Vec<pb::TensorProto> = initializers.into_values().filter(|t| !removed.contains(&t.name)).collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    kept.extend(added);
    graph.initializer = kept;
    // An IR-3 style graph lists initialisers among its inputs; the removed ones must go too.
    graph.input.retain(|i| !removed.contains(&i.name));

    let source_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    let calibration = format!(
        "{} images; per tensor, per image the {} quantile of |x| (or of max(x, 0): uint8 where no negative value \
         is seen or a ReLU follows), the largest over the images",
        ranges.images, CALIBRATION_QUANTILE
    );
    for (key, value) in [
        (META_WEIGHTS, WEIGHTS_INT8_STATIC.to_owned()),
        (META_CALIBRATION, calibration),
        ("spamlens.weights_source_sha256", source_sha),
    ] {
        model.metadata_props.push(pb::StringStringEntryProto { key: key.to_owned(), value });
    }
    let out = model.encode_to_vec();
    let report = StaticQuantizationReport {
        convolutions,
        kept_f32,
        activations,
        bytes_before: bytes.len(),
        bytes_after: out.len(),
        calibration_images: ranges.images,
    };
    Ok((out, report))
}

fn scalar_f32(name: &str, value: f32) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        raw_data: value.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attribute, OnnxGraphBuilder, OutputSpec};

    /// Conv 3×3 (4 → 16 channels, bias) → Relu → Conv 1×1 (16 → 8, no bias) → `y`, and from the
    /// same ReLU output a second 1×1 convolution → Relu → `z`: the ReLU output is read as int8 by
    /// the first (its output `y` may be negative) and as uint8 by the second.
    fn two_conv_model() -> Vec<u8> {
        let mut b = OnnxGraphBuilder::new("two_conv");
        b.input("x", &[4, 8, 8]).unwrap();
        let w1: Vec<f32> = (0..16 * 4 * 9).map(|i| ((i * 37 % 101) as f32 - 50.0) / 250.0).collect();
        let w2: Vec<f32> = (0..8 * 16).map(|i| ((i * 53 % 97) as f32 - 48.0) / 100.0).collect();
        b.initializer("w1", &[16, 4, 3, 3], &w1).unwrap();
        b.initializer("b1", &[16], &(0..16).map(|i| i as f32 / 40.0 - 0.2).collect::<Vec<_>>()).unwrap();
        b.initializer("w2", &[8, 16, 1, 1], &w2).unwrap();
        let pads = [("kernel_shape", Attribute::Ints(vec![3, 3])), ("pads", Attribute::Ints(vec![1, 1, 1, 1]))];
        b.node("Conv", "conv1", &["x", "w1", "b1"], &["c1"], &pads).unwrap();
        b.node("Relu", "relu1", &["c1"], &["r1"], &[]).unwrap();
        b.node("Conv", "conv2", &["r1", "w2"], &["y"], &[("kernel_shape", Attribute::Ints(vec![1, 1]))]).unwrap();
        b.initializer("w3", &[8, 16, 1, 1], &w2.iter().map(|w| -w).collect::<Vec<_>>()).unwrap();
        b.node("Conv", "conv3", &["r1", "w3"], &["c3"], &[("kernel_shape", Attribute::Ints(vec![1, 1]))]).unwrap();
        b.node("Relu", "relu3", &["c3"], &["z"], &[]).unwrap();
        b.output(&OutputSpec { name: "y".into(), dims: vec![None, Some(8), Some(8), Some(8)] });
        b.output(&OutputSpec { name: "z".into(), dims: vec![None, Some(8), Some(8), Some(8)] });
        b.metadata("spamlens.kind", "test");
        b.encode().unwrap()
    }

    fn input(seed: usize) -> Vec<f32> {
        (0..4 * 64).map(|i| (((i + seed) * 13 % 29) as f32 - 14.0) / 7.0).collect()
    }

    /// Ranges observed by running the f32 model with its activations as extra outputs.
    fn observed_ranges(bytes: &[u8]) -> ActivationRanges {
        let tensors = conv_activations(bytes, "two_conv").unwrap();
        assert_eq!(tensors, ["x", "c1", "r1", "y", "c3"]);
        let probe = with_extra_outputs(bytes, "two_conv", &tensors).unwrap();
        let options = ModelOptions { outputs: Some(tensors.clone()), ..Default::default() };
        let model = Model::from_bytes(&probe, "probe", &options).unwrap();
        let mut ranges = ActivationRanges::default();
        for seed in 0..4 {
            let outputs = model.run(input(seed), 1).unwrap();
            for t in &tensors {
                ranges.observe(t, &outputs.get(t).unwrap().values).unwrap();
            }
            ranges.images += 1;
        }
        ranges
    }

    #[test]
    fn qlinear_convolutions_compute_what_the_f32_model_does_within_int8_steps() {
        let f32_bytes = two_conv_model();
        let ranges = observed_ranges(&f32_bytes);
        let (int8_bytes, report) = quantize_static(&f32_bytes, "two_conv.onnx", &ranges).unwrap();
        assert_eq!((report.convolutions, report.activations, report.calibration_images), (3, 5, 4));

        let graph = pb::ModelProto::decode(int8_bytes.as_slice()).unwrap().graph.unwrap();
        let ops: Vec<(&str, &str)> = graph.node.iter().map(|n| (n.op_type.as_str(), n.output[0].as_str())).collect();
        assert_eq!(
            ops,
            [
                ("QuantizeLinear", "x.int8"),
                ("QLinearConv", "c1.int8"),
                ("DequantizeLinear", "c1"),
                ("Relu", "r1"),
                ("QuantizeLinear", "r1.int8"),
                ("QLinearConv", "y.int8"),
                ("DequantizeLinear", "y"),
                // Only a ReLU reads c3, and r1 is never negative: uint8 in and out.
                ("QuantizeLinear", "r1.uint8"),
                ("QLinearConv", "c3.uint8"),
                ("DequantizeLinear", "c3"),
                ("Relu", "z"),
            ]
        );
        let names: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        assert!(["w1", "b1", "w2", "w3"].iter().all(|w| !names.contains(w)), "f32 weights left: {names:?}");
        assert!(names.contains("b1.int32") && names.contains("w2.int8"), "{names:?}");

        let reference = Model::from_bytes(&f32_bytes, "f32", &ModelOptions::default()).unwrap();
        let quantized = Model::from_bytes(&int8_bytes, "int8", &ModelOptions::default()).unwrap();
        assert_eq!(quantized.metadata().get(META_WEIGHTS).map(String::as_str), Some(WEIGHTS_INT8_STATIC));
        assert!(quantized.metadata().get(META_CALIBRATION).is_some_and(|c| c.starts_with("4 images")));
        assert_eq!(quantized.metadata().get("spamlens.kind").map(String::as_str), Some("test"));
        for seed in [0, 7] {
            let a = reference.run(input(seed), 1).unwrap();
            let b = quantized.run(input(seed), 1).unwrap();
            for (output, range) in
                [("y", ranges.get("y").unwrap().magnitude), ("z", ranges.get("c3").unwrap().positive)]
            {
                let (a, b) = (&a.get(output).unwrap().values, &b.get(output).unwrap().values);
                let worst = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(worst > 0.0, "{output}: nothing was rounded");
                // The output's own step is range/127 (or /255); inputs, weights and the middle
                // activation add a few more.
                assert!(worst < 6.0 * range / 127.0, "{output}, seed {seed}: worst {worst} against a range of {range}");
            }
        }
    }

    #[test]
    fn the_range_is_a_high_quantile_of_each_image_and_the_largest_over_images() {
        let mut ranges = ActivationRanges::default();
        let mut values: Vec<f32> = (0..100_000).map(|i| -(i as f32)).collect();
        values[5] = -1e9; // one outlier is clipped
        ranges.observe("a", &values).unwrap();
        let first = ranges.get("a").unwrap();
        assert!((99_980.0..=99_999.0).contains(&first.magnitude), "{first:?}");
        assert_eq!((first.positive, first.min), (0.0, -1e9));
        ranges.observe("a", &[1.0, 2.0]).unwrap();
        let second = ranges.get("a").unwrap();
        assert_eq!(
            (second.magnitude, second.min),
            (first.magnitude, first.min),
            "a smaller image keeps the larger range"
        );
        assert_eq!(second.positive, 2.0);
        ranges.observe("a", &[3e5]).unwrap();
        assert_eq!(ranges.get("a"), Some(ActivationRange { magnitude: 3e5, positive: 3e5, min: -1e9 }));
        ranges.observe("p", &[0.0, 4.0]).unwrap();
        assert_eq!(ranges.get("p"), Some(ActivationRange { magnitude: 4.0, positive: 4.0, min: 0.0 }));
        let err = ranges.observe("b", &[1.0, f32::NAN]).unwrap_err();
        assert!(err.contains("activation b") && err.contains("non-finite"), "{err}");
    }

    #[test]
    fn missing_ranges_quantised_models_and_garbage_are_refused_with_the_name() {
        let f32_bytes = two_conv_model();
        let mut partial = ActivationRanges::default();
        partial.observe("x", &[1.0]).unwrap();
        partial.observe("c1", &[1.0]).unwrap();
        let err = quantize_static(&f32_bytes, "two_conv.onnx", &partial).unwrap_err().to_string();
        assert!(err.contains("two_conv.onnx") && err.contains("no calibrated range for activation r1"), "{err}");

        let ranges = observed_ranges(&f32_bytes);
        let (int8_bytes, _) = quantize_static(&f32_bytes, "two_conv.onnx", &ranges).unwrap();
        let err = quantize_static(&int8_bytes, "again.onnx", &ranges).unwrap_err().to_string();
        assert!(err.contains("again.onnx") && err.contains("already quantised"), "{err}");
        let err = quantize_static(b"\x08\x07garbage\xff", "junk.onnx", &ranges).unwrap_err().to_string();
        assert!(err.contains("junk.onnx") && err.contains("not an ONNX protobuf"), "{err}");
    }
}
