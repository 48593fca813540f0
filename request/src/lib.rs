//! The images in a `POST /v1/classify` body: a raw image, a multipart form with several images, or
//! JSON `{"images": [...]}` with base64 strings (or `{name, data}` objects).
//!
//! This is the part of the server that reads hostile bytes before any image decoder sees them, kept
//! apart from the HTTP plumbing (axum, tokio) so that the fuzz target `fuzz/fuzz_targets/
//! classify_request.rs` runs exactly the code the server runs. A malformed body is a
//! [`RequestError`]; one bad image among good ones is that image's [`BadImageData`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Why a request body holds no images to classify; the server answers 400 or 415 with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body does not have the shape its Content-Type announces (HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// The Content-Type is none of the accepted ones (HTTP 415).
    #[error(
        "{} is not accepted; send one image (image/*), several as multipart/form-data, or JSON \
         {{\"images\": [base64, ...]}} (application/json)",
        .content_type.as_deref().map_or_else(|| "no Content-Type".to_owned(), |t| format!("Content-Type '{t}'"))
    )]
    UnsupportedMediaType {
        /// The Content-Type's essence (`type/subtype`, lower case), when the request has one.
        content_type: Option<String>,
    },
}

/// An image whose bytes could not be had from the request (bad base64); the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadImageData {
    /// What is wrong, starting with the image's name.
    pub message: String,
}

/// One image of a request: its name (file name, form field, or position) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestImage {
    /// How answers and errors name it.
    pub name: String,
    /// The encoded image, or why the request's data for it is not an image's bytes.
    pub bytes: Result<Bytes, BadImageData>,
}

/// Reads the images out of a classify request body that was collected within the body limit.
///
/// `content_type` is the request's `Content-Type` header (parameters included: the multipart
/// boundary is one); `raw_name` names a raw image upload (the server takes it from `?name=`).
pub fn classify_images(
    content_type: Option<&str>,
    raw_name: Option<&str>,
    body: Bytes,
) -> Result<Vec<RequestImage>, RequestError> {
    let header = content_type.unwrap_or("");
    let essence = header.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence.starts_with("image/") || essence == "application/octet-stream" {
        let name = raw_name.filter(|n| !n.is_empty()).unwrap_or("image").to_owned();
        return Ok(vec![RequestImage { name, bytes: Ok(body) }]);
    }
    if essence == "multipart/form-data" {
        return multipart_images(header, body);
    }
    if essence == "application/json" {
        return json_images(&body);
    }
    Err(RequestError::UnsupportedMediaType { content_type: (!essence.is_empty()).then_some(essence) })
}

/// The parts of a `multipart/form-data` body, each an image named by its file name, its field
/// name, or its position.
fn multipart_images(content_type: &str, body: Bytes) -> Result<Vec<RequestImage>, RequestError> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        RequestError::Malformed(format!("multipart body: the Content-Type has no usable boundary: {e}"))
    })?;
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(body)]);
    let mut form = multer::Multipart::new(stream, boundary);
    let mut images = Vec::new();
    loop {
        let position = images.len() + 1;
        let field = match complete(form.next_field()) {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(RequestError::Malformed(format!("multipart body: part {position} is malformed: {e}")));
            }
        };
        let name = field
            .file_name()
            .or(field.name())
            .filter(|n| !n.is_empty())
            .map_or_else(|| format!("part {position}"), str::to_owned);
        let bytes = complete(field.bytes())
            .map_err(|e| RequestError::Malformed(format!("multipart body: part '{name}': {e}")))?;
        images.push(RequestImage { name, bytes: Ok(bytes) });
    }
    Ok(images)
}

/// Runs a future over a body that is wholly in memory, which never waits: the multipart parser
/// reads from a stream whose one chunk is ready, so each poll makes progress or finishes.
fn complete<T>(future: impl Future<Output = Result<T, multer::Error>>) -> Result<T, multer::Error> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    // A poll that waits would wait forever (nothing wakes it); the parser reports the body as
    // incomplete instead, so this bound is only a guard against a parser change.
    for _ in 0..64 {
        if let Poll::Ready(result) = future.as_mut().poll(&mut context) {
            return result;
        }
    }
    Err(multer::Error::IncompleteStream)
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

