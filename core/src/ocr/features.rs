//! OCR text → numbers a model can weigh: hashed character n-grams (robust to OCR's misread letters,
//! and to any script: Latin, Cyrillic and Chinese spam all occur) and layout measures (how much of
//! the image is text, how confidently it was read).

use serde::{Deserialize, Serialize};

use super::OcrText;

/// Number of layout measures [`LayoutMeasures::vector`] gives.
pub const LAYOUT_FEATURES: usize = 8;

/// Names of the layout measures, in vector order (for reports and the model card).
pub const LAYOUT_NAMES: [&str; LAYOUT_FEATURES] = [
    "ln(1 + words)",
    "ln(1 + confident words)",
    "ln(1 + lines)",
    "mean confidence",
    "text-area fraction",
    "ln(1 + characters)",
    "digit fraction",
    "symbol fraction",
];

/// A word at or above this confidence counts as confidently read.
pub const CONFIDENT: f32 = 60.0;

/// What the text of an image looks like as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LayoutMeasures {
    /// Words read.
    pub words: usize,
    /// Words read with confidence ≥ 60.
    pub confident_words: usize,
    /// Text lines.
    pub lines: usize,
    /// Mean word confidence, 0–100 (0 without words).
    pub mean_confidence: f32,
    /// Sum of the word boxes' areas over the image's area, at most 1.
    pub text_area_fraction: f32,
    /// Characters (Unicode scalar values) in the words.
    pub characters: usize,
    /// Share of the characters that are digits.
    pub digit_fraction: f32,
    /// Share of the characters that are neither letters nor digits (`$`, `%`, `!`, `@`, …).
    pub symbol_fraction: f32,
}

impl LayoutMeasures {
    /// The measures of `text`.
    pub fn of(text: &OcrText) -> LayoutMeasures {
        let words = text.words.len();
        let confident_words = text.words.iter().filter(|w| w.confidence >= CONFIDENT).count();
        let mean_confidence =
            if words == 0 { 0.0 } else { text.words.iter().map(|w| w.confidence).sum::<f32>() / words as f32 };
        let area: f64 = text
            .words
            .iter()
            .map(|w| f64::from(w.bbox[2].saturating_sub(w.bbox[0])) * f64::from(w.bbox[3].saturating_sub(w.bbox[1])))
            .sum();
        let image_area = f64::from(text.width.max(1)) * f64::from(text.height.max(1));
        let (mut characters, mut digits, mut symbols) = (0usize, 0usize, 0usize);
        for c in text.words.iter().flat_map(|w| w.text.chars()) {
            characters += 1;
            if c.is_numeric() {
                digits += 1;
            } else if !c.is_alphabetic() {
                symbols += 1;
            }
        }
        let share = |n: usize| if characters == 0 { 0.0 } else { n as f32 / characters as f32 };
        LayoutMeasures {
            words,
            confident_words,
            lines: text.line_count(),
            mean_confidence,
            text_area_fraction: (area / image_area).min(1.0) as f32,
            characters,
            digit_fraction: share(digits),
            symbol_fraction: share(symbols),
        }
    }

    /// The measures as model inputs, in [`LAYOUT_NAMES`] order: counts as ln(1 + n), confidence
    /// as 0–1.
    pub fn vector(&self) -> [f32; LAYOUT_FEATURES] {
        let ln = |n: usize| (1.0 + n as f32).ln();
        [
            ln(self.words),
            ln(self.confident_words),
            ln(self.lines),
            self.mean_confidence / 100.0,
            self.text_area_fraction,
            ln(self.characters),
            self.digit_fraction,
            self.symbol_fraction,
        ]
    }
}

/// Turns OCR text into a fixed-width vector of hashed character n-grams.
///
/// Each word is lower-cased, its digits written as `0` (prices and phone numbers vary, their shape
/// does not), and padded with a space on both sides; its character n-grams of every length from
/// `min_n` to `max_n`, and the whole word, are hashed (FNV-1a, 64-bit, over a length tag and the
/// UTF-8 bytes) into `buckets`. A word adds its confidence / 100 to each of its buckets, so
/// confidently read words count more than OCR noise. The counts are then compressed with ln(1 + x)
/// and the vector scaled to unit length (an empty text stays all zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextFeaturizer {
    /// Width of the hashed vector.
    pub buckets: u32,
    /// Shortest n-gram, in characters.
    pub min_n: u8,
    /// Longest n-gram, in characters.
    pub max_n: u8,
}

