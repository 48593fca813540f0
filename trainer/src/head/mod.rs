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
pub use training::{EpochRecord, NoTrainProgress, TrainDevice, TrainOptions, TrainOutcome, TrainProgress, train};

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

    /// Total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(|l| l.weight.len() + l.bias.len()).sum()
    }
}
