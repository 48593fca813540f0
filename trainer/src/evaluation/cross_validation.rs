//! Group-aware k-fold cross-validation of a recipe on one task, the pooled out-of-fold scores and
//! the metrics computed from them.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Result, TrainerError};
use crate::head::{LabelledFeatures, TrainDevice};
use crate::metrics::{ConfusionMatrix, MetricsSummary};
use crate::operating_point::Curves;

use super::groups::group_kfold;
use super::*;

/// A cross-validation request.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    /// Number of outer folds.
    pub folds: usize,
    /// Seeds the folds (the recipe's own seed seeds the weights).
    pub seed: u64,
    /// The recipe under test.
    pub recipe: Recipe,
    /// Whether the image's own size and format were appended to its features.
    pub image_signals: bool,
    /// The text side, when the images' OCR text is evaluated too (image, text and fused models).
    pub text: Option<crate::fusion::TextRecipe>,
}

/// Metrics of one task, from the pooled out-of-fold scores.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// The task.
    pub task: TaskSpec,
    /// Which model's scores: `image` (the image head), `text` (OCR text alone) or `fused`.
    pub model: String,
    /// When the numbers are read off another task's cross-validation (a model trained on all the
    /// data, scored on this part of it): that task's name.
    pub trained_on: Option<String>,
    /// Rows per class, in `classes` order.
    pub counts: Vec<usize>,
    /// Class names.
    pub classes: Vec<String>,
    /// Near-duplicate groups among the task's rows.
    pub groups: usize,
    /// Labels at the most probable class.
    pub at_argmax: MetricsSummary,
    /// Labels at each fold's own spam threshold (the deployable operating point).
    pub at_threshold: Option<MetricsSummary>,
    /// Each fold's spam threshold.
    pub fold_thresholds: Vec<f32>,
    /// Each fold's temperature.
    pub fold_temperatures: Vec<f32>,
    /// Each fold's kept epoch.
    pub fold_epochs: Vec<usize>,
    /// Spam recall at ≤ 1% ham→spam false positives (best threshold on the pooled scores).
    pub recall_at_fp_1pct: Option<f64>,
    /// Spam recall at ≤ 0.1% ham→spam false positives.
    pub recall_at_fp_01pct: Option<f64>,
    /// ROC and precision–recall curves of the spam score (spam vs ham rows).
    #[serde(skip)]
    pub curves: Option<Curves>,
    /// Area under the ROC curve.
    pub roc_auc: Option<f64>,
    /// Average precision.
    pub average_precision: Option<f64>,
    /// Seconds spent.
    pub seconds: f64,
    /// The out-of-fold scores (kept for [`sub_result`]).
    #[serde(skip)]
    pub scores: Option<OutOfFold>,
}

impl TaskResult {
    /// The task's name, with "(trained on …)" when read off another task's cross-validation.
    pub fn display_name(&self) -> String {
        match &self.trained_on {
            Some(whole) => format!("{} (trained on {whole})", self.task.name),
            None => self.task.name.clone(),
        }
    }
}

/// A task's pool rows, their training data, near-duplicate groups and outer fold of each row.
pub(crate) struct TaskFolds {
    pub rows: Vec<usize>,
    pub data: LabelledFeatures,
    /// The rows' scoring features ([`Pool::scoring_labelled`]), if they differ from `data`.
    pub scoring: Option<LabelledFeatures>,
    pub groups: Vec<usize>,
    pub folds: Vec<usize>,
}

impl TaskFolds {
    /// What held-out rows are scored with: the training features, then the scoring features if
    /// the pool has them ([`Pool::view_model_name`] names the results of each).
    pub fn views(&self) -> Vec<&LabelledFeatures> {
        std::iter::once(&self.data).chain(self.scoring.as_ref()).collect()
    }

    /// The rows (indices into `data`) one outer fold trains on and the rows it holds out.
    pub fn split_rows(&self, fold: usize) -> (Vec<usize>, Vec<usize>) {
        (0..self.folds.len()).partition(|&r| self.folds[r] != fold)
    }
}

/// Splits one task into group-aware outer folds; a task of fewer than two classes is refused.
pub(crate) fn task_folds(pool: &Pool, task: &TaskSpec, cv: &CrossValidation) -> Result<TaskFolds> {
    let rows = pool.task_rows(task)?;
    let data = pool.labelled(&rows);
    if data.classes.len() < 2 {
        return Err(TrainerError::Dataset {
            path: PathBuf::new(),
            reason: format!("task '{}' has {} class(es); it needs two", task.name, data.classes.len()),
        });
    }
    let groups: Vec<usize> = rows.iter().map(|&r| pool.rows[r].group).collect();
    let folds = group_kfold(&data.labels, &groups, data.classes.len(), cv.folds, cv.seed)?;
    let scoring = pool.scoring_labelled(&rows);
    Ok(TaskFolds { rows, data, scoring, groups, folds })
}

