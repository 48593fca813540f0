//! The JSON bodies the server answers with, as typed structs: serialised by serde and described by
//! `utoipa` from the same definitions, so the OpenAPI document is the shape that goes out.
//!
//! Core types (scan results, text scores, OCR readings) are copied into the structs here, which
//! keep their field names; the core crate stays free of documentation derives.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use spamlens_core::cla_ann::{TextLabel, TextScore};
use spamlens_core::email::ImageSource;
use spamlens_core::feedback::{FeedbackImage, Reaction};
use spamlens_core::ocr::{EngineIdentity, LayoutMeasures, OcrContract, OcrWord, TextReading};
use spamlens_core::scan::{ImageOutcome, ImageResult, MessageScan, MessageVerdict, VerdictRule};
use utoipa::ToSchema;

use super::inference::ImageErrorCode;

/// `GET /healthz`: the process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: HealthStatus,
    /// Seconds since the server started.
    pub uptime_seconds: f64,
}

/// The liveness status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The process answers.
    Ok,
}

/// `GET /readyz`: the model is loaded and the server is not draining.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    pub status: ReadyStatus,
    /// sha256 of the loaded model.
    pub model: String,
}

/// The readiness status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Requests are being taken.
    Ready,
}

/// A class → probability map, in the model's class order.
type Probabilities = Map<String, Value>;

/// `POST /v1/classify`: one entry per image in request order, with the counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// sha256 of the model that answered.
    pub model: String,
    /// One entry per image, in request order: classified, or its error.
    pub images: Vec<ImageAnswer>,
    /// Images classified.
    pub classified: usize,
    /// Images that failed (each says why).
    pub failed: usize,
    /// Time for the whole request, in milliseconds.
    pub millis: f64,
}

/// One image of a classify answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ImageAnswer {
    /// The image was classified.
    Classified(Box<ClassifiedImage>),
    /// The image could not be classified.
    Failed(FailedImage),
}

/// A classified image of a classify answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifiedImage {
    /// The file name, form field, `?name=` or `images[i]`.
    pub name: String,
    /// The classifier's verdict.
    #[serde(flatten)]
    pub outcome: Classification,
    /// Decode, queue and inference time for this image, in milliseconds.
    pub millis: f64,
    /// Where the time went.
    pub timings: ImageTimings,
}

/// Where one image's time went, in milliseconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageTimings {
    /// Decoding and preprocessing.
    pub decode_millis: f64,
    /// OCR engine time (on the decode pool); null when no text was read.
    pub ocr_millis: Option<f64>,
    /// Inference, queue wait included.
    pub inference_millis: f64,
}

/// An image of a classify answer that could not be classified.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedImage {
    /// The file name, form field, `?name=` or `images[i]`.
    pub name: String,
    /// Why.
    pub error: ImageFailure,
}

/// The code and message of one image's failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageFailure {
    /// Stable, for programs.
    pub code: ImageErrorCode,
    /// For people, naming the image.
    pub message: String,
}

/// What the classifier says of one image.
#[derive(Debug, Serialize, ToSchema)]
pub struct Classification {
    /// The label at the model's operating point (fused when the text was read, else image-only).
    pub label: String,
    /// Class → probability, in the model's class order: fused when the image's text was read.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub probabilities: Probabilities,
    /// A model that reads text: what the image alone says.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, f64>>)]
    pub image_probabilities: Option<Probabilities>,
    /// What OCR read in the image (a model that reads text, when the text was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextReadingBody>,
    /// Why the image's text was not read (OCR failed or timed out); the image alone decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_problem: Option<String>,
    /// Decoded width in pixels.
    pub width: u32,
    /// Decoded height in pixels.
    pub height: u32,
    /// Detected format.
    pub format: String,
}

/// What OCR read in an image.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TextReading)]
pub struct TextReadingBody {
    /// Words joined by spaces, lines by newlines.
    pub text: String,
    /// What the text alone says, class → probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, f64>>)]
    pub probabilities: Option<Probabilities>,
    /// Layout measures.
    pub layout: Layout,
    /// Every word with its box and confidence.
    pub words: Vec<Word>,
}

