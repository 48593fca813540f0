//! A fused head: the image head (over backbone features), a text model (over the OCR text's hashed
//! n-grams and layout measures) and a fusion layer over both models' log-probabilities alone. The
//! layout measures stay inside the text model: fed to the fusion too, they let it call a scanned
//! form that OCR misread as a few symbols spam when the image and the text models both said ham.
//!
//! Fitting ([`fit_fused`]) splits the training rows once, by near-duplicate groups, into a training
//! part and a validation part. The image head and the text model learn on the training part; on the
//! validation part (data neither has seen) the image head is calibrated and thresholded as on its
//! own ([`fit_recipe_on_split`]), the text model is calibrated and thresholded for its own
//! text-only output, and the fusion layer is fitted, then thresholded for the target ham→spam
//! false-positive rate. The three outputs are what the exported graph gives: fused (the decision
//! when the image's text was read), image-only (when it was not), text-only (reported).

use serde::Serialize;
use spamlens_core::ocr::{LAYOUT_FEATURES, OcrContract, TextFeaturizer};
use spamlens_model::{DenseLayer, TextGraph};

use crate::error::{Result, TrainerError};
use crate::evaluation::{FittedHead, Recipe, SPAM, fit_recipe_on_split, spam_threshold, validation_split};
use crate::head::{LabelledFeatures, TrainDevice};
use crate::operating_point::fit_temperature;
use crate::text_model::{Logistic, LogisticOptions, MixedRow, fit_logistic, softmax};

/// How the text side of a fused head is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TextRecipe {
    /// How text becomes input.
    pub featurizer: TextFeaturizer,
    /// The text model's fit.
    pub text: LogisticOptions,
    /// The fusion layer's fit.
    pub fusion: LogisticOptions,
}

impl Default for TextRecipe {
    fn default() -> Self {
        TextRecipe { featurizer: TextFeaturizer::V1, text: LogisticOptions::TEXT, fusion: LogisticOptions::FUSION }
    }
}

pub use spamlens_model::fusion_inputs;

/// A trained fused head.
#[derive(Debug, Clone)]
pub struct FusedHead {
    /// The image head (temperature folded in) with its own threshold.
    pub image: FittedHead,
    /// The text model: raw logits over `[n-grams | layout]`.
    pub text: Logistic,
    /// The text model's calibration (for the text-only output only; the fusion takes raw logits).
    pub text_temperature: f32,
    /// The text-only output's spam threshold.
    pub text_threshold: Option<f32>,
    /// The fusion layer over `[image log-p | text log-p]`.
    pub fusion: Logistic,
    /// The fused output's spam threshold (the model's operating point when text is read).
    pub fused_threshold: Option<f32>,
    /// Validation ham→spam false-positive rate of the fused output at its threshold.
    pub fused_validation_false_positive_rate: Option<f64>,
    /// How text becomes input.
    pub featurizer: TextFeaturizer,
}

/// The three outputs of a fused head for one image, before the softmax (their softmax is the
/// graph's output; the logits still rank images whose probabilities round to 0 or 1 in f32).
#[derive(Debug, Clone, PartialEq)]
pub struct FusedLogits {
    /// The fusion layer's (decides when the text was read).
    pub fused: Vec<f32>,
    /// The calibrated image head's (decides when it was not).
    pub image: Vec<f32>,
    /// The calibrated text model's.
    pub text: Vec<f32>,
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    softmax(logits).into_iter().map(|p| p.max(1e-30).ln()).collect()
}

impl FusedHead {
    /// The text side as the exported graph holds it, with the OCR contract it was trained under.
    pub fn text_graph(&self, contract: OcrContract, labels: &[String]) -> TextGraph {
        let dense = |l: &Logistic| {
            let mut weight = l.sparse_weight.clone();
            weight.extend_from_slice(&l.dense_weight);
            DenseLayer { inputs: l.sparse_dim + l.dense_dim, outputs: l.classes, weight, bias: l.bias.clone() }
        };
        let spam = |t: Option<f32>| -> Vec<(String, f32)> {
            t.filter(|_| labels.iter().any(|l| l == SPAM)).map(|t| (SPAM.to_owned(), t)).into_iter().collect()
        };
        TextGraph {
            text: dense(&self.text),
            text_temperature: self.text_temperature,
            fusion: dense(&self.fusion),
            contract,
            image_thresholds: spam(self.image.spam_threshold),
            text_thresholds: spam(self.text_threshold),
        }
    }

