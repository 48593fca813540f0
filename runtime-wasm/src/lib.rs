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
use spamlens_core::email::{self, EmailLimits, ImageSource};
use spamlens_core::feedback::{FeedbackImage, FeedbackRecord, Reaction};
use spamlens_core::ocr::{EngineWord, OcrContract, OcrText};
use spamlens_core::scan::{self, Classification, ImageOutcome, ImageResult, VerdictRule, check_rule, sha256_hex};
use spamlens_core::{
    Classifier as CoreClassifier, ImageReading, ModelOptions, PreparedImage as CorePreparedImage, Verdict,
};
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
    /// How long each step of this model's load took in this worker (sha256, protobuf, …,
    /// optimise, plan), in milliseconds.
    load_phases: &'a spamlens_core::LoadPhases,
    /// A fused model's OCR contract (`spamlens.ocr`): engine, languages, trained data by sha256,
    /// page segmentation, dpi; null for a model that does not read text.
    ocr: Option<&'a OcrContract>,
    /// A fused model's image-only operating point (used when an image's text is not read).
    image_thresholds: BTreeMap<String, f32>,
    runtime_version: &'static str,
    simd: String,
    metadata: &'a BTreeMap<String, String>,
}

/// JS values as plain objects (not `Map`s), which is what callers expect to `JSON.stringify`.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value.serialize(&serializer).map_err(|e| JsError::new(&format!("cannot convert a result to JS: {e}")))
}

/// A JS value as `T`; an error's message is prefixed by `what` (serde_wasm_bindgen's errors are JS
/// `Error`s, whose own text would read "Error: …" inside ours).
fn from_js<T: serde::de::DeserializeOwned>(value: JsValue, what: &str) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        let message = js_sys::Error::from(JsValue::from(e)).message();
        JsError::new(&format!("{what}: {}", String::from(message)))
    })
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
    /// `sha256`: the bytes' digest when the caller computed it (the package does, with WebCrypto,
    /// 20× faster than hashing here); omitted, it is computed in wasm.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: Vec<u8>, name: Option<String>, sha256: Option<String>) -> Result<Classifier, JsError> {
        let name = name.unwrap_or_else(|| "model".to_owned());
        let size = bytes.len();
        // Owned: the copy in wasm memory is freed once parsed, which lowers the load's peak
        // (wasm memory never shrinks, so the peak is what the worker keeps).
        let inner = CoreClassifier::from_vec(bytes, &name, &ModelOptions { sha256, ..ModelOptions::default() })?;
        Ok(Classifier { inner, bytes: size })
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
            load_phases: model.load_phases(),
            ocr: self.inner.declared_text_inputs().map(|t| t.contract()),
            image_thresholds: self.inner.image_thresholds().into_iter().collect(),
            runtime_version: env!("CARGO_PKG_VERSION"),
            simd: simd_level(),
            metadata: meta,
        })
    }

    /// Checks a JS OCR engine's identity (`{ engine, version, engine_mode, page_segmentation, dpi,
    /// data: [{ language, sha256 }] }`) against the model's OCR contract, with the same rule as the
    /// native runtime; throws an Error listing every difference. A model without text accepts any.
    #[wasm_bindgen(js_name = checkOcrEngine)]
    pub fn check_ocr_engine(&self, identity: JsValue) -> Result<(), JsError> {
        let Some(text) = self.inner.declared_text_inputs() else { return Ok(()) };
        let identity: spamlens_core::ocr::EngineIdentity = from_js(identity, "OCR engine identity")?;
        text.contract().check(&identity).map_err(|difference| {
            JsError::new(&format!(
                "model {} reads text with another OCR setup than this page's: {difference}",
                self.inner.model().name()
            ))
        })
    }

    /// Turns reading text on or off (`ocr: false`): off, a model that reads text decides by its
    /// image-only output, and `prepare` makes no OCR input.
    #[wasm_bindgen(js_name = setReadText)]
    pub fn set_read_text(&mut self, on: bool) {
        self.inner.set_read_text(on);
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

    /// Decodes and preprocesses one image for reading: the model's input and, for a model that
    /// reads text, the OCR engine's grey pixels (`prepared.ocrImage()`). Read the text with the OCR
    /// engine, then `classifyPrepared`. Throws an Error naming the image when it cannot be decoded.
    pub fn prepare(&self, image: &[u8], name: Option<String>) -> Result<PreparedImage, JsError> {
        let name = name.unwrap_or_else(|| "image".to_owned());
        let started = performance_now();
        let inner = self.inner.prepare(image, &name)?;
        Ok(PreparedImage { inner: Some(inner), name, millis: performance_now() - started })
    }

    /// Classifies a prepared image with what the OCR engine read in it: `words` is an array of `{
    /// text, confidence, bbox: [left, top, right, bottom], line }` in OCR-image pixels, `null` when
    /// the text was not read (then `ocrProblem` says why, and the image-only output decides). The
    /// result is `classify`'s plus, for a model that reads text, `image_probabilities`, `text: {
    /// text, probabilities, layout, words }` and `ocr_problem`, as `spamlens classify --json`.
    #[wasm_bindgen(js_name = classifyPrepared)]
    pub fn classify_prepared(
        &self,
        prepared: &mut PreparedImage,
        words: JsValue,
        ocr_problem: Option<String>,
    ) -> Result<JsValue, JsError> {
        let started = performance_now();
        let (name, reading) = self.read_prepared(prepared, words, ocr_problem)?;
        let millis = prepared.millis + performance_now() - started;
        outcome_value(&name, ImageOutcome::from_reading(Ok(reading)), millis)
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
        let scores = self.inner.score(tensor)?;
        to_js(&TensorResult {
            label: &scores.label,
            probabilities: Probabilities(&scores.probabilities),
            millis: performance_now() - started,
        })
    }
}

