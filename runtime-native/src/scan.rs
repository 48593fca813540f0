//! `spamlens scan` (one verdict per message: text filter + image classifier) and `spamlens feedback`
//! (the user's "mark as spam / not spam": the text filter learns at once, the reaction is logged for
//! retraining the image head).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use spamlens_core::cla_ann::{ClaAnn, TextLabel};
use spamlens_core::email::{EmailLimits, mbox, parse_email};
use spamlens_core::scan::{MessageScan, VerdictRule, image_text_appended, scan_email};
use spamlens_core::{Classifier, ModelOptions, ReadText};

use crate::reading::{Ocr, OcrArgs};

use crate::reaction_log::{TextScores, log_reaction};

/// Loads the text filter at `path`, or the built-in one (`ClaAnn::builtin`).
pub fn load_text_filter(path: Option<&Path>) -> Result<ClaAnn> {
    match path {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading text filter {}", path.display()))?;
            Ok(ClaAnn::from_json(&bytes, &path.display().to_string())?)
        }
        None => Ok(ClaAnn::builtin()?),
    }
}

/// Largest mbox file read (it is read whole, then split): past it the file is refused with a
/// message, rather than exhausting memory.
pub const MAX_MBOX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// One message to scan: its name and bytes (a file, or one message of an mbox).
pub struct MessageInput {
    /// `path` or `path#N` for the N-th message of an mbox.
    pub name: String,
    /// The message bytes.
    pub bytes: Vec<u8>,
}

/// Reads every message named: files as they are, mbox files split into their messages, folders
/// walked (sorted, hidden files skipped). Unreadable files become an error entry.
pub fn collect_messages(inputs: &[PathBuf], limits: &EmailLimits) -> Result<Vec<Result<MessageInput, String>>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                let entry = entry.with_context(|| format!("walking {}", input.display()))?;
                if entry.file_type().is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                    files.push(entry.into_path());
                }
            }
        } else {
            files.push(input.clone());
        }
    }
    let mut messages = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let is_mbox_name = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("mbox"));
        // An mbox may hold many messages; a single message is capped by the message limit.
        if !is_mbox_name && size > limits.max_message_bytes as u64 {
            messages.push(Err(format!(
                "{name}: {size} bytes, over the message-size limit of {} bytes",
                limits.max_message_bytes
            )));
            continue;
        }
        if size > MAX_MBOX_BYTES {
            messages.push(Err(format!(
                "{name}: {size} bytes, over the mbox limit of {MAX_MBOX_BYTES} bytes; split it first"
            )));
            continue;
        }
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                messages.push(Err(format!("{name}: cannot read: {e}")));
                continue;
            }
        };
        if mbox::is_mbox(&bytes) {
            for (i, message) in mbox::split_mbox(&bytes).into_iter().enumerate() {
                messages.push(Ok(MessageInput {
                    name: format!("{name}#{} (line {})", i + 1, message.line),
                    bytes: message.bytes,
                }));
            }
        } else {
            messages.push(Ok(MessageInput { name, bytes }));
        }
    }
    Ok(messages)
}

/// Options of `spamlens scan`.
pub struct ScanOptions {
    /// Combined image model, or None to scan text only.
    pub model: Option<PathBuf>,
    /// Text filter state, or None for the built-in one.
    pub text_filter: Option<PathBuf>,
    /// Skip the text filter.
    pub no_text: bool,
    /// How parts become the verdict.
    pub rule: VerdictRule,
    /// JSON Lines output.
    pub json: bool,
    /// Algorithm 3's continuous learning: each scanned message is observed by the text filter
    /// (its new tokens join the adaptive layer when it is judged spam; merges on schedule), in
    /// input order, and the filter is saved back to `text_filter`.
    pub learn: bool,
    /// Parallel messages.
    pub jobs: usize,
    /// OCR flags.
    pub ocr: OcrArgs,
}