fn json_images(body: &[u8]) -> Result<Vec<RequestImage>, RequestError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::Malformed(format!("JSON body: not valid JSON: {e}")))?;
    let request = ClassifyJson::deserialize(&value).map_err(|_| RequestError::Malformed(json_problem(&value)))?;
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
            RequestImage { bytes: decode_base64(&data, &name), name }
        })
        .collect())
}

/// Standard base64 (padding optional, whitespace ignored), also inside a `data:...;base64,` URI.
fn decode_base64(data: &str, name: &str) -> Result<Bytes, BadImageData> {
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
        .map_err(|e| BadImageData { message: format!("{name}: not valid base64: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(images: &[RequestImage]) -> Vec<&str> {
        images.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn base64_accepts_padding_whitespace_and_data_uris() {
        assert_eq!(decode_base64("aGVsbG8=", "x").unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(decode_base64("aGVs\nbG8", "x").unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(decode_base64("data:image/png;base64,aGVsbG8=", "x").unwrap(), Bytes::from_static(b"hello"));
        let err = decode_base64("not base64!", "images[2]").unwrap_err();
        assert!(err.message.starts_with("images[2]: not valid base64"), "{}", err.message);
    }

    #[test]
    fn json_bodies_name_their_images_and_refuse_bad_shapes() {
        let body = Bytes::from_static(br#"{"images": ["aGVsbG8=", {"name": "a.png", "data": "aGk="}, "!!"]}"#);
        let images = classify_images(Some("application/json; charset=utf-8"), None, body).unwrap();
        assert_eq!(names(&images), ["images[0]", "a.png", "images[2]"]);
        assert!(images[0].bytes.is_ok() && images[1].bytes.is_ok() && images[2].bytes.is_err());
        for (body, expected) in [
            (&b"{"[..], "not valid JSON"),
            (b"[1]", "expected an object"),
            (br#"{"images": [1]}"#, "images[0] is neither"),
            (br#"{"images": [{"name": "x"}]}"#, "images[0] has no \"data\""),
        ] {
            let err = classify_images(Some("application/json"), None, Bytes::from_static(body)).unwrap_err();
            assert!(matches!(&err, RequestError::Malformed(m) if m.contains(expected)), "{err}");
        }
    }

    #[test]
    fn raw_uploads_are_one_image_named_by_the_query() {
        let body = Bytes::from_static(b"\x89PNG");
        let named = classify_images(Some("image/png"), Some("scan.png"), body.clone()).unwrap();
        assert_eq!(named, [RequestImage { name: "scan.png".into(), bytes: Ok(body.clone()) }]);
        let unnamed = classify_images(Some("Application/Octet-Stream"), Some(""), body).unwrap();
        assert_eq!(names(&unnamed), ["image"]);
    }

    #[test]
    fn multipart_parts_are_named_by_file_field_or_position() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"first\"; filename=\"a.png\"\r\n\r\nAAA\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"second\"\r\n\r\nBB\r\n\
              --XyZ\r\nContent-Disposition: form-data\r\n\r\nC\r\n--XyZ--\r\n",
        );
        let images = classify_images(Some("multipart/form-data; boundary=XyZ"), None, body).unwrap();
        assert_eq!(names(&images), ["a.png", "second", "part 3"]);
        let sizes: Vec<usize> = images.iter().map(|i| i.bytes.as_ref().map_or(0, Bytes::len)).collect();
        assert_eq!(sizes, [3, 2, 1]);
    }

    #[test]
    fn malformed_multipart_bodies_are_request_errors() {
        let truncated = Bytes::from_static(b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nAAA");
        let err = classify_images(Some("multipart/form-data; boundary=XyZ"), None, truncated).unwrap_err();
        assert!(matches!(&err, RequestError::Malformed(m) if m.starts_with("multipart body: part")), "{err}");
        let err = classify_images(Some("multipart/form-data"), None, Bytes::new()).unwrap_err();
        assert!(matches!(&err, RequestError::Malformed(m) if m.contains("boundary")), "{err}");
    }

    #[test]
    fn other_content_types_are_refused_by_name() {
        let err = classify_images(Some("Text/Plain; charset=utf-8"), None, Bytes::new()).unwrap_err();
        assert_eq!(err, RequestError::UnsupportedMediaType { content_type: Some("text/plain".into()) });
        assert!(err.to_string().starts_with("Content-Type 'text/plain' is not accepted"), "{err}");
        let err = classify_images(None, None, Bytes::new()).unwrap_err();
        assert!(err.to_string().starts_with("no Content-Type is not accepted"), "{err}");
    }
}
