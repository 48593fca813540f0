//! `train`, `export` and `grid`: argument parsing and progress display over the library's
//! `experiment`, `export` and `grid` modules.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spamlens_model::Precision;
use spamlens_model::backbone;
use spamlens_trainer::emailcz::{IngestOptions, IngestProgress};
use spamlens_trainer::experiment::{self, DataSpec, RunProgress, TrainRequest};
use spamlens_trainer::head::{EpochRecord, StoppingMetric, TrainDevice, TrainOptions, TrainProgress};

use crate::{ByteBar, EmailCzFilterArgs, draw_target};

/// Hyper-parameters shared by `train` and `grid`.
#[derive(Args, Debug, Clone)]
pub struct HeadArgs {
    /// Hidden layer widths, comma-separated (paper: 2048; its reference code: 2048,2048).
    #[arg(long, value_delimiter = ',', default_value = "2048")]
    hidden: Vec<usize>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 80)]
    epochs: usize,
    /// Rows per optimiser step (reference code: 5000).
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Do not weight the loss by inverse class frequency.
    #[arg(long)]
    no_class_weights: bool,
    /// Seed for the initial weights, the batch order and the split.
    #[arg(long, default_value_t = 2018)]
    seed: u64,
    /// Share of each class held out for testing (paper: 0.25 for public sets, 0.15 for Email.cz).
    #[arg(long, default_value_t = 0.25)]
    test_fraction: f64,
    /// `cpu`, or `cuda` / `cuda:N` in a build with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Adam's L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Dropout after each hidden layer while training.
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Cosine learning-rate decay to 0 over the epochs.
    #[arg(long)]
    cosine: bool,
    /// Standardise the features with the training rows' mean and std (folded into the exported head).
    #[arg(long)]
    standardize: bool,
    /// Keep the epoch with the lowest loss on the held-out side and stop after this many epochs
    /// without improvement (the held-out side then selects the model: use `evaluate` for honest numbers).
    #[arg(long)]
    early_stopping: Option<usize>,
    /// What early stopping watches on the held-out side: `loss` or `spam-auc` (ROC AUC of p(spam)).
    #[arg(long, default_value = "loss", value_parser = crate::parse_stopping_metric)]
    stop_on: StoppingMetric,
}

impl HeadArgs {
    fn options(&self) -> Result<(TrainOptions, TrainDevice)> {
        if self.hidden.contains(&0) {
            bail!("--hidden widths must be positive");
        }
        if !(0.0..1.0).contains(&self.test_fraction) {
            bail!("--test-fraction must be in [0, 1), got {}", self.test_fraction);
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            bail!("--learning-rate must be positive");
        }
        if self.epochs == 0 || self.batch_size == 0 {
            bail!("--epochs and --batch-size must be positive");
        }
        let options = TrainOptions {
            hidden: self.hidden.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            class_weights: !self.no_class_weights,
            seed: self.seed,
            weight_decay: self.weight_decay,
            dropout: self.dropout,
            cosine_schedule: self.cosine,
            standardize: self.standardize,
            early_stopping: self.early_stopping,
            stop_on: self.stop_on,
        };
        options.check()?;
        Ok((options, TrainDevice::parse(&self.device)?))
    }
}

/// `spamlens-train train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training feature stores (Parquet, from `spamlens-train features`).
    #[arg(long = "store", value_name = "PARQUET", required_unless_present = "emailcz")]
    stores: Vec<PathBuf>,
    /// Explicit test stores (instead of a stratified split of the training stores).
    #[arg(long = "test-store", value_name = "PARQUET")]
    test_stores: Vec<PathBuf>,
    /// Train on an Email.cz-format file (.json or .json.gz) instead of stores.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stores", "test_stores"])]
    emailcz: Option<PathBuf>,
    #[command(flatten)]
    filter: EmailCzFilterArgs,
    #[command(flatten)]
    head: HeadArgs,
    /// Output folder: head.onnx, model.onnx (backbone + head), report.json/.md, PNG plots.
    #[arg(long)]
    out: PathBuf,
    /// Backbone for the combined model.onnx (default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Write only head.onnx.
    #[arg(long)]
    head_only: bool,
    /// Store the head's weights as 16-bit floats (half the size).
    #[arg(long)]
    f16: bool,
    /// Combine with the backbone even if the head was trained on other features.
    #[arg(long)]
    force: bool,
    /// Skip the PNG plots.
    #[arg(long)]
    no_plots: bool,
}