/// What the text of an image looks like as a whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct Layout {
    /// Words read.
    pub words: usize,
    /// Words read with confidence ≥ 60.
    pub confident_words: usize,
    /// Text lines.
    pub lines: usize,
    /// Mean word confidence, 0–100.
    pub mean_confidence: f32,
    /// Sum of the word boxes' areas over the image's area.
    pub text_area_fraction: f32,
    /// Characters in the words.
    pub characters: usize,
    /// Share of the characters that are digits.
    pub digit_fraction: f32,
    /// Share of the characters that are neither letters nor digits.
    pub symbol_fraction: f32,
}

/// One word OCR read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Word {
    /// The recognised text.
    pub text: String,
    /// The engine's confidence, 0–100.
    pub confidence: f32,
    /// Left, top, right, bottom (exclusive), in decoded-image pixels.
    #[schema(min_items = 4, max_items = 4)]
    pub bbox: Vec<u32>,
    /// Text line index (reading order).
    pub line: u32,
}

impl From<TextReading> for TextReadingBody {
    fn from(reading: TextReading) -> Self {
        let LayoutMeasures {
            words,
            confident_words,
            lines,
            mean_confidence,
            text_area_fraction,
            characters,
            digit_fraction,
            symbol_fraction,
        } = reading.layout;
        TextReadingBody {
            text: reading.text,
            probabilities: reading.probabilities,
            layout: Layout {
                words,
                confident_words,
                lines,
                mean_confidence,
                text_area_fraction,
                characters,
                digit_fraction,
                symbol_fraction,
            },
            words: reading
                .words
                .into_iter()
                .map(|OcrWord { text, confidence, bbox, line }| Word { text, confidence, bbox: bbox.to_vec(), line })
                .collect(),
        }
    }
}

/// A scanned image's outcome: classified, failed or skipped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScanOutcome {
    /// Classified.
    Classified(Box<Classification>),
    /// Not classified.
    Failed {
        /// What went wrong, naming the image.
        error: String,
    },
    /// Images were not classified (no image model in use).
    Skipped {
        /// Why.
        skipped: String,
    },
}

impl From<ImageOutcome> for ScanOutcome {
    fn from(outcome: ImageOutcome) -> Self {
        match outcome {
            ImageOutcome::Classified {
                label,
                probabilities,
                image_probabilities,
                text,
                ocr_problem,
                width,
                height,
                format,
            } => ScanOutcome::Classified(Box::new(Classification {
                label,
                probabilities,
                image_probabilities,
                text: text.map(|t| TextReadingBody::from(*t)),
                ocr_problem,
                width,
                height,
                format,
            })),
            ImageOutcome::Failed { error } => ScanOutcome::Failed { error },
            ImageOutcome::Skipped { skipped } => ScanOutcome::Skipped { skipped },
        }
    }
}

/// `POST /v1/scan`: the message's verdict, the text score and each image's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanResponse {
    /// The `?name=` of the message (`message` without one).
    pub message: String,
    /// Decoded subject.
    pub subject: String,
    /// First From address.
    pub from: Option<String>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Date (RFC 3339).
    pub date: Option<String>,
    /// The combined verdict.
    pub verdict: Verdict,
    /// The text filter's score.
    pub text: Option<TextScoreBody>,
    /// Each image of the message and its outcome.
    pub images: Vec<ScanImage>,
    /// Remote image URLs: listed, never fetched.
    pub remote_images: Vec<String>,
    /// What could not be read in the message.
    pub problems: Vec<String>,
    /// sha256 of the image model.
    pub model: String,
    /// Time for the whole request, in milliseconds.
    pub millis: f64,
}

impl ScanResponse {
    /// The answer for `scan`, by `model` in `millis`.
    pub fn new(scan: MessageScan, model: String, millis: f64) -> Self {
        let MessageVerdict { label, decided_by, reason } = scan.verdict;
        ScanResponse {
            message: scan.message,
            subject: scan.subject,
            from: scan.from,
            message_id: scan.message_id,
            date: scan.date,
            verdict: Verdict { label, decided_by, reason },
            text: scan.text.map(TextScoreBody::from),
            images: scan.images.into_iter().map(ScanImage::from).collect(),
            remote_images: scan.remote_images,
            problems: scan.problems,
            model,
            millis,
        }
    }
}

/// A message's verdict and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verdict {
    /// `spam`, `ham` or `ad`.
    #[schema(pattern = "^(spam|ham|ad)$")]
    pub label: String,
    /// `image`, `text`, `image+text` or `none`.
    #[schema(pattern = r"^(image|text|image\+text|none)$")]
    pub decided_by: String,
    /// The reason in words.
    pub reason: String,
}

