//! Group-aware cross-validation of a fused head: in every fold one [`fit_fused`] gives the image
//! head, the text model and the fusion, so the three are compared on the same folds, the same
//! validation parts and the same held-out rows (the ablation the model card shows).

use std::collections::HashSet;
use std::path::PathBuf;

use super::{
    CrossValidation, MODEL_FUSED, MODEL_IMAGE, MODEL_TEXT, OutOfFold, Pool, TaskFolds, TaskResult, TaskSpec,
    spam_log_odds, summarise, task_folds,
};
use crate::error::{Result, TrainerError};
use crate::fusion::{TextRecipe, fit_fused};
use crate::head::TrainDevice;
use crate::text_model::{MixedRow, softmax, text_row};

/// Every row's text input, and whether OCR read it (a row it failed on decides by the image alone,
/// as a runtime does).
pub fn text_inputs(pool: &Pool, rows: &[usize], recipe: &TextRecipe) -> Result<(Vec<MixedRow>, Vec<bool>)> {
    let texts = pool.texts.as_ref().ok_or_else(|| TrainerError::Dataset {
        path: PathBuf::new(),
        reason: "no OCR text loaded for the fused evaluation".into(),
    })?;
    let inputs = rows.iter().map(|&r| text_row(texts[r].as_ref(), &recipe.featurizer)).collect();
    let read = rows.iter().map(|&r| texts[r].is_some()).collect();
    Ok((inputs, read))
}