/// Scans every message; returns whether all could be read.
pub fn scan(inputs: &[PathBuf], options: &ScanOptions) -> Result<bool> {
    spamlens_core::scan::check_rule(&options.rule)?;
    let (classifier, ocr) = match &options.model {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
            let classifier = Classifier::from_bytes(&bytes, &path.display().to_string(), &ModelOptions::default())?;
            let (classifier, ocr) = Ocr::for_classifier(classifier, &options.ocr)?;
            (Some(classifier), ocr)
        }
        None => (None, Ocr::default()),
    };
    let read = |image: &spamlens_core::ocr::OcrImage, input: &str| ocr.recognize(image, input, &|_| {});
    let engine: Option<ReadText<'_>> = if ocr.is_on() { Some(&read) } else { None };
    if options.learn && (options.no_text || options.text_filter.is_none()) {
        bail!("--learn needs --text-filter FILE: the filter that learns is saved there");
    }
    let state_path = options.text_filter.as_deref().filter(|p| options.learn || p.exists());
    let mut filter = if options.no_text {
        None
    } else if options.learn && state_path.is_some_and(|p| !p.exists()) {
        // A new user's filter starts as the built-in one.
        Some(load_text_filter(None)?)
    } else {
        Some(load_text_filter(options.text_filter.as_deref())?)
    };
    let limits = EmailLimits::DEFAULT;
    let messages = collect_messages(inputs, &limits)?;
    if messages.is_empty() {
        bail!("no messages found in {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(options.jobs.max(1)).build().context("starting worker threads")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !options.json {
        writeln!(out, "{:<5} {:<10} {:>6} {:>7}  message  |  subject", "label", "decided by", "text", "images")?;
    }
    let started = Instant::now();
    let (mut failed, mut counts) = (0usize, std::collections::BTreeMap::<String, usize>::new());
    // Chunks keep the output in input order while every core works; learning goes one message at a
    // time, so each message is scored by the filter that learnt from the ones before it.
    for chunk in messages.chunks(if options.learn { 1 } else { 32 }) {
        let results: Vec<Result<MessageScan, String>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|m| {
                    let m = m.as_ref().map_err(Clone::clone)?;
                    scan_email(&m.bytes, &m.name, &limits, classifier.as_ref(), engine, filter.as_ref(), &options.rule)
                        .map_err(|e| e.to_string())
                })
                .collect()
        });
        for result in &results {
            match result {
                Ok(scan) => *counts.entry(scan.verdict.label.clone()).or_default() += 1,
                Err(_) => failed += 1,
            }
            write_scan(&mut out, result, options.json)?;
        }
        if options.learn
            && let Some(filter) = filter.as_mut()
        {
            // Learning reads what scoring read: the body and the text in the message's images.
            for (m, result) in chunk.iter().zip(&results) {
                if let (Ok(m), Ok(scan)) = (m, result)
                    && let Ok(parsed) = parse_email(&m.bytes, &m.name, &limits)
                {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    let text =
                        image_text_appended(&parsed.body_text, scan.images.iter().filter_map(|i| i.outcome.text()));
                    filter.observe(&filter.tokens(&parsed.subject, &text), now);
                }
            }
        }
        out.flush()?;
    }
    if options.learn
        && let (Some(filter), Some(path)) = (&filter, state_path)
    {
        spamlens_fetch::write_atomically(path, &filter.to_json())?;
        eprintln!(
            "saved {} ({} adaptive tokens waiting, {} merges)",
            path.display(),
            filter.adaptive_len(),
            filter.merges()
        );
    }
    let summary: Vec<String> = counts.iter().map(|(label, n)| format!("{n} {label}")).collect();
    eprintln!(
        "{} messages: {}; {failed} unreadable; {:.1} messages/s",
        messages.len(),
        if summary.is_empty() { "none scanned".to_owned() } else { summary.join(", ") },
        messages.len() as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(failed == 0)
}

