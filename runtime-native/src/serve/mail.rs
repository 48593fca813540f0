//! Whole emails on the server: `POST /v1/scan` (one verdict per message) and `POST /v1/feedback`
//! (the operator's text filter learns from a "mark as spam / not spam", and the reaction is logged
//! for retraining the image head).
//!
//! The server holds one text filter (the built-in one, or `--text-filter FILE`, which feedback
//! then saves back). Images of a scanned message go through the same decode threads and dynamic
//! batches as `/v1/classify`, within the same admission limits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::Request;
use axum::http::{Uri, header};
use spamlens_core::cla_ann::{ClaAnn, TextLabel};
use spamlens_core::email::{EmailLimits, ParsedEmail, parse_email};
use spamlens_core::feedback::Reaction;
use spamlens_core::scan::{ImageOutcome, VerdictRule, image_text_appended, message_text, scan_parts};

use super::api::{FeedbackResponse, ScanResponse, TextFilterInfo};
use super::body::{declared_length, discard_body, read_body};
use super::error::{ApiError, ErrorCode};
use super::handlers::round_millis;
use super::inference::ImageError;
use super::startup::{AppState, Ready};
use crate::reaction_log::{TextScores, log_reaction};

/// The server's text filter and where feedback goes.
pub struct MailState {
    filter: Mutex<ClaAnn>,
    /// Where the filter is saved after feedback (None: the built-in filter, kept in memory only).
    state_file: Option<PathBuf>,
    /// Where reactions and image bytes are logged (None: not logged).
    feedback_dir: Option<PathBuf>,
    /// Serialises appends to the reaction log.
    log_lock: Mutex<()>,
    /// The generation of the filter state last written to `state_file` (each feedback makes one,
    /// numbered under the filter's lock). Held while writing, so saves happen one at a time and a
    /// state older than the one on disk is never written over it.
    saved_generation: Mutex<u64>,
    /// The generation the next feedback's state gets (read and advanced under the filter's lock).
    next_generation: std::sync::atomic::AtomicU64,
    /// How parts become a verdict.
    pub rule: VerdictRule,
}

impl MailState {
    /// Loads `state_file` when it exists, else the built-in filter (saved to `state_file` on the
    /// first feedback).
    pub fn load(state_file: Option<PathBuf>, feedback_dir: Option<PathBuf>, rule: VerdictRule) -> anyhow::Result<Self> {
        spamlens_core::scan::check_rule(&rule)?;
        let filter = match &state_file {
            Some(path) if path.exists() => crate::scan::load_text_filter(Some(path))?,
            _ => crate::scan::load_text_filter(None)?,
        };
        if let Some(dir) = &feedback_dir {
            std::fs::create_dir_all(dir.join("images"))
                .map_err(|e| anyhow::anyhow!("creating the feedback folder {}: {e}", dir.display()))?;
        }
        Ok(MailState {
            filter: Mutex::new(filter),
            state_file,
            feedback_dir,
            log_lock: Mutex::new(()),
            saved_generation: Mutex::new(0),
            next_generation: std::sync::atomic::AtomicU64::new(1),
            rule,
        })
    }

    /// What `/v1/model` says about the text filter.
    pub fn describe(&self) -> TextFilterInfo {
        let filter = self.filter.lock().unwrap_or_else(|p| p.into_inner());
        TextFilterInfo {
            input_layers: filter.innate_layers().len(),
            threshold: filter.config().threshold,
            adaptive_tokens: filter.adaptive_len(),
            merges: filter.merges(),
            state_file: self.state_file.as_ref().map(|p| p.display().to_string()),
            feedback_log: self.feedback_dir.as_ref().map(|p| p.display().to_string()),
            rule: self.rule,
        }
    }
}

/// The query of a scan or feedback request.
#[derive(Debug, Default, serde::Deserialize)]
struct MailQuery {
    /// Names the message in the answer.
    name: Option<String>,
    /// Feedback's label.
    label: Option<String>,
}

