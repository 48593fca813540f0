//! Multinomial logistic regression over sparse and dense inputs, in plain Rust: the text model of a
//! fused head (an image's hashed character n-grams and its layout measures) and the fusion layer
//! over the image and text models' logits.
//!
//! The n-gram input is 65536 wide and almost all zero, so Burn's dense batches would spend their time
//! on zeros; full-batch Adam over the sparse rows is exact, deterministic and takes well under a
//! second for the development sets. Dense inputs are standardised for training and the
//! standardisation folded back into the weights, so the model takes raw inputs, as the exported
//! graph does.

use serde::Serialize;
use spamlens_core::ocr::{LAYOUT_FEATURES, OcrText, TextFeaturizer};

use crate::error::{Result, TrainerError};

/// How a logistic model is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogisticOptions {
    /// L2 penalty on the weights (not the biases), per unit of mean loss.
    pub l2: f64,
    /// Full-batch Adam steps.
    pub iterations: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Weight each class by the inverse of its frequency.
    pub class_weights: bool,
}

impl LogisticOptions {
    /// The text model's defaults.
    pub const TEXT: LogisticOptions =
        LogisticOptions { l2: 1e-4, iterations: 300, learning_rate: 0.05, class_weights: true };
    /// The fusion layer's defaults (a few inputs, fitted on the validation part; unweighted, so its
    /// probabilities stay calibrated to the data it saw).
    pub const FUSION: LogisticOptions =
        LogisticOptions { l2: 1e-3, iterations: 500, learning_rate: 0.05, class_weights: false };
}

/// One training row: sparse entries `(index, value)` and a dense part.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MixedRow {
    /// Sparse entries, indices below the model's sparse width.
    pub sparse: Vec<(u32, f32)>,
    /// Dense values, the model's dense width of them.
    pub dense: Vec<f32>,
}

/// `logits = sparse · sparse_weight + dense · dense_weight + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    /// Width of the sparse input.
    pub sparse_dim: usize,
    /// Width of the dense input.
    pub dense_dim: usize,
    /// Number of classes (outputs).
    pub classes: usize,
    /// `sparse_dim × classes`, row-major.
    pub sparse_weight: Vec<f32>,
    /// `dense_dim × classes`, row-major, taking raw (unstandardised) dense values.
    pub dense_weight: Vec<f32>,
    /// `classes` values.
    pub bias: Vec<f32>,
}

impl Logistic {
    /// The logits of one row.
    pub fn logits(&self, row: &MixedRow) -> Vec<f32> {
        let c = self.classes;
        let mut out = self.bias.clone();
        for &(i, v) in &row.sparse {
            let i = i as usize;
            if i < self.sparse_dim {
                out.iter_mut().zip(&self.sparse_weight[i * c..(i + 1) * c]).for_each(|(o, w)| *o += v * w);
            }
        }
        for (k, &v) in row.dense.iter().enumerate().take(self.dense_dim) {
            out.iter_mut().zip(&self.dense_weight[k * c..(k + 1) * c]).for_each(|(o, w)| *o += v * w);
        }
        out
    }

    /// Divides every logit by `temperature` (calibration folded into the weights).
    pub fn scale_logits(&mut self, temperature: f32) {
        self.sparse_weight
            .iter_mut()
            .chain(self.dense_weight.iter_mut())
            .chain(self.bias.iter_mut())
            .for_each(|v| *v /= temperature);
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.sparse_weight.len() + self.dense_weight.len() + self.bias.len()
    }
}

