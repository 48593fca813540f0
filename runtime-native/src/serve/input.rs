//! Turning a `POST /v1/classify` body into named images: a raw image body, a multipart form with
//! several images, or JSON `{"images": [...]}` with base64 strings (or `{name, data}` objects).
//! A malformed body is a request error; one bad image among good ones is that image's error.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

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
pub async fn images(parts: Parts, body: Bytes) -> Result<Vec<NamedImage>, ApiError> {
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_owned();
    if essence.starts_with("image/") || essence == "application/octet-stream" {
        let name = query_name(&parts).unwrap_or_else(|| "image".to_owned());
        return Ok(vec![NamedImage { name, bytes: Ok(body) }]);
    }
    if essence == "multipart/form-data" {
        return multipart(Request::from_parts(parts, axum::body::Body::from(body))).await;
    }
    if essence == "application/json" {
        return json_images(&body);
    }
    let shown = if essence.is_empty() { "no Content-Type".to_owned() } else { format!("Content-Type '{essence}'") };
    Err(ApiError::unsupported_media_type(format!(
        "{shown} is not accepted; send one image (image/*), several as multipart/form-data, or JSON \
         {{\"images\": [base64, ...]}} (application/json)"
    )))
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

async fn multipart(request: Request) -> Result<Vec<NamedImage>, ApiError> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("multipart body: {}", e.body_text())))?;
    let mut images = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "multipart body: part {} is malformed: {}",
                    images.len() + 1,
                    e.body_text()
                )));
            }
        };
        let position = images.len() + 1;
        let name = field
            .file_name()
            .or(field.name())
            .filter(|n| !n.is_empty())
            .map_or_else(|| format!("part {position}"), str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("multipart part '{name}': {}", e.body_text())))?;
        images.push(NamedImage { name, bytes: Ok(bytes) });
    }
    Ok(images)
}

/// The `application/json` body of `POST /v1/classify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClassifyJson {
    /// The images, answered in this order.
    #[schema(min_items = 1)]
    pub images: Vec<JsonImage>,
}

/// One image of a JSON classify body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum JsonImage {
    /// The image alone, named `images[i]` in the answer.
    Data(Base64Image),
    /// The image and its name.
    Named(NamedImageJson),
}

/// An encoded image as standard base64 (padding optional, whitespace ignored), or a
/// `data:image/...;base64,` URI.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(content_encoding = "base64", content_media_type = "image/*")]
pub struct Base64Image(pub String);

/// A named image of a JSON classify body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NamedImageJson {
    /// How the answer names the image (`images[i]` when absent or empty).
    #[serde(default)]
    pub name: Option<String>,
    /// The encoded image as base64, or a `data:` URI.
    #[schema(content_encoding = "base64", content_media_type = "image/*")]
    pub data: String,
}

/// Why a JSON body is not a [`ClassifyJson`], in words that name the first bad image.
fn json_problem(value: &Value) -> String {
    let Some(list) = value.get("images").and_then(Value::as_array) else {
        return "JSON body: expected an object with \"images\": an array of base64 strings or {\"name\", \"data\"} \
                objects"
            .to_owned();
    };
    for (i, item) in list.iter().enumerate() {
        if JsonImage::deserialize(item).is_err() {
            return if item.is_object() {
                format!("JSON body: images[{i}] has no \"data\" string (or its \"name\" is not a string)")
            } else {
                format!("JSON body: images[{i}] is neither a base64 string nor a {{\"name\", \"data\"}} object")
            };
        }
    }
    "JSON body: expected an object with \"images\"".to_owned()
}

fn json_images(body: &[u8]) -> Result<Vec<NamedImage>, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("JSON body: not valid JSON: {e}")))?;
    let request = ClassifyJson::deserialize(&value).map_err(|_| ApiError::bad_request(json_problem(&value)))?;
    Ok(request
        .images
        .into_iter()
        .enumerate()
        .map(|(i, image)| {
            let position = format!("images[{i}]");
            let (name, data) = match image {
                JsonImage::Data(Base64Image(data)) => (position, data),
                JsonImage::Named(NamedImageJson { name, data }) => {
                    (name.filter(|n| !n.is_empty()).unwrap_or(position), data)
                }
            };
            NamedImage { bytes: decode_base64(&data, &name), name }
        })
        .collect())
}

/// Standard base64 (padding optional, whitespace ignored), also inside a `data:...;base64,` URI.
fn decode_base64(data: &str, name: &str) -> Result<Bytes, ImageError> {
    let payload = match data.strip_prefix("data:") {
        Some(uri) => uri.split_once(";base64,").map_or("", |(_, payload)| payload),
        None => data,
    };
    let compact: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(compact.as_bytes())
        .map(Bytes::from)
        .map_err(|e| ImageError { code: ImageErrorCode::BadBase64, message: format!("{name}: not valid base64: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_padding_whitespace_and_data_uris() {
        assert_eq!(decode_base64("aGVsbG8=", "x").unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(decode_base64("aGVs\nbG8", "x").unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(decode_base64("data:image/png;base64,aGVsbG8=", "x").unwrap(), Bytes::from_static(b"hello"));
        let err = decode_base64("not base64!", "images[2]").unwrap_err();
        assert_eq!(err.code, ImageErrorCode::BadBase64);
        assert!(err.message.starts_with("images[2]: not valid base64"), "{}", err.message);
    }

    #[test]
    fn json_bodies_name_their_images_and_refuse_bad_shapes() {
        let images = json_images(br#"{"images": ["aGVsbG8=", {"name": "a.png", "data": "aGk="}, "!!"]}"#).unwrap();
        let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["images[0]", "a.png", "images[2]"]);
        assert!(images[0].bytes.is_ok() && images[1].bytes.is_ok() && images[2].bytes.is_err());
        for (body, expected) in [
            (&b"{"[..], "not valid JSON"),
            (b"[1]", "expected an object"),
            (br#"{"images": [1]}"#, "images[0] is neither"),
            (br#"{"images": [{"name": "x"}]}"#, "images[0] has no \"data\""),
        ] {
            let err = json_images(body).unwrap_err();
            assert_eq!(err.code, crate::serve::error::ErrorCode::BadRequest);
            assert!(err.message.contains(expected), "{}", err.message);
        }
    }
}
