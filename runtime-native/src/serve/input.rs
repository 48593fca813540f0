//! Turning a `POST /v1/classify` request into named images: the HTTP side (headers, `?name=`,
//! status codes) around `spamlens-request`, which reads the body itself (raw image, multipart
//! form, JSON with base64) and is what the fuzz target runs.

use axum::body::Bytes;
use axum::http::header;
use axum::http::request::Parts;
use spamlens_request::RequestError;

use super::error::ApiError;
use super::inference::{ImageError, ImageErrorCode};

/// One image of a request: its name (file name, form field, or position) and its bytes, or why
/// its bytes could not be had (bad base64).
#[derive(Debug)]
pub struct NamedImage {
    /// How answers and errors name it.
    pub name: String,
    /// The encoded image.
    pub bytes: Result<Bytes, ImageError>,
}

/// Reads the images out of a classify request (its head, `parts`) whose body was already collected
/// (within the body limit) into `body`.
pub fn images(parts: &Parts, body: Bytes) -> Result<Vec<NamedImage>, ApiError> {
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let name = query_name(parts);
    let images = spamlens_request::classify_images(content_type, name.as_deref(), body).map_err(|e| match e {
        RequestError::Malformed(message) => ApiError::bad_request(message),
        unsupported @ RequestError::UnsupportedMediaType { .. } => {
            ApiError::unsupported_media_type(unsupported.to_string())
        }
    })?;
    Ok(images
        .into_iter()
        .map(|image| NamedImage {
            name: image.name,
            bytes: image.bytes.map_err(|bad| ImageError { code: ImageErrorCode::BadBase64, message: bad.message }),
        })
        .collect())
}

/// `?name=` on a raw upload names the image in the answer.
fn query_name(parts: &Parts) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct NameQuery {
        name: Option<String>,
    }
    let query = axum::extract::Query::<NameQuery>::try_from_uri(&parts.uri).ok()?;
    query.0.name.filter(|n| !n.is_empty())
}
