//! The head's weights as plain arrays: what training produces and what the graph writer consumes,
//! independent of any training framework.

use serde::Serialize;

use crate::error::{ModelError, Result};

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
        let bad = |reason: String| Err(ModelError::Graph(format!("head weights: {reason}")));
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
            return Err(ModelError::Graph(format!(
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

    /// One head whose logits are the mean of `heads`' logits (an ensemble, e.g. of seeds): the
    /// hidden units of all heads side by side, each output layer scaled by `1 / n`. Heads need the
    /// same labels and input width and at most one hidden layer (deeper heads do not merge into
    /// one dense stack).
    pub fn average_logits(heads: &[HeadWeights]) -> Result<HeadWeights> {
        let bad = |reason: String| Err(ModelError::Graph(format!("averaging heads: {reason}")));
        let Some(first) = heads.first() else { return bad("no heads".into()) };
        if heads.len() == 1 {
            return Ok(first.clone());
        }
        if heads.iter().any(|h| h.labels != first.labels || h.input_dim() != first.input_dim()) {
            return bad("the heads differ in labels or input width".into());
        }
        let depth = first.layers.len();
        if depth > 2 || heads.iter().any(|h| h.layers.len() != depth) {
            return bad("only heads of the same depth with at most one hidden layer merge".into());
        }
        let scale = 1.0 / heads.len() as f32;
        let classes = first.labels.len();
        let mean_bias: Vec<f32> =
            (0..classes).map(|j| heads.iter().map(|h| h.layers[depth - 1].bias[j]).sum::<f32>() * scale).collect();
        if depth == 1 {
            let mut weight = vec![0.0; first.layers[0].weight.len()];
            for head in heads {
                weight.iter_mut().zip(&head.layers[0].weight).for_each(|(w, v)| *w += v * scale);
            }
            let layer = DenseLayer { inputs: first.input_dim(), outputs: classes, weight, bias: mean_bias };
            return HeadWeights::new(vec![layer], first.labels.clone());
        }
        let inputs = first.input_dim();
        let hidden: usize = heads.iter().map(|h| h.layers[0].outputs).sum();
        let mut weight = Vec::with_capacity(inputs * hidden);
        for i in 0..inputs {
            for head in heads {
                let layer = &head.layers[0];
                weight.extend_from_slice(&layer.weight[i * layer.outputs..(i + 1) * layer.outputs]);
            }
        }
        let bias = heads.iter().flat_map(|h| h.layers[0].bias.iter().copied()).collect();
        let output_weight =
            heads.iter().flat_map(|h| h.layers[1].weight.iter().map(|w| w * scale).collect::<Vec<_>>()).collect();
        HeadWeights::new(
            vec![
                DenseLayer { inputs, outputs: hidden, weight, bias },
                DenseLayer { inputs: hidden, outputs: classes, weight: output_weight, bias: mean_bias },
            ],
            first.labels.clone(),
        )
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
        let mut logits = self.logits(rows);
        for row in logits.chunks_exact_mut(self.labels.len().max(1)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|v| *v = (*v - max).exp());
            let sum: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
        }
        logits
    }

    /// Pre-softmax outputs for feature rows, as [`probabilities`](Self::probabilities): they keep
    /// the ranking of confident rows whose probabilities round to exactly 0 or 1 in f32.
    pub fn logits(&self, rows: &[f32]) -> Vec<f32> {
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
            out.extend(x);
        }
        out
    }

    /// Log-probabilities (floored at ln 1e-30) for feature rows: what the fused graph feeds its
    /// fusion layer.
    pub fn log_probabilities(&self, rows: &[f32]) -> Vec<f32> {
        let probabilities = self.probabilities(rows);
        probabilities.iter().map(|p| p.max(1e-30).ln()).collect()
    }

    /// A one-line description of the shape, such as `2048 → 2048 ReLU → 2 softmax`.
    pub fn describe(&self) -> String {
        describe_shape(self.input_dim(), &self.hidden(), self.labels.len())
    }

    /// Total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(|l| l.weight.len() + l.bias.len()).sum()
    }
}

