//! `spamlens-train evaluate`: group-aware cross-validation of a head recipe on image datasets,
//! the results table and plots, and optionally the final model trained the same way on everything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spamlens_core::{DecodeLimits, Fit};
use spamlens_trainer::backbone;
use spamlens_trainer::evaluation::report::EvaluationReport;
use spamlens_trainer::evaluation::{CrossValidation, DatasetSpec, Pool, Recipe, TaskSpec, cross_validate, fit_recipe};

use spamlens_trainer::export::{HeadProvenance, Precision, head_graph};
use spamlens_trainer::features::{self, Backbone, ExtractOptions};
use spamlens_trainer::head::{StoppingMetric, TrainDevice, TrainOptions};

use crate::{ExtractBars, draw_target};

/// `spamlens-train evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Dataset folders (`ROOT/<label>/…`; a `manifest.tsv` with a `group` column gives the
    /// near-duplicate groups, else they are computed with dHash). Named by their folder name.
    #[arg(long = "dataset", value_name = "DIR", required = true)]
    datasets: Vec<PathBuf>,
    /// Where the feature stores live (`<name>.parquet`, or `<name>.letterbox.parquet`); missing or
    /// stale ones are computed first, images already in a store are reused.
    #[arg(long, default_value = "features")]
    features_dir: PathBuf,
    /// How images are fitted into the backbone's input: `center-crop`, `letterbox`, or `tiles`
    /// (letterbox + squares along the longer side, features averaged; an experiment: the exported
    /// graph takes one view per image, so `--final-model` refuses it).
    #[arg(long, default_value = "letterbox", value_parser = crate::parse_fit)]
    fit: Fit,
    /// Tasks: a standard name (dredze-personal, dredze-public, dredze-combined, image-spam-hunter,
    /// all) or `NAME=DATASET[/PREFIX][+DATASET[/PREFIX]…]`. Default: every standard task.
    #[arg(long = "task", value_name = "TASK")]
    tasks: Vec<String>,
    /// Outer folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seeds the folds.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Results folder: results.md, results.json, one ROC / precision–recall PNG per task.
    #[arg(long)]
    out: PathBuf,
    /// Skip the PNG plots.
    #[arg(long)]
    no_plots: bool,
    /// Experiment: append the image's own size, aspect ratio, format, colour count and edge
    /// density to its features (a head trained so cannot be exported: the graph's input is the
    /// image alone).
    #[arg(long, conflicts_with = "final_model")]
    image_signals: bool,
    /// Also train the final model with the same recipe on every row of --final-task (its own
    /// group-aware validation part sets early stopping, temperature and threshold) and write
    /// head.onnx and, with the backbone, model.onnx here.
    #[arg(long, value_name = "DIR")]
    final_model: Option<PathBuf>,
    /// The task whose rows train the final model.
    #[arg(long, default_value = "all")]
    final_task: String,
    /// Store the final head's weights as 16-bit floats.
    #[arg(long)]
    f16: bool,
    /// Backbone (features and the final combined model; default: $SPAMLENS_MODELS, then models/backbone/).
    #[arg(long)]
    backbone: Option<PathBuf>,
}

/// The recipe's flags; defaults are the recipe the committed default model uses.
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    /// Hidden layer widths, comma-separated (of each head of an `--ensemble`).
    #[arg(long, value_delimiter = ',', default_value = "512")]
    hidden: Vec<usize>,
    /// No hidden layer: multinomial logistic regression on the features (the smallest head).
    #[arg(long, conflicts_with = "hidden")]
    linear: bool,
    /// Most passes over the training rows.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Rows per optimiser step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Adam's L2 weight decay.
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    /// Dropout after each hidden layer.
    #[arg(long, default_value_t = 0.5)]
    dropout: f64,
    /// Constant learning rate instead of cosine decay.
    #[arg(long)]
    no_cosine: bool,
    /// Do not standardise the features.
    #[arg(long)]
    no_standardize: bool,
    /// Early-stopping patience in epochs on the validation part (0: train all epochs).
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// Do not weight the loss by inverse class frequency.
    #[arg(long)]
    no_class_weights: bool,
    /// Seeds the weights and batch order.
    #[arg(long, default_value_t = 2018)]
    train_seed: u64,
    /// The validation part is 1/N of the training rows (by groups).
    #[arg(long, default_value_t = 5)]
    validation_folds: usize,
    /// Skip temperature calibration.
    #[arg(long)]
    no_calibration: bool,
    /// Target ham→spam false-positive rate for the spam threshold.
    #[arg(long, default_value_t = 0.01)]
    target_fp: f64,
    /// Train this many heads (seeds `--train-seed`, +1, …) on the same split and ship one head
    /// averaging their logits (one hidden layer at most; its width is the sum of theirs).
    #[arg(long, default_value_t = 1)]
    ensemble: usize,
    /// What early stopping watches on the validation part: `loss` or `spam-auc`.
    #[arg(long, default_value = "loss", value_parser = crate::parse_stopping_metric)]
    stop_on: StoppingMetric,
    /// `cpu`, or `cuda` / `cuda:N` in a build with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl RecipeArgs {
    fn recipe(&self) -> Result<(Recipe, TrainDevice)> {
        if !(0.0..1.0).contains(&self.target_fp) {
            bail!("--target-fp must be in [0, 1), got {}", self.target_fp);
        }
        if self.validation_folds < 2 {
            bail!("--validation-folds must be at least 2");
        }
        if self.ensemble == 0 || (self.ensemble > 1 && self.hidden.len() > 1 && !self.linear) {
            bail!("--ensemble needs at least 1 head, and heads of at most one hidden layer to merge");
        }
        let train = TrainOptions {
            hidden: if self.linear { Vec::new() } else { self.hidden.clone() },
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            class_weights: !self.no_class_weights,
            seed: self.train_seed,
            weight_decay: self.weight_decay,
            dropout: self.dropout,
            cosine_schedule: !self.no_cosine,
            standardize: !self.no_standardize,
            early_stopping: (self.patience > 0).then_some(self.patience),
            stop_on: self.stop_on,
        };
        train.check()?;
        let recipe = Recipe {
            train,
            validation_folds: self.validation_folds,
            calibrate: !self.no_calibration,
            target_false_positive_rate: self.target_fp,
            ensemble: self.ensemble,
        };
        Ok((recipe, TrainDevice::parse(&self.device)?))
    }
}

