//! The reaction log that `spamlens feedback` and the server's `/v1/feedback` both write: one
//! [`FeedbackRecord`] JSON line per reaction in `DIR/reactions.jsonl`, and each image's bytes once
//! under `DIR/images/<sha256>.<ext>` — the folder `spamlens-train` reads as a dataset.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use spamlens_core::cla_ann::TextLabel;
use spamlens_core::detect_format;
use spamlens_core::email::ParsedEmail;
use spamlens_core::feedback::{FeedbackImage, FeedbackRecord, Reaction};
use spamlens_core::scan::sha256_hex;

/// The log file inside a reaction folder.
pub const LOG_FILE: &str = "reactions.jsonl";

/// What the text filter made of the message before and after it learnt the reaction.
#[derive(Debug, Clone, Copy)]
pub struct TextScores {
    /// Spam score before learning.
    pub before: f64,
    /// Spam score after learning.
    pub after: f64,
}

/// Stores `parsed`'s images in `dir/images/` (an image already there is not rewritten; each is
/// written atomically, so concurrent callers need no lock for them) and appends the reaction `label`
/// on `message` to `dir/reactions.jsonl` holding `append_lock`, so lines from several threads never
/// interleave; returns the record written.
pub fn log_reaction(
    append_lock: &Mutex<()>,
    dir: &Path,
    message: &str,
    parsed: &ParsedEmail,
    label: TextLabel,
    now_unix: u64,
    scores: TextScores,
) -> Result<FeedbackRecord> {
    let images_dir = dir.join("images");
    std::fs::create_dir_all(&images_dir).with_context(|| format!("creating {}", images_dir.display()))?;
    let mut images = Vec::with_capacity(parsed.images.len());
    for image in &parsed.images {
        let sha256 = sha256_hex(&image.bytes);
        let extension = detect_format(&image.bytes, &image.name)
            .map(|f| f.to_string().to_ascii_lowercase())
            .unwrap_or_else(|_| "bin".to_owned());
        let file = format!("images/{sha256}.{extension}");
        let path = dir.join(&file);
        if !path.exists() {
            spamlens_fetch::write_atomically(&path, &image.bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        images.push(FeedbackImage { sha256, name: image.name.clone(), file: Some(file) });
    }
    let record = FeedbackRecord {
        time_unix: now_unix,
        message: message.to_owned(),
        message_id: parsed.message_id.clone(),
        label,
        reaction: Reaction::for_label(label),
        images,
        text_score_before: scores.before,
        text_score_after: scores.after,
    };
    let line = serde_json::to_string(&record).context("serialising the reaction record")?;
    let log = dir.join(LOG_FILE);
    let _guard = append_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    writeln!(file, "{line}").with_context(|| format!("appending to {}", log.display()))?;
    Ok(record)
}
