//! int8 weight storage: every convolution's weights as 8-bit integers with one scale per output
//! channel, read through `DequantizeLinear`, so the file a browser downloads is about a quarter
//! of the f32 one.
//!
//! The quantisation is symmetric (zero point 0, `q = round(w / s)` clamped to ±127, `s =
//! max|w| / 127` per output channel), the form every int8 convolution kernel accepts. The
//! runtimes widen the weights back to f32 once at load (`spamlens-core` folds the
//! `DequantizeLinear` of a constant), so compute stays f32 and only the rounding of the weights
//! differs from the f32 model.

use prost::Message;
use serde::Serialize;
use tract_onnx::pb;

use crate::error::{ModelError, Result};

/// The metadata key that says how a model's weights are stored (absent: f32).
pub const META_WEIGHTS: &str = "spamlens.weights";

/// The value of [`META_WEIGHTS`] for this scheme.
pub const WEIGHTS_INT8_PER_CHANNEL: &str = "int8 per output channel, symmetric (DequantizeLinear), f32 compute";

/// Weights with fewer values stay f32: a scale per channel would cost more than it saves.
pub const MIN_QUANTIZED_VALUES: usize = 1024;

/// What [`quantize_conv_weights`] did.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizationReport {
    /// Weight tensors stored as int8.
    pub tensors: usize,
    /// Values in them.
    pub values: usize,
    /// Convolution weights left in f32 (too small).
    pub kept_f32: usize,
    /// File size before, in bytes.
    pub bytes_before: usize,
    /// File size after, in bytes.
    pub bytes_after: usize,
    /// Largest rounding error of one weight relative to its channel's largest magnitude
    /// (at most 1/254 by construction).
    pub max_relative_error: f32,
    /// Root-mean-square rounding error relative to each channel's largest magnitude.
    pub rms_relative_error: f32,
}

/// Rewrites an ONNX model (a backbone or a combined model) so that each `Conv` weight initialiser
/// of at least [`MIN_QUANTIZED_VALUES`] f32 values is stored as int8 with a per-output-channel
/// scale and read through `DequantizeLinear(axis 0)`. Everything else, the metadata included, is
/// kept; [`META_WEIGHTS`] and `spamlens.weights_source_sha256` are added. `name` is used in errors.
pub fn quantize_conv_weights(bytes: &[u8], name: &str) -> Result<(Vec<u8>, QuantizationReport)> {
    let bad = |reason: String| ModelError::Graph(format!("{name}: {reason}"));
    let mut model = pb::ModelProto::decode(bytes).map_err(|e| bad(format!("not an ONNX protobuf ({e})")))?;
    if model.metadata_props.iter().any(|p| p.key == META_WEIGHTS) {
        return Err(bad(format!("its weights are already quantised ({META_WEIGHTS} is set)")));
    }
    let opset = model.opset_import.iter().filter(|o| o.domain.is_empty()).map(|o| o.version).max().unwrap_or(0);
    if opset < 13 {
        return Err(bad(format!("opset {opset}: per-channel DequantizeLinear needs opset 13 or later")));
    }
    let graph = model.graph.as_mut().ok_or_else(|| bad("the ONNX file has no graph".into()))?;
    let conv_weights: std::collections::HashSet<String> =
        graph.node.iter().filter(|n| n.op_type == "Conv").filter_map(|n| n.input.get(1).cloned()).collect();
    let mut report = QuantizationReport {
        tensors: 0,
        values: 0,
        kept_f32: 0,
        bytes_before: bytes.len(),
        bytes_after: 0,
        max_relative_error: 0.0,
        rms_relative_error: 0.0,
    };
    let mut squared_error = 0.0f64;
    let mut dequantize_nodes = Vec::new();
    let mut initializers = Vec::with_capacity(graph.initializer.len());
    for tensor in std::mem::take(&mut graph.initializer) {
        if !conv_weights.contains(&tensor.name) {
            initializers.push(tensor);
            continue;
        }
        if tensor.data_type != pb::tensor_proto::DataType::Float as i32 || tensor.dims.len() < 2 {
            report.kept_f32 += 1;
            initializers.push(tensor);
            continue;
        }
        let values = float_values(&tensor).map_err(|reason| bad(format!("initializer {reason}")))?;
        if values.len() < MIN_QUANTIZED_VALUES {
            report.kept_f32 += 1;
            initializers.push(tensor);
            continue;
        }
        let channels =
            usize::try_from(tensor.dims[0]).ok().filter(|&c| c > 0 && values.len() % c == 0).ok_or_else(|| {
                bad(format!("initializer {}: dims {:?} do not fit {} values", tensor.name, tensor.dims, values.len()))
            })?;
        let quantized = quantize_per_channel(&values, channels);
        report.tensors += 1;
        report.values += values.len();
        report.max_relative_error = report.max_relative_error.max(quantized.max_relative_error);
        squared_error += quantized.sum_squared_relative_error;

        let weight = tensor.name.clone();
        let quantized_weights = quantized.initializers(&weight, tensor.dims.clone());
        let names = quantized_weights.iter().map(|t| t.name.clone()).collect();
        initializers.extend(quantized_weights);
        dequantize_nodes.push(pb::NodeProto {
            input: names,
            output: vec![weight.clone()],
            name: format!("{weight}.dequantize"),
            op_type: "DequantizeLinear".to_owned(),
            attribute: vec![pb::AttributeProto {
                name: "axis".to_owned(),
                r#type: pb::attribute_proto::AttributeType::Int as i32,
                i: 0,
                ..Default::default()
            }],
            ..Default::default()
        });
        // An IR-3 style graph lists initialisers among its inputs; the weight is now computed.
        graph.input.retain(|i| i.name != weight);
    }
    if report.tensors == 0 {
        return Err(bad("no convolution weights to quantise".into()));
    }
    graph.initializer = initializers;
    // The dequantisations read initialisers only, so they may run first.
    dequantize_nodes.append(&mut graph.node);
    graph.node = dequantize_nodes;
    report.rms_relative_error = (squared_error / report.values as f64).sqrt() as f32;

    let source_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    model
        .metadata_props
        .push(pb::StringStringEntryProto { key: META_WEIGHTS.to_owned(), value: WEIGHTS_INT8_PER_CHANNEL.to_owned() });
    model
        .metadata_props
        .push(pb::StringStringEntryProto { key: "spamlens.weights_source_sha256".to_owned(), value: source_sha });
    let out = model.encode_to_vec();
    report.bytes_after = out.len();
    Ok((out, report))
}