/// Runs `evaluate`.
pub fn evaluate(args: EvaluateArgs) -> Result<()> {
    if args.folds < 2 {
        bail!("--folds must be at least 2");
    }
    if args.fit == Fit::Tiles && args.final_model.is_some() {
        bail!(
            "--final-model needs a single-view fit (center-crop or letterbox): the combined graph takes one view per image"
        );
    }
    let (recipe, device) = args.recipe.recipe()?;
    let backbone_path = backbone::locate_backbone(args.backbone.as_deref())?;
    let datasets = prepare_stores(&args, &backbone_path)?;
    let mut pool = Pool::load(&datasets).context("loading the feature stores and near-duplicate groups")?;
    if args.image_signals {
        pool = pool.with_image_signals().context("computing the image signals")?;
    }
    let standard = TaskSpec::standard(&datasets);
    let tasks: Vec<TaskSpec> = if args.tasks.is_empty() {
        standard.clone()
    } else {
        args.tasks
            .iter()
            .map(|t| {
                if t.contains('=') {
                    Ok(TaskSpec::parse(t)?)
                } else {
                    standard.iter().find(|s| s.name == *t).cloned().with_context(|| {
                        format!(
                            "no standard task '{t}' for these datasets (known: {})",
                            standard.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    })
                }
            })
            .collect::<Result<_>>()?
    };
    let cv = CrossValidation {
        folds: args.folds,
        seed: args.seed,
        recipe: recipe.clone(),
        image_signals: args.image_signals,
    };
    let mut results = Vec::new();
    for task in &tasks {
        let bar = ProgressBar::with_draw_target(Some(cv.folds as u64), draw_target());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>18} [{bar:30}] fold {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(task.name.clone());
        let result = cross_validate(&pool, task, &cv, device, &mut |done, _| bar.set_position(done as u64))
            .with_context(|| format!("cross-validating task '{}'", task.name))?;
        bar.finish_and_clear();
        tracing::info!(
            task = task.name,
            weighted_f1 = format!("{:.4}", result.at_threshold.as_ref().unwrap_or(&result.at_argmax).weighted_f1),
            seconds = format!("{:.0}", result.seconds),
            "task done"
        );
        results.push(result);
    }
    // A model trained on everything, read off per part: the standard tasks inside "all".
    if let Some(all) = results.iter().find(|r| r.task.name == "all").cloned() {
        for part in standard.iter().filter(|t| t.name != "all") {
            results.push(spamlens_trainer::evaluation::sub_result(&pool, &all, part)?);
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = EvaluationReport::new(command, &cv, &pool, results);
    let files = report.write(&args.out, !args.no_plots)?;
    print!("{}", report.markdown());
    for file in files {
        println!("wrote {}", file.display());
    }
    if let Some(dir) = &args.final_model {
        final_model(&args, &pool, &standard, &recipe, device, &report, dir, &backbone_path)?;
    }
    Ok(())
}

/// The store of each dataset, computed or brought up to date first.
fn prepare_stores(args: &EvaluateArgs, backbone_path: &Path) -> Result<Vec<DatasetSpec>> {
    let mut specs = Vec::new();
    let mut loaded: Option<Backbone> = None;
    for root in &args.datasets {
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: a dataset folder needs a name", root.display()))?
            .to_owned();
        if specs.iter().any(|s: &DatasetSpec| s.name == name) {
            bail!("two datasets are called '{name}'");
        }
        let suffix = match args.fit {
            Fit::CenterCrop => String::new(),
            other => format!(".{}", other.name()),
        };
        let store = args.features_dir.join(format!("{name}{suffix}.parquet"));
        if loaded.is_none() {
            tracing::info!(backbone = %backbone_path.display(), fit = args.fit.name(), "loading backbone");
            loaded = Some(Backbone::load(backbone_path, None)?.with_fit(args.fit));
        }
        let backbone = loaded.as_ref().context("backbone")?;
        std::fs::create_dir_all(&args.features_dir)
            .with_context(|| format!("creating {}", args.features_dir.display()))?;
        let options = ExtractOptions { limits: DecodeLimits::DEFAULT, ..ExtractOptions::default() };
        let report = features::extract_to_store(root, &store, backbone, &options, &ExtractBars::new())
            .with_context(|| format!("features of {}", root.display()))?;
        tracing::info!(
            store = %store.display(),
            rows = report.rows,
            computed = report.computed,
            reused = report.reused,
            failed = report.failures.len(),
            "features ready"
        );
        specs.push(DatasetSpec { name, root: root.clone(), store });
    }
    Ok(specs)
}

#[allow(clippy::too_many_arguments)]
fn final_model(
    args: &EvaluateArgs,
    pool: &Pool,
    standard: &[TaskSpec],
    recipe: &Recipe,
    device: TrainDevice,
    report: &EvaluationReport,
    dir: &Path,
    backbone_path: &Path,
) -> Result<()> {
    let task = standard
        .iter()
        .find(|t| t.name == args.final_task)
        .cloned()
        .map(Ok)
        .unwrap_or_else(|| TaskSpec::parse(&args.final_task))?;
    let rows = pool.task_rows(&task)?;
    let data = pool.labelled(&rows);
    let groups: Vec<usize> = rows.iter().map(|&r| pool.rows[r].group).collect();
    tracing::info!(task = task.name, rows = data.len(), "training the final model");
    let all: Vec<usize> = (0..data.len()).collect();
    let fitted = fit_recipe(&data, &all, &groups, recipe, device, args.seed)?;
    let cv_result = report.tasks.iter().find(|t| t.task.name == task.name);
    let thresholds: Vec<(String, f32)> =
        fitted.spam_threshold.map(|t| (spamlens_trainer::evaluation::SPAM.to_owned(), t)).into_iter().collect();
    let provenance = HeadProvenance {
        source: data.source.clone(),
        training: serde_json::json!({
            "data": {
                "description": data.description,
                "task": task,
                "classes": data.classes,
                "counts": data.class_counts(&all),
                "train_rows": fitted.train_rows,
                "validation_rows": fitted.validation_rows,
            },
            "recipe": recipe,
            "best_epoch": fitted.best_epoch,
            "device": device.describe(),
        }),
        metrics: cv_result.map(|r| {
            serde_json::json!({
                "evaluation": "group-aware cross-validation (out-of-fold)",
                "folds": report.cross_validation.folds,
                "weighted_f1": r.at_threshold.as_ref().unwrap_or(&r.at_argmax).weighted_f1,
                "ham_to_spam_false_positive_rate":
                    r.at_threshold.as_ref().unwrap_or(&r.at_argmax).ham_to_spam_false_positive_rate,
                "recall_at_fp_1pct": r.recall_at_fp_1pct,
                "recall_at_fp_01pct": r.recall_at_fp_01pct,
                "roc_auc": r.roc_auc,
            })
        }),
        thresholds,
        operating_point: Some(serde_json::json!({
            "target_ham_to_spam_false_positive_rate": recipe.target_false_positive_rate,
            "validation_ham_to_spam_false_positive_rate": fitted.validation_false_positive_rate,
            "temperature": fitted.temperature,
            "chosen_on": format!("{} group-aware validation rows of {}", fitted.validation_rows, task.name),
        })),
    };
    let precision = if args.f16 { Precision::F16 } else { Precision::F32 };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let head_bytes = head_graph(&fitted.weights, &provenance, precision)?;
    let head_path = dir.join(spamlens_trainer::experiment::HEAD_FILE);
    backbone::write_atomically(&head_path, &head_bytes)?;
    println!(
        "wrote {} ({} parameters, {}; spam threshold {:?}, temperature {:.3}, epoch {})",
        head_path.display(),
        fitted.weights.parameter_count(),
        precision.as_str(),
        fitted.spam_threshold,
        fitted.temperature,
        fitted.best_epoch
    );
    let combined = dir.join(spamlens_trainer::experiment::COMBINED_FILE);
    spamlens_trainer::experiment::write_combined(backbone_path, &head_bytes, &combined, false)?;
    println!("wrote {}", combined.display());
    Ok(())
}
