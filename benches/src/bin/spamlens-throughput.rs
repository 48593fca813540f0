//! Backbone throughput on a list of images with a chosen threading layout; prints one JSON line.
//!
//! `--workers W --intra-op T`: W threads share one loaded model, each running whole images with T
//! threads inside each inference. Used by `benches/compare_ort.py` to compare with onnxruntime.
//! The line also gives the model's load time and its phases (`load_phases`: sha256, protobuf,
//! …, declutter, optimise, plan).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use spamlens_core::{Batching, DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};

#[derive(Parser, Debug)]
struct Args {
    /// Backbone ONNX.
    #[arg(long)]
    model: PathBuf,
    /// Parallel workers sharing the model.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Threads inside one inference.
    #[arg(long, default_value_t = 1)]
    intra_op: usize,
    /// Passes over the image list.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Image files.
    images: Vec<PathBuf>,
}

fn main() -> Result<()> {
    // SAFETY: the first statement of main, before any thread exists.
    unsafe { spamlens_core::model::tuning::select_matmul_cost_model() };
    let args = Args::parse();
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let options =
        ModelOptions { intra_op_threads: Some(args.intra_op), batching: Batching::PerItem, ..Default::default() };
    let load_started = Instant::now();
    let model = Model::from_bytes(&bytes, "backbone", &options)?;
    let load_millis = load_started.elapsed().as_secs_f64() * 1e3;
    let files: Vec<Vec<u8>> = args.images.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    // Warm-up: one inference per worker.
    let warm = prepare_image(&files[0], "warm", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)?;
    model.run(warm.tensor, 1)?;

    let total = files.len() * args.repeat;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..args.workers.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return Ok(());
                        }
                        let data = &files[i % files.len()];
                        let image =
                            prepare_image(data, "bench", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)?;
                        model.run(image.tensor, 1)?;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "runtime": "spamlens/tract",
            "workers": args.workers,
            "intra_op_threads": args.intra_op,
            "images": total,
            "seconds": seconds,
            "images_per_second": total as f64 / seconds,
            "load_millis": load_millis,
            "load_phases": model.load_phases(),
        })
    );
    Ok(())
}
