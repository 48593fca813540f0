//! Where tract spends the time on a model: runs one preprocessed image through the optimised plan
//! several times and prints each node's mean time, its share, the operator and what tract says
//! about it (matmul kernel, packing), slowest first, then the total per operator kind.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use spamlens_core::{Batching, DecodeLimits, Model, ModelOptions, NodeTiming, Preprocessing, prepare_image};

#[derive(Parser, Debug)]
struct Args {
    /// The model (a backbone or a combined model).
    #[arg(long)]
    model: PathBuf,
    /// The image to run (preprocessed as the ResNet backbone expects).
    #[arg(long)]
    image: PathBuf,
    /// Threads inside the inference.
    #[arg(long, default_value_t = 1)]
    intra_op: usize,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Nodes to list (slowest first).
    #[arg(long, default_value_t = 40)]
    top: usize,
}

fn main() -> Result<()> {
    // SAFETY: the first statement of main, before any thread exists.
    unsafe { spamlens_core::model::tuning::select_matmul_cost_model() };
    let args = Args::parse();
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let options =
        ModelOptions { intra_op_threads: Some(args.intra_op), batching: Batching::PerItem, ..Default::default() };
    let model = Model::from_bytes(&bytes, &args.model.display().to_string(), &options)?;
    let data = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let image = prepare_image(&data, "profile", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)?;
    let mut inputs = vec![image.tensor];
    for input in &model.inputs()[1..] {
        inputs.push(vec![0.0; input.values_per_item()]);
    }
    model.profile(inputs.clone(), 1, 1)?;
    let mut nodes = model.profile(inputs, 1, args.rounds)?;
    let total: Duration = nodes.iter().map(|n| n.time).sum();
    let mut by_op: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
    for node in &nodes {
        let entry = by_op.entry(node.op.clone()).or_default();
        entry.0 += node.time;
        entry.1 += 1;
    }
    // A closed stdout (`| head`) ends the listing quietly instead of panicking in println!.
    match print_report(&mut std::io::stdout().lock(), &mut nodes, by_op, total, args.top) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the profile"),
    }
}

fn print_report(
    out: &mut impl Write,
    nodes: &mut [NodeTiming],
    by_op: BTreeMap<String, (Duration, usize)>,
    total: Duration,
    top: usize,
) -> std::io::Result<()> {
    writeln!(out, "total {:.2} ms per run, {} nodes", total.as_secs_f64() * 1e3, nodes.len())?;
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by_key(|(_, (time, _))| std::cmp::Reverse(*time));
    for (op, (time, count)) in ops {
        writeln!(out, "{:>8.2} ms {:>5.1}%  {count:>4} x {op}", time.as_secs_f64() * 1e3, share(time, total))?;
    }
    nodes.sort_by_key(|node| std::cmp::Reverse(node.time));
    for node in nodes.iter().take(top) {
        writeln!(
            out,
            "{:>8.2} ms {:>5.1}%  {} {} -> {}\n      {}",
            node.time.as_secs_f64() * 1e3,
            share(node.time, total),
            node.op,
            node.name,
            node.output,
            node.detail
        )?;
    }
    Ok(())
}

fn share(part: Duration, total: Duration) -> f64 {
    100.0 * part.as_secs_f64() / total.as_secs_f64().max(f64::MIN_POSITIVE)
}
