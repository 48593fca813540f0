//! `spamlens-wasm`: spamlens-core's classifier for the browser, through wasm-bindgen.
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
use spamlens_core::classifier::{
    META_BACKBONE_SHA256, META_CREATED, META_FEATURE_SOURCE, META_HEAD, META_KIND, META_METRICS, META_PRECISION,
    META_PREPROCESSING, META_TRAINING, META_VERSION,
};
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
