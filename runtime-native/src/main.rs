//! `spamlens`: the native runtime's command line. Thin over `spamlens-core`.
//!
//! `classify` labels images with a combined model (by default the built-in head on the fetched
//! backbone); `scan` gives whole emails one verdict (text filter + images) and `feedback` teaches
//! the text filter; `serve` is the HTTP classification service; `demo` serves the browser demo page;
//! `inspect` and `check-images` help diagnose models and inputs.

use std::path::PathBuf;

use anyhow::{Context, Result};

mod classify;
mod default_model;
mod demo;
mod reaction_log;
mod reading;
mod scan;
mod serve;
use clap::{Parser, Subcommand};
use spamlens_core::{DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};

#[derive(Parser, Debug)]
#[command(name = "spamlens", version, about = "Email image-spam classifier (native runtime)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Label images as spam / ham (/ ad): one line per file, in order. Folders are walked for
    /// image files. Exits with status 1 if any file failed.
    Classify {
        /// Image files or folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// A combined model (model.onnx from `spamlens-train train`). Default: the built-in head on
        /// the fetched backbone.
        #[arg(long, env = "SPAMLENS_MODEL")]
        model: Option<PathBuf>,
        /// Backbone for the built-in head (default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
        #[arg(long, conflicts_with = "model")]
        backbone: Option<PathBuf>,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Parallel workers (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        ocr: reading::OcrArgs,
    },
    /// One verdict per email: the CLA_ANN text filter's score, every image's label, and the
    /// combined verdict with the part that decided. Takes .eml files, mbox files and folders.
    /// Exits with status 1 if any message could not be read.
    Scan {
        /// Message files (.eml, mbox) or folders of them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// A combined image model. Default: the built-in head on the fetched backbone.
        #[arg(long, env = "SPAMLENS_MODEL")]
        model: Option<PathBuf>,
        /// Backbone for the built-in head (default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
        #[arg(long, conflicts_with = "model")]
        backbone: Option<PathBuf>,
        /// Do not classify images (text filter only; no backbone needed).
        #[arg(long, conflicts_with_all = ["model", "backbone"])]
        no_images: bool,
        /// A text filter state (from `spamlens feedback` or `spamlens-train text-filter train`).
        /// Default: the built-in filter.
        #[arg(long, env = "SPAMLENS_TEXT_FILTER")]
        text_filter: Option<PathBuf>,
        /// Do not use the text filter (images only).
        #[arg(long, conflicts_with = "text_filter")]
        no_text: bool,
        /// Continuous learning (CLA_ANN Algorithm 3): the filter observes each message in order —
        /// new tokens of messages judged spam join its adaptive layer, merged on schedule — and is
        /// saved back to --text-filter (created from the built-in filter if missing).
        #[arg(long, requires = "text_filter")]
        learn: bool,
        /// An image with at least this spam probability makes the message spam (default: the
        /// model's own operating point, its `spamlens.thresholds` metadata).
        #[arg(long)]
        image_spam_threshold: Option<f32>,
        /// An image with at least this ad probability makes a not-spam message an ad (default: an
        /// image the model labels ad).
        #[arg(long)]
        image_ad_threshold: Option<f32>,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Parallel workers (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        ocr: reading::OcrArgs,
    },
    /// The user's "mark as spam / not spam": the text filter in STATE learns from each message at
    /// once (STATE starts as a copy of the built-in filter), and the reaction with the message's
    /// images is logged (Email.cz vocabulary) for retraining the image head.
    Feedback {
        /// Message files (.eml, mbox) or folders of them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// spam or ham.
        #[arg(long)]
        label: spamlens_core::cla_ann::TextLabel,
        /// The user's text filter state (JSON; created if missing).
        #[arg(long)]
        state: PathBuf,
        /// Where to log reactions and image bytes (default: STATE.feedback/).
        #[arg(long)]
        log_dir: Option<PathBuf>,
        #[command(flatten)]
        ocr: reading::OcrArgs,
    },
    /// Serve the browser demo page, the JS package and a model on loopback (or export them as a
    /// static site with --export). Needs the JS package built by runtime-wasm/build.sh.
    Demo {
        /// Address to listen on (port 0: any free port; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// A combined model. Default: the built-in head on the fetched backbone, quantised for int8
        /// compute (a quarter of the download, a third of the memory; `spamlens-train quantize
        /// --ranges models/default/activation-ranges.json` makes it).
        #[arg(long, env = "SPAMLENS_MODEL")]
        model: Option<PathBuf>,
        /// Backbone for the built-in head (default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
        #[arg(long, conflicts_with = "model")]
        backbone: Option<PathBuf>,
        /// The demo page's folder (default: $SPAMLENS_WWW, ./www, the checkout's www/).
        #[arg(long)]
        www: Option<PathBuf>,
        /// The built JS package (default: $SPAMLENS_JS, ./runtime-wasm/js, the checkout's).
        #[arg(long)]
        package: Option<PathBuf>,
        /// Write the site into this folder for a static server instead of serving it.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Run the HTTP classification service: POST images to /v1/classify; health, readiness,
    /// Prometheus metrics and the OpenAPI document beside it. Stops cleanly on SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Print an ONNX model's input, outputs and metadata.
    Inspect {
        /// The ONNX file.
        model: PathBuf,
    },
    /// Decode and preprocess images exactly as the classifier will; report each file's outcome.
    /// Exits with status 1 if any file fails.
    CheckImages {
        /// Image files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    // SAFETY: the first statement of main, before any thread exists.
    unsafe { spamlens_core::model::tuning::select_matmul_cost_model() };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Classify { inputs, model, backbone, json, jobs, ocr } => {
            let model = match model {
                Some(path) => path,
                None => default_model::default_model(backbone.as_deref())?,
            };
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let format = if json { classify::Format::Json } else { classify::Format::Table };
            classify::classify(&model, &inputs, format, jobs, &ocr)
        }
        Command::Scan {
            inputs,
            model,
            backbone,
            no_images,
            text_filter,
            no_text,
            learn,
            image_spam_threshold,
            image_ad_threshold,
            json,
            jobs,
            ocr,
        } => {
            let model = match (model, no_images) {
                (_, true) => None,
                (Some(path), false) => Some(path),
                (None, false) => Some(default_model::default_model(backbone.as_deref())?),
            };
            let options = scan::ScanOptions {
                model,
                text_filter,
                no_text,
                rule: spamlens_core::scan::VerdictRule {
                    image_spam_threshold,
                    image_ad_threshold,
                    use_text: !no_text,
                    use_images: !no_images,
                },
                json,
                learn,
                jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                ocr,
            };
            scan::scan(&inputs, &options)
        }
        Command::Feedback { inputs, label, state, log_dir, ocr } => {
            scan::feedback(&inputs, &scan::FeedbackOptions { state, label, log_dir, ocr })
        }
        Command::Demo { listen, model, backbone, www, package, export } => {
            let model = match model {
                Some(path) => path,
                None => default_model::default_browser_model(backbone.as_deref())?,
            };
            let site = demo::DemoSite::prepare(www, package, &model)?;
            if let Some(dir) = export {
                site.export(&dir)?;
                println!(
                    "exported the demo to {} (model sha256 {}); serve that folder with any static server",
                    dir.display(),
                    site.sha256()
                );
                return Ok(true);
            }
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(demo::serve(&site, listen))?;
            Ok(true)
        }
        Command::Serve(args) => {
            serve::run(args)?;
            Ok(true)
        }
        Command::Inspect { model } => {
            let bytes = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
            let loaded = Model::from_bytes(&bytes, &model.display().to_string(), &ModelOptions::default())?;
            print!("model:   {}\n{}", model.display(), loaded.describe());
            Ok(true)
        }
        Command::CheckImages { files } => {
            let mut all_ok = true;
            for file in files {
                let name = file.display().to_string();
                let outcome = std::fs::read(&file).map_err(|e| format!("{name}: cannot read: {e}")).and_then(|bytes| {
                    prepare_image(&bytes, &name, &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)
                        .map_err(|e| e.to_string())
                });
                match outcome {
                    Ok(image) => println!("ok\t{name}\t{} {}x{}", image.format, image.width, image.height),
                    Err(message) => {
                        all_ok = false;
                        println!("error\t{message}");
                    }
                }
            }
            Ok(all_ok)
        }
    }
}