/// The [`META_WEIGHTS`] value of an ONNX model (`None`: f32 weights, or not a readable model).
pub fn weights_scheme(bytes: &[u8]) -> Option<String> {
    super::read_metadata(bytes, META_WEIGHTS)
}

/// One tensor quantised per output channel (the first dimension).
pub(crate) struct PerChannel {
    pub(crate) values: Vec<i8>,
    pub(crate) scales: Vec<f32>,
    max_relative_error: f32,
    sum_squared_relative_error: f64,
}

impl PerChannel {
    /// The initialisers a `DequantizeLinear` or `QLinearConv` reads for the weights `weight` of
    /// shape `dims`: `<weight>.int8`, `<weight>.scale` (one per channel) and `<weight>.zero_point`
    /// (all 0, symmetric), in that order.
    pub(crate) fn initializers(&self, weight: &str, dims: Vec<i64>) -> [pb::TensorProto; 3] {
        let channels = self.scales.len();
        [
            pb::TensorProto {
                name: format!("{weight}.int8"),
                dims,
                data_type: pb::tensor_proto::DataType::Int8 as i32,
                raw_data: self.values.iter().map(|&q| q as u8).collect(),
                ..Default::default()
            },
            pb::TensorProto {
                name: format!("{weight}.scale"),
                dims: vec![channels as i64],
                data_type: pb::tensor_proto::DataType::Float as i32,
                raw_data: self.scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                ..Default::default()
            },
            pb::TensorProto {
                name: format!("{weight}.zero_point"),
                dims: vec![channels as i64],
                data_type: pb::tensor_proto::DataType::Int8 as i32,
                raw_data: vec![0; channels],
                ..Default::default()
            },
        ]
    }
}

pub(crate) fn quantize_per_channel(values: &[f32], channels: usize) -> PerChannel {
    let per_channel = values.len() / channels;
    let mut out = PerChannel {
        values: Vec::with_capacity(values.len()),
        scales: Vec::with_capacity(channels),
        max_relative_error: 0.0,
        sum_squared_relative_error: 0.0,
    };
    for channel in values.chunks_exact(per_channel) {
        let max = channel.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // An all-zero channel keeps scale 1 (DequantizeLinear needs a positive scale).
        let scale = if max > 0.0 && max.is_finite() { max / 127.0 } else { 1.0 };
        out.scales.push(scale);
        for &v in channel {
            let q = (v / scale).round().clamp(-127.0, 127.0) as i8;
            out.values.push(q);
            if max > 0.0 {
                let relative = (v - f32::from(q) * scale).abs() / max;
                out.max_relative_error = out.max_relative_error.max(relative);
                out.sum_squared_relative_error += f64::from(relative) * f64::from(relative);
            }
        }
    }
    out
}

