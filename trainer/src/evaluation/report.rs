//! The evaluation report: a Markdown results table, the same as JSON, and one ROC / PR plot per task.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CrossValidation, Pool, TaskResult};
use crate::error::{Result, TrainerError};

/// Everything an `evaluate` run found.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationReport {
    /// The spamlens version.
    pub spamlens_version: String,
    /// The command line that regenerates it.
    pub command: String,
    /// The cross-validation settings and recipe.
    pub cross_validation: CrossValidation,
    /// Datasets: name, root, store, how grouped.
    pub datasets: Vec<serde_json::Value>,
    /// The features' source.
    pub features: String,
    /// The OCR engine that read the images' text (when the text was evaluated).
    pub ocr_engine: Option<spamlens_core::ocr::EngineIdentity>,
    /// One entry per task.
    pub tasks: Vec<TaskResult>,
}

impl EvaluationReport {
    /// Collects the results.
    pub fn new(command: String, cv: &CrossValidation, pool: &Pool, tasks: Vec<TaskResult>) -> Self {
        let datasets = pool
            .datasets
            .iter()
            .zip(&pool.grouping)
            .map(|(d, g)| {
                serde_json::json!({
                    "name": d.name,
                    "root": d.root.display().to_string(),
                    "store": d.store.display().to_string(),
                    "rows": pool.rows.iter().filter(|r| pool.datasets[r.dataset].name == d.name).count(),
                    "grouping": g,
                })
            })
            .collect();
        EvaluationReport {
            spamlens_version: env!("CARGO_PKG_VERSION").to_owned(),
            command,
            cross_validation: cv.clone(),
            datasets,
            features: match &pool.scoring {
                None => pool.source.describe(),
                Some(scoring) => format!(
                    "{} (training, validation, thresholds, and the held-out scores of the image and fused \
                     models); the models marked ({}) are the same fitted models scoring held-out rows with {}",
                    pool.source.describe(),
                    scoring.label,
                    scoring.source.describe()
                ),
            },
            ocr_engine: pool.ocr_engine.clone(),
            tasks,
        }
    }