/// Cross-validates the fused recipe on one task; returns the image, text and fused results (in
/// that order), then, when the pool has scoring features, the image and fused results of the same
/// fitted models scored with them (`image (<label>)`, `fused (<label>)`; the text model does not
/// see the image features). `progress` is told each finished fold.
pub fn cross_validate_fused(
    pool: &Pool,
    task: &TaskSpec,
    cv: &CrossValidation,
    text_recipe: &TextRecipe,
    device: TrainDevice,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<TaskResult>> {
    let started = std::time::Instant::now();
    let split = task_folds(pool, task, cv)?;
    let views = split.views();
    let TaskFolds { rows, data, groups, .. } = &split;
    let (texts, read) = text_inputs(pool, rows, text_recipe)?;
    let classes = data.classes.len();
    let n = data.len();
    // Result columns as (feature view, model kind): image, text and fused of the training
    // features, then image and fused of each other view (the text model never sees features).
    const KINDS: [&str; 3] = [MODEL_IMAGE, MODEL_TEXT, MODEL_FUSED];
    let column_of: Vec<(usize, usize)> =
        (0..3).map(|kind| (0, kind)).chain((1..views.len()).flat_map(|v| [(v, 0), (v, 2)])).collect();
    let columns = column_of.len();
    let mut probabilities = vec![vec![0.0f32; n * classes]; columns];
    let mut thresholds: Vec<Vec<Option<f32>>> = vec![vec![None; n]; columns];
    let spam = data.classes.iter().position(|c| c == super::SPAM);
    let mut log_odds = vec![vec![0.0f32; n]; columns];
    let mut fold_thresholds: [Vec<f32>; 3] = Default::default();
    let mut fold_temperatures: [Vec<f32>; 3] = Default::default();
    let mut fold_epochs = Vec::new();
    for fold in 0..cv.folds {
        let (train_rows, test_rows) = split.split_rows(fold);
        let fitted = fit_fused(
            data,
            &texts,
            &train_rows,
            groups,
            &cv.recipe,
            text_recipe,
            device,
            cv.seed.wrapping_add(fold as u64 + 1),
        )?;
        for &r in &test_rows {
            let logits: Vec<_> = views.iter().map(|view| fitted.logits(view.row(r), &texts[r])).collect();
            for (m, &(view, kind)) in column_of.iter().enumerate() {
                let of_view = &logits[view];
                let (z, threshold) = match kind {
                    0 => (&of_view.image, fitted.image.spam_threshold),
                    1 => (&of_view.text, fitted.text_threshold),
                    _ if read[r] => (&of_view.fused, fitted.fused_threshold),
                    // An image OCR failed on is decided by the image head, as at run time.
                    _ => (&of_view.image, fitted.image.spam_threshold),
                };
                probabilities[m][r * classes..(r + 1) * classes].copy_from_slice(&softmax(z));
                thresholds[m][r] = threshold;
                if let Some(spam) = spam {
                    log_odds[m][r] = spam_log_odds(z, spam);
                }
            }
        }
        fold_thresholds[0].extend(fitted.image.spam_threshold);
        fold_thresholds[1].extend(fitted.text_threshold);
        fold_thresholds[2].extend(fitted.fused_threshold);
        fold_temperatures[0].push(fitted.image.temperature);
        fold_temperatures[1].push(fitted.text_temperature);
        fold_temperatures[2].push(1.0);
        fold_epochs.push(fitted.image.best_epoch);
        progress(fold + 1, cv.folds);
    }
    let group_count = groups.iter().collect::<HashSet<_>>().len();
    let seconds = started.elapsed().as_secs_f64();
    let mut results = Vec::with_capacity(columns);
    for (i, &(view, kind)) in column_of.iter().enumerate() {
        let scores = OutOfFold {
            pool_rows: rows.clone(),
            labels: data.labels.clone(),
            probabilities: std::mem::take(&mut probabilities[i]),
            thresholds: std::mem::take(&mut thresholds[i]),
            spam_log_odds: spam.map(|_| std::mem::take(&mut log_odds[i])),
        };
        let mut result = summarise(task, &data.classes, &scores, group_count)?;
        result.fold_thresholds = fold_thresholds[kind].clone();
        result.fold_temperatures = fold_temperatures[kind].clone();
        result.fold_epochs = if kind == 1 { Vec::new() } else { fold_epochs.clone() };
        result.model = pool.view_model_name(KINDS[kind], view);
        result.seconds = seconds;
        result.scores = Some(scores);
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{DatasetSpec, PoolRow, Recipe, ScoringFeatures};
    use crate::head::{FeatureSource, TrainOptions};
    use spamlens_core::ocr::{OcrText, OcrWord, TextFeaturizer};

    /// 240 images in 120 groups of two: half the spam is told apart by its image features only,
    /// half by its text only ("viagra" against ham's "meeting"), so only the fused head gets both.
    fn synthetic_pool() -> Pool {
        let (mut rows, mut features, mut texts) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..240usize {
            let spam = i % 2 == 1;
            let by_image = spam && i % 4 == 1;
            let by_text = spam && i % 4 == 3;
            let noise = |k: usize| ((i * 31 + k * 17) % 13) as f32 / 13.0;
            features.extend([if by_image { 2.0 } else { 0.0 } + noise(0), noise(1), noise(2), noise(3)]);
            let word = if by_text {
                "viagra"
            } else if i % 3 == 0 {
                "meeting"
            } else {
                "hello"
            };
            texts.push(Some(OcrText {
                width: 100,
                height: 40,
                words: vec![OcrWord { text: word.into(), confidence: 90.0, bbox: [0, 0, 50, 20], line: 0 }],
            }));
            rows.push(PoolRow {
                dataset: 0,
                sha256: format!("{i:064}"),
                path: format!("{}/{i}.png", if spam { "spam" } else { "ham" }),
                label: if spam { "spam" } else { "ham" }.into(),
                group: i / 2,
                size: (100, 40),
                format: "PNG".into(),
            });
        }
        Pool {
            datasets: vec![DatasetSpec { name: "toy".into(), root: PathBuf::new(), store: PathBuf::new() }],
            rows,
            features,
            dim: 4,
            source: FeatureSource::Backbone { sha256: "00".repeat(32), preprocessing: "p".into() },
            grouping: vec!["toy: synthetic groups".into()],
            texts: Some(texts),
            ocr_engine: None,
            scoring: None,
        }
    }

    /// The toy task over [`synthetic_pool`], 3-fold cross-validation of a small head trained
    /// `epochs` epochs, and a small text featurizer.
    fn toy_setup(epochs: usize, standardize: bool) -> (TaskSpec, CrossValidation, TextRecipe) {
        let task = TaskSpec { name: "toy".into(), members: vec![("toy".into(), String::new())] };
        let recipe = Recipe {
            train: TrainOptions {
                hidden: vec![8],
                epochs,
                batch_size: 32,
                learning_rate: 1e-2,
                standardize,
                ..TrainOptions::default()
            },
            ..Recipe::default()
        };
        let cv = CrossValidation { folds: 3, seed: 1, recipe, image_signals: false, text: None };
        let text_recipe =
            TextRecipe { featurizer: TextFeaturizer { buckets: 256, min_n: 1, max_n: 3 }, ..TextRecipe::default() };
        (task, cv, text_recipe)
    }

    #[test]
    fn the_fused_head_gets_what_either_side_alone_misses() {
        let pool = synthetic_pool();
        let (task, cv, text_recipe) = toy_setup(60, true);
        let mut folds = 0;
        let results =
            cross_validate_fused(&pool, &task, &cv, &text_recipe, TrainDevice::Cpu, &mut |done, _| folds = done)
                .unwrap();
        assert_eq!(folds, 3);
        let models: Vec<&str> = results.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(models, [MODEL_IMAGE, MODEL_TEXT, MODEL_FUSED]);
        let auc: Vec<f64> = results.iter().map(|r| r.roc_auc.unwrap()).collect();
        assert!(auc[2] > auc[0] + 0.05 && auc[2] > auc[1] + 0.05, "image, text, fused AUC: {auc:?}");
        assert!(auc[2] > 0.95, "{auc:?}");
        for result in &results {
            let scores = result.scores.as_ref().unwrap();
            assert_eq!(scores.pool_rows.len(), 240, "every row scored once");
        }
    }

    /// Scoring features are a second view of the held-out rows through the same fitted models:
    /// features equal to the training ones score identically; features with the image signal
    /// wiped move the image model (and the fused one) but never the text model.
    #[test]
    fn scoring_features_rescore_the_same_fitted_models() {
        let mut pool = synthetic_pool();
        let (task, cv, text_recipe) = toy_setup(30, TrainOptions::default().standardize);
        let source = FeatureSource::Backbone { sha256: "11".repeat(32), preprocessing: "p".into() };
        pool.scoring =
            Some(ScoringFeatures { label: "same".into(), features: pool.features.clone(), source: source.clone() });
        let results = cross_validate_fused(&pool, &task, &cv, &text_recipe, TrainDevice::Cpu, &mut |_, _| ()).unwrap();
        let models: Vec<&str> = results.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(models, [MODEL_IMAGE, MODEL_TEXT, MODEL_FUSED, "image (same)", "fused (same)"]);
        let probabilities = |i: usize| results[i].scores.as_ref().unwrap().probabilities.clone();
        assert_eq!(probabilities(3), probabilities(0));
        assert_eq!(probabilities(4), probabilities(2));

        let wiped: Vec<f32> = pool.features.chunks_exact(4).flat_map(|row| [0.0, row[1], row[2], row[3]]).collect();
        pool.scoring = Some(ScoringFeatures { label: "wiped".into(), features: wiped, source });
        let again = cross_validate_fused(&pool, &task, &cv, &text_recipe, TrainDevice::Cpu, &mut |_, _| ()).unwrap();
        let auc: Vec<f64> = again.iter().map(|r| r.roc_auc.unwrap()).collect();
        assert!(auc[3] < auc[0] - 0.05, "image AUC with the signal wiped: {auc:?}");
        assert_eq!(again[1].scores.as_ref().unwrap().probabilities, results[1].scores.as_ref().unwrap().probabilities);
    }
}