/// The (percent-decoded) query of `uri`; a query that does not decode is a 400.
fn mail_query(uri: &Uri) -> Result<MailQuery, ApiError> {
    match uri.query() {
        None => Ok(MailQuery::default()),
        Some(_) => axum::extract::Query::<MailQuery>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text()))),
    }
}

/// Media types taken as one RFC 5322 message.
pub const MESSAGE_TYPES: [&str; 4] = ["message/rfc822", "application/octet-stream", "text/plain", "application/mbox"];

/// Reads and parses the message of a scan or feedback request.
async fn read_message(state: &AppState, request: Request) -> Result<(String, ParsedEmail), ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if let Some(ct) = &content_type
        && !MESSAGE_TYPES.contains(&ct.as_str())
    {
        discard_body(request.into_body()).await;
        return Err(ApiError::unsupported_media_type(format!(
            "Content-Type {ct} is not a message; send the raw message as message/rfc822"
        )));
    }
    let name = match mail_query(request.uri()) {
        Ok(query) => query.name.filter(|n| !n.is_empty()).unwrap_or_else(|| "message".to_owned()),
        Err(e) => {
            discard_body(request.into_body()).await;
            return Err(e);
        }
    };
    let declared = declared_length(request.headers());
    let body = read_body(request.into_body(), state.settings.max_body_bytes, declared).await?;
    let limits = EmailLimits { max_images: state.settings.max_images, ..EmailLimits::DEFAULT };
    let parse_name = name.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_email(&body, &parse_name, &limits))
        .await
        .map_err(|e| ApiError::internal(ErrorCode::InternalError, format!("parsing failed: {e}")))?
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, ErrorCode::NotAMessage, e.to_string()))?;
    Ok((name, parsed))
}

/// `POST /v1/scan`.
pub async fn scan(state: &AppState, ready: &Arc<Ready>, request: Request) -> Result<Json<ScanResponse>, ApiError> {
    let started = Instant::now();
    let mail = &state.mail;
    let (name, parsed) = read_message(state, request).await?;
    let count = u32::try_from(parsed.images.len()).unwrap_or(u32::MAX);
    let _image_slots = if count > 0 {
        Some(state.image_slots.clone().try_acquire_many_owned(count).map_err(|_| {
            ApiError::unavailable(
                ErrorCode::Overloaded,
                format!(
                    "the queue is full (--max-queue {}); this message adds {count} images; retry later",
                    state.settings.max_queue
                ),
                1,
            )
        })?)
    } else {
        None
    };
    let outcomes = futures_util::future::join_all(parsed.images.iter().map(|image| {
        let label = format!("{name}: {}", image.name);
        classify_image(state, ready, image.bytes.clone(), label)
    }))
    .await;
    // The text filter reads the body and the text in the message's images.
    let text = {
        let filter = mail.filter.lock().unwrap_or_else(|p| p.into_inner());
        filter.score(&filter.tokens(&parsed.subject, &message_text(&parsed.body_text, &outcomes)))
    };
    let scan = scan_parts(&name, parsed, Some(text), outcomes, &mail.rule);
    for image in &scan.images {
        if let ImageOutcome::Classified(classified) = &image.outcome {
            state.metrics.image(&classified.label);
        }
    }
    let model = ready.classifier.model().sha256().to_owned();
    Ok(Json(ScanResponse { scan, model, millis: round_millis(started.elapsed()) }))
}

async fn classify_image(state: &AppState, ready: &Arc<Ready>, bytes: Vec<u8>, name: String) -> ImageOutcome {
    let outcome: Result<ImageOutcome, ImageError> = async {
        let prepared = ready
            .preprocessor
            .prepare(ready.classifier.clone(), ready.ocr.clone(), state.metrics.clone(), bytes.into(), name)
            .await?;
        state.metrics.preprocess(prepared.decoded);
        let super::inference::Prepared { prepared, text, ocr_problem, .. } = prepared;
        let (tensor, prepared) = prepared.split();
        let scores = ready.pool.score(tensor, text.clone()).await?;
        let verdict = spamlens_core::Verdict::new(scores, &prepared, text);
        Ok(ImageOutcome::from_reading(Ok(spamlens_core::ImageReading { verdict, ocr_problem })))
    }
    .await;
    outcome.unwrap_or_else(|e| {
        state.metrics.image(e.code.as_str());
        ImageOutcome::Failed { error: e.message }
    })
}

