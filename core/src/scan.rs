//! One verdict per message: the text filter's score and every image's label, combined by a
//! documented, configurable rule into spam / ham / ad with the reason.
//!
//! [`scan_email`] does the whole job for one message (parse, text score, each image classified in
//! turn), which is what the browser runs; the native CLI and server classify images their own way
//! (in parallel, in dynamic batches) and call [`scan_parts`] with the results.
//!
//! The rule ([`VerdictRule`]), in order:
//! 1. **spam** if any image is spam: its label is `spam` (the model's operating point, see
//!    [`META_THRESHOLDS`](crate::classifier::META_THRESHOLDS)), or, when `image_spam_threshold` is
//!    set, its spam probability is at least that;
//! 2. **spam** if the text filter says spam (`score > threshold`);
//! 3. **ad** if any image is an ad (its label, or its ad probability ≥ `image_ad_threshold` when set);
//! 4. **ham** otherwise.
//!
//! `decided_by` says which part decided (`image`, `text`, `image+text` when both said spam, or
//! `none` for ham), and `reason` says it in words. Images that could not be classified are listed
//! with their error and take no part in the verdict.

use serde::{Deserialize, Serialize};

use crate::cla_ann::{ClaAnn, TextScore};
use crate::classifier::{Classifier, ImageReading, ReadText, Verdict};
use crate::email::{EmailImage, EmailLimits, ImageSource, ParsedEmail, parse_email};
use crate::error::{Error, Result};
use crate::ocr::TextReading;

/// How the parts' results become the message's verdict (see the module docs for the order).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct VerdictRule {
    /// An image with at least this spam probability makes the message spam; `None`: an image
    /// labelled spam by the model (its own operating point) does.
    pub image_spam_threshold: Option<f32>,
    /// An image with at least this ad probability makes a not-spam message an ad; `None`: an
    /// image labelled ad does.
    pub image_ad_threshold: Option<f32>,
    /// Whether the text filter's verdict counts.
    pub use_text: bool,
    /// Whether the images' labels count.
    pub use_images: bool,
}

impl Default for VerdictRule {
    /// Images count by the model's own labels (its operating point), text and images both on.
    fn default() -> Self {
        Self { image_spam_threshold: None, image_ad_threshold: None, use_text: true, use_images: true }
    }
}

/// One image of a message and what the classifier said of it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageResult {
    /// The image's name in the message.
    pub name: String,
    /// How it came with the message.
    pub source: ImageSource,
    /// Declared media type.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub bytes: usize,
    /// The sha256 of its bytes (what feedback records).
    pub sha256: String,
    /// The classifier's verdict, or why there is none.
    #[serde(flatten)]
    pub outcome: ImageOutcome,
}

/// What the classifier says of one image that was read and scored.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Classification {
    /// The label at the model's operating point (fused when the image's text was read).
    pub label: String,
    /// Every class's probability, in model order (fused when the image's text was read).
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, f64>))]
    pub probabilities: serde_json::Map<String, serde_json::Value>,
    /// A fused model's image-only probabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<std::collections::BTreeMap<String, f64>>))]
    pub image_probabilities: Option<serde_json::Map<String, serde_json::Value>>,
    /// What OCR read in the image and what the text alone says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextReading>,
    /// Why the image's text could not be read (it was decided by the image alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_problem: Option<String>,
    /// Decoded width in pixels.
    pub width: u32,
    /// Decoded height in pixels.
    pub height: u32,
    /// Detected format.
    pub format: String,
}

impl From<ImageReading> for Classification {
    /// What the outputs show of a verdict: probabilities keyed by class, the text read, the size.
    fn from(ImageReading { verdict: v, ocr_problem }: ImageReading) -> Self {
        let map = |pairs: &[(String, f32)]| -> serde_json::Map<String, serde_json::Value> {
            pairs.iter().map(|(l, p)| (l.clone(), serde_json::json!(p))).collect()
        };
        Classification {
            probabilities: map(&v.probabilities),
            image_probabilities: v.image_probabilities.as_deref().map(map),
            text: v.text.as_ref().map(|t| TextReading::new(t, v.text_probabilities.as_deref().map(map))),
            ocr_problem,
            label: v.label,
            width: v.width,
            height: v.height,
            format: v.format.to_string(),
        }
    }
}

/// An image's label and probabilities, or the error that stopped it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ImageOutcome {
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

