//! One training run end to end, as the `train` command and the tests use it: load the features,
//! split, train, evaluate, and write the head, the combined graph, the report and the plots.

use std::path::{Path, PathBuf};

use crate::emailcz::{IngestOptions, IngestProgress};
use crate::error::{Result, TrainerError};
use crate::head::{LabelledFeatures, Split, TrainDevice, TrainOptions, TrainOutcome, TrainProgress};
use crate::report::{DataSummary, TrainingReport, plots};
use spamlens_model::{HeadProvenance, Precision, combine, head_graph, read_head_graph};

/// File name of the head-only graph in an output folder.
pub const HEAD_FILE: &str = "head.onnx";
/// File name of the combined backbone + head graph in an output folder.
pub const COMBINED_FILE: &str = "model.onnx";

/// The features to train on.
#[derive(Debug, Clone)]
pub enum DataSpec {
    /// Feature stores; with `test` stores the split is explicit, otherwise stratified.
    Stores {
        /// Training stores (all rows, unless split by fraction).
        train: Vec<PathBuf>,
        /// Test stores (explicit split).
        test: Vec<PathBuf>,
    },
    /// An Email.cz-format file through the reaction filters.
    EmailCz {
        /// `.json` or `.json.gz`.
        path: PathBuf,
        /// Filters and parsing options.
        ingest: IngestOptions,
    },
}

/// Everything a training run needs.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The data.
    pub data: DataSpec,
    /// Share of each class held out for testing (ignored with explicit test stores).
    pub test_fraction: f64,
    /// Seeds the split.
    pub split_seed: u64,
    /// Hyper-parameters.
    pub options: TrainOptions,
    /// Where to train.
    pub device: TrainDevice,
    /// Output folder.
    pub out_dir: PathBuf,
    /// Precision of the written head weights.
    pub precision: Precision,
    /// The backbone for the combined graph; `None` writes the head only.
    pub backbone: Option<PathBuf>,
    /// Combine even when the head's features do not come from this backbone.
    pub force: bool,
    /// Draw PNG plots.
    pub plots: bool,
}

/// Progress of a whole run: loading, then training.
pub trait RunProgress: TrainProgress {
    /// Byte progress while an Email.cz file is read.
    fn ingest(&self) -> &dyn IngestProgress;
    /// A phase message ("loading", "exporting").
    fn phase(&mut self, _message: &str) {}
}