fn write_scan(out: &mut impl Write, result: &Result<MessageScan, String>, json: bool) -> Result<()> {
    match (result, json) {
        (Ok(scan), true) => writeln!(out, "{}", serde_json::to_string(scan)?)?,
        (Err(message), true) => writeln!(out, "{}", serde_json::json!({ "error": message }))?,
        (Ok(scan), false) => {
            let text = scan.text.as_ref().map_or("-".to_owned(), |t| format!("{:.3}", t.score));
            let spam_images = scan
                .images
                .iter()
                .filter(|i| matches!(&i.outcome, spamlens_core::scan::ImageOutcome::Classified(c) if c.label == "spam"))
                .count();
            writeln!(
                out,
                "{:<5} {:<10} {:>6} {:>7}  {}  |  {}",
                scan.verdict.label,
                scan.verdict.decided_by,
                text,
                format!("{spam_images}/{}", scan.images.len()),
                scan.message,
                scan.subject.chars().take(60).collect::<String>()
            )?;
        }
        (Err(message), false) => writeln!(out, "error {message}")?,
    }
    Ok(())
}

/// Options of `spamlens feedback`.
pub struct FeedbackOptions {
    /// The user's filter state (created from the built-in filter when missing).
    pub state: PathBuf,
    /// The label the user gave.
    pub label: TextLabel,
    /// Where reactions and image bytes are logged (default: `STATE.feedback/`).
    pub log_dir: Option<PathBuf>,
    /// OCR flags: the text in the message's images is learnt from too.
    pub ocr: OcrArgs,
}

/// The default reaction log folder for a state file.
pub fn default_log_dir(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".feedback");
    state.with_file_name(name)
}

/// Applies feedback for every message and saves the state; returns whether all messages were read.
pub fn feedback(inputs: &[PathBuf], options: &FeedbackOptions) -> Result<bool> {
    let mut filter = if options.state.exists() {
        load_text_filter(Some(&options.state))?
    } else {
        tracing::info!(state = %options.state.display(), "no filter state yet: starting from the built-in filter");
        load_text_filter(None)?
    };
    let log_dir = options.log_dir.clone().unwrap_or_else(|| default_log_dir(&options.state));
    let ocr = Ocr::start(&options.ocr)?;
    let append_lock = std::sync::Mutex::new(());
    let limits = EmailLimits::DEFAULT;
    let mut all_ok = true;
    for message in collect_messages(inputs, &limits)? {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                all_ok = false;
                println!("error {e}");
                continue;
            }
        };
        let parsed = match parse_email(&message.bytes, &message.name, &limits) {
            Ok(p) => p,
            Err(e) => {
                all_ok = false;
                println!("error {e}");
                continue;
            }
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // A campaign marked once is learnt from the words drawn in its images too.
        let mut image_texts = Vec::new();
        for image in &parsed.images {
            match ocr.read_bytes(&image.bytes, &format!("{}: {}", message.name, image.name)) {
                Some(Ok(text)) => image_texts.push(text.text()),
                Some(Err(e)) => tracing::warn!("{e}; learning from the message without this image's text"),
                None => {}
            }
        }
        let text = image_text_appended(&parsed.body_text, image_texts.iter().map(String::as_str));
        let tokens = filter.tokens(&parsed.subject, &text);
        let outcome = filter.feedback(&tokens, options.label, now);
        let scores = TextScores { before: outcome.before.score, after: outcome.after.score };
        let record = log_reaction(&append_lock, &log_dir, &message.name, &parsed, options.label, now, scores)?;
        println!(
            "{}: marked {} — text score {:.3} → {:.3} (threshold {:.3}, {} step{}), {} image{} logged{}",
            message.name,
            options.label,
            outcome.before.score,
            outcome.after.score,
            outcome.after.threshold,
            outcome.steps,
            if outcome.steps == 1 { "" } else { "s" },
            record.images.len(),
            if record.images.len() == 1 { "" } else { "s" },
            if outcome.merged { "; adaptive layer merged" } else { "" }
        );
    }
    spamlens_fetch::write_atomically(&options.state, &filter.to_json())?;
    println!(
        "saved {} ({} adaptive tokens waiting, {} merges)",
        options.state.display(),
        filter.adaptive_len(),
        filter.merges()
    );
    Ok(all_ok)
}
