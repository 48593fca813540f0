//! The pixels an OCR engine is given: grey, scaled so small text becomes readable and huge images
//! stay within a pixel budget. Made here, once, so the native engine and the browser's engine read
//! the same pixels.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::{EngineWord, OcrText, OcrWord};
use crate::error::{Error, Result};

/// How a decoded image becomes the engine's input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OcrImageSpec {
    /// Images whose longer side is shorter than this are upscaled towards it (text in 2006-era spam
    /// GIFs is 10–14 px high; Tesseract's LSTM reads 20–30 px text best) …
    pub upscale_long_side: u32,
    /// … by at most this factor.
    pub max_upscale: f32,
    /// The scaled image has at most this many pixels (larger images are scaled down to it), which
    /// bounds the engine's time and memory on huge or very long images.
    pub max_pixels: u64,
    /// Images with a shorter side below this many pixels (spacers, icons) are not read at all.
    pub min_side: u32,
}

impl OcrImageSpec {
    /// The preparation every spamlens model with OCR so far declares.
    pub const V1: OcrImageSpec =
        OcrImageSpec { upscale_long_side: 2400, max_upscale: 2.0, max_pixels: 8_000_000, min_side: 12 };

    /// The scale factor for a `width × height` image (1 keeps it as it is).
    pub fn scale_for(&self, width: u32, height: u32) -> f64 {
        let long = f64::from(width.max(height).max(1));
        let mut scale = (f64::from(self.upscale_long_side) / long).clamp(1.0, f64::from(self.max_upscale.max(1.0)));
        let pixels = f64::from(width) * f64::from(height) * scale * scale;
        if pixels > self.max_pixels as f64 {
            scale = (self.max_pixels as f64 / (f64::from(width) * f64::from(height))).sqrt();
        }
        scale
    }

    /// The size of the engine's input for a `width × height` image.
    pub fn scaled_size(&self, width: u32, height: u32) -> (u32, u32) {
        let scale = self.scale_for(width, height);
        if scale == 1.0 {
            return (width, height);
        }
        let side = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
        let (mut w, mut h) = (side(width), side(height));
        // Rounding up both sides may cross the budget by a row or column: take it back.
        while u64::from(w) * u64::from(h) > self.max_pixels && w.max(h) > 1 {
            if w >= h { w -= 1 } else { h -= 1 }
        }
        (w, h)
    }

    /// The human-readable contract stored in a model's OCR metadata.
    pub fn describe(&self) -> String {
        format!(
            "grey (ITU-R 601 luma, integer); longer side upscaled towards {} px by at most {}x (Catmull-Rom); \
             at most {} pixels (scaled down to fit); images with a side under {} px not read",
            self.upscale_long_side, self.max_upscale, self.max_pixels, self.min_side
        )
    }
}

impl Default for OcrImageSpec {
    fn default() -> Self {
        Self::V1
    }
}

/// Grey pixels ready for an engine, and how they map back to the decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct OcrImage {
    /// Row-major 8-bit grey pixels, `width × height`, no padding.
    pub pixels: Vec<u8>,
    /// Width of `pixels`.
    pub width: u32,
    /// Height of `pixels`.
    pub height: u32,
    /// Width of the decoded image.
    pub source_width: u32,
    /// Height of the decoded image.
    pub source_height: u32,
}

