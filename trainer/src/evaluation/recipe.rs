//! A head recipe (how a head is trained and its operating point chosen) and fitting it on the
//! training folds: validation split, training, temperature, spam threshold.

use serde::Serialize;

use crate::error::Result;
use crate::head::{HeadWeights, LabelledFeatures, NoTrainProgress, Split, TrainDevice, TrainOptions};
use crate::operating_point::{fit_temperature, threshold_for_false_positive_rate};

use super::groups::group_kfold;
use super::*;

/// How a head is trained and its operating point chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    /// Training hyper-parameters (early stopping, if set, watches the validation part).
    pub train: TrainOptions,
    /// The validation part is one of this many group-aware folds of the training rows.
    pub validation_folds: usize,
    /// Fit a temperature on the validation part (calibrated probabilities).
    pub calibrate: bool,
    /// Target ham→spam false-positive rate for the spam threshold (on validation ham).
    pub target_false_positive_rate: f64,
    /// Heads trained with seeds `seed, seed + 1, …` on the same split and merged into one head
    /// whose logits are their mean ([`HeadWeights::average_logits`]); 1: a single head.
    pub ensemble: usize,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            train: TrainOptions::default(),
            validation_folds: 5,
            calibrate: true,
            target_false_positive_rate: 0.01,
            ensemble: 1,
        }
    }
}

/// What [`fit_recipe`] made.
#[derive(Debug, Clone)]
pub struct FittedHead {
    /// The head, temperature already folded into its last layer.
    pub weights: HeadWeights,
    /// The fitted temperature (1 without calibration).
    pub temperature: f32,
    /// The spam threshold (`None` when the task has no spam and ham classes).
    pub spam_threshold: Option<f32>,
    /// The epoch kept (the members' mean, rounded, for an ensemble).
    pub best_epoch: usize,
    /// Rows trained on / used for validation.
    pub train_rows: usize,
    /// See `train_rows`.
    pub validation_rows: usize,
    /// Validation ham→spam false-positive rate at the threshold.
    pub validation_false_positive_rate: Option<f64>,
}

/// Trains a head on `rows` of `data` with `recipe`: a group-aware validation part is held out of
/// `rows` (`groups[i]` is row `i`'s group, indexed like `data`), then calibration and the
/// threshold are fitted on it.
pub fn fit_recipe(
    data: &LabelledFeatures,
    rows: &[usize],
    groups: &[usize],
    recipe: &Recipe,
    device: TrainDevice,
    seed: u64,
) -> Result<FittedHead> {
    let split = validation_split(data, rows, groups, recipe.validation_folds, seed)?;
    fit_recipe_on_split(data, &split, recipe, device)
}

/// The group-aware validation part of `rows` (`split.test`, one of `validation_folds` folds) and
/// the rest (`split.train`); the same for the same seed.
pub fn validation_split(
    data: &LabelledFeatures,
    rows: &[usize],
    groups: &[usize],
    validation_folds: usize,
    seed: u64,
) -> Result<Split> {
    let labels: Vec<usize> = rows.iter().map(|&r| data.labels[r]).collect();
    let row_groups: Vec<usize> = rows.iter().map(|&r| groups[r]).collect();
    let inner = group_kfold(&labels, &row_groups, data.classes.len(), validation_folds.max(2), seed)?;
    Ok(Split {
        train: rows.iter().zip(&inner).filter(|(_, f)| **f != 0).map(|(r, _)| *r).collect(),
        test: rows.iter().zip(&inner).filter(|(_, f)| **f == 0).map(|(r, _)| *r).collect(),
    })
}

/// [`fit_recipe`] on a given split: trains on `split.train`, calibrates and sets the threshold on
/// `split.test` (the validation part).
pub fn fit_recipe_on_split(
    data: &LabelledFeatures,
    split: &Split,
    recipe: &Recipe,
    device: TrainDevice,
) -> Result<FittedHead> {
    let mut members = Vec::with_capacity(recipe.ensemble.max(1));
    let mut epochs = Vec::with_capacity(recipe.ensemble.max(1));
    for member in 0..recipe.ensemble.max(1) as u64 {
        let options = TrainOptions { seed: recipe.train.seed.wrapping_add(member), ..recipe.train.clone() };
        let outcome = crate::head::train(data, split, &options, device, &mut NoTrainProgress)?;
        epochs.push(outcome.best_epoch);
        members.push(outcome.weights);
    }
    let mut weights = HeadWeights::average_logits(&members)?;
    let validation = data.gather(&split.test);
    let validation_labels = data.gather_labels(&split.test);
    let classes = data.classes.len();
    let temperature = if recipe.calibrate {
        fit_temperature(&weights.log_probabilities(&validation), &validation_labels, classes)
    } else {
        1.0
    };
    weights.scale_logits(temperature);
    let (spam_threshold, validation_false_positive_rate) = spam_threshold(
        &data.classes,
        &weights.probabilities(&validation),
        &validation_labels,
        recipe.target_false_positive_rate,
    );
    Ok(FittedHead {
        weights,
        temperature,
        spam_threshold,
        best_epoch: (epochs.iter().sum::<usize>() as f64 / epochs.len().max(1) as f64).round() as usize,
        train_rows: split.train.len(),
        validation_rows: split.test.len(),
        validation_false_positive_rate,
    })
}

/// The spam threshold for at most `target_fp` ham→spam false positives on labelled rows of
/// probabilities (`classes` per row), and the rate it gives there; `None` without spam and ham.
pub fn spam_threshold(
    class_names: &[String],
    probabilities: &[f32],
    labels: &[usize],
    target_fp: f64,
) -> (Option<f32>, Option<f64>) {
    let classes = class_names.len();
    let spam = class_names.iter().position(|c| c == SPAM);
    let ham = class_names.iter().position(|c| c == HAM);
    let (Some(spam), Some(ham)) = (spam, ham) else { return (None, None) };
    let ham_scores: Vec<f32> =
        probabilities.chunks_exact(classes).zip(labels).filter(|(_, l)| **l == ham).map(|(p, _)| p[spam]).collect();
    let t = threshold_for_false_positive_rate(&ham_scores, target_fp, 0.5);
    let fp = ham_scores.iter().filter(|&&s| s >= t).count() as f64 / ham_scores.len().max(1) as f64;
    (Some(t), Some(fp))
}
