//! `spamlens classify`: label and probabilities for every image named or found in a folder, in
//! input order, as a table or JSON Lines; a bad file is an error line and the rest go on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;
use spamlens_core::scan::ImageOutcome;
use spamlens_core::{Classifier, ImageReading, ModelOptions, ReadText};

use crate::reading::{Ocr, OcrArgs};

/// File extensions taken from folders (files named explicitly are always tried).
const IMAGE_EXTENSIONS: [&str; 10] = ["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff", "ico", "jfif"];

/// Files to classify, in order: explicit files as given, folders walked in sorted order keeping
/// image-like names; returns the number of folder entries skipped as not images.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, usize)> {
    let mut files = Vec::new();
    let mut skipped = 0;
    for input in inputs {
        if input.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name().follow_links(true) {
                let entry = entry.with_context(|| format!("walking {}", input.display()))?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy();
                let ext = entry.path().extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
                let image_like = match &ext {
                    Some(ext) => IMAGE_EXTENSIONS.contains(&ext.as_str()),
                    None => true,
                };
                if name.starts_with('.') || !image_like {
                    skipped += 1;
                    continue;
                }
                files.push(entry.into_path());
            }
        } else {
            // Missing files are reported per file, like unreadable ones.
            files.push(input.clone());
        }
    }
    Ok((files, skipped))
}

/// One file's outcome.
struct Outcome {
    file: PathBuf,
    result: Result<ImageReading, String>,
    millis: f64,
    /// OCR engine time, when it ran.
    ocr_millis: Option<f64>,
}

fn classify_file(classifier: &Classifier, ocr: &Ocr, file: &Path) -> Outcome {
    let started = Instant::now();
    let name = file.display().to_string();
    let ocr_time = std::sync::Mutex::new(None);
    let timed = |elapsed: std::time::Duration| {
        *ocr_time.lock().unwrap_or_else(|e| e.into_inner()) = Some(elapsed.as_secs_f64() * 1000.0);
    };
    let read = |image: &spamlens_core::ocr::OcrImage, input: &str| ocr.recognize(image, input, &timed);
    let engine: Option<ReadText<'_>> = if ocr.is_on() { Some(&read) } else { None };
    let result = std::fs::read(file)
        .map_err(|e| format!("{name}: cannot read: {e}"))
        .and_then(|bytes| classifier.read_and_classify(&bytes, &name, engine).map_err(|e| e.to_string()));
    let ocr_millis = *ocr_time.lock().unwrap_or_else(|e| e.into_inner());
    Outcome { file: file.to_path_buf(), result, millis: started.elapsed().as_secs_f64() * 1000.0, ocr_millis }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    Json,
}

/// Classifies `inputs` with the model at `model_path` (reading their text when the model does and
/// OCR is on); returns whether every file succeeded.
pub fn classify(
    model_path: &Path,
    inputs: &[PathBuf],
    format: Format,
    jobs: usize,
    ocr_args: &OcrArgs,
) -> Result<bool> {
    let bytes = std::fs::read(model_path).with_context(|| format!("reading model {}", model_path.display()))?;
    let classifier = Classifier::from_bytes(&bytes, &model_path.display().to_string(), &ModelOptions::default())?;
    drop(bytes);
    let (classifier, ocr) = Ocr::for_classifier(classifier, ocr_args)?;
    let (files, skipped) = collect_inputs(inputs)?;
    if skipped > 0 {
        tracing::info!("skipped {skipped} folder entries that are not image files by name");
    }
    if files.is_empty() {
        anyhow::bail!(
            "no image files found in {}",
            inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build().context("starting worker threads")?;
    let labels = classifier.labels().to_vec();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == Format::Table {
        write!(out, "{:<6}", "label")?;
        for label in &labels {
            write!(out, " {label:>8}")?;
        }
        writeln!(out, " {:>8}  file{}", "ms", if ocr.is_on() { "  «text read»" } else { "" })?;
    }
    let started = Instant::now();
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut per_label = vec![0usize; labels.len()];
    // Chunks keep the output in input order while every core works.
    for chunk in files.chunks(64) {
        let outcomes: Vec<Outcome> =
            pool.install(|| chunk.par_iter().map(|f| classify_file(&classifier, &ocr, f)).collect());
        for outcome in outcomes {
            match &outcome.result {
                Ok(reading) => {
                    ok += 1;
                    if let Some(i) = labels.iter().position(|l| *l == reading.verdict.label) {
                        per_label[i] += 1;
                    }
                }
                Err(_) => failed += 1,
            }
            write_outcome(&mut out, &outcome, format)?;
        }
        out.flush()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let counts: Vec<String> = labels.iter().zip(&per_label).map(|(l, n)| format!("{n} {l}")).collect();
    eprintln!(
        "{ok} classified ({}), {failed} failed, {:.1} images/s on {} threads{}",
        counts.join(", "),
        (ok + failed) as f64 / seconds.max(1e-9),
        jobs,
        if ocr.is_on() { ", text read by OCR" } else { "" }
    );
    Ok(failed == 0)
}

fn write_outcome(out: &mut impl Write, outcome: &Outcome, format: Format) -> std::io::Result<()> {
    let file = outcome.file.display().to_string();
    match (format, &outcome.result) {
        (Format::Json, Ok(reading)) => {
            let serde_json::Value::Object(fields) =
                serde_json::to_value(ImageOutcome::from_reading(Ok(reading.clone()))).unwrap_or_default()
            else {
                return writeln!(out, "{}", json!({ "file": file, "error": "unserialisable result" }));
            };
            let mut line = serde_json::Map::new();
            line.insert("file".into(), json!(file));
            line.extend(fields);
            line.insert("millis".into(), json!((outcome.millis * 10.0).round() / 10.0));
            if let Some(ocr) = outcome.ocr_millis {
                line.insert("ocr_millis".into(), json!((ocr * 10.0).round() / 10.0));
            }
            writeln!(out, "{}", serde_json::Value::Object(line))
        }
        (Format::Json, Err(message)) => writeln!(out, "{}", json!({ "file": file, "error": message })),
        (Format::Table, Ok(reading)) => {
            let v = &reading.verdict;
            write!(out, "{:<6}", v.label)?;
            for (_, p) in &v.probabilities {
                write!(out, " {p:>8.4}")?;
            }
            write!(out, " {:>8.1}  {file}", outcome.millis)?;
            if let Some(text) = &v.text {
                let flat: String = text.text().split_whitespace().collect::<Vec<_>>().join(" ");
                let shown: String = flat.chars().take(60).collect();
                write!(out, "  «{shown}{}»", if flat.chars().count() > 60 { "…" } else { "" })?;
            }
            if let Some(problem) = &reading.ocr_problem {
                write!(out, "  (text not read: {problem})")?;
            }
            writeln!(out)
        }
        (Format::Table, Err(message)) => writeln!(out, "error  {message}"),
    }
}