impl Classifier {
    /// The text a prepared image is classified with, from the JS engine's words.
    fn read_prepared(
        &self,
        prepared: &mut PreparedImage,
        words: JsValue,
        ocr_problem: Option<String>,
    ) -> Result<(String, ImageReading), JsError> {
        let inner = prepared
            .inner
            .take()
            .ok_or_else(|| JsError::new(&format!("{}: this prepared image was already classified", prepared.name)))?;
        let words: Option<Vec<EngineWord>> = if words.is_undefined() || words.is_null() {
            None
        } else {
            Some(from_js(words, &format!("{}: OCR words", prepared.name))?)
        };
        let (text, problem) = text_for(&inner, &prepared.name, words, ocr_problem);
        let verdict = self.inner.classify_prepared(inner, text)?;
        Ok((prepared.name.clone(), ImageReading { verdict, ocr_problem: problem }))
    }
}

/// What a prepared image is classified with: core's rule ([`CoreClassifier::text_of`]) with the
/// words read by the JS engine in place of a native engine.
fn text_for(
    prepared: &CorePreparedImage,
    name: &str,
    words: Option<Vec<EngineWord>>,
    ocr_problem: Option<String>,
) -> (Option<OcrText>, Option<String>) {
    if !prepared.reads_text {
        return (None, None);
    }
    match (&prepared.ocr_image, words) {
        (None, _) => (Some(OcrText::empty(prepared.width, prepared.height)), None),
        (Some(image), Some(words)) => (Some(image.text(words)), None),
        (Some(_), None) => {
            (None, Some(ocr_problem.unwrap_or_else(|| format!("{name}: the image's text was not read"))))
        }
    }
}

fn outcome_value(name: &str, outcome: ImageOutcome, millis: f64) -> Result<JsValue, JsError> {
    let mut value = serde_json::to_value(outcome).map_err(|e| JsError::new(&format!("{name}: {e}")))?;
    value["name"] = serde_json::json!(name);
    value["millis"] = serde_json::json!(millis);
    to_js(&value)
}

/// An image decoded and preprocessed by `Classifier.prepare`, waiting for its text.
#[wasm_bindgen]
pub struct PreparedImage {
    inner: Option<CorePreparedImage>,
    name: String,
    millis: f64,
}

#[wasm_bindgen]
impl PreparedImage {
    /// Whether the model reads this image's text (then read `ocrImage()`, or pass `[]` when it has
    /// none).
    #[wasm_bindgen(js_name = readsText)]
    pub fn reads_text(&self) -> bool {
        self.inner.as_ref().is_some_and(|p| p.reads_text)
    }

