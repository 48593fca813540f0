//! The head as a Burn module: dense ReLU layers and a linear output whose softmax is the class
//! probabilities (the paper, section 5: one hidden layer of 2048 ReLU units).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::HeadWeights;
use crate::error::{Result, TrainerError};

/// The head's shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeadConfig {
    /// Width of the input feature vector (2048 for ResNet-50 pool features).
    pub input_dim: usize,
    /// Widths of the hidden ReLU layers, input side first (paper: `[2048]`; reference code: `[2048, 2048]`).
    pub hidden: Vec<usize>,
    /// Number of output classes.
    pub classes: usize,
    /// Dropout probability after each hidden layer while training (0: none, the paper's).
    pub dropout: f64,
}

impl HeadConfig {
    /// Builds a freshly initialised head on `device` (Burn's default initialisers; seed the backend first).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Head<B> {
        let mut hidden = Vec::with_capacity(self.hidden.len());
        let mut width = self.input_dim;
        for &units in &self.hidden {
            hidden.push(LinearConfig::new(width, units).init(device));
            width = units;
        }
        Head {
            hidden,
            output: LinearConfig::new(width, self.classes).init(device),
            activation: Relu::new(),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }

    /// A one-line description such as `2048 → 2048 ReLU → 2 softmax`.
    pub fn describe(&self) -> String {
        spamlens_model::weights::describe_shape(self.input_dim, &self.hidden, self.classes)
    }
}

/// Dense ReLU layers, then a linear layer to one logit per class.
#[derive(Module, Debug)]
pub struct Head<B: Backend> {
    hidden: Vec<Linear<B>>,
    output: Linear<B>,
    activation: Relu,
    dropout: Dropout,
}

impl<B: Backend> Head<B> {
    /// Logits `[batch, classes]` for features `[batch, input_dim]`.
    pub fn forward(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut x = features;
        for layer in &self.hidden {
            // Dropout is active only on an autodiff backend (training), the identity otherwise.
            x = self.dropout.forward(self.activation.forward(layer.forward(x)));
        }
        self.output.forward(x)
    }

    /// Class probabilities `[batch, classes]`.
    pub fn probabilities(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        burn::tensor::activation::softmax(self.forward(features), 1)
    }

    /// The trained parameters as plain arrays, for export and for comparing runs.
    pub fn weights(&self, labels: &[String]) -> Result<HeadWeights> {
        let mut layers = Vec::with_capacity(self.hidden.len() + 1);
        for layer in self.hidden.iter().chain(std::iter::once(&self.output)) {
            layers.push(dense_weights(layer)?);
        }
        Ok(HeadWeights::new(layers, labels.to_vec())?)
    }
}

fn dense_weights<B: Backend>(layer: &Linear<B>) -> Result<super::DenseLayer> {
    let weight = layer.weight.val();
    let [inputs, outputs] = weight.dims();
    let weight = weight
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| TrainerError::Graph(format!("reading head weights: {e:?}")))?;
    let bias = match &layer.bias {
        Some(bias) => bias
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| TrainerError::Graph(format!("reading head bias: {e:?}")))?,
        None => vec![0.0; outputs],
    };
    Ok(super::DenseLayer { inputs, outputs, weight, bias })
}
