//! A spam classifier: a combined spamlens graph (backbone + head) with its contract read from the
//! model's `metadata_props`, turning image bytes into a label and class probabilities.
//!
//! A fused model also reads the text in the image: besides the image it takes the text's hashed
//! character n-grams and layout measures ([`crate::ocr`]) and gives fused, image-only and text-only
//! probabilities. When an image's text was read the fused output decides (at
//! [`META_THRESHOLDS`]); when it was not (OCR off, failed, timed out) the image-only output does
//! (at [`META_IMAGE_THRESHOLDS`]).
//!
//! The contract keys are defined here, once, so the trainer that writes them and both runtimes that
//! read them cannot drift apart.

use crate::PreparedImage;
use crate::decode::{DecodeLimits, ImageFormatName};
use crate::error::{Error, Result};
use crate::model::{Batching, Model, ModelOptions};
use crate::ocr::{LAYOUT_FEATURES, OcrContract, OcrImageSpec, OcrText, TextFeaturizer};
use crate::preprocess::Preprocessing;

/// Metadata key: `head` (features in) or `combined` (image tensor in).
pub const META_KIND: &str = "spamlens.kind";
/// Metadata key: class names in output order, comma-separated.
pub const META_LABELS: &str = "spamlens.labels";
/// Metadata key: the preprocessing contract ([`Preprocessing::describe`]) of the graph's input.
pub const META_PREPROCESSING: &str = "spamlens.preprocessing";
/// Metadata key: sha256 of the backbone inside a combined graph.
pub const META_BACKBONE_SHA256: &str = "spamlens.backbone_sha256";
/// Metadata key: what the head was trained on (`spamlens-backbone` or `emailcz-v1`).
pub const META_FEATURE_SOURCE: &str = "spamlens.feature_source";
/// Metadata key: sha256 of the backbone whose features trained the head (empty for Email.cz).
pub const META_FEATURE_BACKBONE_SHA256: &str = "spamlens.feature_backbone_sha256";
/// Metadata key: the head's shape, e.g. `2048 → 2048 ReLU → 2 softmax`.
pub const META_HEAD: &str = "spamlens.head";
/// Metadata key: the training data summary (JSON).
pub const META_TRAINING: &str = "spamlens.training";
/// Metadata key: the held-out metrics (JSON).
pub const META_METRICS: &str = "spamlens.metrics";
/// Metadata key: the spamlens version that wrote the graph.
pub const META_VERSION: &str = "spamlens.version";
/// Metadata key: when the graph was written (RFC 3339, UTC).
pub const META_CREATED: &str = "spamlens.created";
/// Metadata key: precision of the head's stored weights (`f32` or `f16`).
pub const META_PRECISION: &str = "spamlens.precision";
/// Metadata key: the operating point, `class=threshold` pairs (e.g. `spam=0.874`): a class whose
/// (calibrated) probability reaches its threshold is the label; otherwise the most probable of
/// the classes without one. Chosen by the trainer for a target ham→spam false-positive rate.
pub const META_THRESHOLDS: &str = "spamlens.thresholds";
/// Metadata key: how the thresholds were chosen and what they gave on validation data (JSON).
pub const META_OPERATING_POINT: &str = "spamlens.operating_point";
/// [`META_KIND`] of a head-only graph.
pub const KIND_HEAD: &str = "head";
/// [`META_KIND`] of a backbone + head graph.
pub const KIND_COMBINED: &str = "combined";
/// The output every spamlens classifier graph has: class probabilities `[N, classes]`.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

/// Metadata key: the OCR contract of a fused model ([`OcrContract`], JSON): engine, languages,
/// trained data, image preparation and text featurizer. Present only on models with text inputs.
pub const META_OCR: &str = "spamlens.ocr";
/// Metadata key: the operating point of a fused model's image-only output, used when an image's
/// text could not be read (OCR off, failed or timed out); same format as [`META_THRESHOLDS`].
pub const META_IMAGE_THRESHOLDS: &str = "spamlens.image_thresholds";
/// The image-only probabilities of a fused model `[N, classes]` (the CNN head alone).
pub const IMAGE_PROBABILITIES_OUTPUT: &str = "image_probabilities";
/// The text-only probabilities of a fused model `[N, classes]` (OCR text and layout alone).
pub const TEXT_PROBABILITIES_OUTPUT: &str = "text_probabilities";
/// A fused model's input of hashed character n-grams `[N, buckets]` ([`TextFeaturizer`]).
pub const OCR_NGRAMS_INPUT: &str = "ocr_ngrams";
/// A fused model's input of layout measures `[N, LAYOUT_FEATURES]` ([`LayoutMeasures::vector`]).
pub const OCR_LAYOUT_INPUT: &str = "ocr_layout";