impl ImageOutcome {
    /// The outcome of classifying an image.
    pub fn from_result(result: Result<Verdict>) -> Self {
        Self::from_reading(result.map(|verdict| ImageReading { verdict, ocr_problem: None }))
    }

    /// The outcome of reading and classifying an image ([`Classifier::read_and_classify`]).
    pub fn from_reading(result: Result<ImageReading>) -> Self {
        match result {
            Ok(reading) => ImageOutcome::Classified(Box::new(reading.into())),
            Err(e) => ImageOutcome::Failed { error: e.to_string() },
        }
    }

    /// The text OCR read in the image, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            ImageOutcome::Classified(c) => c.text.as_ref().map(|t| t.text.as_str()),
            _ => None,
        }
    }

    fn label(&self) -> Option<&str> {
        match self {
            ImageOutcome::Classified(c) => Some(&c.label),
            _ => None,
        }
    }

    fn probability(&self, class: &str) -> Option<f64> {
        match self {
            ImageOutcome::Classified(c) => c.probabilities.get(class).and_then(|v| v.as_f64()),
            _ => None,
        }
    }
}

/// The message's verdict and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageVerdict {
    /// `spam`, `ham` or `ad`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(spam|ham|ad)$"))]
    pub label: String,
    /// `image`, `text`, `image+text` or `none`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^(image|text|image\+text|none)$"))]
    pub decided_by: String,
    /// The reason in words.
    pub reason: String,
}

/// Everything spamlens found in one message.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageScan {
    /// The caller's name for the message (a path, `upload`, `mbox line 1234`).
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
    pub verdict: MessageVerdict,
    /// The text filter's score (absent when no text filter is in use).
    pub text: Option<TextScore>,
    /// Each image and its outcome.
    pub images: Vec<ImageResult>,
    /// Remote image URLs (listed, never fetched).
    pub remote_images: Vec<String>,
    /// What could not be read in the message.
    pub problems: Vec<String>,
}

/// The sha256 of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Combines a parsed message with its text score and image outcomes (in `parsed.images` order).
pub fn scan_parts(
    name: &str,
    parsed: ParsedEmail,
    text: Option<TextScore>,
    outcomes: Vec<ImageOutcome>,
    rule: &VerdictRule,
) -> MessageScan {
    let images: Vec<ImageResult> =
        parsed.images.into_iter().zip(outcomes).map(|(image, outcome)| image_result(image, outcome)).collect();
    let verdict = combine(text.as_ref(), &images, rule);
    MessageScan {
        message: name.to_owned(),
        subject: parsed.subject,
        from: parsed.from,
        message_id: parsed.message_id,
        date: parsed.date,
        verdict,
        text,
        images,
        remote_images: parsed.remote_images,
        problems: parsed.problems,
    }
}

fn image_result(image: EmailImage, outcome: ImageOutcome) -> ImageResult {
    ImageResult {
        sha256: sha256_hex(&image.bytes),
        bytes: image.bytes.len(),
        name: image.name,
        source: image.source,
        content_type: image.content_type,
        outcome,
    }
}