    /// The results table and its context, as Markdown.
    pub fn markdown(&self) -> String {
        let cv = &self.cross_validation;
        let r = &cv.recipe;
        let t = &r.train;
        let mut out = String::new();
        out.push_str(if cv.text.is_some() {
            "# Image head, OCR text model and fused head: group-aware cross-validation\n\n"
        } else {
            "# Image head: group-aware cross-validation\n\n"
        });
        out.push_str(&format!(
            "Regenerate: `{}`\n\n{}-fold group-aware cross-validation (seed {}): near-duplicate groups never straddle \
             folds. Inside each training fold, 1/{} of it (by groups) is held out for validation{}, {}and the spam \
             threshold for ≤ {:.1}% validation ham→spam false positives (never below 0.5). Numbers pool the \
             out-of-fold scores of all folds.\n\n",
            self.command,
            cv.folds,
            cv.seed,
            r.validation_folds,
            if t.early_stopping.is_some() { " (early stopping)" } else { "" },
            if r.calibrate { "temperature calibration " } else { "" },
            100.0 * r.target_false_positive_rate
        ));
        out.push_str(&format!(
            "Recipe: {}hidden layers {:?}, {} epochs{}, batch {}, Adam lr {}{}{}{}{}, class weights {}, seed {}. Features: {}.\n\n",
            if r.ensemble > 1 { format!("ensemble of {} heads (logits averaged), each ", r.ensemble) } else { String::new() },
            t.hidden,
            t.epochs,
            t.early_stopping.map(|p| format!(" (early stopping on validation {}, patience {p})", t.stop_on.name())).unwrap_or_default(),
            t.batch_size,
            t.learning_rate,
            if t.cosine_schedule { " (cosine decay)" } else { "" },
            if t.weight_decay > 0.0 { format!(", weight decay {}", t.weight_decay) } else { String::new() },
            if t.dropout > 0.0 { format!(", dropout {}", t.dropout) } else { String::new() },
            if t.standardize { ", standardised features" } else { "" },
            if t.class_weights { "on" } else { "off" },
            t.seed,
            self.features
        ));
        if cv.image_signals {
            out.push_str(
                "Image signals (log₂ width, height, aspect ratio; format one-hot; log₂ colour count; edge density) appended to the features.\n\n",
            );
        }
        if let Some(text) = &cv.text {
            let engine = self
                .ocr_engine
                .as_ref()
                .map(|e| {
                    format!(
                        "{} {} ({}, page segmentation {}, {} dpi)",
                        e.engine,
                        e.version,
                        e.languages(),
                        e.page_segmentation,
                        e.dpi
                    )
                })
                .unwrap_or_else(|| "?".into());
            out.push_str(&format!(
                "Text: OCR by {engine}, images prepared as: {}. **text** = logistic regression over {} \
                 and the layout measures ({}), L2 {}, {} full-batch Adam steps, class weights {}; its own temperature \
                 and threshold on the validation part. **fused** = logistic regression over the image head's and the \
                 text model's log-probabilities, fitted on the validation part (L2 {}), \
                 thresholded there; an image OCR failed on is decided by the image head, as at run time. \
                 **image** = the image head of the same folds.\n\n",
                spamlens_core::ocr::OcrImageSpec::V1.describe(),
                text.featurizer.describe(),
                spamlens_core::ocr::LAYOUT_NAMES.join(", "),
                text.text.l2,
                text.text.iterations,
                if text.text.class_weights { "on" } else { "off" },
                text.fusion.l2
            ));
        }
        out.push_str("| task | model | ham / spam (groups) | weighted F1 @argmax | ham→spam FP @argmax | weighted F1 @threshold | ham→spam FP @threshold | spam recall @threshold | recall @FP≤1% | recall @FP≤0.1% | ROC AUC | AP |\n");
        out.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        let pct = |v: Option<f64>| v.map(|v| format!("{:.2}%", 100.0 * v)).unwrap_or_else(|| "–".into());
        let num = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into());
        for task in &self.tasks {
            let count = |c: &str| task.classes.iter().position(|x| x == c).map(|i| task.counts[i]).unwrap_or(0);
            let recall = |m: &crate::metrics::MetricsSummary| {
                m.classes.iter().find(|c| c.label == super::SPAM).map(|c| c.recall)
            };
            out.push_str(&format!(
                "| {} | {} | {} / {} ({}) | {:.4} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                task.display_name(),
                task.model,
                count(super::HAM),
                count(super::SPAM),
                task.groups,
                task.at_argmax.weighted_f1,
                pct(task.at_argmax.ham_to_spam_false_positive_rate),
                num(task.at_threshold.as_ref().map(|m| m.weighted_f1)),
                pct(task.at_threshold.as_ref().and_then(|m| m.ham_to_spam_false_positive_rate)),
                pct(task.at_threshold.as_ref().and_then(recall)),
                pct(task.recall_at_fp_1pct),
                pct(task.recall_at_fp_01pct),
                num(task.roc_auc),
                num(task.average_precision),
            ));
        }
        out.push_str(
            "\n(trained on all): that task's rows within the `all` cross-validation — a model trained on every \
             dataset, as the shipped one is, scored on that part.\n",
        );
        out.push_str(
            "\n@argmax: the most probable class (the paper's decision). @threshold: each fold's own threshold, \
                      chosen on its validation part — what a deployed model does. recall @FP≤x: the best any threshold \
                      could do on the pooled scores (an upper bound, read off the ROC curve).\n\n",
        );
        out.push_str("## Per class (at the threshold)\n\n| task | model | class | precision | recall | F1 | support |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n");
        for task in &self.tasks {
            let metrics = task.at_threshold.as_ref().unwrap_or(&task.at_argmax);
            for c in &metrics.classes {
                out.push_str(&format!(
                    "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {} |\n",
                    task.display_name(),
                    task.model,
                    c.label,
                    c.precision,
                    c.recall,
                    c.f1,
                    c.support
                ));
            }
        }
        out.push_str("\n## Per fold\n\n| task | model | thresholds | temperatures | epochs kept | seconds |\n| --- | --- | --- | --- | --- | ---: |\n");
        let list = |v: &[f32]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ");
        for task in self.tasks.iter().filter(|t| t.trained_on.is_none()) {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.0} |\n",
                task.task.name,
                task.model,
                list(&task.fold_thresholds),
                list(&task.fold_temperatures),
                task.fold_epochs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                task.seconds
            ));
        }
        out.push_str("\n## Data\n\n");
        for d in &self.datasets {
            out.push_str(&format!(
                "- `{}`: {} rows from `{}` (store `{}`), {}\n",
                d["name"].as_str().unwrap_or_default(),
                d["rows"],
                d["root"].as_str().unwrap_or_default(),
                d["store"].as_str().unwrap_or_default(),
                d["grouping"].as_str().unwrap_or_default()
            ));
        }
        out
    }

    /// Writes every cross-validated task's out-of-fold spam scores as TSV (task, model, dataset,
    /// path, label, p(spam), the fold's threshold): what to look at to see which images pass.
    pub fn write_scores(&self, pool: &Pool, path: &Path) -> Result<()> {
        let mut out = String::from("task\tmodel\tdataset\tpath\tlabel\tp_spam\tthreshold\n");
        for task in self.tasks.iter().filter(|t| t.trained_on.is_none()) {
            let (Some(scores), Some(spam)) = (&task.scores, task.classes.iter().position(|c| c == super::SPAM)) else {
                continue;
            };
            let classes = task.classes.len();
            for (i, &row) in scores.pool_rows.iter().enumerate() {
                let r = &pool.rows[row];
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{:.6}\t{}\n",
                    task.task.name,
                    task.model,
                    pool.datasets[r.dataset].name,
                    r.path,
                    r.label,
                    scores.probabilities[i * classes + spam],
                    scores.thresholds[i].map(|t| format!("{t:.6}")).unwrap_or_default()
                ));
            }
        }
        Ok(spamlens_fetch::write_atomically(path, out.as_bytes())?)
    }

    /// Writes `results.md`, `results.json` and `<task>.png` (unless `plots` is off) into `dir`.
    pub fn write(&self, dir: &Path, plots: bool) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| TrainerError::io(dir, e))?;
        let mut files = Vec::new();
        let md = dir.join("results.md");
        spamlens_fetch::write_atomically(&md, self.markdown().as_bytes())?;
        files.push(md);
        let json = dir.join("results.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainerError::Metrics(e.to_string()))?;
        spamlens_fetch::write_atomically(&json, text.as_bytes())?;
        files.push(json);
        if plots {
            // One plot per cross-validated task (the parts of `all` are in its table and JSON).
            for task in self.tasks.iter().filter(|t| t.trained_on.is_none()) {
                let Some(curves) = &task.curves else { continue };
                // `image (int8)` → `<task>.image.int8.png`.
                let model: String = task
                    .model
                    .chars()
                    .filter_map(|c| match c {
                        ' ' => Some('.'),
                        '(' | ')' => None,
                        c => Some(c),
                    })
                    .collect();
                let file = if model == super::MODEL_IMAGE {
                    task.task.name.clone()
                } else {
                    format!("{}.{model}", task.task.name)
                };
                let point = task.at_threshold.as_ref().and_then(|m| {
                    let spam = m.classes.iter().find(|c| c.label == super::SPAM)?;
                    Some((m.ham_to_spam_false_positive_rate?, spam.recall, spam.precision))
                });
                let path = dir.join(format!("{file}.png"));
                let title = format!("{} ({}): out-of-fold spam scores", task.task.name, task.model);
                crate::report::plots::roc_and_precision_recall(&title, curves, point, &path)?;
                files.push(path);
            }
        }
        Ok(files)
    }
}