/// `(class, probability)` pairs in the model's class order.
pub type Probabilities = Vec<(String, f32)>;

/// What the model said of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// The label at the model's operating point.
    pub label: String,
    /// The probabilities the label was decided on: fused when the image's text was read, else
    /// image-only.
    pub probabilities: Probabilities,
    /// A fused model's image-only probabilities (the CNN head alone).
    pub image_probabilities: Option<Probabilities>,
    /// A fused model's text-only probabilities, when the image's text was read.
    pub text_probabilities: Option<Probabilities>,
    /// Whether the image's text took part in the decision.
    pub with_text: bool,
}

/// One image's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The label at the model's operating point.
    pub label: String,
    /// `(class, probability)` in the model's class order: fused when the text was read.
    pub probabilities: Vec<(String, f32)>,
    /// A fused model's image-only probabilities.
    pub image_probabilities: Option<Probabilities>,
    /// A fused model's text-only probabilities, when the text was read.
    pub text_probabilities: Option<Probabilities>,
    /// The text read from the image, when the model reads text and it was read.
    pub text: Option<OcrText>,
    /// Decoded width in pixels.
    pub width: u32,
    /// Decoded height in pixels.
    pub height: u32,
    /// Detected image format.
    pub format: ImageFormatName,
}

impl Verdict {
    /// The probability of `class`, if the model has it.
    pub fn probability(&self, class: &str) -> Option<f32> {
        self.probabilities.iter().find(|(c, _)| c == class).map(|(_, p)| *p)
    }

    /// The verdict of `scores` on an image prepared as `prepared` says, with the text read.
    pub fn new(scores: Scores, prepared: &PreparedImage, text: Option<OcrText>) -> Verdict {
        Verdict {
            label: scores.label,
            probabilities: scores.probabilities,
            image_probabilities: scores.image_probabilities,
            text_probabilities: scores.text_probabilities,
            text: if scores.with_text { text } else { None },
            width: prepared.width,
            height: prepared.height,
            format: prepared.format,
        }
    }
}

/// An OCR engine as the classifier uses it: the text of a prepared image (named in errors). Native
/// runtimes wrap their engine pool in one; the browser reads text in JavaScript and hands the words
/// to [`OcrImage::text`](crate::ocr::OcrImage::text) instead.
pub type ReadText<'a> = &'a (dyn Fn(&crate::ocr::OcrImage, &str) -> Result<OcrText> + Sync);

/// An image's verdict and, when its text should have been read and was not, why.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageReading {
    /// The verdict (fused when the text was read, else image-only).
    pub verdict: Verdict,
    /// Why the text was not read (OCR failed, timed out, or no engine).
    pub ocr_problem: Option<String>,
}

/// The text side of a fused model: its contract and how it turns text into inputs.
#[derive(Debug, Clone)]
pub struct TextInputs {
    contract: OcrContract,
    image: OcrImageSpec,
    featurizer: TextFeaturizer,
    image_thresholds: Vec<(usize, f32)>,
}

impl TextInputs {
    /// The OCR contract the model declares.
    pub fn contract(&self) -> &OcrContract {
        &self.contract
    }

    /// How images are prepared for the engine.
    pub fn image_spec(&self) -> &OcrImageSpec {
        &self.image
    }

    /// How text becomes the model's input.
    pub fn featurizer(&self) -> &TextFeaturizer {
        &self.featurizer
    }
}

/// A loaded combined model and the contract it declares.
#[derive(Debug)]
pub struct Classifier {
    model: Model,
    labels: Vec<String>,
    thresholds: Vec<(usize, f32)>,
    preprocessing: Preprocessing,
    limits: DecodeLimits,
    text: Option<TextInputs>,
    read_text: bool,
}