/// Softmax of one row of logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// Fits a multinomial logistic regression on `rows` with class `labels` (each below `classes`).
pub fn fit_logistic(
    rows: &[&MixedRow],
    labels: &[usize],
    sparse_dim: usize,
    dense_dim: usize,
    classes: usize,
    options: &LogisticOptions,
) -> Result<Logistic> {
    let bad = |reason: String| TrainerError::Metrics(format!("logistic regression: {reason}"));
    if rows.len() != labels.len() || rows.is_empty() {
        return Err(bad(format!("{} rows and {} labels", rows.len(), labels.len())));
    }
    if classes < 2 || labels.iter().any(|&l| l >= classes) {
        return Err(bad(format!("labels must be below {classes} (at least two classes)")));
    }
    if let Some(row) =
        rows.iter().find(|r| r.dense.len() != dense_dim || r.sparse.iter().any(|&(i, _)| i as usize >= sparse_dim))
    {
        return Err(bad(format!(
            "a row has {} dense values (expected {dense_dim}) or a sparse index ≥ {sparse_dim}",
            row.dense.len()
        )));
    }
    // Standardise the dense part on these rows.
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..dense_dim).map(|k| rows.iter().map(|r| f64::from(r.dense[k])).sum::<f64>() / n).collect();
    let std: Vec<f64> = (0..dense_dim)
        .map(|k| {
            let var = rows.iter().map(|r| (f64::from(r.dense[k]) - mean[k]).powi(2)).sum::<f64>() / n;
            if var > 1e-12 { var.sqrt() } else { 1.0 }
        })
        .collect();
    let standardised: Vec<Vec<f64>> =
        rows.iter().map(|r| (0..dense_dim).map(|k| (f64::from(r.dense[k]) - mean[k]) / std[k]).collect()).collect();
    let mut counts = vec![0usize; classes];
    labels.iter().for_each(|&l| counts[l] += 1);
    let row_weight: Vec<f64> = labels
        .iter()
        .map(|&l| if options.class_weights { n / (classes as f64 * counts[l].max(1) as f64) } else { 1.0 })
        .collect();
    let total_weight: f64 = row_weight.iter().sum();

    let c = classes;
    let (sparse_len, dense_len) = (sparse_dim * c, dense_dim * c);
    // Parameters: sparse weights, dense weights, bias.
    let mut params = vec![0.0f64; sparse_len + dense_len + c];
    let mut m = vec![0.0f64; params.len()];
    let mut v = vec![0.0f64; params.len()];
    let mut grad = vec![0.0f64; params.len()];
    let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    for step in 1..=options.iterations.max(1) {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for ((row, z), (&label, &weight)) in rows.iter().zip(&standardised).zip(labels.iter().zip(&row_weight)) {
            let mut logits: Vec<f64> = params[sparse_len + dense_len..].to_vec();
            for &(i, x) in &row.sparse {
                let base = i as usize * c;
                for j in 0..c {
                    logits[j] += f64::from(x) * params[base + j];
                }
            }
            for (k, &x) in z.iter().enumerate() {
                let base = sparse_len + k * c;
                for j in 0..c {
                    logits[j] += x * params[base + j];
                }
            }
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = exp.iter().sum();
            let scale = weight / total_weight;
            let delta: Vec<f64> = (0..c).map(|j| scale * (exp[j] / sum - if j == label { 1.0 } else { 0.0 })).collect();
            for &(i, x) in &row.sparse {
                let base = i as usize * c;
                for j in 0..c {
                    grad[base + j] += f64::from(x) * delta[j];
                }
            }
            for (k, &x) in z.iter().enumerate() {
                let base = sparse_len + k * c;
                for j in 0..c {
                    grad[base + j] += x * delta[j];
                }
            }
            for j in 0..c {
                grad[sparse_len + dense_len + j] += delta[j];
            }
        }
        for (g, p) in grad.iter_mut().zip(&params).take(sparse_len + dense_len) {
            *g += options.l2 * p;
        }
        let (bias1, bias2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
        for i in 0..params.len() {
            m[i] = beta1 * m[i] + (1.0 - beta1) * grad[i];
            v[i] = beta2 * v[i] + (1.0 - beta2) * grad[i] * grad[i];
            params[i] -= options.learning_rate * (m[i] / bias1) / ((v[i] / bias2).sqrt() + eps);
        }
    }
    // Fold the standardisation: w' = w / std, b' = b − Σ mean · w'.
    let sparse_weight: Vec<f32> = params[..sparse_len].iter().map(|&p| p as f32).collect();
    let mut bias: Vec<f64> = params[sparse_len + dense_len..].to_vec();
    let mut dense_weight = vec![0.0f32; dense_len];
    for k in 0..dense_dim {
        for j in 0..c {
            let w = params[sparse_len + k * c + j] / std[k];
            dense_weight[k * c + j] = w as f32;
            bias[j] -= mean[k] * w;
        }
    }
    Ok(Logistic {
        sparse_dim,
        dense_dim,
        classes,
        sparse_weight,
        dense_weight,
        bias: bias.into_iter().map(|b| b as f32).collect(),
    })
}

/// An image's text as the text model's input: hashed n-grams (sparse) and layout measures (dense).
/// OCR that failed or was not run gives the empty text's row (all zero).
pub fn text_row(text: Option<&OcrText>, featurizer: &TextFeaturizer) -> MixedRow {
    match text {
        Some(text) => MixedRow { sparse: featurizer.sparse(text), dense: text.layout().vector().to_vec() },
        None => MixedRow { sparse: Vec::new(), dense: vec![0.0; LAYOUT_FEATURES] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_sparse_and_a_dense_signal_and_takes_raw_inputs() {
        // Class 1 when sparse feature 3 is on, or when the dense value is large (around 100).
        let rows: Vec<MixedRow> = (0..200)
            .map(|i| {
                let spam = i % 2 == 1;
                let sparse = if spam && i % 4 == 1 { vec![(3, 1.0)] } else { vec![(i as u32 % 3 + 5, 1.0)] };
                let dense = vec![if spam && i % 4 == 3 { 110.0 } else { 90.0 + (i % 5) as f32 }];
                MixedRow { sparse, dense }
            })
            .collect();
        let labels: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let refs: Vec<&MixedRow> = rows.iter().collect();
        let model = fit_logistic(&refs, &labels, 8, 1, 2, &LogisticOptions::TEXT).unwrap();
        let correct = rows
            .iter()
            .zip(&labels)
            .filter(|&(r, &l)| {
                let p = softmax(&model.logits(r));
                (p[1] > 0.5) == (l == 1)
            })
            .count();
        assert!(correct >= 190, "{correct}/200");
        assert!(model.sparse_weight[3 * 2 + 1] > model.sparse_weight[3 * 2], "feature 3 points to class 1");
        let mut scaled = model.clone();
        scaled.scale_logits(2.0);
        let (a, b) = (model.logits(&rows[1]), scaled.logits(&rows[1]));
        assert!((a[1] - a[0] - 2.0 * (b[1] - b[0])).abs() < 1e-4);
        assert_eq!(model.parameter_count(), 8 * 2 + 2 + 2);
    }

    #[test]
    fn bad_input_is_refused() {
        let row = MixedRow { sparse: vec![(9, 1.0)], dense: vec![] };
        assert!(fit_logistic(&[&row], &[0], 8, 0, 2, &LogisticOptions::TEXT).is_err());
        let row = MixedRow { sparse: vec![], dense: vec![] };
        assert!(fit_logistic(&[&row], &[2], 8, 0, 2, &LogisticOptions::TEXT).is_err());
        assert!(fit_logistic(&[], &[], 8, 0, 2, &LogisticOptions::TEXT).is_err());
    }
}
