//! `spamlens-wasm`: spamlens-core's classifier, email parsing and CLA_ANN text filter for the
//! browser, through wasm-bindgen.
//!
//! A page (or, better, a Web Worker: see the JS package in `runtime-wasm/js/`) loads a combined
//! spamlens model from its bytes once (`new Classifier(bytes)`) and classifies image bytes with it;
//! the images never leave the page. Decoding, preprocessing and the model contract are `core`'s, so
//! the browser gives the same probabilities as the native runtime. Errors surface as JS `Error`s
//! carrying `core`'s message (which names the input and the problem); a panic is reported on the
//! console by the panic hook instead of trapping silently.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::SerializeMap;
use spamlens_core::cla_ann::{ClaAnn, FeedbackOutcome, TextLabel};
use spamlens_core::classifier::{
    META_BACKBONE_SHA256, META_CREATED, META_FEATURE_SOURCE, META_HEAD, META_KIND, META_METRICS, META_OPERATING_POINT,
    META_PRECISION, META_PREPROCESSING, META_TRAINING, META_VERSION,
};
use spamlens_core::email::{self, EmailLimits};
use spamlens_core::feedback::{FeedbackImage, FeedbackRecord, Reaction};
use spamlens_core::scan::{self, VerdictRule, check_rule, sha256_hex};
use spamlens_core::{Classifier as CoreClassifier, ModelOptions, Verdict};
use wasm_bindgen::prelude::*;

/// The spamlens version, for diagnostics.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The SIMD level this module was built with (`relaxed-simd`, `simd128` or `none`): the JS
/// loader picks the best variant the browser validates, and reports which one runs.
#[wasm_bindgen(js_name = simdLevel)]
pub fn simd_level() -> String {
    if cfg!(target_feature = "relaxed-simd") {
        "relaxed-simd"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "none"
    }
    .to_owned()
}

/// Installs a panic hook that reports Rust panics on the console instead of aborting silently.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: exists in windows, workers and Node alike.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// `(class, probability)` pairs that serialise as one JS object in the model's class order.
struct Probabilities<'a>(&'a [(String, f32)]);

impl Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (class, p) in self.0 {
            map.serialize_entry(class, p)?;
        }
        map.end()
    }
}

/// What `classify` returns to JS.
#[derive(Serialize)]
struct ClassifyResult<'a> {
    name: &'a str,
    label: &'a str,
    probabilities: Probabilities<'a>,
    millis: f64,
    width: u32,
    height: u32,
    format: &'a str,
}

/// What `classifyTensor` returns to JS.
#[derive(Serialize)]
struct TensorResult<'a> {
    label: &'a str,
    probabilities: Probabilities<'a>,
    millis: f64,
}

/// A per-image failure inside `classifyBatch`.
#[derive(Serialize)]
struct ClassifyFailure<'a> {
    name: &'a str,
    error: String,
}

/// What `info` returns to JS: the model contract plus every `metadata_props` entry.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo<'a> {
    name: &'a str,
    sha256: &'a str,
    bytes: usize,
    labels: &'a [String],
    kind: Option<&'a str>,
    preprocessing: Option<&'a str>,
    backbone_sha256: Option<&'a str>,
    feature_source: Option<&'a str>,
    head: Option<&'a str>,
    precision: Option<&'a str>,
    version: Option<&'a str>,
    created: Option<&'a str>,
    /// `spamlens.metrics` parsed (null when absent or not JSON).
    metrics: Option<serde_json::Value>,
    /// `spamlens.training` parsed (null when absent or not JSON).
    training: Option<serde_json::Value>,
    /// The model's operating point (`spamlens.thresholds`): class → probability that makes an
    /// image that class; empty when the label is the most probable class.
    thresholds: BTreeMap<String, f32>,
    /// `spamlens.operating_point` parsed: how the thresholds were chosen (null when absent).
    operating_point: Option<serde_json::Value>,
    input_dims: &'a [usize],
    runtime_version: &'static str,
    simd: String,
    metadata: &'a BTreeMap<String, String>,
}

/// JS values as plain objects (not `Map`s), which is what callers expect to `JSON.stringify`.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value.serialize(&serializer).map_err(|e| JsError::new(&format!("cannot convert a result to JS: {e}")))
}

