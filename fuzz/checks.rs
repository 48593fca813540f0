//! The checks the fuzz targets run, one function per target, shared with the stable replay test
//! (`tests/tests/fuzz_seeds.rs`), which includes this file with `#[path]`: a seed replays exactly
//! what the fuzzer ran. Every check takes arbitrary bytes; errors are fine, a panic (including a
//! failed assertion of an invariant below) is a finding.

// Each fuzz target uses one of these functions; the replay test uses them all.
#![allow(dead_code)]

use spamlens_core::cla_ann::ClaAnn;
use spamlens_core::email::html::{ImageReference, image_references};
use spamlens_core::email::mbox::{is_mbox, split_mbox, starts_with_header, strip_envelope_line};
use spamlens_core::email::{self, EmailLimits};
use spamlens_core::{DecodeLimits, Fit, Preprocessing, decode_rgb, prepare_decoded};
use spamlens_request::{RequestError, classify_images};

/// One target's check: arbitrary bytes in, a panic on a finding.
pub type Check = fn(&[u8]);

/// Every target by name (the name of its `fuzz_targets/<name>.rs` and of its `seeds/<name>/`).
pub const TARGETS: [(&str, Check); 6] = [
    ("decode_image", decode_image),
    ("parse_email", parse_email),
    ("mbox", mbox),
    ("html_scanner", html_scanner),
    ("cla_ann_state", cla_ann_state),
    ("classify_request", classify_request),
];

/// Small limits: 2 megapixels and 16 MiB decoded keep one input's decode well under a second,
/// and the limit checks themselves are what is under test.
pub const IMAGE_LIMITS: DecodeLimits = DecodeLimits {
    max_width: 4096,
    max_height: 4096,
    max_pixels: 2_000_000,
    max_decoded_bytes: 16 * 1024 * 1024,
    max_input_bytes: 1024 * 1024,
};

/// Tight limits, so that every "over the limit" path of the email walker is reached by small inputs.
pub const TIGHT_EMAIL_LIMITS: EmailLimits = EmailLimits {
    max_message_bytes: 1024 * 1024,
    max_parts: 8,
    max_depth: 2,
    max_images: 2,
    max_image_bytes: 512,
    max_text_bytes: 64,
    max_remote_images: 2,
};

/// Decodes within [`IMAGE_LIMITS`]; a decoded image stays within them and preprocesses into a
/// finite tensor of the right size with the shipped model's letterbox (and with the tiles fit the
/// trainer's feature stores may use).
pub fn decode_image(data: &[u8]) {
    let Ok(decoded) = decode_rgb(data, "fuzz", &IMAGE_LIMITS) else { return };
    let (width, height) = (decoded.width(), decoded.height());
    assert!(width > 0 && height > 0, "decoded an empty {width}x{height} image");
    assert!(width <= IMAGE_LIMITS.max_width && height <= IMAGE_LIMITS.max_height, "{width}x{height} over the limits");
    assert!(u64::from(width) * u64::from(height) <= IMAGE_LIMITS.max_pixels, "{width}x{height} over the pixel limit");
    for preprocessing in [Preprocessing::RESNET_IMAGENET_LETTERBOX, Preprocessing::RESNET_IMAGENET.with_fit(Fit::Tiles)]
    {
        let prepared = prepare_decoded(&decoded, "fuzz", &preprocessing)
            .unwrap_or_else(|e| panic!("a decoded {width}x{height} image fails {:?}: {e}", preprocessing.fit));
        assert_eq!(prepared.views, preprocessing.view_count(width, height));
        assert_eq!(prepared.tensor.len(), prepared.views * preprocessing.values_per_image());
        assert!(prepared.tensor.iter().all(|v| v.is_finite()), "non-finite tensor value");
    }
}

/// Parses with the default limits and with [`TIGHT_EMAIL_LIMITS`]; what comes back respects them.
pub fn parse_email(data: &[u8]) {
    for limits in [EmailLimits::default(), TIGHT_EMAIL_LIMITS] {
        check_parsed(data, &limits);
    }
}

