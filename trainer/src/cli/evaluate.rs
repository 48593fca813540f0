//! `spamlens-train evaluate`: group-aware cross-validation of a head recipe on image datasets,
//! the results table and plots, and optionally the final model trained the same way on everything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spamlens_core::ocr::TextFeaturizer;
use spamlens_core::{DecodeLimits, Fit};
use spamlens_model::backbone;
use spamlens_trainer::evaluation::fused::{cross_validate_fused, text_inputs};
use spamlens_trainer::evaluation::report::EvaluationReport;
use spamlens_trainer::evaluation::{
    CrossValidation, DatasetSpec, Pool, Recipe, TaskSpec, cross_validate_views, fit_recipe,
};
use spamlens_trainer::fusion::{TextRecipe, fit_fused};
use spamlens_trainer::ocr_store::{self, OcrStore};
use spamlens_trainer::text_model::LogisticOptions;

use spamlens_model::{HeadProvenance, Precision, fused_head_graph, head_graph};
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
    /// Also write every row's out-of-fold spam score (scores.tsv in --out; large, for analysis).
    #[arg(long)]
    scores: bool,
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
    /// Backbone (features and the final combined model; default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Score the held-out rows with this backbone's features (e.g. `spamlens-train quantize`'s int8
    /// backbone) while heads train, calibrate and set thresholds on --backbone's, as a quantised
    /// model ships the f32-trained head over int8 weights; its stores are
    /// `<dataset>[.<fit>].<sha12>.parquet` in --features-dir.
    #[arg(long, value_name = "MODEL")]
    score_backbone: Option<PathBuf>,
    /// Also read the text in every image (OCR, cached in the features folder per image and OCR
    /// setup) and evaluate the text model and the fused head beside the image head, on the same
    /// folds; `--final-model` then trains the fused model.
    #[arg(long, conflicts_with = "image_signals")]
    ocr: bool,
    #[command(flatten)]
    ocr_engine: crate::ocr::OcrEngineArgs,
    /// Parallel OCR workers (default: one per core).
    #[arg(long)]
    ocr_jobs: Option<usize>,
    /// The text model's L2 penalty (with --ocr).
    #[arg(long, default_value_t = LogisticOptions::TEXT.l2)]
    text_l2: f64,
    /// The fusion layer's L2 penalty (with --ocr).
    #[arg(long, default_value_t = LogisticOptions::FUSION.l2)]
    fusion_l2: f64,
    /// Character n-gram lengths of the text features, `MIN-MAX` (with --ocr).
    #[arg(long, default_value = "1-4")]
    ngrams: String,
    /// Width of the hashed n-gram vector (with --ocr).
    #[arg(long, default_value_t = TextFeaturizer::V1.buckets)]
    buckets: u32,
}