/// The text filter's judgement of one message.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TextScore)]
pub struct TextScoreBody {
    /// Mean weight of the matched input layers (0 when none matched).
    pub score: f64,
    /// `score > threshold`.
    pub is_spam: bool,
    /// The threshold in force.
    pub threshold: f64,
    /// How many input layers the message contains.
    pub matched: usize,
    /// `[token, weight]` of the matched layers with the highest weights (at most 5).
    pub strongest: Vec<(String, f64)>,
}

impl From<TextScore> for TextScoreBody {
    fn from(score: TextScore) -> Self {
        let TextScore { score, is_spam, threshold, matched, strongest } = score;
        TextScoreBody { score, is_spam, threshold, matched, strongest }
    }
}

/// One image of a scanned message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanImage {
    /// The image's name in the message.
    pub name: String,
    /// How it came with the message.
    pub source: Source,
    /// Declared media type.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub bytes: usize,
    /// The sha256 of its bytes (what feedback records).
    pub sha256: String,
    /// The classifier's verdict, or why there is none.
    #[serde(flatten)]
    pub outcome: ScanOutcome,
}

impl From<ImageResult> for ScanImage {
    fn from(image: ImageResult) -> Self {
        ScanImage {
            name: image.name,
            source: image.source.into(),
            content_type: image.content_type,
            bytes: image.bytes,
            sha256: image.sha256,
            outcome: image.outcome.into(),
        }
    }
}

/// How an image came with the message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// A MIME part that the HTML does not link.
    Attachment,
    /// A MIME part that the HTML shows through `cid:`.
    Inline {
        /// The part's `Content-ID`, without `<>`, lower-cased.
        content_id: String,
    },
    /// A `data:image/...;base64,` URI inside the HTML.
    DataUri,
}

impl From<ImageSource> for Source {
    fn from(source: ImageSource) -> Self {
        match source {
            ImageSource::Attachment => Source::Attachment,
            ImageSource::Inline { content_id } => Source::Inline { content_id },
            ImageSource::DataUri => Source::DataUri,
        }
    }
}

/// A message's label, as feedback gives it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Unsolicited mail.
    Spam,
    /// Legitimate mail.
    Ham,
}

impl From<TextLabel> for Label {
    fn from(label: TextLabel) -> Self {
        match label {
            TextLabel::Spam => Label::Spam,
            TextLabel::Ham => Label::Ham,
        }
    }
}

/// The Email.cz user reaction a feedback stands for.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum UserReaction {
    /// Moved to spam.
    #[serde(rename = "USER_MESSAGE_MARK_SPAM")]
    MarkSpam,
    /// Moved out of spam.
    #[serde(rename = "USER_MESSAGE_UNMARK_SPAM")]
    UnmarkSpam,
    /// Moved to newsletters / ads.
    #[serde(rename = "USER_MESSAGE_MARK_AD")]
    MarkAd,
    /// Moved out of newsletters / ads.
    #[serde(rename = "USER_MESSAGE_MARK_NONAD")]
    MarkNonad,
}

impl From<Reaction> for UserReaction {
    fn from(reaction: Reaction) -> Self {
        match reaction {
            Reaction::MarkSpam => UserReaction::MarkSpam,
            Reaction::UnmarkSpam => UserReaction::UnmarkSpam,
            Reaction::MarkAd => UserReaction::MarkAd,
            Reaction::MarkNonad => UserReaction::MarkNonad,
        }
    }
}

/// `POST /v1/feedback`: what the text filter learnt from the message.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackResponse {
    /// The `?name=` of the message (`message` without one).
    pub message: String,
    /// The label given.
    pub label: Label,
    /// The same as an Email.cz reaction.
    pub reaction: UserReaction,
    /// The score before learning.
    pub before: TextScoreBody,
    /// The score after it.
    pub after: TextScoreBody,
    /// Perceptron steps applied.
    pub steps: u32,
    /// New tokens put into the adaptive layer.
    pub new_adaptive_tokens: usize,
    /// Whether this feedback triggered a merge.
    pub merged: bool,
    /// Whether the filter was saved to `--text-filter`.
    pub state_saved: bool,
    /// Whether the reaction was logged to `--feedback-dir`.
    pub logged: bool,
    /// The message's images as logged (empty when not logged).
    pub images: Vec<LoggedImage>,
}

