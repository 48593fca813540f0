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
/// [`META_KIND`] of a head-only graph.
pub const KIND_HEAD: &str = "head";
/// [`META_KIND`] of a backbone + head graph.
pub const KIND_COMBINED: &str = "combined";
/// The output every spamlens classifier graph has: class probabilities `[N, classes]`.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

/// Preprocessing contracts a runtime can honour, by their [`Preprocessing::describe`] string.
const KNOWN_PREPROCESSING: [Preprocessing; 1] = [Preprocessing::RESNET_IMAGENET];

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
        let preprocessing = KNOWN_PREPROCESSING.into_iter().find(|p| p.describe() == declared).ok_or_else(|| {
            signature(format!(
                "preprocessing '{declared}' is not one this runtime implements (known: {})",
                KNOWN_PREPROCESSING.iter().map(Preprocessing::describe).collect::<Vec<_>>().join(" | ")
            ))
        })?;
        let crop = preprocessing.crop as usize;
        if model.input_dims() != [3, crop, crop] {
            return Err(signature(format!(
                "input is {:?}, the preprocessing gives [3, {crop}, {crop}]",
                model.input_dims()
            )));
        }
        Ok(Classifier { model, labels, preprocessing, limits: DecodeLimits::default() })
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
                let best = row.iter().enumerate().fold(0, |best, (i, &p)| if p > row[best] { i } else { best });
                (self.labels[best].clone(), self.labels.iter().cloned().zip(row.iter().copied()).collect())
            })
            .collect();
        if rows.len() != batch {
            return Err(mismatch(format!("{} rows of probabilities for a batch of {batch}", rows.len())));
        }
        Ok(rows)
    }
}