fn result_value(name: &str, verdict: &Verdict, millis: f64) -> Result<JsValue, JsError> {
    to_js(&ClassifyResult {
        name,
        label: &verdict.label,
        probabilities: Probabilities(&verdict.probabilities),
        millis,
        width: verdict.width,
        height: verdict.height,
        format: verdict.format.as_str(),
    })
}

/// A loaded combined spamlens model (backbone + head), ready to classify images.
#[wasm_bindgen]
pub struct Classifier {
    inner: CoreClassifier,
    bytes: usize,
}

#[wasm_bindgen]
impl Classifier {
    /// Loads, checks and optimises a combined model from its bytes; `name` (e.g. its URL) names it
    /// in errors. Refuses plain backbones, head-only graphs and anything that is not ONNX.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8], name: Option<String>) -> Result<Classifier, JsError> {
        let name = name.unwrap_or_else(|| "model".to_owned());
        let inner = CoreClassifier::from_bytes(bytes, &name, &ModelOptions::default())?;
        Ok(Classifier { inner, bytes: bytes.len() })
    }

    /// The model's contract and provenance: name, sha256, labels, metrics, and all `metadata_props`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let model = self.inner.model();
        let meta = model.metadata();
        let text = |key: &str| meta.get(key).map(String::as_str);
        let json = |key: &str| meta.get(key).and_then(|v| serde_json::from_str(v).ok());
        to_js(&ModelInfo {
            name: model.name(),
            sha256: model.sha256(),
            bytes: self.bytes,
            labels: self.inner.labels(),
            thresholds: self.inner.thresholds().into_iter().collect(),
            operating_point: json(META_OPERATING_POINT),
            kind: text(META_KIND),
            preprocessing: text(META_PREPROCESSING),
            backbone_sha256: text(META_BACKBONE_SHA256),
            feature_source: text(META_FEATURE_SOURCE),
            head: text(META_HEAD),
            precision: text(META_PRECISION),
            version: text(META_VERSION),
            created: text(META_CREATED),
            metrics: json(META_METRICS),
            training: json(META_TRAINING),
            input_dims: model.input_dims(),
            runtime_version: env!("CARGO_PKG_VERSION"),
            simd: simd_level(),
            metadata: meta,
        })
    }

    /// Class names in the model's output order.
    #[wasm_bindgen(getter)]
    pub fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    /// Classifies one image (`name` names it in errors): `{ name, label, probabilities: { ham, spam,
    /// ad? }, millis, width, height, format }`; `millis` covers decode, preprocessing and inference.
    pub fn classify(&self, image: &[u8], name: Option<String>) -> Result<JsValue, JsError> {
        let name = name.unwrap_or_else(|| "image".to_owned());
        let started = performance_now();
        let verdict = self.inner.classify(image, &name)?;
        result_value(&name, &verdict, performance_now() - started)
    }

    /// Classifies several images; one failure does not stop the others. Returns one entry per image
    /// in input order: a `classify` result, or `{ name, error }`.
    #[wasm_bindgen(js_name = classifyBatch)]
    pub fn classify_batch(
        &self,
        images: Vec<js_sys::Uint8Array>,
        names: Option<Vec<String>>,
    ) -> Result<Vec<JsValue>, JsError> {
        let names = names.unwrap_or_default();
        let mut results = Vec::with_capacity(images.len());
        for (index, image) in images.iter().enumerate() {
            let name = names.get(index).cloned().unwrap_or_else(|| format!("image {}", index + 1));
            let started = performance_now();
            let entry = match self.inner.classify(&image.to_vec(), &name) {
                Ok(verdict) => result_value(&name, &verdict, performance_now() - started)?,
                Err(error) => to_js(&ClassifyFailure { name: &name, error: error.to_string() })?,
            };
            results.push(entry);
        }
        Ok(results)
    }

    /// One verdict for a whole email (`.eml` bytes): its text scored by `filter`, every image
    /// (attachments, `cid:` inline parts, `data:` URIs) classified by this model, combined by `rule`
    /// (`{ image_spam_threshold, image_ad_threshold, use_text, use_images }`, defaults when absent).
    /// The same JSON as `spamlens scan --json`. Throws when the bytes are not a message.
    #[wasm_bindgen(js_name = scanEmail)]
    pub fn scan_email(
        &self,
        message: &[u8],
        name: Option<String>,
        filter: &TextFilter,
        rule: JsValue,
    ) -> Result<JsValue, JsError> {
        scan_with(message, name, Some(&self.inner), Some(&filter.inner), rule)
    }

    /// Decodes and preprocesses one image into the model's input tensor (`3 × 224 × 224` floats),
    /// the first half of `classify`: for timing inference alone or feeding another runtime.
    pub fn preprocess(&self, image: &[u8], name: Option<String>) -> Result<Vec<f32>, JsError> {
        let name = name.unwrap_or_else(|| "image".to_owned());
        Ok(self.inner.prepare(image, &name)?.tensor)
    }

    /// Classifies an input tensor made by `preprocess` (the second half of `classify`):
    /// `{ label, probabilities, millis }`, where `millis` covers inference only.
    #[wasm_bindgen(js_name = classifyTensor)]
    pub fn classify_tensor(&self, tensor: Vec<f32>) -> Result<JsValue, JsError> {
        let started = performance_now();
        let (label, probabilities) = self.inner.score(tensor)?;
        to_js(&TensorResult {
            label: &label,
            probabilities: Probabilities(&probabilities),
            millis: performance_now() - started,
        })
    }
}