/// The rule of the module docs.
pub fn combine(text: Option<&TextScore>, images: &[ImageResult], rule: &VerdictRule) -> MessageVerdict {
    // The most probable image of `class` among those that count as `class` under the rule.
    let best = |class: &str, threshold: Option<f32>| {
        images
            .iter()
            .filter(|_| rule.use_images)
            .filter_map(|i| i.outcome.probability(class).map(|p| (i, p)))
            .filter(|(i, p)| match threshold {
                Some(t) => *p >= f64::from(t),
                None => i.outcome.label() == Some(class),
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let cut = |threshold: Option<f32>| match threshold {
        Some(t) => format!("≥ {t}"),
        None => "over the model's threshold".to_owned(),
    };
    let spam_image = best("spam", rule.image_spam_threshold);
    let text_spam = text.filter(|t| rule.use_text && t.is_spam);
    let text_words = |t: &TextScore| format!("text score {:.3} > threshold {:.3}", t.score, t.threshold);
    match (spam_image, text_spam) {
        (Some((image, p)), Some(t)) => MessageVerdict {
            label: "spam".into(),
            decided_by: "image+text".into(),
            reason: format!("image '{}' is spam (p = {p:.3}) and {}", image.name, text_words(t)),
        },
        (Some((image, p)), None) => MessageVerdict {
            label: "spam".into(),
            decided_by: "image".into(),
            reason: format!("image '{}' is spam (p = {p:.3} {})", image.name, cut(rule.image_spam_threshold)),
        },
        (None, Some(t)) => MessageVerdict { label: "spam".into(), decided_by: "text".into(), reason: text_words(t) },
        (None, None) => {
            if let Some((image, p)) = best("ad", rule.image_ad_threshold) {
                return MessageVerdict {
                    label: "ad".into(),
                    decided_by: "image".into(),
                    reason: format!("image '{}' is an ad (p = {p:.3} {})", image.name, cut(rule.image_ad_threshold)),
                };
            }
            let classified = images.iter().filter(|i| matches!(i.outcome, ImageOutcome::Classified(_))).count();
            let text_part = match text {
                Some(t) if rule.use_text => format!("text score {:.3} ≤ threshold {:.3}", t.score, t.threshold),
                _ => "no text filter".to_owned(),
            };
            MessageVerdict {
                label: "ham".into(),
                decided_by: "none".into(),
                reason: format!("{text_part}; {classified} of {} images classified, none spam", images.len()),
            }
        }
    }
}

/// Scans one message end to end: parse, each image classified in turn (when a classifier is given;
/// its text read by `ocr` when the model reads text), the text score of the body and the images'
/// text (when a filter is given), combined by `rule`. Errors only when the bytes are not a message
/// (see [`parse_email`]).
pub fn scan_email(
    bytes: &[u8],
    name: &str,
    limits: &EmailLimits,
    classifier: Option<&Classifier>,
    ocr: Option<ReadText<'_>>,
    filter: Option<&ClaAnn>,
    rule: &VerdictRule,
) -> Result<MessageScan> {
    let parsed = parse_email(bytes, name, limits)?;
    let outcomes: Vec<ImageOutcome> = parsed
        .images
        .iter()
        .map(|image| match classifier {
            Some(c) => {
                ImageOutcome::from_reading(c.read_and_classify(&image.bytes, &format!("{name}: {}", image.name), ocr))
            }
            None => ImageOutcome::Skipped { skipped: "no image model in use".into() },
        })
        .collect();
    let text = filter.map(|f| f.score(&f.tokens(&parsed.subject, &message_text(&parsed.body_text, &outcomes))));
    Ok(scan_parts(name, parsed, text, outcomes, rule))
}

/// The text the text filter reads for a message: its body, then the text OCR read in each of its
/// images (one image per paragraph), so a campaign whose words are drawn in pictures is scored, and
/// learnt from, by those words.
pub fn message_text(body: &str, images: &[ImageOutcome]) -> String {
    image_text_appended(body, images.iter().filter_map(ImageOutcome::text))
}

/// `body`, then each non-empty image text as its own paragraph (see [`message_text`]).
pub fn image_text_appended<'a>(body: &str, texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = body.to_owned();
    for text in texts.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(text);
    }
    out
}

/// Checks a rule's thresholds (each within 0..=1).
pub fn check_rule(rule: &VerdictRule) -> Result<()> {
    for (what, value) in
        [("image spam threshold", rule.image_spam_threshold), ("image ad threshold", rule.image_ad_threshold)]
    {
        if let Some(value) = value
            && !(0.0..=1.0).contains(&value)
        {
            return Err(Error::VerdictRule { reason: format!("{what} {value} is outside 0..=1") });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(spam: f64, ad: f64) -> ImageOutcome {
        let mut probabilities = serde_json::Map::new();
        probabilities.insert("ham".into(), serde_json::json!(1.0 - spam - ad));
        probabilities.insert("spam".into(), serde_json::json!(spam));
        probabilities.insert("ad".into(), serde_json::json!(ad));
        let label = if spam >= ad && spam >= 1.0 - spam - ad {
            "spam"
        } else if ad > 1.0 - spam - ad {
            "ad"
        } else {
            "ham"
        };
        ImageOutcome::Classified(Box::new(Classification {
            label: label.into(),
            probabilities,
            image_probabilities: None,
            text: None,
            ocr_problem: None,
            width: 1,
            height: 1,
            format: "PNG".into(),
        }))
    }

    fn image(name: &str, outcome: ImageOutcome) -> ImageResult {
        ImageResult {
            name: name.into(),
            source: ImageSource::Attachment,
            content_type: None,
            bytes: 0,
            sha256: String::new(),
            outcome,
        }
    }

    fn text(score: f64, threshold: f64) -> TextScore {
        TextScore { score, is_spam: score > threshold, threshold, matched: 3, strongest: vec![] }
    }

    #[test]
    fn the_rule_in_its_order() {
        let rule = VerdictRule::default();
        let spam_img = image("a.png", classified(0.9, 0.0));
        let ad_img = image("b.png", classified(0.1, 0.7));
        let ham_img = image("c.png", classified(0.1, 0.1));
        let broken = image("d.png", ImageOutcome::Failed { error: "d.png: corrupt".into() });

        let v = combine(Some(&text(0.9, 0.7)), &[ham_img.clone(), spam_img.clone()], &rule);
        assert_eq!((v.label.as_str(), v.decided_by.as_str()), ("spam", "image+text"));
        assert!(v.reason.contains("'a.png'"), "{}", v.reason);
        let v = combine(Some(&text(0.2, 0.7)), std::slice::from_ref(&spam_img), &rule);
        assert_eq!((v.label.as_str(), v.decided_by.as_str()), ("spam", "image"));
        let v = combine(Some(&text(0.9, 0.7)), std::slice::from_ref(&ad_img), &rule);
        assert_eq!((v.label.as_str(), v.decided_by.as_str()), ("spam", "text"));
        let v = combine(Some(&text(0.2, 0.7)), &[ad_img.clone(), ham_img.clone()], &rule);
        assert_eq!((v.label.as_str(), v.decided_by.as_str()), ("ad", "image"));
        let v = combine(Some(&text(0.2, 0.7)), &[ham_img.clone(), broken.clone()], &rule);
        assert_eq!((v.label.as_str(), v.decided_by.as_str()), ("ham", "none"));
        assert!(v.reason.contains("1 of 2 images classified"), "{}", v.reason);
        let v = combine(None, &[broken], &rule);
        assert_eq!(v.label, "ham");

        let text_only = VerdictRule { use_images: false, ..rule };
        assert_eq!(combine(Some(&text(0.2, 0.7)), std::slice::from_ref(&spam_img), &text_only).label, "ham");
        let images_only = VerdictRule { use_text: false, ..rule };
        assert_eq!(combine(Some(&text(0.9, 0.7)), &[ham_img], &images_only).label, "ham");
        let strict = VerdictRule { image_spam_threshold: Some(0.95), ..rule };
        assert_eq!(combine(None, std::slice::from_ref(&spam_img), &strict).label, "ham");
        // The model's own label counts by default: an image labelled ham at p(spam) 0.9 (a model
        // whose spam threshold is higher) does not make the message spam.
        let mut cautious = spam_img.clone();
        if let ImageOutcome::Classified(classified) = &mut cautious.outcome {
            classified.label = "ham".into();
        }
        assert_eq!(combine(None, std::slice::from_ref(&cautious), &rule).label, "ham");
        let lenient = VerdictRule { image_spam_threshold: Some(0.5), ..rule };
        assert_eq!(combine(None, &[cautious], &lenient).label, "spam");
    }

    #[test]
    fn rule_thresholds_are_checked() {
        assert!(check_rule(&VerdictRule::default()).is_ok());
        let err = check_rule(&VerdictRule { image_spam_threshold: Some(1.5), ..VerdictRule::default() })
            .expect_err("refused");
        assert_eq!(err.to_string(), "verdict rule: image spam threshold 1.5 is outside 0..=1");
        let rule = VerdictRule { image_ad_threshold: Some(1.7), ..VerdictRule::default() };
        assert!(check_rule(&rule).is_err());
        let fixed = VerdictRule { image_spam_threshold: Some(0.9), image_ad_threshold: Some(0.7), ..rule };
        assert!(check_rule(&fixed).is_ok());
    }

    #[test]
    fn misspelt_rule_fields_are_refused_and_missing_ones_default() {
        let misspelt = serde_json::from_str::<VerdictRule>(r#"{"image_spam_treshold": 0.9}"#).expect_err("refused");
        assert!(misspelt.to_string().contains("unknown field `image_spam_treshold`"), "{misspelt}");
        let partial: VerdictRule = serde_json::from_str(r#"{"use_text": false}"#).expect("defaults fill the rest");
        assert_eq!(partial, VerdictRule { use_text: false, ..VerdictRule::default() });
    }
}