impl TextFeaturizer {
    /// The featurizer of the first fused models.
    pub const V1: TextFeaturizer = TextFeaturizer { buckets: 1 << 16, min_n: 1, max_n: 4 };

    /// The human-readable contract stored in a model's OCR metadata; [`from_description`](Self::from_description)
    /// reads it back.
    pub fn describe(&self) -> String {
        format!(
            "char n-grams {}-{} + whole words of lower-cased words (digits as 0, space-padded); FNV-1a 64 mod {}; \
             confidence-weighted counts; ln(1+x); L2-normalised",
            self.min_n, self.max_n, self.buckets
        )
    }

    /// The featurizer whose [`describe`](Self::describe) is `description`, if it is one this
    /// version implements (any bucket count and n-gram range of the same recipe).
    pub fn from_description(description: &str) -> Option<TextFeaturizer> {
        let rest = description.strip_prefix("char n-grams ")?;
        let (range, rest) = rest.split_once(' ')?;
        let (min_n, max_n) = range.split_once('-')?;
        let (min_n, max_n): (u8, u8) = (min_n.parse().ok()?, max_n.parse().ok()?);
        let rest =
            rest.strip_prefix("+ whole words of lower-cased words (digits as 0, space-padded); FNV-1a 64 mod ")?;
        let (buckets, rest) = rest.split_once(';')?;
        let buckets: u32 = buckets.parse().ok()?;
        let candidate = TextFeaturizer { buckets, min_n, max_n };
        (rest == " confidence-weighted counts; ln(1+x); L2-normalised"
            && candidate.is_valid()
            && candidate.describe() == description)
            .then_some(candidate)
    }

    fn is_valid(&self) -> bool {
        self.buckets > 0 && self.min_n >= 1 && self.min_n <= self.max_n && self.max_n <= 8
    }