impl EvaluateArgs {
    /// The text side's recipe from the flags.
    fn text_recipe(&self) -> Result<TextRecipe> {
        let (min_n, max_n) = self
            .ngrams
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u8>().ok()?, b.trim().parse::<u8>().ok()?)))
            .filter(|(a, b)| *a >= 1 && a <= b && *b <= 8)
            .with_context(|| format!("--ngrams '{}' is not MIN-MAX with 1 ≤ MIN ≤ MAX ≤ 8", self.ngrams))?;
        if self.buckets == 0 || !(self.text_l2 >= 0.0 && self.fusion_l2 >= 0.0) {
            bail!("--buckets must be positive and the L2 penalties non-negative");
        }
        Ok(TextRecipe {
            featurizer: TextFeaturizer { buckets: self.buckets, min_n, max_n },
            text: LogisticOptions { l2: self.text_l2, ..LogisticOptions::TEXT },
            fusion: LogisticOptions { l2: self.fusion_l2, ..LogisticOptions::FUSION },
        })
    }
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
    if args.ocr {
        let stores = prepare_ocr_stores(&args, &datasets)?;
        pool = pool.with_texts(&stores).context("attaching the OCR text")?;
    }
    if let Some(scoring_backbone) = &args.score_backbone {
        let (stores, label) = prepare_scoring_stores(&args, scoring_backbone)?;
        pool = pool.with_scoring_features(&stores, &label).context("loading the scoring features")?;
    }
    let text_recipe = if args.ocr { Some(args.text_recipe()?) } else { None };
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
        text: text_recipe,
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
        let mut progress = |done: usize, _| bar.set_position(done as u64);
        let task_results = match &text_recipe {
            None => match cross_validate_views(&pool, task, &cv, device, &mut progress) {
                Ok(all) => all.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            },
            Some(text) => match cross_validate_fused(&pool, task, &cv, text, device, &mut progress) {
                Ok(all) => all.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            },
        };
        bar.finish_and_clear();
        for result in task_results {
            let result = result.with_context(|| format!("cross-validating task '{}'", task.name))?;
            tracing::info!(
                task = task.name,
                model = result.model,
                recall_at_threshold = format!(
                    "{:.4}",
                    result
                        .at_threshold
                        .as_ref()
                        .and_then(|m| m.classes.iter().find(|c| c.label == spamlens_trainer::evaluation::SPAM))
                        .map_or(f64::NAN, |c| c.recall)
                ),
                roc_auc = format!("{:.4}", result.roc_auc.unwrap_or(f64::NAN)),
                seconds = format!("{:.0}", result.seconds),
                "task done"
            );
            results.push(result);
        }
    }
    // A model trained on everything, read off per part: the standard tasks inside "all".
    let wholes: Vec<_> = results.iter().filter(|r| r.task.name == "all").cloned().collect();
    for all in &wholes {
        for part in standard.iter().filter(|t| t.name != "all") {
            results.push(spamlens_trainer::evaluation::sub_result(&pool, all, part)?);
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = EvaluationReport::new(command, &cv, &pool, results);
    let mut files = report.write(&args.out, !args.no_plots)?;
    if args.scores {
        let path = args.out.join("scores.tsv");
        report.write_scores(&pool, &path)?;
        files.push(path);
    }
    print!("{}", report.markdown());
    for file in files {
        println!("wrote {}", file.display());
    }
    if let Some(dir) = &args.final_model {
        final_model(&args, &pool, &standard, &recipe, device, &report, dir, &backbone_path)?;
    }
    Ok(())
}

/// The OCR store of each dataset, read or brought up to date first (images already in a store are
/// not read again).
fn prepare_ocr_stores(args: &EvaluateArgs, datasets: &[DatasetSpec]) -> Result<Vec<OcrStore>> {
    let pool = args.ocr_engine.pool()?;
    let jobs = args.ocr_jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let mut stores = Vec::with_capacity(datasets.len());
    for dataset in datasets {
        let path = crate::ocr::default_store(&args.features_dir, &dataset.root, &pool);
        let bar = crate::ocr::OcrBar::new();
        let (store, report) =
            ocr_store::read_dataset(&dataset.root, &path, &pool, &spamlens_core::ocr::OcrImageSpec::V1, jobs, &bar)
                .with_context(|| format!("reading the text of {}", dataset.root.display()))?;
        tracing::info!(
            store = %path.display(),
            rows = store.rows.len(),
            read = report.read,
            reused = report.reused,
            failed = report.failed,
            "OCR text ready"
        );
        stores.push(store);
    }
    Ok(stores)
}

/// The store of each dataset, computed or brought up to date first.
fn prepare_stores(args: &EvaluateArgs, backbone_path: &Path) -> Result<Vec<DatasetSpec>> {
    prepare_stores_named(args, backbone_path, "")
}

/// [`prepare_stores`] for another backbone: its stores are named `<dataset>[.<fit>].<sha12>.parquet`.
/// Also returns what its results are called: `int8` for `spamlens-train quantize`'s output, `int8
/// compute` for its `--calibrate` output, else the
/// sha256's first 12 digits.
fn prepare_scoring_stores(args: &EvaluateArgs, backbone_path: &Path) -> Result<(Vec<PathBuf>, String)> {
    let bytes = std::fs::read(backbone_path).with_context(|| format!("reading {}", backbone_path.display()))?;
    let sha = spamlens_core::scan::sha256_hex(&bytes);
    let scheme = spamlens_model::quantize::weights_scheme(&bytes);
    drop(bytes);
    let label = match scheme.as_deref() {
        Some(spamlens_model::quantize::WEIGHTS_INT8_PER_CHANNEL) => "int8".to_owned(),
        Some(spamlens_model::quantize_static::WEIGHTS_INT8_STATIC) => "int8 compute".to_owned(),
        _ => sha[..12].to_owned(),
    };
    let stores = prepare_stores_named(args, backbone_path, &format!(".{}", &sha[..12]))?;
    Ok((stores.into_iter().map(|d| d.store).collect(), label))
}

fn prepare_stores_named(args: &EvaluateArgs, backbone_path: &Path, tag: &str) -> Result<Vec<DatasetSpec>> {
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
        let store = args.features_dir.join(format!("{name}{suffix}{tag}.parquet"));
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
    let fused = match &report.cross_validation.text {
        None => None,
        Some(text_recipe) => {
            let (texts, _) = text_inputs(pool, &rows, text_recipe)?;
            Some(fit_fused(&data, &texts, &all, &groups, recipe, text_recipe, device, args.seed)?)
        }
    };
    let fitted = match &fused {
        Some(head) => head.image.clone(),
        None => fit_recipe(&data, &all, &groups, recipe, device, args.seed)?,
    };
    let model_name = if fused.is_some() {
        spamlens_trainer::evaluation::MODEL_FUSED
    } else {
        spamlens_trainer::evaluation::MODEL_IMAGE
    };
    let cv_result =
        report.tasks.iter().find(|t| t.task.name == task.name && t.model == model_name && t.trained_on.is_none());
    let operating_threshold = fused.as_ref().map_or(fitted.spam_threshold, |f| f.fused_threshold);
    let thresholds: Vec<(String, f32)> =
        operating_threshold.map(|t| (spamlens_trainer::evaluation::SPAM.to_owned(), t)).into_iter().collect();
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
            "text_recipe": report.cross_validation.text,
            "ocr_engine": pool.ocr_engine,
            "best_epoch": fitted.best_epoch,
            "device": device.describe(),
        }),
        metrics: cv_result.map(|r| {
            serde_json::json!({
                "evaluation": "group-aware cross-validation (out-of-fold)",
                "model": model_name,
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
            "validation_ham_to_spam_false_positive_rate":
                fused.as_ref().map_or(fitted.validation_false_positive_rate, |f| f.fused_validation_false_positive_rate),
            "image_only_threshold": fitted.spam_threshold,
            "image_only_validation_ham_to_spam_false_positive_rate": fitted.validation_false_positive_rate,
            "temperature": fitted.temperature,
            "chosen_on": format!("{} group-aware validation rows of {}", fitted.validation_rows, task.name),
        })),
    };
    let precision = if args.f16 { Precision::F16 } else { Precision::F32 };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let head_bytes = match &fused {
        None => head_graph(&fitted.weights, &provenance, precision)?,
        Some(head) => {
            let engine = pool.ocr_engine.as_ref().context("the fused model needs the OCR engine's identity")?;
            let text = head.text_graph(head.contract(engine), &fitted.weights.labels);
            fused_head_graph(&fitted.weights, &text, &provenance, precision)?
        }
    };
    let head_path = dir.join(spamlens_trainer::experiment::HEAD_FILE);
    spamlens_fetch::write_atomically(&head_path, &head_bytes)?;
    println!(
        "wrote {} ({} parameters, {}; spam threshold {:?}{}, temperature {:.3}, epoch {})",
        head_path.display(),
        fitted.weights.parameter_count()
            + fused.as_ref().map_or(0, |f| f.text.parameter_count() + f.fusion.parameter_count()),
        precision.as_str(),
        operating_threshold,
        fused.as_ref().map(|_| format!(" (image-only {:?})", fitted.spam_threshold)).unwrap_or_default(),
        fitted.temperature,
        fitted.best_epoch
    );
    let combined = dir.join(spamlens_trainer::experiment::COMBINED_FILE);
    spamlens_trainer::experiment::write_combined(backbone_path, &head_bytes, &combined, false)?;
    println!("wrote {}", combined.display());
    Ok(())
}