impl Classifier {
    /// Loads a combined graph (`spamlens.kind = combined`) from `bytes`, called `name` in errors,
    /// and checks its contract: labels, a known preprocessing, an image input, a `probabilities`
    /// output with one value per label, and for a fused model its OCR contract and text inputs.
    pub fn from_bytes(bytes: &[u8], name: &str, options: &ModelOptions) -> Result<Self> {
        Self::from_model(Model::from_bytes(bytes, name, &Self::model_options(options))?, name)
    }

    /// [`Classifier::from_bytes`] taking the bytes, freed once parsed ([`Model::from_vec`]).
    pub fn from_vec(bytes: Vec<u8>, name: &str, options: &ModelOptions) -> Result<Self> {
        Self::from_model(Model::from_vec(bytes, name, &Self::model_options(options))?, name)
    }

    fn model_options(options: &ModelOptions) -> ModelOptions {
        ModelOptions {
            outputs: None,
            // A convolutional backbone runs fastest one image per plan on CPU (see `Batching`).
            batching: Batching::PerItem,
            ..options.clone()
        }
    }

    fn from_model(model: Model, name: &str) -> Result<Self> {
        let signature = |reason: String| Error::ModelSignature { model: name.to_owned(), reason };
        if !model.output_names().iter().any(|o| o == PROBABILITIES_OUTPUT) {
            return Err(signature(format!(
                "no '{PROBABILITIES_OUTPUT}' output (outputs: {}); not a spamlens classifier \
                 (a plain backbone has no spam head; make a combined model with `spamlens-train train` or `export`)",
                model.output_names().join(", ")
            )));
        }
        let meta = model.metadata();
        match meta.get(META_KIND).map(String::as_str) {
            Some(KIND_COMBINED) => {}
            Some(KIND_HEAD) => {
                return Err(signature(
                    "this is a head-only graph (its input is backbone features); classify needs the combined \
                     backbone + head graph, made with `spamlens-train export`"
                        .into(),
                ));
            }
            other => {
                return Err(signature(format!(
                    "metadata '{META_KIND}' is {other:?}, expected '{KIND_COMBINED}'; not a spamlens classifier \
                     (a plain backbone has no spam head)"
                )));
            }
        }
        let labels: Vec<String> = meta
            .get(META_LABELS)
            .map(|l| l.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        if labels.len() < 2 {
            return Err(signature(format!("metadata '{META_LABELS}' must name at least two classes")));
        }
        let declared = meta.get(META_PREPROCESSING).cloned().unwrap_or_default();
        let preprocessing = Preprocessing::from_description(&declared).ok_or_else(|| {
            signature(format!(
                "preprocessing '{declared}' is not one this runtime implements (known: {})",
                Preprocessing::KNOWN.iter().map(Preprocessing::describe).collect::<Vec<_>>().join(" | ")
            ))
        })?;
        let crop = preprocessing.crop as usize;
        if model.input_dims() != [3, crop, crop] {
            return Err(signature(format!(
                "input is {:?}, the preprocessing gives [3, {crop}, {crop}]",
                model.input_dims()
            )));
        }
        let thresholds = parse_thresholds(meta.get(META_THRESHOLDS).map(String::as_str).unwrap_or(""), &labels)
            .map_err(signature)?;
        let text = match meta.get(META_OCR) {
            None => {
                if model.inputs().len() != 1 {
                    return Err(signature(format!(
                        "{} inputs but no '{META_OCR}' contract saying what the extra ones are",
                        model.inputs().len()
                    )));
                }
                None
            }
            Some(json) => Some(text_inputs(&model, json, &labels).map_err(signature)?),
        };
        Ok(Classifier {
            model,
            labels,
            thresholds,
            preprocessing,
            limits: DecodeLimits::default(),
            text,
            read_text: true,
        })
    }

    /// Replaces the decode limits (defaults: [`DecodeLimits::default`]).
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Turns reading text off (`--no-ocr`): images are decided by the image-only output and
    /// [`prepare`](Self::prepare) makes no OCR input.
    pub fn without_text(mut self) -> Self {
        self.read_text = false;
        self
    }

    /// Turns reading text on or off in place (see [`without_text`](Self::without_text)).
    pub fn set_read_text(&mut self, on: bool) {
        self.read_text = on;
    }

    /// The text side of a fused model, when this model reads text and reading is on.
    pub fn text_inputs(&self) -> Option<&TextInputs> {
        self.text.as_ref().filter(|_| self.read_text)
    }

    /// The text side of a fused model, whether or not reading is on.
    pub fn declared_text_inputs(&self) -> Option<&TextInputs> {
        self.text.as_ref()
    }

    /// Class names in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The operating point the model declares (`spamlens.thresholds`): `(class, threshold)` pairs;
    /// empty when the label is simply the most probable class.
    pub fn thresholds(&self) -> Vec<(String, f32)> {
        self.thresholds.iter().map(|&(i, t)| (self.labels[i].clone(), t)).collect()
    }

    /// The threshold of `class`, if the model declares one.
    pub fn threshold(&self, class: &str) -> Option<f32> {
        self.thresholds.iter().find(|(i, _)| self.labels[*i] == class).map(|&(_, t)| t)
    }

    /// A fused model's image-only operating point (used when an image's text was not read).
    pub fn image_thresholds(&self) -> Vec<(String, f32)> {
        self.text
            .as_ref()
            .map(|t| t.image_thresholds.iter().map(|&(i, v)| (self.labels[i].clone(), v)).collect())
            .unwrap_or_default()
    }

    /// The underlying model (metadata, sha256).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The preprocessing the model declares.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Decodes, preprocesses and classifies one image without reading its text; `input` names it
    /// in errors. A fused model decides by its image-only output.
    pub fn classify(&self, bytes: &[u8], input: &str) -> Result<Verdict> {
        let prepared = self.prepare(bytes, input)?;
        self.classify_prepared(prepared, None)
    }

    /// Decodes and preprocesses one image the way this model declares (the first half of
    /// [`Classifier::classify`]), so a caller can time or schedule the two halves apart; for a
    /// fused model with reading on, also the OCR engine's input.
    pub fn prepare(&self, bytes: &[u8], input: &str) -> Result<PreparedImage> {
        let decoded = crate::decode_rgb(bytes, input, &self.limits)?;
        let mut prepared = crate::prepare_decoded(&decoded, input, &self.preprocessing)?;
        if let Some(text) = self.text_inputs() {
            prepared.ocr_image = crate::ocr::OcrImage::prepare(&decoded.rgb, &text.image, input)?;
            prepared.reads_text = true;
        }
        Ok(prepared)
    }

    /// Runs the model on an image prepared by [`Classifier::prepare`] (the second half of
    /// [`Classifier::classify`]) with the text read from it, if any.
    pub fn classify_prepared(&self, prepared: PreparedImage, text: Option<OcrText>) -> Result<Verdict> {
        let (tensor, meta) = prepared.split();
        let scores = self.score_with_text(tensor, text.as_ref())?;
        Ok(Verdict::new(scores, &meta, text))
    }

    /// Decodes, preprocesses, reads the text with `ocr` (when the model reads text) and classifies
    /// one image. OCR that fails costs the image its text, not its verdict: it is decided by the
    /// image-only output and the reading says why.
    pub fn read_and_classify(&self, bytes: &[u8], input: &str, ocr: Option<ReadText<'_>>) -> Result<ImageReading> {
        let prepared = self.prepare(bytes, input)?;
        let (text, ocr_problem) = self.text_of(&prepared, input, ocr);
        let verdict = self.classify_prepared(prepared, text)?;
        Ok(ImageReading { verdict, ocr_problem })
    }

    /// The text to classify a prepared image with: none when the model does not read text, the
    /// empty text for an image too small to hold any, else what `ocr` reads (or, when it fails or
    /// there is no engine, none and the reason).
    pub fn text_of(
        &self,
        prepared: &PreparedImage,
        input: &str,
        ocr: Option<ReadText<'_>>,
    ) -> (Option<OcrText>, Option<String>) {
        if !prepared.reads_text {
            return (None, None);
        }
        match (&prepared.ocr_image, ocr) {
            (None, _) => (Some(OcrText::empty(prepared.width, prepared.height)), None),
            (Some(_), None) => (None, Some(format!("{input}: OCR is not available in this runtime"))),
            (Some(image), Some(read)) => match read(image, input) {
                Ok(text) => (Some(text), None),
                Err(e) => (None, Some(e.to_string())),
            },
        }
    }

    /// Runs the model on one input tensor (`3 × crop × crop` floats, as [`Classifier::prepare`]
    /// makes them) without text.
    pub fn score(&self, tensor: Vec<f32>) -> Result<Scores> {
        self.score_with_text(tensor, None)
    }

    /// Runs the model on one input tensor and the text read from the image, if any.
    pub fn score_with_text(&self, tensor: Vec<f32>, text: Option<&OcrText>) -> Result<Scores> {
        let mut scores = self.score_batch(tensor, &[text])?;
        scores.pop().ok_or_else(|| Error::Inference {
            model: self.model.name().to_owned(),
            reason: "no result for a batch of one".into(),
        })
    }

    /// Runs the model once on `texts.len()` input tensors laid end to end (what a server's dynamic
    /// batcher collects from concurrent requests), each with the text read from its image (`None`:
    /// not read; the image-only output decides): one [`Scores`] per tensor, in order.
    pub fn score_batch(&self, tensors: Vec<f32>, texts: &[Option<&OcrText>]) -> Result<Vec<Scores>> {
        let batch = texts.len();
        let mismatch = |reason: String| Error::ModelSignature { model: self.model.name().to_owned(), reason };
        let mut outputs = match &self.text {
            None => self.model.run(tensors, batch)?,
            Some(side) => {
                let buckets = side.featurizer.buckets as usize;
                let mut ngrams = vec![0.0f32; batch * buckets];
                let mut layout = vec![0.0f32; batch * LAYOUT_FEATURES];
                for (i, text) in texts.iter().enumerate() {
                    if let Some(text) = text.filter(|_| self.read_text) {
                        for (bucket, value) in side.featurizer.sparse(text) {
                            ngrams[i * buckets + bucket as usize] = value;
                        }
                        layout[i * LAYOUT_FEATURES..(i + 1) * LAYOUT_FEATURES].copy_from_slice(&text.layout().vector());
                    }
                }
                self.model.run_inputs(vec![tensors, ngrams, layout], batch)?
            }
        };
        let take = |outputs: &mut crate::ModelOutputs, name: &str| -> Result<crate::OutputTensor> {
            let tensor = outputs.get(name)?.clone();
            if tensor.row_len() != self.labels.len() || tensor.shape.first() != Some(&batch) {
                return Err(mismatch(format!(
                    "output {name} has shape {:?} for a batch of {batch} and {} labels",
                    tensor.shape,
                    self.labels.len()
                )));
            }
            Ok(tensor)
        };
        let fused = take(&mut outputs, PROBABILITIES_OUTPUT)?;
        let pairs = |row: &[f32]| -> Probabilities { self.labels.iter().cloned().zip(row.iter().copied()).collect() };
        let Some(side) = &self.text else {
            return Ok(fused
                .rows()
                .map(|row| Scores {
                    label: self.labels[decide(row, &self.thresholds)].clone(),
                    probabilities: pairs(row),
                    image_probabilities: None,
                    text_probabilities: None,
                    with_text: false,
                })
                .collect());
        };
        let image = take(&mut outputs, IMAGE_PROBABILITIES_OUTPUT)?;
        let text_only = take(&mut outputs, TEXT_PROBABILITIES_OUTPUT)?;
        Ok(texts
            .iter()
            .zip(fused.rows().zip(image.rows()).zip(text_only.rows()))
            .map(|(text, ((fused, image), text_only))| {
                let with_text = self.read_text && text.is_some();
                let (row, thresholds) =
                    if with_text { (fused, &self.thresholds) } else { (image, &side.image_thresholds) };
                Scores {
                    label: self.labels[decide(row, thresholds)].clone(),
                    probabilities: pairs(row),
                    image_probabilities: Some(pairs(image)),
                    text_probabilities: with_text.then(|| pairs(text_only)),
                    with_text,
                }
            })
            .collect())
    }
}

/// Reads and checks a fused model's text side: the contract, the inputs it implies, the outputs,
/// the image-only thresholds.
fn text_inputs(model: &Model, json: &str, labels: &[String]) -> std::result::Result<TextInputs, String> {
    let contract = OcrContract::from_json(json).map_err(|e| format!("metadata '{META_OCR}': {e}"))?;
    let image = contract
        .image_spec()
        .ok_or_else(|| format!("OCR image preparation '{}' is not one this runtime implements", contract.image))?;
    let featurizer = contract
        .text_featurizer()
        .ok_or_else(|| format!("text featurizer '{}' is not one this runtime implements", contract.featurizer))?;
    let expected = [(OCR_NGRAMS_INPUT, vec![featurizer.buckets as usize]), (OCR_LAYOUT_INPUT, vec![LAYOUT_FEATURES])];
    let inputs = model.inputs();
    if inputs.len() != 3
        || inputs[1..].iter().zip(&expected).any(|(input, (name, dims))| input.name != *name || input.dims != *dims)
    {
        let found: Vec<String> = inputs.iter().map(|i| format!("{} {:?}", i.name, i.dims)).collect();
        return Err(format!(
            "a model with an OCR contract takes the image, {OCR_NGRAMS_INPUT} [{}] and {OCR_LAYOUT_INPUT} \
             [{LAYOUT_FEATURES}]; this one takes {}",
            featurizer.buckets,
            found.join(", ")
        ));
    }
    for output in [IMAGE_PROBABILITIES_OUTPUT, TEXT_PROBABILITIES_OUTPUT] {
        if !model.output_names().iter().any(|o| o == output) {
            return Err(format!("a model with an OCR contract has an '{output}' output; this one has none"));
        }
    }
    let image_thresholds =
        parse_thresholds(model.metadata().get(META_IMAGE_THRESHOLDS).map(String::as_str).unwrap_or(""), labels)?;
    Ok(TextInputs { contract, image, featurizer, image_thresholds })
}

/// The label index for one row of probabilities: the first thresholded class whose probability
/// reaches its threshold, else the most probable class without a threshold (all classes when every
/// class has one).
pub fn decide(row: &[f32], thresholds: &[(usize, f32)]) -> usize {
    if let Some(&(class, _)) = thresholds.iter().find(|&&(class, t)| row.get(class).is_some_and(|&p| p >= t)) {
        return class;
    }
    let free = |i: usize| thresholds.len() == row.len() || !thresholds.iter().any(|&(c, _)| c == i);
    let mut best: Option<usize> = None;
    for (i, &p) in row.iter().enumerate() {
        if free(i) && best.is_none_or(|b| p > row[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// Parses [`META_THRESHOLDS`] (`class=value,…`; empty means none) against the model's labels.
pub fn parse_thresholds(text: &str, labels: &[String]) -> std::result::Result<Vec<(usize, f32)>, String> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (class, value) =
            pair.split_once('=').ok_or_else(|| format!("metadata '{META_THRESHOLDS}': '{pair}' is not class=value"))?;
        let index = labels.iter().position(|l| l == class.trim()).ok_or_else(|| {
            format!("metadata '{META_THRESHOLDS}': class '{}' is not one of {}", class.trim(), labels.join(","))
        })?;
        let value: f32 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f32| (0.0..=1.0).contains(v))
            .ok_or_else(|| format!("metadata '{META_THRESHOLDS}': '{}' is not a probability", value.trim()))?;
        if out.iter().any(|&(i, _)| i == index) {
            return Err(format!("metadata '{META_THRESHOLDS}': class '{}' given twice", class.trim()));
        }
        out.push((index, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_the_label() {
        let labels: Vec<String> = ["ham", "spam"].map(String::from).to_vec();
        let t = parse_thresholds("spam=0.9", &labels).unwrap();
        assert_eq!(t, vec![(1, 0.9)]);
        assert_eq!(decide(&[0.2, 0.8], &t), 0, "0.8 < 0.9: ham");
        assert_eq!(decide(&[0.05, 0.95], &t), 1);
        assert_eq!(decide(&[0.3, 0.7], &[]), 1, "no thresholds: argmax");
        let three: Vec<String> = ["ad", "ham", "spam"].map(String::from).to_vec();
        let t = parse_thresholds("spam=0.6", &three).unwrap();
        assert_eq!(decide(&[0.5, 0.1, 0.4], &t), 0, "below threshold: best of ad/ham");
        assert!(parse_thresholds("", &labels).unwrap().is_empty());
        for bad in ["spam", "eggs=0.5", "spam=1.5", "spam=x", "spam=0.5,spam=0.6"] {
            assert!(parse_thresholds(bad, &labels).is_err(), "{bad}");
        }
    }
}
