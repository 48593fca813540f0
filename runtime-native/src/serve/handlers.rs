//! The route handlers, each with its `#[utoipa::path]` (the OpenAPI operation is generated from it;
//! request bodies, which the handlers parse by hand, are described in [`super::openapi`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use spamlens_core::scan::Classification;

use super::api::{
    ClassifiedImage, ClassifyResponse, FailedImage, FeedbackResponse, Health, HealthStatus, ImageAnswer, ImageFailure,
    ImageTimings, ModelResponse, Readiness, ReadyStatus, ScanResponse,
};
use super::body::{declared_length, read_body};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::inference::{self, ImageError};
use super::input::{self, NamedImage};
use super::openapi::OpenApiDocument;
use super::startup::{AppState, Ready, Shared};
use super::{mail, metrics};

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    summary = "Liveness: the process is up (also while the model loads).",
    responses((status = 200, description = "Up.", body = Health)),
)]
pub(super) async fn healthz(State(state): State<Shared>) -> Json<Health> {
    Json(Health { status: HealthStatus::Ok, uptime_seconds: state.started.elapsed().as_secs_f64() })
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    summary = "Readiness: the model is loaded and the server is not shutting down.",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Loading (`not_ready`) or shutting down (`draining`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ),
)]
pub(super) async fn readyz(State(state): State<Shared>) -> Result<Json<Readiness>, ApiError> {
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::unavailable(ErrorCode::Draining, "the server is shutting down", 1));
    }
    let ready = state.ready()?;
    Ok(Json(Readiness { status: ReadyStatus::Ready, model: ready.classifier.model().sha256().to_owned() }))
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    summary = "This document, generated from the server's types and handlers.",
    responses((status = 200, description = "OpenAPI 3.1.", body = Object, content_type = "application/json")),
)]
pub(super) async fn openapi(Extension(document): Extension<OpenApiDocument>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.json()).into_response()
}

/// `GET /v1/model`.
#[utoipa::path(
    get,
    path = "/v1/model",
    tag = "service",
    summary = "The loaded model: sha256, labels, metadata_props, and the server's limits.",
    responses(
        (status = 200, description = "The model.", body = ModelResponse),
        (status = 503, description = "The model is still loading (`not_ready`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ),
)]
pub(super) async fn model_info(State(state): State<Shared>) -> Result<Json<ModelResponse>, ApiError> {
    let ready = state.ready()?;
    Ok(Json(ModelResponse { model: ready.model.clone(), text_filter: state.mail.describe() }))
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    summary = "Prometheus metrics: requests by route and status, latency histograms, batch sizes, queue depth, \
               images/s, model info.",
    responses(
        (status = 200, description = "OpenMetrics 1.0 text.", body = String,
            content_type = "application/openmetrics-text"),
    ),
)]
pub(super) async fn metrics(State(state): State<Shared>) -> Response {
    let text = state.metrics.render(&state.gauges());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// `POST /v1/classify`.
#[utoipa::path(
    post,
    path = "/v1/classify",
    tag = "classify",
    summary = "Classify one or several images.",
    params(("name" = Option<String>, Query, description = "Names a raw image body in the answer.")),
    responses(
        (status = 200, description = "At least one image was classified; the others carry their error.",
            body = ClassifyResponse),
        (status = 400, description = "Malformed body (`bad_request`: JSON, multipart) or no images.", body = ErrorBody),
        (status = 413, description = "Body over --max-body-mib (`payload_too_large`), or more images than \
            --max-images (`too_many_images`).", body = ErrorBody),
        (status = 415, description = "Not an image, multipart or JSON body (`unsupported_media_type`).",
            body = ErrorBody),
        (status = 422, description = "No image could be classified: bytes that do not decode as an image the \
            server reads, bad base64, over the pixel limit; each entry says why.", body = ClassifyResponse),
        (status = 503, description = "Not ready, overloaded (queue or request limit) or timed out; retry after \
            Retry-After.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ),
)]
pub(super) async fn classify(State(state): State<Shared>, request: Request) -> Response {
    guarded(&state, async { classify_request(&state, &state.ready()?, request).await }).await
}

/// `POST /v1/scan`.
#[utoipa::path(
    post,
    path = "/v1/scan",
    tag = "mail",
    summary = "One verdict for a whole email: its text (CLA_ANN) and every image (the image model), combined.",
    params(("name" = Option<String>, Query, description = "Names the message in the answer and in errors.")),
    responses(
        (status = 200, description = "The message's verdict, the text score and each image's outcome.",
            body = ScanResponse),
        (status = 400, description = "Not a message (`not_a_message`: it does not start with a header line).",
            body = ErrorBody),
        (status = 413, description = "Body over --max-body-mib (`payload_too_large`).", body = ErrorBody),
        (status = 415, description = "Content-Type is not a message type (`unsupported_media_type`).",
            body = ErrorBody),
        (status = 503, description = "Not ready, overloaded (queue or request limit) or timed out; retry after \
            Retry-After.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ),
)]
pub(super) async fn scan(State(state): State<Shared>, request: Request) -> Response {
    guarded(&state, async { mail::scan(&state, &state.ready()?, request).await }).await
}

/// `POST /v1/feedback`.
#[utoipa::path(
    post,
    path = "/v1/feedback",
    tag = "mail",
    summary = "\"Mark as spam / not spam\": the text filter learns from the message at once; the reaction is \
               logged with --feedback-dir.",
    params(
        ("label" = spamlens_core::cla_ann::TextLabel, Query,
            description = "The user's label (`not spam`, `not_spam` and `notspam` are taken for ham too)."),
        ("name" = Option<String>, Query, description = "Names the message in the answer and in errors."),
    ),
    responses(
        (status = 200, description = "What the filter learnt.", body = FeedbackResponse),
        (status = 400, description = "Missing or unknown label (`bad_request`), or not a message (`not_a_message`).",
            body = ErrorBody),
        (status = 413, description = "Body over --max-body-mib (`payload_too_large`).", body = ErrorBody),
        (status = 415, description = "Content-Type is not a message type (`unsupported_media_type`).",
            body = ErrorBody),
        (status = 500, description = "The filter state (`state_not_saved`) or the reaction log (`log_failed`) \
            could not be written.", body = ErrorBody),
        (status = 503, description = "Overloaded (request limit) or timed out; retry after Retry-After.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ),
)]
pub(super) async fn feedback(State(state): State<Shared>, request: Request) -> Response {
    guarded(&state, mail::feedback(&state, request)).await
}

/// Runs a request handler within the request slots (--max-requests) and the request timeout.
async fn guarded<T: IntoResponse>(
    state: &AppState,
    handler: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Response {
    let Ok(_request_slot) = state.request_slots.clone().try_acquire_owned() else {
        return ApiError::unavailable(
            ErrorCode::Overloaded,
            format!("{} requests are already being handled (--max-requests); retry later", state.settings.max_requests),
            1,
        )
        .into_response();
    };
    let timeout = state.settings.request_timeout;
    match tokio::time::timeout(timeout, handler).await {
        Ok(Ok(response)) => response.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::unavailable(
            ErrorCode::Timeout,
            format!("the request was not answered within {}s (--request-timeout-secs)", timeout.as_secs_f64()),
            1,
        )
        .into_response(),
    }
}

/// Milliseconds with one decimal.
pub(super) fn round_millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10_000.0).round() / 10.0
}