/// `POST /v1/feedback?label=spam|ham`.
pub async fn feedback(state: &AppState, request: Request) -> Result<Json<FeedbackResponse>, ApiError> {
    let mail = &state.mail;
    let label = match mail_query(request.uri()).map(|q| q.label) {
        Ok(Some(label)) => label.parse::<TextLabel>().map_err(|e| ApiError::bad_request(format!("label: {e}"))),
        Ok(None) => Err(ApiError::bad_request("feedback needs ?label=spam or ?label=ham")),
        Err(e) => Err(e),
    };
    let label = match label {
        Ok(label) => label,
        Err(e) => {
            discard_body(request.into_body()).await;
            return Err(e);
        }
    };
    let (name, parsed) = read_message(state, request).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // A campaign marked once is learnt from the words drawn in its images too (read on the decode
    // pool when the loaded model reads text).
    let mut image_texts = Vec::new();
    if let Some(ready) = state.ready.get().filter(|r| r.ocr.is_on()) {
        for image in &parsed.images {
            let (ocr, bytes, label) = (ready.ocr.clone(), image.bytes.clone(), format!("{name}: {}", image.name));
            let started = Instant::now();
            let read = tokio::task::spawn_blocking(move || ocr.read_bytes(&bytes, &label)).await;
            match read {
                Ok(Some(Ok(text))) => {
                    state.metrics.ocr("read", started.elapsed());
                    image_texts.push(text.text());
                }
                Ok(Some(Err(e))) => {
                    state.metrics.ocr("failed", started.elapsed());
                    tracing::warn!("{e}; learning from the message without this image's text");
                }
                Ok(None) | Err(_) => {}
            }
        }
    }
    let (outcome, saved) = {
        let mut filter = mail.filter.lock().unwrap_or_else(|p| p.into_inner());
        let body = image_text_appended(&parsed.body_text, image_texts.iter().map(String::as_str));
        let tokens = filter.tokens(&parsed.subject, &body);
        let outcome = filter.feedback(&tokens, label, now);
        let json = filter.to_json();
        let generation = mail.next_generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(filter);
        // Scans go on while the state is written; concurrent feedbacks write one at a time, and a
        // state a later feedback already superseded on disk is not written back over it.
        let saved = match &mail.state_file {
            Some(path) => {
                let mut saved_generation = mail.saved_generation.lock().unwrap_or_else(|p| p.into_inner());
                if *saved_generation < generation {
                    spamlens_fetch::write_atomically(path, &json)
                        .map_err(|e| ApiError::internal(ErrorCode::StateNotSaved, e.to_string()))?;
                    *saved_generation = generation;
                }
                true
            }
            None => false,
        };
        (outcome, saved)
    };
    let logged = match &mail.feedback_dir {
        Some(dir) => {
            let scores = TextScores { before: outcome.before.score, after: outcome.after.score };
            let record = log_reaction(&mail.log_lock, dir, &name, &parsed, label, now, scores)
                .map_err(|e| ApiError::internal(ErrorCode::LogFailed, format!("{e:#}")))?;
            Some(record)
        }
        None => None,
    };
    Ok(Json(FeedbackResponse {
        message: name,
        label,
        reaction: Reaction::for_label(label),
        before: outcome.before,
        after: outcome.after,
        steps: outcome.steps,
        new_adaptive_tokens: outcome.new_adaptive_tokens,
        merged: outcome.merged,
        state_saved: saved,
        logged: logged.is_some(),
        images: logged.map(|r| r.images).unwrap_or_default(),
    }))
}
