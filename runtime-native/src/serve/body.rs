//! Request bodies: collected within the body limit, and a refused request's unread body drained so
//! that clients writing the whole body before reading still get the answer.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::{ApiError, ErrorCode};

/// Most bytes of a refused request's body read and thrown away so that the client, which may be
/// writing the whole body before it reads, gets the answer instead of a reset connection; past it
/// the answer is sent and the connection closed.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;

/// How long a refused request's body is read for at most (a slow client cannot hold the server).
const DISCARD_TIME: Duration = Duration::from_secs(10);

/// Reads and drops what is left of a refused request's body (up to [`DISCARD_LIMIT`] and
/// [`DISCARD_TIME`]).
pub(super) async fn discard_body(body: Body) {
    let mut stream = body.into_data_stream();
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DISCARD_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

/// Answers `error` to `request` after discarding its body.
pub(super) async fn refuse(request: Request, error: ApiError) -> Response {
    discard_body(request.into_body()).await;
    error.into_response()
}

/// Collects the body within the limit; over it, the rest is discarded and the answer is 413.
pub(super) async fn read_body(body: Body, limit: usize, declared: Option<usize>) -> Result<Bytes, ApiError> {
    let too_large = |size: String| {
        ApiError::too_large(
            ErrorCode::PayloadTooLarge,
            format!("the request body is {size}, over the limit of {limit} bytes (--max-body-mib)"),
        )
    };
    if let Some(length) = declared
        && length > limit
    {
        discard_body(body).await;
        return Err(too_large(format!("{length} bytes")));
    }
    let mut collected = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        if collected.len() + chunk.len() > limit {
            let mut seen = collected.len() + chunk.len();
            drop(collected);
            while let Some(Ok(chunk)) = stream.next().await {
                seen += chunk.len();
                if seen > limit + DISCARD_LIMIT {
                    return Err(too_large(format!("over {seen} bytes")));
                }
            }
            return Err(too_large(format!("{seen} bytes")));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// The `Content-Length` a request declares, when it declares a readable one.
pub(super) fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
}