/// One image of a logged reaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedImage {
    /// sha256 of the image bytes.
    pub sha256: String,
    /// Its name in the message.
    pub name: String,
    /// Where its bytes were stored, relative to the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl From<FeedbackImage> for LoggedImage {
    fn from(image: FeedbackImage) -> Self {
        LoggedImage { sha256: image.sha256, name: image.name, file: image.file }
    }
}

/// `GET /v1/model`: the loaded model, the server's limits and the text filter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelResponse {
    /// The model, as loaded.
    #[serde(flatten)]
    pub model: ModelInfo,
    /// The text filter used by `/v1/scan` and taught by `/v1/feedback`.
    pub text_filter: TextFilterInfo,
}

/// The loaded model and the limits in force, fixed once the model is in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The model's file name.
    pub name: String,
    /// sha256 of the model bytes.
    pub sha256: String,
    /// Size of the model in bytes.
    pub bytes: usize,
    /// The classes, in model order.
    pub labels: Vec<String>,
    /// How images are prepared for the model.
    pub preprocessing: String,
    /// The model's image input.
    pub input: ModelInput,
    /// A model that reads text with OCR on: the engine and contract; null otherwise.
    pub ocr: Option<OcrInfo>,
    /// The ONNX metadata_props (spamlens.* contract, training summary, metrics).
    pub metadata: BTreeMap<String, String>,
    /// The server's limits.
    pub server: ServerSettings,
    /// The server's version.
    pub version: String,
}

/// The model's image input.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInput {
    /// Input name.
    pub name: String,
    /// Input dimensions (NCHW).
    pub dims: Vec<usize>,
}

/// The OCR engine running and the model's OCR contract.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OcrInfo {
    /// The OCR engine running: engine, version, languages' trained data by sha256.
    #[schema(value_type = Object)]
    pub engine: EngineIdentity,
    /// The trained-data folder.
    pub tessdata: String,
    /// The model's OCR contract (`spamlens.ocr`).
    #[schema(value_type = Object)]
    pub contract: OcrContract,
    /// `[label, threshold]` operating points of the image side.
    pub image_thresholds: Vec<(String, f32)>,
}

/// The server's limits and switches (its flags, checked).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServerSettings {
    /// Inference workers.
    pub workers: usize,
    /// Threads inside one inference.
    pub intra_op_threads: usize,
    /// Decode and preprocessing threads.
    pub decode_threads: usize,
    /// Most images in one model run.
    pub max_batch: usize,
    /// How long a partial batch waits for more, in milliseconds.
    pub max_wait_ms: u64,
    /// Images admitted at once.
    pub max_queue: usize,
    /// Classify requests handled at once.
    pub max_requests: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most images in one request.
    pub max_images_per_request: usize,
    /// Largest image in pixels.
    pub max_image_pixels: u64,
    /// Largest image side in pixels.
    pub max_image_side: u32,
    /// Seconds a request may take.
    pub request_timeout_secs: f64,
    /// Whether `/v1/*` and `/metrics` need the bearer token.
    pub auth: bool,
    /// Whether the demo page is served.
    pub demo: bool,
    /// Whether images' text is read (`--no-ocr` turns it off).
    pub ocr: bool,
    /// OCR time limit per image (`--ocr-time-limit-ms`).
    pub ocr_time_limit_ms: u64,
}

/// The text filter's state and where it is kept.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TextFilterInfo {
    /// Input layers.
    pub input_layers: usize,
    /// The spam threshold.
    pub threshold: f64,
    /// Tokens in the adaptive layer.
    pub adaptive_tokens: usize,
    /// Merges so far.
    pub merges: u64,
    /// Where the filter is saved after feedback (null: in memory only).
    pub state_file: Option<String>,
    /// Where reactions are logged (null: not logged).
    pub feedback_log: Option<String>,
    /// How parts become a message's verdict.
    pub rule: Rule,
}

/// How a message's parts become its verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    /// An image with at least this spam probability makes the message spam (null: its label decides).
    pub image_spam_threshold: Option<f32>,
    /// An image with at least this ad probability makes a not-spam message an ad (null: its label decides).
    pub image_ad_threshold: Option<f32>,
    /// Whether the text filter's verdict counts.
    pub use_text: bool,
    /// Whether the images' labels count.
    pub use_images: bool,
}

impl From<VerdictRule> for Rule {
    fn from(rule: VerdictRule) -> Self {
        let VerdictRule { image_spam_threshold, image_ad_threshold, use_text, use_images } = rule;
        Rule { image_spam_threshold, image_ad_threshold, use_text, use_images }
    }
}