    /// The non-zero entries of the vector, `(bucket, value)` sorted by bucket.
    pub fn sparse(&self, text: &OcrText) -> Vec<(u32, f32)> {
        let mut counts: std::collections::BTreeMap<u32, f32> = std::collections::BTreeMap::new();
        let mut chars: Vec<char> = Vec::new();
        let mut utf8 = [0u8; 4];
        for word in &text.words {
            let weight = word.confidence.clamp(0.0, 100.0) / 100.0;
            if weight <= 0.0 {
                continue;
            }
            chars.clear();
            chars.push(' ');
            for c in word.text.chars().flat_map(char::to_lowercase) {
                chars.push(if c.is_numeric() { '0' } else { c });
            }
            chars.push(' ');
            if chars.len() <= 2 {
                continue;
            }
            let mut add = |tag: u8, grams: &[char]| {
                let mut hash = FNV_OFFSET ^ u64::from(tag);
                hash = hash.wrapping_mul(FNV_PRIME);
                for c in grams {
                    for &byte in c.encode_utf8(&mut utf8).as_bytes() {
                        hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
                    }
                }
                *counts.entry((hash % u64::from(self.buckets)) as u32).or_insert(0.0) += weight;
            };
            add(0, &chars);
            for n in usize::from(self.min_n)..=usize::from(self.max_n) {
                for gram in chars.windows(n) {
                    // A gram of padding alone says nothing.
                    if gram.iter().all(|&c| c == ' ') {
                        continue;
                    }
                    add(n as u8, gram);
                }
            }
        }
        let mut entries: Vec<(u32, f32)> = counts.into_iter().map(|(i, c)| (i, c.ln_1p())).collect();
        let norm = entries.iter().map(|(_, v)| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
        if norm > 0.0 {
            entries.iter_mut().for_each(|(_, v)| *v = (f64::from(*v) / norm) as f32);
        }
        entries
    }

    /// The vector, dense: `buckets` floats.
    pub fn dense(&self, text: &OcrText) -> Vec<f32> {
        let mut out = vec![0.0; self.buckets as usize];
        for (i, v) in self.sparse(text) {
            out[i as usize] = v;
        }
        out
    }
}

impl Default for TextFeaturizer {
    fn default() -> Self {
        Self::V1
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::OcrWord;

    fn text(words: &[(&str, f32, u32)]) -> OcrText {
        OcrText {
            width: 100,
            height: 50,
            words: words
                .iter()
                .map(|&(t, c, line)| OcrWord { text: t.into(), confidence: c, bbox: [0, 0, 10, 5], line })
                .collect(),
        }
    }

    #[test]
    fn descriptions_round_trip_and_refuse_others() {
        let f = TextFeaturizer::V1;
        assert_eq!(TextFeaturizer::from_description(&f.describe()), Some(f));
        let g = TextFeaturizer { buckets: 4096, min_n: 2, max_n: 5 };
        assert_eq!(TextFeaturizer::from_description(&g.describe()), Some(g));
        assert_eq!(TextFeaturizer::from_description("word unigrams"), None);
        let bad = TextFeaturizer { buckets: 0, min_n: 1, max_n: 4 };
        assert_eq!(TextFeaturizer::from_description(&bad.describe()), None);
    }

    #[test]
    fn vectors_are_unit_length_case_and_digit_blind() {
        let f = TextFeaturizer { buckets: 1 << 12, min_n: 1, max_n: 3 };
        let a = f.sparse(&text(&[("VIAGRA", 90.0, 0), ("$1.99", 90.0, 0)]));
        let b = f.sparse(&text(&[("viagra", 90.0, 0), ("$7.45", 90.0, 0)]));
        assert_eq!(a, b);
        let norm: f32 = a.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0), "sorted by bucket");
        assert!(f.sparse(&text(&[])).is_empty());
        assert!(f.sparse(&text(&[("noise", 0.0, 0)])).is_empty(), "zero confidence adds nothing");
        let dense = f.dense(&text(&[("ЗВОНИТЕ", 80.0, 0), ("免费", 70.0, 1)]));
        assert_eq!(dense.len(), 4096);
        assert!(dense.iter().filter(|&&v| v > 0.0).count() > 10);
    }

    #[test]
    fn hashing_is_fixed_across_versions() {
        // The buckets are part of every fused model's contract: a change here breaks shipped models.
        let f = TextFeaturizer::V1;
        let entries = f.sparse(&text(&[("Xanax", 100.0, 0)]));
        let first: Vec<u32> = entries.iter().take(4).map(|(i, _)| *i).collect();
        assert_eq!(entries.len(), 19, "1 word + 3 + 6 + 5 + 4 distinct n-grams: {entries:?}");
        assert_eq!(first, HASHED_XANAX_FIRST_BUCKETS, "{first:?}");
    }

    const HASHED_XANAX_FIRST_BUCKETS: [u32; 4] = [729, 775, 2598, 3205];

    #[test]
    fn layout_measures_count_what_was_read() {
        let t = text(&[("Buy", 95.0, 0), ("Xanax", 85.0, 0), ("$0.99!", 40.0, 1)]);
        let m = t.layout();
        assert_eq!((m.words, m.confident_words, m.lines, m.characters), (3, 2, 2, 14));
        assert!((m.mean_confidence - 73.333).abs() < 1e-3);
        assert!((m.text_area_fraction - 0.03).abs() < 1e-6);
        assert!((m.digit_fraction - 3.0 / 14.0).abs() < 1e-6);
        assert!((m.symbol_fraction - 3.0 / 14.0).abs() < 1e-6);
        let v = m.vector();
        assert!((v[0] - 4f32.ln()).abs() < 1e-6 && (v[3] - 0.7333).abs() < 1e-3);
        assert_eq!(OcrText::empty(5, 5).layout().vector(), [0.0; LAYOUT_FEATURES]);
    }
}