/// `spamlens-train export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A head graph (head.onnx from `train`, or models/default/head.onnx).
    #[arg(long)]
    head: PathBuf,
    /// Backbone (default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Output combined graph.
    #[arg(long)]
    out: PathBuf,
    /// Combine even if the head was trained on other features (e.g. Email.cz).
    #[arg(long)]
    force: bool,
}

/// `spamlens-train quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The f32 model: a combined model (`model.onnx` from `train` or `export`) or a backbone.
    model: PathBuf,
    /// Output model with int8 convolution weights.
    #[arg(long)]
    out: PathBuf,
    /// Also quantise the convolutions' activations, for int8 compute (`QLinearConv`): their ranges
    /// are calibrated by running the f32 model on images of these datasets (folders of label
    /// folders, such as the shared image sets; repeat the flag for several). Without it, only the
    /// weights' storage is int8.
    #[arg(long, value_name = "DATASET")]
    calibrate: Vec<PathBuf>,
    /// Calibration images in all, shared between the datasets and spread evenly over each one's
    /// files in path order.
    #[arg(long, default_value_t = 64)]
    calibration_images: usize,
    /// Also write the calibrated activation ranges to this JSON file.
    #[arg(long, value_name = "JSON", requires = "calibrate")]
    save_ranges: Option<PathBuf>,
    /// Quantise activations with ranges saved by `--save-ranges` instead of calibrating (the graph
    /// must have the same convolution tensors, e.g. a combined model of the calibrated backbone).
    #[arg(long, value_name = "JSON", conflicts_with = "calibrate")]
    ranges: Option<PathBuf>,
}

