//! The server's error answers: an HTTP status and a JSON body `{"error": {"code", "message"}}`,
//! where `code` is stable for programs and `message` names the input and the problem for people.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The stable machine-readable code of a request-level error (the `error.code` of every error body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body or the query is malformed, or holds no images.
    BadRequest,
    /// 401: the bearer token is missing or wrong.
    Unauthorized,
    /// 404: no such route.
    NotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 413: the body is over `--max-body-mib`.
    PayloadTooLarge,
    /// 413: more images than `--max-images`.
    TooManyImages,
    /// 415: the `Content-Type` is not one the route takes.
    UnsupportedMediaType,
    /// 500: the server failed on this request.
    InternalError,
    /// 503: the model is still loading.
    NotReady,
    /// 503: the server is shutting down.
    Draining,
    /// 503: the queue or the request limit is full.
    Overloaded,
    /// 503: the request was not answered within `--request-timeout-secs`.
    Timeout,
    /// 400: the body of a scan or feedback request is not an RFC 5322 message.
    NotAMessage,
    /// 500: the text filter state could not be written to `--text-filter`.
    StateNotSaved,
    /// 500: the reaction could not be logged to `--feedback-dir`.
    LogFailed,
}

/// The body of every request-level error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The code and message of an error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs.
    pub code: ErrorCode,
    /// For people: names the input and the problem.
    pub message: String,
}

/// A request-level failure (per-image failures are part of a classify answer instead).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `payload_too_large`.
    pub code: ErrorCode,
    /// What went wrong, naming the input.
    pub message: String,
    /// Seconds to put in `Retry-After` (503 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// 413: the body (or its image count) is over a limit.
    pub fn too_large(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 415: the body's media type is not one the route takes.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType, message)
    }

    /// 500: the server failed on this request.
    pub fn internal(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }

    /// 503 with `Retry-After`: the server cannot take this now; the same request may work later.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>, retry_after: u64) -> Self {
        ApiError { retry_after: Some(retry_after), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message) }
    }

    /// 404 for a path the server does not have.
    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no route {path}; see /openapi.json"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_the_snake_case_code() {
        let error = ApiError::too_large(ErrorCode::TooManyImages, "4 images");
        let body = ErrorBody { error: ErrorDetail { code: error.code, message: error.message.clone() } };
        let json = serde_json::to_value(body).unwrap();
        assert_eq!(json, serde_json::json!({"error": {"code": "too_many_images", "message": "4 images"}}));
        assert_eq!(error.to_string(), "4 images");
    }
}