/// The built-in text filter (CLA_ANN trained on SpamAssassin, `models/default/TEXT_FILTER.md`).
const BUILTIN_TEXT_FILTER: &[u8] = include_bytes!("../../models/default/text-filter.json");

/// A user's CLA_ANN text filter: scores a message's text and learns from "mark as spam / not
/// spam". Its state is JSON (`toJson` / `fromJson`) so the page can keep it per user (IndexedDB).
#[wasm_bindgen]
pub struct TextFilter {
    inner: ClaAnn,
}

#[wasm_bindgen]
impl TextFilter {
    /// The built-in filter.
    pub fn builtin() -> Result<TextFilter, JsError> {
        Ok(TextFilter { inner: ClaAnn::from_json(BUILTIN_TEXT_FILTER, "built-in text filter")? })
    }

    /// A filter from a state saved by `toJson` (or `spamlens feedback`); `name` names it in errors.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(state: &str, name: Option<String>) -> Result<TextFilter, JsError> {
        let name = name.unwrap_or_else(|| "text filter state".to_owned());
        Ok(TextFilter { inner: ClaAnn::from_json(state.as_bytes(), &name)? })
    }

    /// The whole state as JSON.
    #[wasm_bindgen(js_name = toJson)]
    pub fn to_json(&self) -> String {
        String::from_utf8_lossy(&self.inner.to_json()).into_owned()
    }

    /// Scores a subject and body: `{ score, is_spam, threshold, matched, strongest }`.
    pub fn score(&self, subject: &str, body: &str) -> Result<JsValue, JsError> {
        to_js(&self.inner.score(&self.inner.tokens(subject, body)))
    }

    /// One verdict for a whole email from its text alone (images listed, not classified); the same
    /// JSON as `Classifier.scanEmail`.
    #[wasm_bindgen(js_name = scanEmail)]
    pub fn scan_email(&self, message: &[u8], name: Option<String>, rule: JsValue) -> Result<JsValue, JsError> {
        scan_with(message, name, None, Some(&self.inner), rule)
    }

    /// Summary: `{ inputLayers, threshold, adaptiveTokens, merges }`.
    pub fn summary(&self) -> Result<JsValue, JsError> {
        to_js(&serde_json::json!({
            "inputLayers": self.inner.innate_layers().len(),
            "threshold": self.inner.config().threshold,
            "adaptiveTokens": self.inner.adaptive_len(),
            "merges": self.inner.merges(),
        }))
    }
}

/// What `feedback` returns to JS.
#[derive(Serialize)]
struct FeedbackResult {
    outcome: FeedbackOutcome,
    record: FeedbackRecord,
}

