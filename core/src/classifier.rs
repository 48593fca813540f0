//! A spam classifier: a combined spamlens graph (backbone + head) with its contract read from the
//! model's `metadata_props`, turning image bytes into a label and class probabilities.
//!
//! The contract keys are defined here, once, so the trainer that writes them and both runtimes that
//! read them cannot drift apart.

use crate::decode::{DecodeLimits, ImageFormatName};
use crate::error::{Error, Result};
use crate::model::{Batching, Model, ModelOptions};
use crate::preprocess::Preprocessing;

/// Metadata key: `head` (features in) or `combined` (image tensor in).
pub const META_KIND: &str = "spamlens.kind";
/// Metadata key: class names in output order, comma-separated.
pub const META_LABELS: &str = "spamlens.labels";
/// Metadata key: the preprocessing contract ([`Preprocessing::describe`]) of the graph's input.
pub const META_PREPROCESSING: &str = "spamlens.preprocessing";
/// Metadata key: sha256 of the backbone inside a combined graph.
pub const META_BACKBONE_SHA256: &str = "spamlens.backbone_sha256";
/// Metadata key: what the head was trained on (`spamlens-backbone` or `emailcz-v1`).
pub const META_FEATURE_SOURCE: &str = "spamlens.feature_source";
/// Metadata key: sha256 of the backbone whose features trained the head (empty for Email.cz).
pub const META_FEATURE_BACKBONE_SHA256: &str = "spamlens.feature_backbone_sha256";
/// Metadata key: the head's shape, e.g. `2048 → 2048 ReLU → 2 softmax`.
pub const META_HEAD: &str = "spamlens.head";
/// Metadata key: the training data summary (JSON).
pub const META_TRAINING: &str = "spamlens.training";
/// Metadata key: the held-out metrics (JSON).
pub const META_METRICS: &str = "spamlens.metrics";
/// Metadata key: the spamlens version that wrote the graph.
pub const META_VERSION: &str = "spamlens.version";
/// Metadata key: when the graph was written (RFC 3339, UTC).
pub const META_CREATED: &str = "spamlens.created";
/// Metadata key: precision of the head's stored weights (`f32` or `f16`).
pub const META_PRECISION: &str = "spamlens.precision";
/// Metadata key: the operating point, `class=threshold` pairs (e.g. `spam=0.874`): a class whose
/// (calibrated) probability reaches its threshold is the label; otherwise the most probable of
/// the classes without one. Chosen by the trainer for a target ham→spam false-positive rate.
pub const META_THRESHOLDS: &str = "spamlens.thresholds";
/// Metadata key: how the thresholds were chosen and what they gave on validation data (JSON).
pub const META_OPERATING_POINT: &str = "spamlens.operating_point";
/// [`META_KIND`] of a head-only graph.
pub const KIND_HEAD: &str = "head";
/// [`META_KIND`] of a backbone + head graph.
pub const KIND_COMBINED: &str = "combined";
/// The output every spamlens classifier graph has: class probabilities `[N, classes]`.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

/// The most probable class and every `(class, probability)` in the model's class order.
pub type Scores = (String, Vec<(String, f32)>);

/// One image's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The most probable class.
    pub label: String,
    /// `(class, probability)` in the model's class order.
    pub probabilities: Vec<(String, f32)>,
    /// Decoded width in pixels.
    pub width: u32,
    /// Decoded height in pixels.
    pub height: u32,
    /// Detected image format.
    pub format: ImageFormatName,
}

impl Verdict {
    /// The probability of `class`, if the model has it.
    pub fn probability(&self, class: &str) -> Option<f32> {
        self.probabilities.iter().find(|(c, _)| c == class).map(|(_, p)| *p)
    }
}

/// A loaded combined model and the contract it declares.
#[derive(Debug)]
pub struct Classifier {
    model: Model,
    labels: Vec<String>,
    thresholds: Vec<(usize, f32)>,
    preprocessing: Preprocessing,
    limits: DecodeLimits,
}

