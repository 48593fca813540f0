//! The JSON bodies the server answers with, as typed structs: serialised by serde and described by
//! `utoipa` from the same definitions, so the OpenAPI document is the shape that goes out.
//!
//! The answers embed core's own types (scan results, OCR readings, text scores, feedback records,
//! the verdict rule), which describe themselves with core's `openapi` feature: one definition
//! of each shape, serialised and documented alike.

use std::collections::BTreeMap;

use serde::Serialize;
use spamlens_core::cla_ann::{TextLabel, TextScore};
use spamlens_core::feedback::{FeedbackImage, Reaction};
use spamlens_core::ocr::{EngineIdentity, OcrContract};
use spamlens_core::scan::{Classification, MessageScan, VerdictRule};
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

/// `POST /v1/scan`: the message's verdict, the text score and each image's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanResponse {
    /// What the scan found; `message` is the `?name=` of the message (`message` without one).
    #[serde(flatten)]
    pub scan: MessageScan,
    /// sha256 of the image model.
    pub model: String,
    /// Time for the whole request, in milliseconds.
    pub millis: f64,
}

/// `POST /v1/feedback`: what the text filter learnt from the message.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackResponse {
    /// The `?name=` of the message (`message` without one).
    pub message: String,
    /// The label given.
    pub label: TextLabel,
    /// The same as an Email.cz reaction.
    pub reaction: Reaction,
    /// The score before learning.
    pub before: TextScore,
    /// The score after it.
    pub after: TextScore,
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
    pub images: Vec<FeedbackImage>,
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
    pub engine: EngineIdentity,
    /// The trained-data folder.
    pub tessdata: String,
    /// The model's OCR contract (`spamlens.ocr`).
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
    pub rule: VerdictRule,
}