/// Runs group-aware k-fold cross-validation of `cv.recipe` on one task. `progress` is told each
/// finished fold. With scoring features ([`Pool::with_scoring_features`]) see
/// [`cross_validate_views`]; this returns the training features' result.
pub fn cross_validate(
    pool: &Pool,
    task: &TaskSpec,
    cv: &CrossValidation,
    device: TrainDevice,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TaskResult> {
    let mut results = cross_validate_views(pool, task, cv, device, progress)?;
    Ok(results.swap_remove(0))
}

/// [`cross_validate`], scoring each held-out row with every feature view the pool has: the
/// training features (model [`MODEL_IMAGE`]) and, when loaded, the scoring features (model
/// `image (<label>)`), by the same fitted heads, so the two differ only by the features.
pub fn cross_validate_views(
    pool: &Pool,
    task: &TaskSpec,
    cv: &CrossValidation,
    device: TrainDevice,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<TaskResult>> {
    let started = std::time::Instant::now();
    let split = task_folds(pool, task, cv)?;
    let views = split.views();
    let TaskFolds { rows, data, groups, .. } = &split;
    let classes = data.classes.len();
    let mut probabilities = vec![vec![0.0f32; data.len() * classes]; views.len()];
    let mut threshold_of_row = vec![None; data.len()];
    let (mut fold_thresholds, mut fold_temperatures, mut fold_epochs) = (Vec::new(), Vec::new(), Vec::new());
    for fold in 0..cv.folds {
        let (train_rows, test_rows) = split.split_rows(fold);
        let fitted = fit_recipe(data, &train_rows, groups, &cv.recipe, device, cv.seed.wrapping_add(fold as u64 + 1))?;
        for (view, out) in views.iter().zip(&mut probabilities) {
            let p = fitted.weights.probabilities(&view.gather(&test_rows));
            for (i, &r) in test_rows.iter().enumerate() {
                out[r * classes..(r + 1) * classes].copy_from_slice(&p[i * classes..(i + 1) * classes]);
            }
        }
        for &r in &test_rows {
            threshold_of_row[r] = fitted.spam_threshold;
        }
        fold_thresholds.extend(fitted.spam_threshold);
        fold_temperatures.push(fitted.temperature);
        fold_epochs.push(fitted.best_epoch);
        progress(fold + 1, cv.folds);
    }
    let group_count = groups.iter().collect::<HashSet<_>>().len();
    let mut results = Vec::with_capacity(views.len());
    for (index, probabilities) in probabilities.into_iter().enumerate() {
        let scores = OutOfFold {
            pool_rows: rows.clone(),
            labels: data.labels.clone(),
            probabilities,
            thresholds: threshold_of_row.clone(),
            spam_log_odds: None,
        };
        let mut result = summarise(task, &data.classes, &scores, group_count)?;
        result.model = pool.view_model_name(MODEL_IMAGE, index);
        result.fold_thresholds = fold_thresholds.clone();
        result.fold_temperatures = fold_temperatures.clone();
        result.fold_epochs = fold_epochs.clone();
        result.seconds = started.elapsed().as_secs_f64();
        result.scores = Some(scores);
        results.push(result);
    }
    Ok(results)
}

/// The out-of-fold scores of a cross-validation: every row scored by the head of the fold that
/// did not train on it, with that fold's spam threshold.
#[derive(Debug, Clone)]
pub struct OutOfFold {
    /// Pool row of each scored row.
    pub pool_rows: Vec<usize>,
    /// Class index of each row (the task's class order).
    pub labels: Vec<usize>,
    /// Probabilities, row-major.
    pub probabilities: Vec<f32>,
    /// The spam threshold of the fold that scored each row.
    pub thresholds: Vec<Option<f32>>,
    /// Spam log-odds of each row, when the model's logits were kept: the ROC and precision–recall
    /// curves rank by them, because confident rows' probabilities round to exactly 1 in f32 and
    /// would tie ham with spam at the strictest thresholds.
    pub spam_log_odds: Option<Vec<f32>>,
}

/// Spam log-odds of one row of logits: the spam logit against the log-sum-exp of the others.
pub(crate) fn spam_log_odds(logits: &[f32], spam: usize) -> f32 {
    let others = logits.iter().enumerate().filter(|&(c, _)| c != spam).map(|(_, &z)| z);
    let max = others.clone().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return f32::INFINITY;
    }
    logits[spam] - (max + others.map(|z| (z - max).exp()).sum::<f32>().ln())
}

/// The metrics of `task` read off another task's out-of-fold scores (the rows they share): how a
/// model trained on everything does on each part of it.
pub fn sub_result(pool: &Pool, whole: &TaskResult, task: &TaskSpec) -> Result<TaskResult> {
    let scores = whole.scores.as_ref().ok_or_else(|| TrainerError::Metrics("no out-of-fold scores kept".into()))?;
    let wanted: HashSet<usize> = pool.task_rows(task)?.into_iter().collect();
    let keep: Vec<usize> = (0..scores.pool_rows.len()).filter(|&i| wanted.contains(&scores.pool_rows[i])).collect();
    let classes = whole.classes.len();
    let subset = OutOfFold {
        pool_rows: keep.iter().map(|&i| scores.pool_rows[i]).collect(),
        labels: keep.iter().map(|&i| scores.labels[i]).collect(),
        probabilities: keep
            .iter()
            .flat_map(|&i| scores.probabilities[i * classes..(i + 1) * classes].to_vec())
            .collect(),
        thresholds: keep.iter().map(|&i| scores.thresholds[i]).collect(),
        spam_log_odds: scores.spam_log_odds.as_ref().map(|odds| keep.iter().map(|&i| odds[i]).collect()),
    };
    let groups = subset.pool_rows.iter().map(|&r| pool.rows[r].group).collect::<HashSet<_>>().len();
    let mut result = summarise(task, &whole.classes, &subset, groups)?;
    result.trained_on = Some(whole.task.name.clone());
    result.model = whole.model.clone();
    Ok(result)
}

pub(crate) fn summarise(
    task: &TaskSpec,
    class_names: &[String],
    scores: &OutOfFold,
    groups: usize,
) -> Result<TaskResult> {
    let classes = class_names.len();
    let names: Vec<&str> = class_names.iter().map(String::as_str).collect();
    let argmax = crate::head::inference::argmax_rows(&scores.probabilities, classes);
    let at_argmax = ConfusionMatrix::from_predictions(&names, &scores.labels, &argmax)?.summary();
    let spam = class_names.iter().position(|c| c == SPAM);
    let ham = class_names.iter().position(|c| c == HAM);
    let (mut at_threshold, mut curves) = (None, None);
    if let (Some(spam), Some(ham)) = (spam, ham) {
        let decided: Vec<usize> = scores
            .probabilities
            .chunks_exact(classes)
            .zip(&scores.thresholds)
            .map(|(row, t)| {
                let thresholds: Vec<(usize, f32)> = t.iter().map(|&t| (spam, t)).collect();
                spamlens_core::classifier::decide(row, &thresholds)
            })
            .collect();
        at_threshold = Some(ConfusionMatrix::from_predictions(&names, &scores.labels, &decided)?.summary());
        let binary: Vec<usize> =
            (0..scores.labels.len()).filter(|&r| scores.labels[r] == spam || scores.labels[r] == ham).collect();
        let spam_scores: Vec<f32> = match &scores.spam_log_odds {
            Some(odds) => binary.iter().map(|&r| odds[r]).collect(),
            None => binary.iter().map(|&r| scores.probabilities[r * classes + spam]).collect(),
        };
        let is_spam: Vec<bool> = binary.iter().map(|&r| scores.labels[r] == spam).collect();
        curves = Some(Curves::new(&spam_scores, &is_spam));
    }
    let mut counts = vec![0; classes];
    scores.labels.iter().for_each(|&l| counts[l] += 1);
    Ok(TaskResult {
        task: task.clone(),
        model: MODEL_IMAGE.to_owned(),
        trained_on: None,
        counts,
        classes: class_names.to_vec(),
        groups,
        at_argmax,
        at_threshold,
        fold_thresholds: Vec::new(),
        fold_temperatures: Vec::new(),
        fold_epochs: Vec::new(),
        recall_at_fp_1pct: curves.as_ref().map(|c| c.recall_at_false_positive_rate(0.01)),
        recall_at_fp_01pct: curves.as_ref().map(|c| c.recall_at_false_positive_rate(0.001)),
        roc_auc: curves.as_ref().map(|c| c.roc_auc),
        average_precision: curves.as_ref().map(|c| c.average_precision),
        curves,
        scores: None,
        seconds: 0.0,
    })
}