impl OcrImage {
    /// Prepares `rgb` as `spec` says; `None` when the image is too small to hold text.
    pub fn prepare(rgb: &RgbImage, spec: &OcrImageSpec, input: &str) -> Result<Option<OcrImage>> {
        let (width, height) = rgb.dimensions();
        if width.min(height) < spec.min_side.max(1) {
            return Ok(None);
        }
        let grey: Vec<u8> = rgb
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(u32::from);
                ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
            })
            .collect();
        let (new_w, new_h) = spec.scaled_size(width, height);
        let pixels = if (new_w, new_h) == (width, height) {
            grey
        } else {
            let resize_error = |reason: String| Error::Resize { input: input.to_owned(), reason };
            let src = ImageRef::new(width, height, &grey, PixelType::U8).map_err(|e| resize_error(e.to_string()))?;
            let mut dst = Image::new(new_w, new_h, PixelType::U8);
            let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
            Resizer::new().resize(&src, &mut dst, &options).map_err(|e| resize_error(e.to_string()))?;
            dst.into_vec()
        };
        Ok(Some(OcrImage { pixels, width: new_w, height: new_h, source_width: width, source_height: height }))
    }

    /// The engine's words mapped back to the decoded image: boxes scaled and clamped, empty words
    /// dropped, confidences clamped to 0–100.
    pub fn text(&self, words: Vec<EngineWord>) -> OcrText {
        let sx = f64::from(self.source_width) / f64::from(self.width.max(1));
        let sy = f64::from(self.source_height) / f64::from(self.height.max(1));
        let map = |v: u32, s: f64, limit: u32| ((f64::from(v) * s).round() as u32).min(limit);
        let words = words
            .into_iter()
            .filter_map(|w| {
                let text = w.text.trim();
                if text.is_empty() {
                    return None;
                }
                let [l, t, r, b] = w.bbox;
                Some(OcrWord {
                    text: text.to_owned(),
                    confidence: if w.confidence.is_finite() { w.confidence.clamp(0.0, 100.0) } else { 0.0 },
                    bbox: [
                        map(l, sx, self.source_width),
                        map(t, sy, self.source_height),
                        map(r.max(l), sx, self.source_width),
                        map(b.max(t), sy, self.source_height),
                    ],
                    line: w.line,
                })
            })
            .collect();
        OcrText { width: self.source_width, height: self.source_height, words }
    }

    /// sha256 (hex) of the pixels and their size: what a native and a browser run compare to know
    /// both engines were given the same input.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.width.to_le_bytes());
        hasher.update(self.height.to_le_bytes());
        hasher.update(&self.pixels);
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_are_upscaled_at_most_twice_and_huge_ones_fit_the_budget() {
        let spec = OcrImageSpec::V1;
        assert_eq!(spec.scaled_size(400, 300), (800, 600));
        assert_eq!(spec.scaled_size(1600, 1200), (2400, 1800));
        assert_eq!(spec.scaled_size(3000, 2000), (3000, 2000));
        let (w, h) = spec.scaled_size(10_000, 10_000);
        assert!(u64::from(w) * u64::from(h) <= spec.max_pixels && w > 2800, "{w}x{h}");
        // A very long strip keeps its aspect and its budget.
        let (w, h) = spec.scaled_size(700, 16_000);
        assert!(u64::from(w) * u64::from(h) <= spec.max_pixels, "{w}x{h}");
        assert!((f64::from(h) / f64::from(w) - 16_000.0 / 700.0).abs() < 0.1);
    }

    #[test]
    fn prepare_greys_scales_and_skips_tiny_images() {
        let spec = OcrImageSpec::V1;
        let rgb = RgbImage::from_pixel(300, 100, image::Rgb([255, 0, 0]));
        let prepared = OcrImage::prepare(&rgb, &spec, "red").unwrap().unwrap();
        assert_eq!((prepared.width, prepared.height), (600, 200));
        assert_eq!(prepared.pixels.len(), 600 * 200);
        assert!(prepared.pixels.iter().all(|&p| p == 76), "{:?}", &prepared.pixels[..4]);
        assert!(OcrImage::prepare(&RgbImage::new(11, 400), &spec, "spacer").unwrap().is_none());
        let kept = OcrImage::prepare(&RgbImage::new(3000, 20), &spec, "strip").unwrap().unwrap();
        assert_eq!((kept.width, kept.height), (3000, 20));
    }

    #[test]
    fn engine_words_map_back_to_the_decoded_image() {
        let image = OcrImage { pixels: vec![], width: 600, height: 200, source_width: 300, source_height: 100 };
        let text = image.text(vec![
            EngineWord { text: " Viagra ".into(), confidence: 91.5, bbox: [10, 20, 110, 60], line: 0 },
            EngineWord { text: "   ".into(), confidence: 50.0, bbox: [0, 0, 5, 5], line: 0 },
            EngineWord { text: "$1".into(), confidence: f32::NAN, bbox: [590, 180, 700, 260], line: 1 },
        ]);
        assert_eq!(text.words.len(), 2);
        assert_eq!(text.words[0].text, "Viagra");
        assert_eq!(text.words[0].bbox, [5, 10, 55, 30]);
        assert_eq!(text.words[1].bbox, [295, 90, 300, 100], "clamped to the image");
        assert_eq!(text.words[1].confidence, 0.0);
        assert_eq!((text.width, text.height), (300, 100));
    }
}
