//! Text read from an image: the pixels an OCR engine is given, what it found, and how that text
//! becomes evidence for the decision.
//!
//! Data flows one way:
//! decoded RGB image → [`OcrImage::prepare`] (grey, scaled within a pixel budget: the exact pixels
//! every engine sees, native or in the browser) → an OCR engine outside this crate (Tesseract through
//! libtesseract natively, tesseract.js-core in the browser's worker), which reports
//! [`EngineWord`]s → [`OcrImage::text`] → [`OcrText`], the one type through which OCR results enter
//! core → [`TextFeaturizer`] (hashed character n-grams and layout measures) → the text inputs of a
//! fused model ([`crate::classifier`]).
//!
//! Which engine, languages, trained data and settings a model was trained with is its
//! [`OcrContract`]; a runtime whose engine does not match it refuses the model (see
//! [`OcrContract::check`]).

pub mod contract;
pub mod features;
pub mod input;

use serde::{Deserialize, Serialize};

pub use contract::{EngineIdentity, OcrContract, TrainedData};
pub use features::{LAYOUT_FEATURES, LAYOUT_NAMES, LayoutMeasures, TextFeaturizer};
pub use input::{OcrImage, OcrImageSpec};

/// A word as an engine reports it, in the coordinates of the [`OcrImage`] it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineWord {
    /// The recognised text (UTF-8, no surrounding white space).
    pub text: String,
    /// The engine's confidence, 0–100.
    pub confidence: f32,
    /// Bounding box: left, top, right, bottom (exclusive), in OCR-image pixels.
    pub bbox: [u32; 4],
    /// Index of the text line the word is on, counted from 0 in reading order.
    pub line: u32,
}

/// One recognised word in the coordinates of the decoded image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OcrWord {
    /// The recognised text.
    pub text: String,
    /// The engine's confidence, 0–100.
    pub confidence: f32,
    /// Bounding box: left, top, right, bottom (exclusive), in decoded-image pixels.
    #[cfg_attr(feature = "openapi", schema(min_items = 4, max_items = 4))]
    pub bbox: [u32; 4],
    /// Text line index (reading order).
    pub line: u32,
}

/// Everything OCR found in one image: the input of the text side of a fused model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OcrText {
    /// Width of the decoded image the boxes refer to.
    pub width: u32,
    /// Height of the decoded image the boxes refer to.
    pub height: u32,
    /// The words in reading order.
    pub words: Vec<OcrWord>,
}

impl OcrText {
    /// No text in a `width × height` image (an image too small to hold any, or a photo).
    pub fn empty(width: u32, height: u32) -> OcrText {
        OcrText { width, height, words: Vec::new() }
    }

    /// The text as a reader would copy it: words joined by spaces, lines by newlines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = None;
        for word in &self.words {
            match line {
                None => {}
                Some(l) if l == word.line => out.push(' '),
                Some(_) => out.push('\n'),
            }
            out.push_str(&word.text);
            line = Some(word.line);
        }
        out
    }

    /// Number of distinct text lines.
    pub fn line_count(&self) -> usize {
        let mut lines: Vec<u32> = self.words.iter().map(|w| w.line).collect();
        lines.sort_unstable();
        lines.dedup();
        lines.len()
    }

    /// The layout measures of [`LayoutMeasures`].
    pub fn layout(&self) -> LayoutMeasures {
        LayoutMeasures::of(self)
    }
}

/// What OCR read in an image, as the outputs show it (CLI JSON, the server, the browser).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextReading {
    /// The text: words joined by spaces, lines by newlines.
    pub text: String,
    /// The text-only probabilities of a fused model.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<std::collections::BTreeMap<String, f64>>))]
    pub probabilities: Option<serde_json::Map<String, serde_json::Value>>,
    /// Layout measures.
    pub layout: LayoutMeasures,
    /// Every word with its box and confidence.
    pub words: Vec<OcrWord>,
}

impl TextReading {
    /// The reading of `text`, with the text-only probabilities when known.
    pub fn new(text: &OcrText, probabilities: Option<serde_json::Map<String, serde_json::Value>>) -> TextReading {
        TextReading { text: text.text(), probabilities, layout: text.layout(), words: text.words.clone() }
    }
}

/// An OCR engine for one thread: given the prepared pixels, the words it reads.
///
/// Implemented natively over libtesseract (`spamlens-ocr`); the browser runs tesseract.js-core in
/// JavaScript and hands its words to core through the same [`OcrImage::text`].
pub trait OcrEngine {
    /// What engine, version, languages and trained data this is (checked against a model's
    /// [`OcrContract`]).
    fn identity(&self) -> &EngineIdentity;

    /// Reads the words of `image`; `input` names the image in errors.
    fn recognize(&mut self, image: &OcrImage, input: &str) -> crate::Result<Vec<EngineWord>>;
}

/// Reads the text of a decoded image with `engine`: prepares the pixels as `spec` says, skips
/// images too small to hold text, and maps the words back to the image's coordinates.
pub fn read_text(
    engine: &mut dyn OcrEngine,
    rgb: &image::RgbImage,
    spec: &OcrImageSpec,
    input: &str,
) -> crate::Result<OcrText> {
    match OcrImage::prepare(rgb, spec, input)? {
        None => Ok(OcrText::empty(rgb.width(), rgb.height())),
        Some(prepared) => {
            let words = engine.recognize(&prepared, input)?;
            Ok(prepared.text(words))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, line: u32) -> OcrWord {
        OcrWord { text: text.into(), confidence: 90.0, bbox: [0, 0, 1, 1], line }
    }

    #[test]
    fn text_joins_words_and_lines() {
        let t = OcrText { width: 10, height: 10, words: vec![word("Buy", 0), word("now", 0), word("$5", 2)] };
        assert_eq!(t.text(), "Buy now\n$5");
        assert_eq!(t.line_count(), 2);
        assert_eq!(OcrText::empty(3, 4).text(), "");
        assert_eq!(OcrText::empty(3, 4).line_count(), 0);
    }
}