    /// The OCR engine's input: `{ width, height, pixels: Uint8Array (grey, row-major), fingerprint
    /// }`, or `undefined` when the model reads no text or the image is too small to hold any.
    #[wasm_bindgen(js_name = ocrImage)]
    pub fn ocr_image(&self) -> Result<JsValue, JsError> {
        let Some(image) = self.inner.as_ref().and_then(|p| p.ocr_image.as_ref()) else {
            return Ok(JsValue::UNDEFINED);
        };
        let value = to_js(&serde_json::json!({
            "width": image.width,
            "height": image.height,
            "fingerprint": image.fingerprint(),
        }))?;
        js_sys::Reflect::set(&value, &JsValue::from_str("pixels"), &js_sys::Uint8Array::from(image.pixels.as_slice()))
            .map_err(js_error)?;
        Ok(value)
    }

    /// The text a reader would copy from the OCR engine's words (words by spaces, lines by
    /// newlines), mapped as `classifyPrepared` maps them; empty for an image without OCR input.
    #[wasm_bindgen(js_name = textOf)]
    pub fn text_of(&self, words: JsValue) -> Result<String, JsError> {
        let words: Vec<EngineWord> = from_js(words, &format!("{}: OCR words", self.name))?;
        Ok(self.inner.as_ref().and_then(|p| p.ocr_image.as_ref()).map(|i| i.text(words).text()).unwrap_or_default())
    }

    /// Decode and preprocessing time in milliseconds.
    #[wasm_bindgen(getter)]
    pub fn millis(&self) -> f64 {
        self.millis
    }
}

/// A message being scanned in steps, so the page can read each image's text with its OCR engine
/// between them: `Classifier.beginScan` → for each image `prepareImage(i)`, OCR, `classifyImage(i,
/// …)` → `finish(filter, rule)`, which gives the same JSON as `spamlens scan --json`.
#[wasm_bindgen]
pub struct PendingScan {
    name: String,
    parsed: Option<email::ParsedEmail>,
    outcomes: Vec<Option<ImageOutcome>>,
}

#[wasm_bindgen]
impl Classifier {
    /// Parses a message for a stepwise scan; throws when the bytes are not a message.
    #[wasm_bindgen(js_name = beginScan)]
    pub fn begin_scan(&self, message: &[u8], name: Option<String>) -> Result<PendingScan, JsError> {
        let name = name.unwrap_or_else(|| "message".to_owned());
        let parsed = email::parse_email(message, &name, &EmailLimits::DEFAULT)?;
        let outcomes = vec![None; parsed.images.len()];
        Ok(PendingScan { name, parsed: Some(parsed), outcomes })
    }

    /// Prepares image `index` of a pending scan; a failure is recorded for that image and
    /// `undefined` returned.
    #[wasm_bindgen(js_name = prepareScanImage)]
    pub fn prepare_scan_image(&self, scan: &mut PendingScan, index: usize) -> Result<Option<PreparedImage>, JsError> {
        let (bytes, name) = scan.image(index)?;
        let started = performance_now();
        match self.inner.prepare(&bytes, &name) {
            Ok(inner) => Ok(Some(PreparedImage { inner: Some(inner), name, millis: performance_now() - started })),
            Err(e) => {
                scan.outcomes[index] = Some(ImageOutcome::Failed { error: e.to_string() });
                Ok(None)
            }
        }
    }

    /// Classifies image `index` of a pending scan with what OCR read in it (see `classifyPrepared`).
    #[wasm_bindgen(js_name = classifyScanImage)]
    pub fn classify_scan_image(
        &self,
        scan: &mut PendingScan,
        index: usize,
        prepared: &mut PreparedImage,
        words: JsValue,
        ocr_problem: Option<String>,
    ) -> Result<(), JsError> {
        scan.image(index)?;
        let outcome = match self.read_prepared(prepared, words, ocr_problem) {
            Ok((_, reading)) => ImageOutcome::from_reading(Ok(reading)),
            Err(e) => ImageOutcome::Failed { error: String::from(js_sys::Error::from(JsValue::from(e)).message()) },
        };
        scan.outcomes[index] = Some(outcome);
        Ok(())
    }
}