/// Parses a whole email (`.eml` bytes) and returns `{ subject, from, messageId, date, bodyText,
/// images: [{ name, source, contentType, bytes: Uint8Array, sha256 }], remoteImages, problems }`.
/// Throws an Error naming the message when the bytes are not a message.
#[wasm_bindgen(js_name = parseEmail)]
pub fn parse_email(message: &[u8], name: Option<String>) -> Result<JsValue, JsError> {
    let name = name.unwrap_or_else(|| "message".to_owned());
    let parsed = email::parse_email(message, &name, &EmailLimits::DEFAULT)?;
    let images: Vec<serde_json::Value> = parsed
        .images
        .iter()
        .map(|i| {
            serde_json::json!({
                "name": i.name,
                "source": i.source,
                "contentType": i.content_type,
                "sha256": sha256_hex(&i.bytes),
                "size": i.bytes.len(),
            })
        })
        .collect();
    let value = to_js(&serde_json::json!({
        "name": name,
        "subject": parsed.subject,
        "from": parsed.from,
        "messageId": parsed.message_id,
        "date": parsed.date,
        "bodyText": parsed.body_text,
        "images": images,
        "remoteImages": parsed.remote_images,
        "problems": parsed.problems,
    }))?;
    // The bytes go in as Uint8Arrays (serde would make arrays of numbers).
    let array = js_sys::Reflect::get(&value, &JsValue::from_str("images")).map_err(js_error)?;
    for (index, image) in parsed.images.iter().enumerate() {
        let entry = js_sys::Reflect::get_u32(&array, index as u32).map_err(js_error)?;
        js_sys::Reflect::set(&entry, &JsValue::from_str("bytes"), &js_sys::Uint8Array::from(image.bytes.as_slice()))
            .map_err(js_error)?;
    }
    Ok(value)
}

fn js_error(value: JsValue) -> JsError {
    JsError::new(&format!("{value:?}"))
}

/// One verdict for a whole email, as `spamlens scan --json` gives it: parse, text score (when a
/// filter is given), every image classified (when a classifier is given), combined by the rule
/// (`{ image_spam_threshold, image_ad_threshold, use_text, use_images }`, defaults when absent).
fn scan_with(
    message: &[u8],
    name: Option<String>,
    classifier: Option<&CoreClassifier>,
    filter: Option<&ClaAnn>,
    rule: JsValue,
) -> Result<JsValue, JsError> {
    let name = name.unwrap_or_else(|| "message".to_owned());
    let rule: VerdictRule = if rule.is_undefined() || rule.is_null() {
        VerdictRule::default()
    } else {
        serde_wasm_bindgen::from_value(rule).map_err(|e| JsError::new(&format!("rule: {e}")))?
    };
    check_rule(&rule)?;
    let scan = scan::scan_email(message, &name, &EmailLimits::DEFAULT, classifier, filter, &rule)?;
    to_js(&scan)
}

/// "Mark as spam / not spam" on a whole email: `filter` learns at once; returns `{ outcome: {
/// before, after, steps, new_adaptive_tokens, merged }, record }` where `record` is the reaction in
/// the Email.cz vocabulary with the images' sha256 (the page stores it for retraining).
#[wasm_bindgen]
pub fn feedback(
    filter: &mut TextFilter,
    message: &[u8],
    label: &str,
    name: Option<String>,
    now_unix: f64,
) -> Result<JsValue, JsError> {
    let name = name.unwrap_or_else(|| "message".to_owned());
    let label: TextLabel = label.parse().map_err(|e: String| JsError::new(&e))?;
    let parsed = email::parse_email(message, &name, &EmailLimits::DEFAULT)?;
    let tokens = filter.inner.tokens(&parsed.subject, &parsed.body_text);
    let now = if now_unix.is_finite() && now_unix > 0.0 { now_unix as u64 } else { 0 };
    let outcome = filter.inner.feedback(&tokens, label, now);
    let record = FeedbackRecord {
        time_unix: now,
        message: name,
        message_id: parsed.message_id,
        label,
        reaction: Reaction::for_label(label),
        images: parsed
            .images
            .iter()
            .map(|i| FeedbackImage { sha256: sha256_hex(&i.bytes), name: i.name.clone(), file: None })
            .collect(),
        text_score_before: outcome.before.score,
        text_score_after: outcome.after.score,
    };
    to_js(&FeedbackResult { outcome, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(version(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn probabilities_serialise_in_class_order() {
        let pairs = vec![("ham".to_owned(), 0.25f32), ("spam".to_owned(), 0.5), ("ad".to_owned(), 0.25)];
        let json = serde_json::to_string(&Probabilities(&pairs)).unwrap();
        assert_eq!(json, r#"{"ham":0.25,"spam":0.5,"ad":0.25}"#);
    }
}