/// `spamlens-train grid`.
#[derive(Args, Debug)]
pub struct GridArgs {
    /// An Email.cz-format file (.json or .json.gz).
    file: PathBuf,
    /// Use the reference code's rules (drop multi-reaction users, vote on raw reactions).
    #[arg(long)]
    reference_code: bool,
    /// Keep the reactions of users who disagree with themselves.
    #[arg(long)]
    keep_inconsistent_users: bool,
    /// Read at most this many lines.
    #[arg(long)]
    max_lines: Option<usize>,
    #[command(flatten)]
    head: HeadArgs,
    /// Also write the Markdown tables and the cells as JSON to this path prefix (.md, .json).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Progress for a whole run: a byte bar while reading, a step bar while training, one log line per epoch.
struct RunBars {
    read: ByteBar,
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl RunBars {
    fn new(epochs: usize) -> Self {
        Self { read: ByteBar::new("reading"), bar: None, epochs }
    }
}

impl TrainProgress for RunBars {
    fn start(&mut self, total_steps: u64) {
        self.read.bar.finish_and_clear();
        let bar = ProgressBar::with_draw_target(Some(total_steps), draw_target());
        bar.set_style(
            ProgressStyle::with_template("train [{bar:40}] step {pos}/{len} {msg} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.bar = Some(bar);
    }
    fn step(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
    fn epoch(&mut self, r: &EpochRecord) {
        let test = match (r.test_loss, r.test_weighted_f1) {
            (Some(loss), Some(f1)) => format!(" test loss {loss:.4} weighted F1 {f1:.4}"),
            _ => String::new(),
        };
        let line = format!(
            "epoch {}/{} train loss {:.4}{test} ({:.2} s)",
            r.epoch, self.epochs, r.train_loss, r.train_seconds
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("epoch {}/{}{test}", r.epoch, self.epochs));
                bar.suspend(|| tracing::info!("{line}"));
            }
            None => tracing::info!("{line}"),
        }
        if r.epoch == self.epochs
            && let Some(bar) = self.bar.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl RunProgress for RunBars {
    fn ingest(&self) -> &dyn IngestProgress {
        &self.read
    }
    fn phase(&mut self, message: &str) {
        tracing::info!("{message}");
    }
}

fn ingest_options(filter: &EmailCzFilterArgs, max_lines: Option<usize>) -> Result<IngestOptions> {
    Ok(IngestOptions { filter: filter.options()?, max_lines, ..IngestOptions::default() })
}

pub fn train(args: TrainArgs) -> Result<()> {
    let (options, device) = args.head.options()?;
    let data = match &args.emailcz {
        Some(path) => DataSpec::EmailCz { path: path.clone(), ingest: ingest_options(&args.filter, None)? },
        None => DataSpec::Stores { train: args.stores.clone(), test: args.test_stores.clone() },
    };
    let backbone = if args.head_only {
        None
    } else {
        match backbone::locate_backbone(args.backbone.as_deref()) {
            Ok(path) => Some(path),
            Err(e) if args.backbone.is_none() => {
                tracing::warn!("{e}; writing head.onnx only");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let request = TrainRequest {
        data,
        test_fraction: if args.test_stores.is_empty() { args.head.test_fraction } else { 0.0 },
        split_seed: args.head.seed,
        options: options.clone(),
        device,
        out_dir: args.out.clone(),
        precision: if args.f16 { Precision::F16 } else { Precision::F32 },
        backbone,
        force: args.force,
        plots: !args.no_plots,
    };
    let mut bars = RunBars::new(options.epochs);
    let artifacts = experiment::run(&request, &mut bars).context("training")?;
    if let Some(m) = &artifacts.outcome.confusion {
        println!("held-out metrics ({} rows):\n{}", m.total(), m.table());
    }
    println!(
        "{} on {}: {:.0} rows/s",
        artifacts.report.head, artifacts.report.device, artifacts.report.samples_per_second
    );
    if let Some(reason) = &artifacts.combined_skipped {
        println!("no combined model: {reason}");
    }
    for file in &artifacts.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}

pub fn export(args: ExportArgs) -> Result<()> {
    let backbone = backbone::locate_backbone(args.backbone.as_deref())?;
    let head = std::fs::read(&args.head).with_context(|| format!("reading {}", args.head.display()))?;
    experiment::write_combined(&backbone, &head, &args.out, args.force)
        .with_context(|| format!("combining {} with {}", args.head.display(), backbone.display()))?;
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!("wrote {} ({bytes} bytes): {} + {}", args.out.display(), backbone.display(), args.head.display());
    Ok(())
}

pub fn quantize(args: QuantizeArgs) -> Result<()> {
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let name = args.model.display().to_string();
    if !args.calibrate.is_empty() || args.ranges.is_some() {
        return quantize_static(&args, &bytes, &name);
    }
    let (quantized, report) = spamlens_model::quantize_conv_weights(&bytes, &name)?;
    spamlens_fetch::write_atomically(&args.out, &quantized)?;
    println!(
        "wrote {} ({} bytes, {:.1}% of {}): {} convolution weights ({} values) as int8 per output channel, {} kept f32; \
         rounding error per weight ≤ {:.5} of its channel's largest (rms {:.5})",
        args.out.display(),
        report.bytes_after,
        100.0 * report.bytes_after as f64 / report.bytes_before as f64,
        report.bytes_before,
        report.tensors,
        report.values,
        report.kept_f32,
        report.max_relative_error,
        report.rms_relative_error
    );
    Ok(())
}

/// `quantize --calibrate` or `--ranges`: activation ranges, then the QLinearConv model.
fn quantize_static(args: &QuantizeArgs, bytes: &[u8], name: &str) -> Result<()> {
    let (ranges, source) = match &args.ranges {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let ranges: spamlens_model::ActivationRanges = serde_json::from_str(&text)
                .with_context(|| format!("{}: not activation ranges saved by --save-ranges", path.display()))?;
            (ranges, path.display().to_string())
        }
        None => {
            let ranges = calibrate_on_datasets(args, bytes, name)?;
            if let Some(path) = &args.save_ranges {
                let json = serde_json::to_string_pretty(&ranges).context("encoding the activation ranges")?;
                spamlens_fetch::write_atomically(path, json.as_bytes())?;
            }
            let datasets: Vec<String> = args.calibrate.iter().map(|d| d.display().to_string()).collect();
            (ranges, datasets.join(", "))
        }
    };
    let (quantized, report) = spamlens_model::quantize_static(bytes, name, &ranges)?;
    spamlens_fetch::write_atomically(&args.out, &quantized)?;
    println!(
        "wrote {} ({} bytes, {:.1}% of {}): {} convolutions as QLinearConv (int8 weights per output channel, \
         {} activations as int8 or uint8 per tensor), {} kept f32, ranges from {} images ({source}){}",
        args.out.display(),
        report.bytes_after,
        100.0 * report.bytes_after as f64 / report.bytes_before as f64,
        report.bytes_before,
        report.convolutions,
        report.activations,
        report.kept_f32,
        report.calibration_images,
        if ranges.skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} left out: not decodable)", ranges.skipped.len())
        }
    );
    Ok(())
}

/// Runs the f32 model on `--calibration-images` images of the `--calibrate` datasets.
fn calibrate_on_datasets(args: &QuantizeArgs, bytes: &[u8], name: &str) -> Result<spamlens_model::ActivationRanges> {
    use spamlens_core::{Preprocessing, classifier::META_PREPROCESSING};
    if args.calibration_images < args.calibrate.len() {
        bail!("--calibration-images must give each of the {} datasets at least one image", args.calibrate.len());
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(args.calibration_images);
    for (index, dataset) in args.calibrate.iter().enumerate() {
        let entries = spamlens_trainer::dataset::scan(dataset)
            .with_context(|| format!("listing the calibration images in {}", dataset.display()))?
            .entries;
        if entries.is_empty() {
            bail!("{} holds no images to calibrate with", dataset.display());
        }
        // An even share for each dataset; the first ones take the remainder.
        let share = args.calibration_images / args.calibrate.len()
            + usize::from(index < args.calibration_images % args.calibrate.len());
        let step = (entries.len() / share).max(1);
        for entry in entries.iter().step_by(step).take(share) {
            let data = std::fs::read(&entry.path).with_context(|| format!("reading {}", entry.path.display()))?;
            files.push((entry.path.display().to_string(), data));
        }
    }
    // A combined model declares its preprocessing; a plain backbone gets the letterbox the
    // feature stores and the built-in model use.
    let declared = spamlens_model::read_metadata(bytes, META_PREPROCESSING);
    let preprocessing = match declared {
        Some(description) => Preprocessing::from_description(&description)
            .with_context(|| format!("{name}: preprocessing '{description}' is not one this trainer knows"))?,
        None => Preprocessing::RESNET_IMAGENET_LETTERBOX,
    };
    let bar = ProgressBar::with_draw_target(Some(files.len() as u64), draw_target());
    bar.set_style(
        ProgressStyle::with_template("calibrating [{bar:40}] {pos}/{len} images {per_sec:.1} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ranges = spamlens_model::calibrate(
        bytes,
        name,
        &preprocessing,
        files.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
        threads,
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    for skipped in &ranges.skipped {
        tracing::warn!("calibration image left out: {skipped}");
    }
    Ok(ranges)
}

pub fn grid(args: GridArgs) -> Result<()> {
    let (options, device) = args.head.options()?;
    let filter = EmailCzFilterArgs {
        min_reactions: 0,
        min_consistency: 0.0,
        keep_inconsistent_users: args.keep_inconsistent_users,
        reference_code: args.reference_code,
    };
    let ingest = ingest_options(&filter, args.max_lines)?;
    let read = ByteBar::new("reading");
    let mut quiet = spamlens_trainer::head::NoTrainProgress;
    let cells = spamlens_trainer::grid::MIN_REACTIONS.len() * spamlens_trainer::grid::MIN_CONSISTENCY.len();
    let mut done = 0;
    let grid = spamlens_trainer::grid::run_grid(
        &args.file,
        &ingest,
        args.head.test_fraction,
        args.head.seed,
        &options,
        device,
        &read,
        &mut quiet,
        &mut |cell| {
            read.bar.finish_and_clear();
            done += 1;
            tracing::info!(
                "cell {done}/{cells}: >{} reactions, consistency ≥ {}: {} samples, weighted F1 {}",
                cell.min_reactions,
                cell.min_consistency,
                cell.samples,
                cell.weighted_f1.map_or("–".to_owned(), |f| format!("{f:.4}"))
            );
        },
    )
    .with_context(|| format!("grid over {}", args.file.display()))?;
    let markdown = grid.markdown();
    println!("{markdown}");
    if let Some(prefix) = &args.out {
        let md = prefix.with_extension("md");
        let json = prefix.with_extension("json");
        spamlens_fetch::write_atomically(&md, markdown.as_bytes())?;
        spamlens_fetch::write_atomically(&json, &serde_json::to_vec_pretty(&grid)?)?;
        println!("wrote {} and {}", md.display(), json.display());
    }
    Ok(())
}
