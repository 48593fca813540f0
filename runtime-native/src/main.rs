//! `spamlens`: the native runtime's command line. Thin over `spamlens-core`.
//!
//! Today it inspects models and checks images the way the classifier will read them; the
//! `classify` and `serve` commands arrive with the trained head.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
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
