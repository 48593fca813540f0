//! The classifier head: a small dense network over backbone features, trained with Burn.
//!
//! Laid out like burn's `examples/guide`: [`model`] (the module), [`data`] (features, splits,
//! batches), [`training`] (the loop, generic over the backend), [`inference`] (probabilities and
//! predictions). [`HeadWeights`] is the framework-free result that the ONNX export writes.

pub mod data;
pub mod inference;
pub mod model;
pub mod training;

pub use data::{FeatureSource, LabelledFeatures, Split, balanced_class_weights, stratified_split};
pub use model::{Head, HeadConfig};
pub use training::{
    EpochRecord, NoTrainProgress, StoppingMetric, TrainDevice, TrainOptions, TrainOutcome, TrainProgress, train,
};

use crate::error::{Result, TrainerError};

/// One dense layer: `y = x · weight + bias` with `weight` stored `[inputs, outputs]` row-major
/// (Burn's layout and ONNX Gemm's default, so export needs no transpose).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// `inputs × outputs` values, row-major.
    pub weight: Vec<f32>,
    /// `outputs` values.
    pub bias: Vec<f32>,
}

/// A trained head as plain arrays: dense layers (ReLU between them, softmax after the last) and the
/// class names in output order.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadWeights {
    /// Layers, input side first; every layer but the last is followed by ReLU.
    pub layers: Vec<DenseLayer>,
    /// Class names, one per output.
    pub labels: Vec<String>,
}

impl HeadWeights {
    /// Checks that the layers chain and the labels match the output width.
    pub fn new(layers: Vec<DenseLayer>, labels: Vec<String>) -> Result<HeadWeights> {
        let bad = |reason: String| Err(TrainerError::Graph(format!("head weights: {reason}")));
        let Some(last) = layers.last() else { return bad("no layers".into()) };
        if last.outputs != labels.len() {
            return bad(format!("{} outputs but {} labels", last.outputs, labels.len()));
        }
        for (i, layer) in layers.iter().enumerate() {
            if layer.weight.len() != layer.inputs * layer.outputs || layer.bias.len() != layer.outputs {
                return bad(format!("layer {i} has inconsistent shapes"));
            }
            if i > 0 && layers[i - 1].outputs != layer.inputs {
                return bad(format!(
                    "layer {i} takes {} inputs, layer {} gives {}",
                    layer.inputs,
                    i - 1,
                    layers[i - 1].outputs
                ));
            }
        }
        Ok(HeadWeights { layers, labels })
    }

    /// Width of the input features.
    pub fn input_dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Hidden layer widths.
    pub fn hidden(&self) -> Vec<usize> {
        self.layers.iter().take(self.layers.len().saturating_sub(1)).map(|l| l.outputs).collect()
    }

    /// Folds a per-feature standardisation `(x − mean) / std` into the first layer, so the head
    /// takes raw features again: `w' = w / std`, `b' = b − Σ mean / std · w`.
    pub fn fold_standardisation(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        let Some(first) = self.layers.first_mut() else { return Ok(()) };
        if mean.len() != first.inputs || std.len() != first.inputs {
            return Err(TrainerError::Graph(format!(
                "standardisation of {} features for a head of {} inputs",
                mean.len(),
                first.inputs
            )));
        }
        for (i, (&m, &s)) in mean.iter().zip(std).enumerate() {
            let row = &mut first.weight[i * first.outputs..(i + 1) * first.outputs];
            for (w, b) in row.iter_mut().zip(first.bias.iter_mut()) {
                *w /= s;
                *b -= m * *w;
            }
        }
        Ok(())
    }

    /// Divides the logits by `temperature` (temperature scaling, a calibration): the last layer's
    /// weights and bias are scaled, the graph stays the same.
    pub fn scale_logits(&mut self, temperature: f32) {
        if let Some(last) = self.layers.last_mut() {
            last.weight.iter_mut().chain(last.bias.iter_mut()).for_each(|v| *v /= temperature);
        }
    }

    /// Class probabilities for feature rows (`rows.len() / input_dim` of them), computed in plain
    /// Rust: what the exported graph computes, for evaluation without a Burn backend.
    pub fn probabilities(&self, rows: &[f32]) -> Vec<f32> {
        let dim = self.input_dim().max(1);
        let mut out = Vec::with_capacity(rows.len() / dim * self.labels.len());
        for row in rows.chunks_exact(dim) {
            let mut x = row.to_vec();
            for (i, layer) in self.layers.iter().enumerate() {
                let mut y = layer.bias.clone();
                for (xi, w_row) in x.iter().zip(layer.weight.chunks_exact(layer.outputs)) {
                    if *xi != 0.0 {
                        y.iter_mut().zip(w_row).for_each(|(yj, wj)| *yj += xi * wj);
                    }
                }
                if i + 1 < self.layers.len() {
                    y.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                x = y;
            }
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = x.iter().map(|v| (v - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            out.extend(exp.iter().map(|e| e / sum));
        }
        out
    }

    /// Logits (pre-softmax outputs) for feature rows, as [`probabilities`](Self::probabilities).
    pub fn logits(&self, rows: &[f32]) -> Vec<f32> {
        let probabilities = self.probabilities(rows);
        probabilities.iter().map(|p| p.max(1e-30).ln()).collect()
    }

    /// Total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(|l| l.weight.len() + l.bias.len()).sum()
    }
}