/// A [`RunProgress`] that shows nothing (tests, library callers).
#[derive(Debug, Default)]
pub struct NoRunProgress;
impl TrainProgress for NoRunProgress {}
impl RunProgress for NoRunProgress {
    fn ingest(&self) -> &dyn IngestProgress {
        &crate::emailcz::NoIngestProgress
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct TrainArtifacts {
    /// The report (also written as JSON and Markdown).
    pub report: TrainingReport,
    /// The training outcome (weights, history).
    pub outcome: TrainOutcome,
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// Why no combined graph was written, if it was not.
    pub combined_skipped: Option<String>,
}

/// Loads the data and the split a request describes.
pub fn load_data(request: &TrainRequest, progress: &dyn IngestProgress) -> Result<(LabelledFeatures, Split, String)> {
    match &request.data {
        DataSpec::Stores { train, test } if !test.is_empty() => {
            let (data, train_rows, test_rows) =
                LabelledFeatures::from_stores(train)?.concat(LabelledFeatures::from_stores(test)?)?;
            Ok((data, Split { train: train_rows, test: test_rows }, "explicit test stores".to_owned()))
        }
        DataSpec::Stores { train, .. } => with_stratified_split(LabelledFeatures::from_stores(train)?, request),
        DataSpec::EmailCz { path, ingest } => {
            let (dataset, report) = crate::emailcz::ingest(path, ingest, progress)?;
            tracing::info!(
                lines = report.lines,
                kept = report.kept,
                malformed = report.malformed,
                seconds = format!("{:.1}", report.seconds),
                "Email.cz file read"
            );
            let filters = format!("{:?}", ingest.filter);
            with_stratified_split(LabelledFeatures::from_emailcz(dataset, path, &filters)?, request)
        }
    }
}

fn with_stratified_split(data: LabelledFeatures, request: &TrainRequest) -> Result<(LabelledFeatures, Split, String)> {
    let split =
        crate::head::stratified_split(&data.labels, data.classes.len(), request.test_fraction, request.split_seed)?;
    Ok((data, split, split_description(request)))
}

fn split_description(request: &TrainRequest) -> String {
    if request.test_fraction > 0.0 {
        format!(
            "stratified random, {:.0}% of each class held out, seed {}",
            100.0 * request.test_fraction,
            request.split_seed
        )
    } else {
        "none (trained on everything; no held-out metrics)".to_owned()
    }
}

/// Runs a whole training request.
pub fn run(request: &TrainRequest, progress: &mut dyn RunProgress) -> Result<TrainArtifacts> {
    std::fs::create_dir_all(&request.out_dir).map_err(|e| TrainerError::io(&request.out_dir, e))?;
    progress.phase("loading features");
    let (data, split, split_text) = load_data(request, progress.ingest())?;
    tracing::info!(
        rows = data.len(),
        train = split.train.len(),
        test = split.test.len(),
        classes = data.classes.join(","),
        "data ready"
    );
    progress.phase("training");
    let outcome = crate::head::train(&data, &split, &request.options, request.device, progress)?;

    progress.phase("exporting");
    let test_metrics = outcome.confusion.as_ref().map(|c| c.summary());
    let data_summary = DataSummary {
        description: data.description.clone(),
        feature_source: data.source.describe(),
        classes: data.classes.clone(),
        train_counts: data.class_counts(&split.train),
        test_counts: data.class_counts(&split.test),
        split: split_text,
    };
    let provenance = HeadProvenance {
        source: data.source.clone(),
        training: serde_json::json!({
            "data": &data_summary,
            "options": &request.options,
            "device": &outcome.device,
        }),
        metrics: test_metrics.as_ref().map(|m| {
            serde_json::json!({
                "weighted_f1": m.weighted_f1,
                "accuracy": m.accuracy,
                "ham_to_spam_false_positive_rate": m.ham_to_spam_false_positive_rate,
                "classes": m.classes,
                "test_rows": split.test.len(),
            })
        }),
        thresholds: vec![],
        operating_point: None,
    };
    let mut files = Vec::new();
    let head_bytes = head_graph(&outcome.weights, &provenance, request.precision)?;
    let head_path = request.out_dir.join(HEAD_FILE);
    spamlens_fetch::write_atomically(&head_path, &head_bytes)?;
    files.push(head_path);

    // A head that does not fit the backbone (Email.cz features, another backbone's features) is
    // still a result: keep head.onnx and say why there is no combined graph.
    let mut combined_skipped = None;
    match &request.backbone {
        None => combined_skipped = Some("no backbone given".to_owned()),
        Some(backbone) => {
            let combined_path = request.out_dir.join(COMBINED_FILE);
            match write_combined(backbone, &head_bytes, &combined_path, request.force) {
                Ok(()) => files.push(combined_path),
                Err(e @ TrainerError::Model(spamlens_model::ModelError::Incompatible(_))) => {
                    combined_skipped = Some(e.to_string())
                }
                Err(e) => return Err(e),
            }
        }
    }

    if request.plots {
        let curves = request.out_dir.join("training.png");
        let drawn = plots::training_curves(&outcome.history, &curves).map(|()| curves);
        let confusion = outcome.confusion.as_ref().map(|c| {
            let path = request.out_dir.join("confusion.png");
            plots::confusion_matrix(c, &path).map(|()| path)
        });
        for result in std::iter::once(drawn).chain(confusion) {
            match result {
                Ok(path) => files.push(path),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    let mut report = TrainingReport {
        spamlens_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: spamlens_model::head::creation_time(),
        options: request.options.clone(),
        head: crate::head::HeadConfig {
            input_dim: data.dim,
            hidden: request.options.hidden.clone(),
            classes: data.classes.len(),
            dropout: request.options.dropout,
        }
        .describe(),
        device: outcome.device.clone(),
        data: data_summary,
        class_weights: outcome.class_weights.clone(),
        samples_per_second: outcome.samples_per_second,
        history: outcome.history.clone(),
        test_metrics,
        files: Vec::new(),
    };
    report.files = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .chain(["report.json".to_owned(), "report.md".to_owned()])
        .collect();
    files.extend(report.write(&request.out_dir)?);
    Ok(TrainArtifacts { report, outcome, files, combined_skipped })
}

/// Reads a backbone, attaches the head graph `head_bytes` to it, and writes the result atomically.
pub fn write_combined(backbone: &Path, head_bytes: &[u8], out: &Path, force: bool) -> Result<()> {
    let backbone_bytes = std::fs::read(backbone).map_err(|e| TrainerError::io(backbone, e))?;
    let head = read_head_graph(head_bytes, "head")?;
    let combined = combine(&backbone_bytes, &backbone.display().to_string(), &head, force)?;
    Ok(spamlens_fetch::write_atomically(out, &combined)?)
}