fn check_parsed(data: &[u8], limits: &EmailLimits) {
    let Ok(parsed) = email::parse_email(data, "fuzz", limits) else { return };
    assert!(parsed.images.len() <= limits.max_images, "{} images", parsed.images.len());
    assert!(parsed.images.iter().all(|i| i.bytes.len() <= limits.max_image_bytes), "an image over the byte limit");
    assert!(parsed.remote_images.len() <= limits.max_remote_images, "{} remote images", parsed.remote_images.len());
    assert!(parsed.body_text.len() <= limits.max_text_bytes, "{} bytes of body text", parsed.body_text.len());
    // The part that goes over the limit is counted before it is refused.
    assert!(parsed.parts <= limits.max_parts + 1, "{} parts", parsed.parts);
}

/// The mbox helpers agree with each other, and every message split out of the bytes parses (or
/// is refused) like a single message.
pub fn mbox(data: &[u8]) {
    let stripped = strip_envelope_line(data);
    assert!(data.ends_with(stripped), "the stripped message is not a suffix of the input");
    let _ = starts_with_header(data);
    let _ = starts_with_header(stripped);
    let messages = split_mbox(data);
    assert!(!messages.is_empty(), "split_mbox returned no message");
    if is_mbox(data) {
        assert!(messages.len() >= 2, "an mbox split into {} message(s)", messages.len());
    }
    assert!(messages.windows(2).all(|m| m[0].line < m[1].line), "separator lines out of order");
    let total: usize = messages.iter().map(|m| m.bytes.len()).sum();
    assert!(total <= data.len(), "split messages hold {total} bytes of a {}-byte input", data.len());
    for message in &messages {
        let _ = email::parse_email(&message.bytes, "fuzz", &EmailLimits::default());
    }
}

/// Scans the bytes as HTML (lossy UTF-8 when they are not UTF-8); every reference is well formed.
pub fn html_scanner(data: &[u8]) {
    let html = String::from_utf8_lossy(data);
    for reference in image_references(&html) {
        match reference {
            ImageReference::ContentId(id) => {
                assert!(!id.is_empty(), "empty content id");
                assert_eq!(id, id.to_ascii_lowercase(), "content id not lower-cased");
            }
            ImageReference::DataUri { media_type, .. } => {
                assert!(media_type.starts_with("image/"), "data URI of type {media_type:?}");
            }
            ImageReference::Remote(url) => {
                let lower = url.to_ascii_lowercase();
                assert!(
                    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//"),
                    "remote URL {url:?}"
                );
            }
        }
    }
}

/// Loads a CLA_ANN state; one that loads scores a fixed message and survives a JSON round trip.
pub fn cla_ann_state(data: &[u8]) {
    let Ok(filter) = ClaAnn::from_json(data, "fuzz") else { return };
    let tokens = filter.tokens("Cheap pills", "Buy cheap pills now at www.example.com, limited offer! Click here");
    let score = filter.score(&tokens);
    assert!(score.matched <= tokens.len() && score.strongest.len() <= score.matched.min(5));
    let json = filter.to_json();
    if let Err(e) = ClaAnn::from_json(&json, "round trip") {
        panic!("a loaded state does not load again after to_json: {e}");
    }
}

/// Reads a `POST /v1/classify` body as the server does. The input's first line is the
/// Content-Type header (so the fuzzer explores media types and multipart boundaries too), the
/// rest is the body. Every image is named; none holds more bytes than the body could give it.
pub fn classify_request(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    let body = bytes::Bytes::copy_from_slice(body);
    let images = match classify_images(Some(&header), Some("fuzz"), body.clone()) {
        Ok(images) => images,
        Err(RequestError::Malformed(message)) => {
            assert!(!message.is_empty(), "an empty error message");
            return;
        }
        Err(RequestError::UnsupportedMediaType { content_type }) => {
            assert!(content_type.is_none_or(|t| !t.is_empty() && t == t.to_ascii_lowercase()), "media type");
            return;
        }
    };
    let mut total = 0;
    for image in &images {
        assert!(!image.name.is_empty(), "an image without a name");
        match &image.bytes {
            Ok(bytes) => total += bytes.len(),
            Err(bad) => {
                assert!(bad.message.starts_with(&image.name), "{:?} does not name {:?}", bad.message, image.name)
            }
        }
    }
    // Raw and multipart bodies hand out slices of the body; base64 decodes to less than it reads.
    assert!(total <= body.len(), "{} images hold {total} bytes of a {}-byte body", images.len(), body.len());
}