#[wasm_bindgen]
impl PendingScan {
    /// Number of images in the message.
    #[wasm_bindgen(getter, js_name = imageCount)]
    pub fn image_count(&self) -> usize {
        self.outcomes.len()
    }

    /// The verdict: the images as classified (an image never classified counts as failed), the text
    /// filter scoring the body and the images' text, combined by `rule`.
    pub fn finish(&mut self, filter: &TextFilter, rule: JsValue) -> Result<JsValue, JsError> {
        self.finish_with(Some(&filter.inner), rule)
    }

    /// The verdict without a text filter (images only).
    #[wasm_bindgen(js_name = finishWithoutText)]
    pub fn finish_without_text(&mut self, rule: JsValue) -> Result<JsValue, JsError> {
        self.finish_with(None, rule)
    }
}

impl PendingScan {
    fn finish_with(&mut self, filter: Option<&ClaAnn>, rule: JsValue) -> Result<JsValue, JsError> {
        let rule = parse_rule(rule)?;
        let parsed = self
            .parsed
            .take()
            .ok_or_else(|| JsError::new(&format!("{}: this scan was already finished", self.name)))?;
        let outcomes: Vec<ImageOutcome> = self
            .outcomes
            .drain(..)
            .zip(&parsed.images)
            .map(|(o, image)| {
                o.unwrap_or_else(|| ImageOutcome::Failed {
                    error: format!("{}: {}: not classified", self.name, image.name),
                })
            })
            .collect();
        let text =
            filter.map(|f| f.score(&f.tokens(&parsed.subject, &scan::message_text(&parsed.body_text, &outcomes))));
        to_js(&scan::scan_parts(&self.name, parsed, text, outcomes, &rule))
    }

    fn image(&self, index: usize) -> Result<(Vec<u8>, String), JsError> {
        let parsed = self
            .parsed
            .as_ref()
            .ok_or_else(|| JsError::new(&format!("{}: this scan was already finished", self.name)))?;
        let image = parsed.images.get(index).ok_or_else(|| {
            JsError::new(&format!("{}: no image {index} (the message has {})", self.name, parsed.images.len()))
        })?;
        Ok((image.bytes.clone(), format!("{}: {}", self.name, image.name)))
    }
}

/// A verdict rule from JS (`{ image_spam_threshold, image_ad_threshold, use_text, use_images }`,
/// each optional; `undefined` or `null`: the defaults), checked by core's `check_rule`. A mistake is
/// an Error naming the field: an unknown name (a typo would otherwise be ignored), a value of the
/// wrong type, a threshold outside 0..=1.
fn parse_rule(value: JsValue) -> Result<VerdictRule, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(VerdictRule::default());
    }
    let known = rule_fields();
    if !value.is_object() || js_sys::Array::is_array(&value) {
        return Err(JsError::new(&format!(
            "rule: expected an object with any of {}, got {}",
            known.join(", "),
            describe(&value)
        )));
    }
    for key in js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key) {
            return Err(JsError::new(&format!("rule: unknown field '{key}' (known: {})", known.join(", "))));
        }
        // The field alone (the others default), so a type error names it.
        let field = js_sys::Object::new();
        let key_value = JsValue::from_str(&key);
        js_sys::Reflect::set(&field, &key_value, &js_sys::Reflect::get(&value, &key_value).map_err(js_error)?)
            .map_err(js_error)?;
        from_js::<VerdictRule>(field.into(), &format!("rule.{key}"))?;
    }
    let rule: VerdictRule = from_js(value, "rule")?;
    check_rule(&rule).map_err(|e| match e {
        // Named after the argument the caller passed.
        spamlens_core::Error::VerdictRule { reason } => JsError::new(&format!("rule: {reason}")),
        other => JsError::new(&format!("rule: {other}")),
    })?;
    Ok(rule)
}