    /// The fusion layer's input for one image: image log-probabilities (from the calibrated image
    /// head), then text log-probabilities (raw text model).
    pub fn fusion_row(image_log_probabilities: &[f32], text_logits: &[f32]) -> MixedRow {
        let mut dense = image_log_probabilities.to_vec();
        dense.extend(log_softmax(text_logits));
        MixedRow { sparse: Vec::new(), dense }
    }

    /// The three outputs for one image's features and text row, computed as the graph does.
    pub fn logits(&self, features: &[f32], text: &MixedRow) -> FusedLogits {
        let image = self.image.weights.logits(features);
        let text_logits = self.text.logits(text);
        let fused = self.fusion.logits(&Self::fusion_row(&log_softmax(&image), &text_logits));
        FusedLogits { fused, image, text: text_logits.iter().map(|z| z / self.text_temperature).collect() }
    }

    /// The text model with its calibration folded in (the graph's text-only output).
    pub fn calibrated_text(&self) -> Logistic {
        let mut text = self.text.clone();
        text.scale_logits(self.text_temperature);
        text
    }

    /// The OCR contract of a model made from this head with text read by `engine`.
    pub fn contract(&self, engine: &spamlens_core::ocr::EngineIdentity) -> OcrContract {
        OcrContract::new(engine, &spamlens_core::ocr::OcrImageSpec::V1, &self.featurizer)
    }
}

/// Trains a fused head on `rows` of `data` (`texts[i]` is row `i`'s text input, `groups[i]` its
/// near-duplicate group); see the module docs.
#[allow(clippy::too_many_arguments)]
pub fn fit_fused(
    data: &LabelledFeatures,
    texts: &[MixedRow],
    rows: &[usize],
    groups: &[usize],
    recipe: &Recipe,
    text_recipe: &TextRecipe,
    device: TrainDevice,
    seed: u64,
) -> Result<FusedHead> {
    if texts.len() != data.len() {
        return Err(TrainerError::Metrics(format!("{} text rows for {} feature rows", texts.len(), data.len())));
    }
    let split = validation_split(data, rows, groups, recipe.validation_folds, seed)?;
    let image = fit_recipe_on_split(data, &split, recipe, device)?;
    let classes = data.classes.len();
    let buckets = text_recipe.featurizer.buckets as usize;

    let train_texts: Vec<&MixedRow> = split.train.iter().map(|&r| &texts[r]).collect();
    let train_labels = data.gather_labels(&split.train);
    let text = fit_logistic(&train_texts, &train_labels, buckets, LAYOUT_FEATURES, classes, &text_recipe.text)?;

    let validation_labels = data.gather_labels(&split.test);
    let validation_text_logits: Vec<Vec<f32>> = split.test.iter().map(|&r| text.logits(&texts[r])).collect();
    let flat: Vec<f32> = validation_text_logits.iter().flatten().copied().collect();
    let text_temperature = fit_temperature(&flat, &validation_labels, classes);
    let text_probabilities: Vec<f32> = validation_text_logits
        .iter()
        .flat_map(|z| softmax(&z.iter().map(|v| v / text_temperature).collect::<Vec<_>>()))
        .collect();
    let (text_threshold, _) =
        spam_threshold(&data.classes, &text_probabilities, &validation_labels, recipe.target_false_positive_rate);

    let fusion_rows: Vec<MixedRow> = split
        .test
        .iter()
        .zip(&validation_text_logits)
        .map(|(&r, text_logits)| {
            let image_log: Vec<f32> = image.weights.log_probabilities(data.row(r));
            FusedHead::fusion_row(&image_log, text_logits)
        })
        .collect();
    let fusion_refs: Vec<&MixedRow> = fusion_rows.iter().collect();
    let fusion =
        fit_logistic(&fusion_refs, &validation_labels, 0, fusion_inputs(classes), classes, &text_recipe.fusion)?;
    let fused_probabilities: Vec<f32> = fusion_rows.iter().flat_map(|row| softmax(&fusion.logits(row))).collect();
    let (fused_threshold, fused_validation_false_positive_rate) =
        spam_threshold(&data.classes, &fused_probabilities, &validation_labels, recipe.target_false_positive_rate);
    Ok(FusedHead {
        image,
        text,
        text_temperature,
        text_threshold,
        fusion,
        fused_threshold,
        fused_validation_false_positive_rate,
        featurizer: text_recipe.featurizer,
    })
}