impl Classifier {
    /// Loads a combined graph (`spamlens.kind = combined`) from `bytes`, called `name` in errors,
    /// and checks its contract: labels, a known preprocessing, an image input, a `probabilities`
    /// output with one value per label.
    pub fn from_bytes(bytes: &[u8], name: &str, options: &ModelOptions) -> Result<Self> {
        let options = ModelOptions {
            outputs: Some(vec![PROBABILITIES_OUTPUT.to_owned()]),
            // A convolutional backbone runs fastest one image per plan on CPU (see `Batching`).
            batching: Batching::PerItem,
            ..options.clone()
        };
        let signature = |reason: String| Error::ModelSignature { model: name.to_owned(), reason };
        let model = Model::from_bytes(bytes, name, &options).map_err(|e| match e {
            Error::NoSuchOutput { available, .. } => signature(format!(
                "no '{PROBABILITIES_OUTPUT}' output (outputs: {available}); not a spamlens classifier \
                 (a plain backbone has no spam head; make a combined model with `spamlens-train train` or `export`)"
            )),
            other => other,
        })?;
        let meta = model.metadata();
        match meta.get(META_KIND).map(String::as_str) {
            Some(KIND_COMBINED) => {}
            Some(KIND_HEAD) => {
                return Err(signature(
                    "this is a head-only graph (its input is backbone features); classify needs the combined \
                     backbone + head graph, made with `spamlens-train export`"
                        .into(),
                ));
            }
            other => {
                return Err(signature(format!(
                    "metadata '{META_KIND}' is {other:?}, expected '{KIND_COMBINED}'; not a spamlens classifier \
                     (a plain backbone has no spam head)"
                )));
            }
        }
        let labels: Vec<String> = meta
            .get(META_LABELS)
            .map(|l| l.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        if labels.len() < 2 {
            return Err(signature(format!("metadata '{META_LABELS}' must name at least two classes")));
        }
        let declared = meta.get(META_PREPROCESSING).cloned().unwrap_or_default();
        let preprocessing = Preprocessing::from_description(&declared).ok_or_else(|| {
            signature(format!(
                "preprocessing '{declared}' is not one this runtime implements (known: {})",
                Preprocessing::KNOWN.iter().map(Preprocessing::describe).collect::<Vec<_>>().join(" | ")
            ))
        })?;
        let crop = preprocessing.crop as usize;
        if model.input_dims() != [3, crop, crop] {
            return Err(signature(format!(
                "input is {:?}, the preprocessing gives [3, {crop}, {crop}]",
                model.input_dims()
            )));
        }
        let thresholds = parse_thresholds(meta.get(META_THRESHOLDS).map(String::as_str).unwrap_or(""), &labels)
            .map_err(signature)?;
        Ok(Classifier { model, labels, thresholds, preprocessing, limits: DecodeLimits::default() })
    }

    /// Replaces the decode limits (defaults: [`DecodeLimits::default`]).
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Class names in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The operating point the model declares (`spamlens.thresholds`): `(class, threshold)` pairs;
    /// empty when the label is simply the most probable class.
    pub fn thresholds(&self) -> Vec<(String, f32)> {
        self.thresholds.iter().map(|&(i, t)| (self.labels[i].clone(), t)).collect()
    }

    /// The threshold of `class`, if the model declares one.
    pub fn threshold(&self, class: &str) -> Option<f32> {
        self.thresholds.iter().find(|(i, _)| self.labels[*i] == class).map(|&(_, t)| t)
    }

    /// The underlying model (metadata, sha256).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The preprocessing the model declares.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Decodes, preprocesses and classifies one image; `input` names it in errors.
    pub fn classify(&self, bytes: &[u8], input: &str) -> Result<Verdict> {
        let prepared = self.prepare(bytes, input)?;
        self.classify_prepared(prepared)
    }

    /// Decodes and preprocesses one image the way this model declares (the first half of
    /// [`Classifier::classify`]), so a caller can time or schedule the two halves apart.
    pub fn prepare(&self, bytes: &[u8], input: &str) -> Result<crate::PreparedImage> {
        crate::prepare_image(bytes, input, &self.limits, &self.preprocessing)
    }

    /// Runs the model on an image prepared by [`Classifier::prepare`] (the second half of
    /// [`Classifier::classify`]).
    pub fn classify_prepared(&self, prepared: crate::PreparedImage) -> Result<Verdict> {
        let (label, probabilities) = self.score(prepared.tensor)?;
        Ok(Verdict { label, probabilities, width: prepared.width, height: prepared.height, format: prepared.format })
    }

    /// Runs the model on one input tensor (`3 × crop × crop` floats, as [`Classifier::prepare`]
    /// makes them): the most probable class and every `(class, probability)` in model order.
    pub fn score(&self, tensor: Vec<f32>) -> Result<Scores> {
        let mut scores = self.score_batch(tensor, 1)?;
        scores.pop().ok_or_else(|| Error::Inference {
            model: self.model.name().to_owned(),
            reason: "no result for a batch of one".into(),
        })
    }

    /// Runs the model once on `batch` input tensors laid end to end (what a server's dynamic
    /// batcher collects from concurrent requests): one [`Scores`] per tensor, in order.
    pub fn score_batch(&self, tensors: Vec<f32>, batch: usize) -> Result<Vec<Scores>> {
        let probabilities = self.model.run(tensors, batch)?.take(PROBABILITIES_OUTPUT)?;
        let mismatch = |reason: String| Error::ModelSignature { model: self.model.name().to_owned(), reason };
        if probabilities.row_len() != self.labels.len() {
            return Err(mismatch(format!(
                "{} probabilities for {} labels",
                probabilities.row_len(),
                self.labels.len()
            )));
        }
        let rows: Vec<Scores> = probabilities
            .rows()
            .map(|row| {
                let best = decide(row, &self.thresholds);
                (self.labels[best].clone(), self.labels.iter().cloned().zip(row.iter().copied()).collect())
            })
            .collect();
        if rows.len() != batch {
            return Err(mismatch(format!("{} rows of probabilities for a batch of {batch}", rows.len())));
        }
        Ok(rows)
    }
}

/// The label index for one row of probabilities: the first thresholded class whose probability
/// reaches its threshold, else the most probable class without a threshold (all classes when every
/// class has one).
pub fn decide(row: &[f32], thresholds: &[(usize, f32)]) -> usize {
    if let Some(&(class, _)) = thresholds.iter().find(|&&(class, t)| row.get(class).is_some_and(|&p| p >= t)) {
        return class;
    }
    let free = |i: usize| thresholds.len() == row.len() || !thresholds.iter().any(|&(c, _)| c == i);
    let mut best: Option<usize> = None;
    for (i, &p) in row.iter().enumerate() {
        if free(i) && best.is_none_or(|b| p > row[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// Parses [`META_THRESHOLDS`] (`class=value,…`; empty means none) against the model's labels.
pub fn parse_thresholds(text: &str, labels: &[String]) -> std::result::Result<Vec<(usize, f32)>, String> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (class, value) =
            pair.split_once('=').ok_or_else(|| format!("metadata '{META_THRESHOLDS}': '{pair}' is not class=value"))?;
        let index = labels.iter().position(|l| l == class.trim()).ok_or_else(|| {
            format!("metadata '{META_THRESHOLDS}': class '{}' is not one of {}", class.trim(), labels.join(","))
        })?;
        let value: f32 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f32| (0.0..=1.0).contains(v))
            .ok_or_else(|| format!("metadata '{META_THRESHOLDS}': '{}' is not a probability", value.trim()))?;
        if out.iter().any(|&(i, _)| i == index) {
            return Err(format!("metadata '{META_THRESHOLDS}': class '{}' given twice", class.trim()));
        }
        out.push((index, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_the_label() {
        let labels: Vec<String> = ["ham", "spam"].map(String::from).to_vec();
        let t = parse_thresholds("spam=0.9", &labels).unwrap();
        assert_eq!(t, vec![(1, 0.9)]);
        assert_eq!(decide(&[0.2, 0.8], &t), 0, "0.8 < 0.9: ham");
        assert_eq!(decide(&[0.05, 0.95], &t), 1);
        assert_eq!(decide(&[0.3, 0.7], &[]), 1, "no thresholds: argmax");
        let three: Vec<String> = ["ad", "ham", "spam"].map(String::from).to_vec();
        let t = parse_thresholds("spam=0.6", &three).unwrap();
        assert_eq!(decide(&[0.5, 0.1, 0.4], &t), 0, "below threshold: best of ad/ham");
        assert!(parse_thresholds("", &labels).unwrap().is_empty());
        for bad in ["spam", "eggs=0.5", "spam=1.5", "spam=x", "spam=0.5,spam=0.6"] {
            assert!(parse_thresholds(bad, &labels).is_err(), "{bad}");
        }
    }
}