/// The names of `VerdictRule`'s fields, as JS spells them (from its serde form, so they cannot
/// drift from core).
fn rule_fields() -> Vec<String> {
    match serde_json::to_value(VerdictRule::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A JS value's kind, for errors.
fn describe(value: &JsValue) -> String {
    if js_sys::Array::is_array(value) {
        "an array".to_owned()
    } else if let Some(text) = value.as_string() {
        format!("the string {text:?}")
    } else {
        value.js_typeof().as_string().unwrap_or_else(|| "something else".to_owned())
    }
}

/// One image's result as the JS side has it: a `classify` result (`{ name, label, probabilities,
/// … }`, other fields ignored) or a failure (`{ name, error }`).
#[derive(Debug)]
struct VerdictImage {
    name: String,
    label: Option<String>,
    probabilities: Option<BTreeMap<String, f64>>,
    error: Option<String>,
}

impl VerdictImage {
    /// Reads entry `index` of the caller's array field by field, so an error names the field
    /// (`undefined` and `null` count as absent).
    fn from_entry(entry: &JsValue, index: usize) -> Result<VerdictImage, JsError> {
        if !entry.is_object() || js_sys::Array::is_array(entry) {
            return Err(JsError::new(&format!(
                "images[{index}]: expected {{ name, label, probabilities }} or {{ name, error }}, got {}",
                describe(entry)
            )));
        }
        let field = |key: &str| {
            js_sys::Reflect::get(entry, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
        };
        let name: String = match field("name") {
            Some(name) => from_js(name, &format!("images[{index}].name"))?,
            None => return Err(JsError::new(&format!("images[{index}]: needs a 'name'"))),
        };
        let at = format!("images[{index}] ('{name}')");
        let read = |key: &str| field(key).map(|value| (value, format!("{at}.{key}")));
        Ok(VerdictImage {
            label: read("label").map(|(v, what)| from_js(v, &what)).transpose()?,
            probabilities: read("probabilities").map(|(v, what)| from_js(v, &what)).transpose()?,
            error: read("error").map(|(v, what)| from_js(v, &what)).transpose()?,
            name,
        })
    }

    /// Core's `ImageResult` for this image (`index`: its place in the caller's array, for errors).
    /// Only the name and the outcome take part in the verdict; the rest is left empty.
    fn into_result(self, index: usize) -> Result<ImageResult, String> {
        let VerdictImage { name, label, probabilities, error } = self;
        let outcome = match (error, label, probabilities) {
            (Some(error), _, _) => ImageOutcome::Failed { error },
            (None, Some(label), Some(probabilities)) => {
                if let Some((class, p)) = probabilities.iter().find(|(_, p)| !(0.0..=1.0).contains(*p)) {
                    return Err(format!("images[{index}] ('{name}'): probabilities.{class} = {p} is not within 0..=1"));
                }
                ImageOutcome::Classified(Box::new(Classification {
                    label,
                    probabilities: probabilities.into_iter().map(|(class, p)| (class, serde_json::json!(p))).collect(),
                    image_probabilities: None,
                    text: None,
                    ocr_problem: None,
                    width: 0,
                    height: 0,
                    format: String::new(),
                }))
            }
            _ => {
                return Err(format!(
                    "images[{index}] ('{name}'): needs 'label' and 'probabilities' (a classified image) or \
                     'error' (one that could not be)"
                ));
            }
        };
        Ok(ImageResult {
            name,
            source: ImageSource::Attachment,
            content_type: None,
            bytes: 0,
            sha256: String::new(),
            outcome,
        })
    }
}

/// The message's verdict from its images' results, by core's rule (`core::scan::combine`, the one
/// `scanEmail` uses, without a text score): `images` is an array of `classify` results (`{ name,
/// label, probabilities }`) and failures (`{ name, error }`); `rule` as for `scanEmail`
/// (`{ image_spam_threshold, image_ad_threshold, use_text, use_images }`, defaults when absent: an
/// image counts by its label, the model's operating point). Returns `{ label: 'spam' | 'ham' | 'ad',
/// decided_by: 'image' | 'none', reason }`. Throws an Error naming the image or the rule field
/// that is wrong.
#[wasm_bindgen(js_name = messageVerdict)]
pub fn message_verdict(images: JsValue, rule: JsValue) -> Result<JsValue, JsError> {
    let rule = parse_rule(rule)?;
    if !js_sys::Array::is_array(&images) {
        return Err(JsError::new(&format!(
            "images: expected an array of image results ({{ name, label, probabilities }} or {{ name, error }}), got {}",
            describe(&images)
        )));
    }
    let results = js_sys::Array::from(&images)
        .iter()
        .enumerate()
        .map(|(index, entry)| VerdictImage::from_entry(&entry, index)?.into_result(index).map_err(|e| JsError::new(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    to_js(&scan::combine(None, &results, &rule))
}

/// A user's CLA_ANN text filter: scores a message's text and learns from "mark as spam / not
/// spam". Its state is JSON (`toJson` / `fromJson`) so the page can keep it per user (IndexedDB).
#[wasm_bindgen]
pub struct TextFilter {
    inner: ClaAnn,
}

#[wasm_bindgen]
impl TextFilter {
    /// The built-in filter (CLA_ANN trained on SpamAssassin, `models/default/TEXT_FILTER.md`).
    pub fn builtin() -> Result<TextFilter, JsError> {
        Ok(TextFilter { inner: ClaAnn::builtin()? })
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
    let rule = parse_rule(rule)?;
    let scan = scan::scan_email(message, &name, &EmailLimits::DEFAULT, classifier, None, filter, &rule)?;
    to_js(&scan)
}

/// "Mark as spam / not spam" on a whole email: `filter` learns at once from its text and the text
/// OCR read in its images (`imageTexts`, optional); returns `{ outcome: { before, after, steps,
/// new_adaptive_tokens, merged }, record }` where `record` is the reaction in the Email.cz vocabulary
/// with the images' sha256 (the page stores it for retraining).
#[wasm_bindgen]
pub fn feedback(
    filter: &mut TextFilter,
    message: &[u8],
    label: &str,
    name: Option<String>,
    now_unix: f64,
    image_texts: Option<Vec<String>>,
) -> Result<JsValue, JsError> {
    let name = name.unwrap_or_else(|| "message".to_owned());
    let label: TextLabel = label.parse().map_err(|e: String| JsError::new(&e))?;
    let parsed = email::parse_email(message, &name, &EmailLimits::DEFAULT)?;
    let image_texts = image_texts.unwrap_or_default();
    let body = scan::image_text_appended(&parsed.body_text, image_texts.iter().map(String::as_str));
    let tokens = filter.inner.tokens(&parsed.subject, &body);
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

    fn image(name: &str, label: Option<&str>, spam: Option<f64>, error: Option<&str>) -> VerdictImage {
        VerdictImage {
            name: name.into(),
            label: label.map(Into::into),
            probabilities: spam.map(|p| BTreeMap::from([("ham".to_owned(), 1.0 - p), ("spam".to_owned(), p)])),
            error: error.map(Into::into),
        }
    }

    #[test]
    fn js_image_results_become_core_results_for_cores_rule() {
        let results: Vec<ImageResult> = [
            image("a.png", Some("ham"), Some(0.2), None),
            image("b.png", Some("spam"), Some(0.9), None),
            image("c.png", None, None, Some("c.png: corrupt")),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, image)| image.into_result(i).unwrap())
        .collect();
        assert!(matches!(&results[2].outcome, ImageOutcome::Failed { error } if error == "c.png: corrupt"));
        let verdict = scan::combine(None, &results, &VerdictRule::default());
        assert_eq!((verdict.label.as_str(), verdict.decided_by.as_str()), ("spam", "image"));
        assert!(verdict.reason.contains("'b.png'"), "{}", verdict.reason);
        let strict = VerdictRule { image_spam_threshold: Some(0.95), ..VerdictRule::default() };
        assert_eq!(scan::combine(None, &results, &strict).label, "ham");
    }

    #[test]
    fn incomplete_or_impossible_image_results_are_named() {
        let err = image("x.png", Some("spam"), None, None).into_result(3).unwrap_err();
        assert!(err.starts_with("images[3] ('x.png'): needs 'label' and 'probabilities'"), "{err}");
        let err = image("y.png", Some("spam"), Some(1.5), None).into_result(0).unwrap_err();
        assert!(err.contains("probabilities.ham = -0.5 is not within 0..=1"), "{err}");
        let err = image("z.png", Some("spam"), Some(f64::NAN), None).into_result(0).unwrap_err();
        assert!(err.contains("is not within 0..=1"), "{err}");
    }

    #[test]
    fn rule_fields_are_cores() {
        assert_eq!(rule_fields(), ["image_ad_threshold", "image_spam_threshold", "use_images", "use_text"]);
    }
}