/// A head's shape in one line, such as `2048 → 2048 ReLU → 2 softmax` (graph metadata, reports).
pub fn describe_shape(input_dim: usize, hidden: &[usize], classes: usize) -> String {
    let mut parts = vec![input_dim.to_string()];
    parts.extend(hidden.iter().map(|h| format!("{h} ReLU")));
    parts.push(format!("{classes} softmax"));
    parts.join(" → ")
}

/// Where a set of features came from; decides which backbone a head trained on them fits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FeatureSource {
    /// spamlens's own backbone (feature stores); the head can be attached to that backbone.
    Backbone {
        /// sha256 of the backbone ONNX the features were computed with.
        sha256: String,
        /// The backbone's preprocessing contract.
        preprocessing: String,
    },
    /// The Email.cz dataset's features: TF-slim resnet_v1_50 pool5 with caffe preprocessing, a
    /// different network from ours, so a head trained on them does not fit our backbone.
    EmailCz,
}

impl FeatureSource {
    /// A short description for logs, metadata and errors.
    pub fn describe(&self) -> String {
        match self {
            FeatureSource::Backbone { sha256, .. } => format!("spamlens backbone {}", &sha256[..sha256.len().min(12)]),
            FeatureSource::EmailCz => "Email.cz dataset v1 (TF-slim resnet_v1_50 pool5)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(inputs: usize, outputs: usize, offset: f32) -> DenseLayer {
        DenseLayer {
            inputs,
            outputs,
            weight: (0..inputs * outputs).map(|k| (k as f32 * 0.37 + offset).sin()).collect(),
            bias: (0..outputs).map(|k| (k as f32 + offset).cos() * 0.1).collect(),
        }
    }

    /// Spam − ham logit per row: softmax-invariant, so comparable across heads.
    fn margins(head: &HeadWeights, rows: &[f32]) -> Vec<f32> {
        head.logits(rows).chunks(2).map(|l| l[1] - l[0]).collect()
    }

    #[test]
    fn averaged_heads_give_the_mean_logits() {
        let labels = vec!["ham".to_string(), "spam".to_string()];
        let rows: Vec<f32> = (0..15).map(|k| (k as f32 * 0.21).cos()).collect();
        let a = HeadWeights::new(vec![dense(5, 3, 0.0), dense(3, 2, 1.0)], labels.clone()).unwrap();
        let b = HeadWeights::new(vec![dense(5, 4, 2.0), dense(4, 2, 3.0)], labels.clone()).unwrap();
        let merged = HeadWeights::average_logits(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(merged.hidden(), [7]);
        for ((m, x), y) in margins(&merged, &rows).iter().zip(margins(&a, &rows)).zip(margins(&b, &rows)) {
            assert!((m - (x + y) / 2.0).abs() < 1e-4, "{m} vs the mean of {x} and {y}");
        }

        let linear = |offset| HeadWeights::new(vec![dense(5, 2, offset)], labels.clone()).unwrap();
        let heads = [linear(0.0), linear(1.0), linear(2.0)];
        let merged = HeadWeights::average_logits(&heads).unwrap();
        assert!(merged.hidden().is_empty());
        let each: Vec<Vec<f32>> = heads.iter().map(|h| margins(h, &rows)).collect();
        for (k, m) in margins(&merged, &rows).iter().enumerate() {
            let mean = each.iter().map(|v| v[k]).sum::<f32>() / 3.0;
            assert!((m - mean).abs() < 1e-4, "{m} vs {mean}");
        }

        let deep =
            HeadWeights::new(vec![dense(5, 3, 0.0), dense(3, 3, 0.0), dense(3, 2, 0.0)], labels.clone()).unwrap();
        assert!(HeadWeights::average_logits(&[deep.clone(), deep]).is_err(), "two hidden layers");
        assert!(HeadWeights::average_logits(&[a, linear(0.0)]).is_err(), "different depths");
        assert!(HeadWeights::average_logits(&[]).is_err());
    }
}