async fn classify_request(
    state: &AppState,
    ready: &Arc<Ready>,
    request: Request,
) -> Result<(StatusCode, Json<ClassifyResponse>), ApiError> {
    let started = Instant::now();
    let settings = &state.settings;
    let declared = declared_length(request.headers());
    let (parts, body) = request.into_parts();
    let body = read_body(body, settings.max_body_bytes, declared).await?;
    let images = input::images(&parts, body)?;
    if images.is_empty() {
        return Err(ApiError::bad_request("the request holds no images"));
    }
    if images.len() > settings.max_images {
        return Err(ApiError::too_large(
            ErrorCode::TooManyImages,
            format!(
                "the request holds {} images, over the limit of {} (--max-images)",
                images.len(),
                settings.max_images
            ),
        ));
    }
    let count = u32::try_from(images.len()).unwrap_or(u32::MAX);
    let Ok(_image_slots) = state.image_slots.clone().try_acquire_many_owned(count) else {
        let in_flight = settings.max_queue - state.image_slots.available_permits();
        return Err(ApiError::unavailable(
            ErrorCode::Overloaded,
            format!(
                "the queue is full: {in_flight} of {} images in flight (--max-queue), this request adds {count}; retry later",
                settings.max_queue
            ),
            1,
        ));
    };
    let answers =
        futures_util::future::join_all(images.into_iter().map(|image| classify_one(state, ready, image))).await;
    let classified = answers.iter().filter(|a| matches!(a, ImageAnswer::Classified(_))).count();
    let failed = answers.len() - classified;
    let body = ClassifyResponse {
        model: ready.classifier.model().sha256().to_owned(),
        images: answers,
        classified,
        failed,
        millis: round_millis(started.elapsed()),
    };
    // 200 when at least one image was classified; 422 when none could be (each says why).
    let status = if classified > 0 { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(body)))
}

async fn classify_one(state: &AppState, ready: &Arc<Ready>, image: NamedImage) -> ImageAnswer {
    let started = Instant::now();
    let name = image.name;
    let outcome: Result<ClassifiedImage, ImageError> = async {
        let bytes = image.bytes?;
        let prepared = ready
            .preprocessor
            .prepare(ready.classifier.clone(), ready.ocr.clone(), state.metrics.clone(), bytes, name.clone())
            .await?;
        let before_inference = started.elapsed();
        state.metrics.preprocess(prepared.decoded);
        let inference::Prepared { prepared, text, ocr_problem, decoded, ocr } = prepared;
        let (tensor, prepared) = prepared.split();
        let scores = ready.pool.score(tensor, text.clone()).await?;
        let verdict = spamlens_core::Verdict::new(scores, &prepared, text);
        Ok(ClassifiedImage {
            name: name.clone(),
            outcome: Classification::from(spamlens_core::ImageReading { verdict, ocr_problem }),
            millis: round_millis(started.elapsed()),
            timings: ImageTimings {
                decode_millis: round_millis(decoded),
                ocr_millis: ocr.map(round_millis),
                inference_millis: round_millis(started.elapsed().saturating_sub(before_inference)),
            },
        })
    }
    .await;
    match outcome {
        Ok(answer) => {
            state.metrics.image(&answer.outcome.label);
            ImageAnswer::Classified(Box::new(answer))
        }
        Err(error) => {
            state.metrics.image(error.code.as_str());
            ImageAnswer::Failed(FailedImage { name, error: ImageFailure { code: error.code, message: error.message } })
        }
    }
}