/// The f32 values of a FLOAT initialiser, all finite; errors start with its name.
pub(crate) fn float_values(tensor: &pb::TensorProto) -> std::result::Result<Vec<f32>, String> {
    let values = spamlens_core::model::float_initializer(tensor)?;
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(format!("{}: holds a non-finite weight ({v})", tensor.name));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attribute, OnnxGraphBuilder, OutputSpec};
    use spamlens_core::{Model, ModelOptions};

    /// A 3×3 convolution of 8 → 16 channels (1152 weights) with a per-channel spread of magnitudes.
    fn conv_model() -> (Vec<u8>, Vec<f32>) {
        let mut b = OnnxGraphBuilder::new("conv");
        b.input("x", &[8, 6, 6]).unwrap();
        let weights: Vec<f32> =
            (0..16 * 8 * 9).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0 * (1.0 + (i / 72) as f32)).collect();
        b.initializer("w", &[16, 8, 3, 3], &weights).unwrap();
        b.initializer("b", &[16], &[0.1; 16]).unwrap();
        b.node(
            "Conv",
            "conv",
            &["x", "w", "b"],
            &["y"],
            &[("kernel_shape", Attribute::Ints(vec![3, 3])), ("pads", Attribute::Ints(vec![1, 1, 1, 1]))],
        )
        .unwrap();
        b.output(&OutputSpec { name: "y".into(), dims: vec![None, Some(16), Some(6), Some(6)] });
        b.metadata("spamlens.kind", "test");
        (b.encode().unwrap(), weights)
    }

    #[test]
    fn int8_weights_run_like_the_f32_model_within_their_rounding() {
        let (f32_bytes, _) = conv_model();
        let (int8_bytes, report) = quantize_conv_weights(&f32_bytes, "conv.onnx").unwrap();
        assert_eq!(report.tensors, 1);
        assert_eq!(report.values, 1152);
        assert!(report.max_relative_error <= 0.5 / 127.0 + 1e-6, "{report:?}");
        assert!(report.bytes_after < report.bytes_before / 2, "{report:?}");

        let input: Vec<f32> = (0..8 * 36).map(|i| ((i * 13 % 29) as f32 - 14.0) / 14.0).collect();
        let options = ModelOptions::default();
        let reference = Model::from_bytes(&f32_bytes, "f32", &options).unwrap().run(input.clone(), 1).unwrap();
        let quantized = Model::from_bytes(&int8_bytes, "int8", &options).unwrap();
        assert_eq!(quantized.metadata().get(META_WEIGHTS).map(String::as_str), Some(WEIGHTS_INT8_PER_CHANNEL));
        assert_eq!(quantized.metadata().get("spamlens.kind").map(String::as_str), Some("test"));
        let out = quantized.run(input, 1).unwrap();
        let (a, b) = (&reference.get("y").unwrap().values, &out.get("y").unwrap().values);
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        // 72 products per output, each weight off by at most half a step of its channel's scale.
        assert!(worst > 0.0, "the weights were not rounded at all");
        assert!(worst < 0.02 * scale, "worst {worst} against outputs up to {scale}");
    }

    #[test]
    fn quantising_twice_or_garbage_is_refused_with_the_name() {
        let (f32_bytes, _) = conv_model();
        let (int8_bytes, _) = quantize_conv_weights(&f32_bytes, "conv.onnx").unwrap();
        let err = quantize_conv_weights(&int8_bytes, "again.onnx").unwrap_err().to_string();
        assert!(err.contains("again.onnx") && err.contains("already quantised"), "{err}");
        let err = quantize_conv_weights(b"\x08\x07garbage\xff", "junk.onnx").unwrap_err().to_string();
        assert!(err.contains("junk.onnx") && err.contains("not an ONNX protobuf"), "{err}");
    }

    #[test]
    fn per_channel_scales_follow_each_channels_magnitude() {
        let values = [1.0, -0.5, 0.25, 100.0, 50.0, -25.0, 0.0, 0.0, 0.0];
        let q = quantize_per_channel(&values, 3);
        assert_eq!(q.scales, vec![1.0 / 127.0, 100.0 / 127.0, 1.0]);
        assert_eq!(q.values, vec![127, -64, 32, 127, 64, -32, 0, 0, 0]);
    }
}
