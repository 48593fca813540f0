//! RGB8 image → the normalised NCHW f32 tensor the backbone expects.
//!
//! Three geometries ([`Fit`]): the ImageNet centre crop, a letterbox that keeps the whole image
//! (image spam is often a wide banner or a tall strip, whose text a centre crop cuts away), and the
//! letterbox plus square tiles along the longer side (several views of one image, whose features are
//! averaged). A model declares which one it was trained with in its `spamlens.preprocessing` metadata.
//!
//! The centre-crop recipe is the one `../shared/models/PROVENANCE.md` documents for the pretrained ResNet-50
//! (torchvision's `Resize(256)` + `CenterCrop(224)` + `Normalize`): shorter side → 256 with an
//! antialiased bilinear filter (aspect kept, smaller images upscaled), centre crop 224×224, /255,
//! minus mean, over std, channel-major. It lives here, and only here, so the trainer, the native
//! runtime and the WebAssembly runtime produce identical tensors.
//!
//! Resizing uses `fast_image_resize` (SIMD; Pillow's convolution algorithm, so it matches the
//! PIL-based reference). Instead of resizing the whole image and then cropping, the crop box is
//! mapped back to source coordinates and only that region is resampled: the filter taps are the
//! same, but a 10000×3 strip no longer needs a 853333×256 intermediate.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use crate::error::{Error, Result};

/// How an image of any shape is fitted into the square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Shorter side → `resize_shorter`, then the centred `crop` square (ImageNet's evaluation recipe).
    CenterCrop,
    /// Longer side → `crop` (aspect kept), centred on a `crop` square filled with the mean colour
    /// (zero after normalisation): nothing of the image is cut away.
    Letterbox,
    /// The letterbox view plus, for an image more than [`TILE_MIN_ASPECT`] times longer than wide
    /// (or tall), up to [`MAX_TILES`] squares of its shorter side spread along the longer side, each
    /// resized to `crop`: text a letterbox shrinks is seen at a readable scale. Several views per
    /// image; their backbone features are averaged.
    Tiles,
}

/// Most square tiles [`Fit::Tiles`] takes of one image (besides the letterbox view).
pub const MAX_TILES: u32 = 3;

/// [`Fit::Tiles`] adds tiles only to images whose longer side exceeds this multiple of the shorter
/// one; a near-square image's tile would repeat its letterbox view.
pub const TILE_MIN_ASPECT: f64 = 1.25;

impl Fit {
    /// The name used on command lines and in reports (`center-crop`, `letterbox`, `tiles`).
    pub fn name(&self) -> &'static str {
        match self {
            Fit::CenterCrop => "center-crop",
            Fit::Letterbox => "letterbox",
            Fit::Tiles => "tiles",
        }
    }

    /// Parses [`Fit::name`].
    pub fn parse(name: &str) -> Option<Fit> {
        [Fit::CenterCrop, Fit::Letterbox, Fit::Tiles].into_iter().find(|f| f.name() == name)
    }
}

/// The preprocessing contract of a backbone: how an RGB image becomes one input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// How the image is fitted into the square input.
    pub fit: Fit,
    /// The shorter side is resized to this many pixels (bilinear, aspect ratio kept; centre crop only).
    pub resize_shorter: u32,
    /// Side of the square input: the centred crop, the letterbox canvas, or a tile.
    pub crop: u32,
    /// Per-channel mean (RGB) subtracted after scaling to 0..1.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB) divided by after the mean.
    pub std: [f32; 3],
}

impl Preprocessing {
    /// The torchvision ImageNet recipe the shared ResNet-50 expects.
    pub const RESNET_IMAGENET: Preprocessing = Preprocessing {
        fit: Fit::CenterCrop,
        resize_shorter: 256,
        crop: 224,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// The shared ResNet-50's normalisation with the whole image letterboxed into 224 × 224.
    pub const RESNET_IMAGENET_LETTERBOX: Preprocessing =
        Preprocessing { fit: Fit::Letterbox, ..Preprocessing::RESNET_IMAGENET };

    /// Every contract a model may declare: one view per image, so one input row per image. Feature
    /// stores may also record [`Fit::Tiles`], which the exported graph does not carry.
    pub const KNOWN: [Preprocessing; 2] = [Preprocessing::RESNET_IMAGENET, Preprocessing::RESNET_IMAGENET_LETTERBOX];

    /// The known contract whose [`describe`](Self::describe) string is `description`.
    pub fn from_description(description: &str) -> Option<Preprocessing> {
        Self::KNOWN.into_iter().find(|p| p.describe() == description)
    }

    /// The same normalisation and input size with another geometry.
    pub fn with_fit(self, fit: Fit) -> Preprocessing {
        Preprocessing { fit, ..self }
    }

    /// Number of f32 values one view occupies in the input tensor (3 × crop × crop).
    pub fn values_per_image(&self) -> usize {
        3 * self.crop as usize * self.crop as usize
    }

    /// The tensor shape of a batch of `n` images, `[n, 3, crop, crop]`.
    pub fn batch_shape(&self, n: usize) -> [usize; 4] {
        [n, 3, self.crop as usize, self.crop as usize]
    }

    /// The human-readable contract stored in a model's `preprocessing` metadata entry.
    pub fn describe(&self) -> String {
        let join = |v: &[f32; 3]| v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(",");
        let geometry = match self.fit {
            Fit::CenterCrop => format!("resize shorter side {}; center crop {}", self.resize_shorter, self.crop),
            Fit::Letterbox => format!("letterbox {} (longer side {0}, centred, mean-colour padding)", self.crop),
            Fit::Tiles => format!(
                "letterbox {} (longer side {0}, centred, mean-colour padding) + up to {MAX_TILES} shorter-side \
                 squares along the longer side when it exceeds {TILE_MIN_ASPECT}x the shorter, each resized to \
                 {0}; features averaged over the views",
                self.crop
            ),
        };
        format!("RGB; {geometry}; x/255; mean {}; std {}; NCHW", join(&self.mean), join(&self.std))
    }

    /// The size the whole image would have after the shorter-side resize (torchvision's rule:
    /// the longer side is `floor(resize_shorter × long / short)`).
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        let target = u64::from(self.resize_shorter);
        let scale_long = |long: u32, short: u32| {
            let long = (target * u64::from(long) / u64::from(short.max(1))).max(1);
            u32::try_from(long).unwrap_or(u32::MAX)
        };
        if width <= height {
            (self.resize_shorter, scale_long(height, width))
        } else {
            (scale_long(width, height), self.resize_shorter)
        }
    }

    /// How many views of a `width` × `height` image the fit produces: one, or for [`Fit::Tiles`]
    /// the letterbox plus its tiles.
    pub fn view_count(&self, width: u32, height: u32) -> usize {
        1 + self.tile_squares(width, height).len()
    }

    /// The square tiles of [`Fit::Tiles`] as `(left, top, side)` in source pixels: none for the other
    /// fits or a near-square image, else `ceil(long / short)` (at most [`MAX_TILES`]) squares of the
    /// shorter side, the first at the start of the longer side, the last at its end, evenly between.
    pub fn tile_squares(&self, width: u32, height: u32) -> Vec<(u32, u32, u32)> {
        let (long, short) = (width.max(height), width.min(height));
        if self.fit != Fit::Tiles || short == 0 || f64::from(long) <= TILE_MIN_ASPECT * f64::from(short) {
            return Vec::new();
        }
        let count = long.div_ceil(short).min(MAX_TILES);
        let span = u64::from(long - short);
        (0..count)
            .map(|i| {
                // Rounded `i × span / (count − 1)`; count ≥ 2 because long > 1.25 × short.
                let steps = u64::from(count - 1);
                let offset = (u64::from(i) * span * 2 + steps) / (2 * steps);
                let offset = u32::try_from(offset).unwrap_or(long - short);
                if width >= height { (offset, 0, short) } else { (0, offset, short) }
            })
            .collect()
    }

    /// Writes the tensors of `rgb`'s views (named `input` in errors) into `out`, one after the other,
    /// channel-major; `out` must hold exactly [`view_count`](Self::view_count) ×
    /// [`values_per_image`](Self::values_per_image) floats.
    pub fn write_tensor(&self, rgb: &RgbImage, input: &str, out: &mut [f32]) -> Result<()> {
        let (width, height) = rgb.dimensions();
        let expected = self.view_count(width, height) * self.values_per_image();
        if out.len() != expected {
            return Err(Error::Resize {
                input: input.to_owned(),
                reason: format!("output slice holds {} floats, expected {expected}", out.len()),
            });
        }
        let views = self.views(rgb, input)?;
        let plane = self.crop as usize * self.crop as usize;
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        for (pixels, out) in views.iter().zip(out.chunks_exact_mut(self.values_per_image())) {
            let (red, rest) = out.split_at_mut(plane);
            let (green, blue) = rest.split_at_mut(plane);
            for (i, px) in pixels.chunks_exact(3).enumerate() {
                red[i] = f32::from(px[0]) * scale[0] - shift[0];
                green[i] = f32::from(px[1]) * scale[1] - shift[1];
                blue[i] = f32::from(px[2]) * scale[2] - shift[2];
            }
        }
        Ok(())
    }

    /// Returns the tensors of one image's views as a new vector (see [`write_tensor`](Self::write_tensor)):
    /// `3 × crop × crop` floats for the single-view fits.
    pub fn tensor(&self, rgb: &RgbImage, input: &str) -> Result<Vec<f32>> {
        let (width, height) = rgb.dimensions();
        let mut out = vec![0.0; self.view_count(width, height) * self.values_per_image()];
        self.write_tensor(rgb, input, &mut out)?;
        Ok(out)
    }

    /// The crop × crop RGB8 pixels of every view, in order: the single view of the centre crop or the
    /// letterbox; for [`Fit::Tiles`] the letterbox, then each tile of [`tile_squares`](Self::tile_squares).
    pub fn views(&self, rgb: &RgbImage, input: &str) -> Result<Vec<Vec<u8>>> {
        match self.fit {
            Fit::CenterCrop | Fit::Letterbox => Ok(vec![self.resize_and_crop(rgb, input)?]),
            Fit::Tiles => {
                let (width, height) = rgb.dimensions();
                if width == 0 || height == 0 {
                    return Err(Error::Resize {
                        input: input.to_owned(),
                        reason: format!("image has zero size {width}x{height}"),
                    });
                }
                let mut views = vec![self.letterbox(rgb, input)?];
                for (left, top, side) in self.tile_squares(width, height) {
                    views.push(self.resample_square(rgb, input, (left, top, side))?);
                }
                Ok(views)
            }
        }
    }

    /// The crop × crop RGB8 pixels after resize + centre crop or letterbox (what the network sees,
    /// before normalisation). Useful to inspect or to compare against other implementations.
    /// [`Fit::Tiles`] has several views: use [`views`](Self::views).
    pub fn resize_and_crop(&self, rgb: &RgbImage, input: &str) -> Result<Vec<u8>> {
        let (width, height) = rgb.dimensions();
        let resize_error = |reason: String| Error::Resize { input: input.to_owned(), reason };
        if width == 0 || height == 0 {
            return Err(resize_error(format!("image has zero size {width}x{height}")));
        }
        match self.fit {
            Fit::CenterCrop => {}
            Fit::Letterbox => return self.letterbox(rgb, input),
            Fit::Tiles => return Err(resize_error("the tiles fit has several views; ask for views()".to_owned())),
        }
        let (new_w, new_h) = self.resized_size(width, height);
        let crop = self.crop.min(new_w).min(new_h);
        if crop != self.crop {
            return Err(resize_error(format!(
                "resize target {new_w}x{new_h} is smaller than the {0}x{0} crop",
                self.crop
            )));
        }
        // Crop box in resized coordinates (torchvision: round half to even), mapped back to the
        // source with the same per-axis scale the full resize would use.
        let left = round_half_even(f64::from(new_w - crop) / 2.0);
        let top = round_half_even(f64::from(new_h - crop) / 2.0);
        let scale_x = f64::from(width) / f64::from(new_w);
        let scale_y = f64::from(height) / f64::from(new_h);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
            left * scale_x,
            top * scale_y,
            f64::from(crop) * scale_x,
            f64::from(crop) * scale_y,
        );
        let src =
            ImageRef::new(width, height, rgb.as_raw(), PixelType::U8x3).map_err(|e| resize_error(e.to_string()))?;
        let mut dst = Image::new(crop, crop, PixelType::U8x3);
        Resizer::new().resize(&src, &mut dst, &options).map_err(|e| resize_error(e.to_string()))?;
        Ok(dst.into_vec())
    }
}

impl Preprocessing {
    /// The size of the whole image inside the letterbox: longer side `crop`, shorter side scaled
    /// and rounded (at least one pixel).
    pub fn letterboxed_size(&self, width: u32, height: u32) -> (u32, u32) {
        let side = u64::from(self.crop);
        let scaled = |short: u32, long: u32| {
            let s = (side * u64::from(short) * 2 + u64::from(long.max(1))) / (2 * u64::from(long.max(1)));
            u32::try_from(s.clamp(1, side)).unwrap_or(self.crop)
        };
        if width >= height { (self.crop, scaled(height, width)) } else { (scaled(width, height), self.crop) }
    }

    /// The source square `(left, top, side)` resampled to crop × crop.
    fn resample_square(&self, rgb: &RgbImage, input: &str, (left, top, side): (u32, u32, u32)) -> Result<Vec<u8>> {
        let resize_error = |reason: String| Error::Resize { input: input.to_owned(), reason };
        let (width, height) = rgb.dimensions();
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
            f64::from(left),
            f64::from(top),
            f64::from(side),
            f64::from(side),
        );
        let src =
            ImageRef::new(width, height, rgb.as_raw(), PixelType::U8x3).map_err(|e| resize_error(e.to_string()))?;
        let mut dst = Image::new(self.crop, self.crop, PixelType::U8x3);
        Resizer::new().resize(&src, &mut dst, &options).map_err(|e| resize_error(e.to_string()))?;
        Ok(dst.into_vec())
    }

    fn letterbox(&self, rgb: &RgbImage, input: &str) -> Result<Vec<u8>> {
        let resize_error = |reason: String| Error::Resize { input: input.to_owned(), reason };
        let (width, height) = rgb.dimensions();
        let (new_w, new_h) = self.letterboxed_size(width, height);
        let src =
            ImageRef::new(width, height, rgb.as_raw(), PixelType::U8x3).map_err(|e| resize_error(e.to_string()))?;
        let mut fitted = Image::new(new_w, new_h, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Resizer::new().resize(&src, &mut fitted, &options).map_err(|e| resize_error(e.to_string()))?;
        let side = self.crop as usize;
        let pad: [u8; 3] = std::array::from_fn(|c| (self.mean[c] * 255.0).round().clamp(0.0, 255.0) as u8);
        let mut canvas: Vec<u8> = pad.iter().copied().cycle().take(side * side * 3).collect();
        let (left, top) = ((side - new_w as usize) / 2, (side - new_h as usize) / 2);
        let row_bytes = new_w as usize * 3;
        for (y, row) in fitted.buffer().chunks_exact(row_bytes).enumerate() {
            let start = ((top + y) * side + left) * 3;
            canvas[start..start + row_bytes].copy_from_slice(row);
        }
        Ok(canvas)
    }
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self::RESNET_IMAGENET
    }
}

/// Python's `round()` (banker's rounding), which torchvision's `CenterCrop` uses.
fn round_half_even(x: f64) -> f64 {
    let rounded = x.round();
    if (x - x.trunc()).abs() == 0.5 && rounded % 2.0 != 0.0 { rounded - x.signum() } else { rounded }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x * y) % 251) as u8])
        })
    }

    #[test]
    fn resized_size_follows_torchvision() {
        let p = Preprocessing::RESNET_IMAGENET;
        assert_eq!(p.resized_size(800, 600), (341, 256));
        assert_eq!(p.resized_size(500, 375), (341, 256));
        assert_eq!(p.resized_size(300, 300), (256, 256));
        assert_eq!(p.resized_size(3, 10000), (256, 853_333));
        assert_eq!(p.resized_size(1, 1), (256, 256));
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(58.5), 58.0);
        assert_eq!(round_half_even(59.5), 60.0);
        assert_eq!(round_half_even(16.0), 16.0);
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.4), 1.0);
    }

    /// Resampling only the crop box must give the same pixels as resizing the whole image and
    /// cropping afterwards (the reference procedure).
    #[test]
    fn crop_box_resize_equals_resize_then_crop() {
        let p = Preprocessing::RESNET_IMAGENET;
        for (w, h) in [(800, 600), (300, 1000), (257, 256), (120, 90), (500, 375)] {
            let rgb = gradient(w, h);
            let fast = p.resize_and_crop(&rgb, "gradient").unwrap();

            let (nw, nh) = p.resized_size(w, h);
            let src = ImageRef::new(w, h, rgb.as_raw(), PixelType::U8x3).unwrap();
            let mut full = Image::new(nw, nh, PixelType::U8x3);
            let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
            Resizer::new().resize(&src, &mut full, &opts).unwrap();
            let left = round_half_even(f64::from(nw - 224) / 2.0) as usize;
            let top = round_half_even(f64::from(nh - 224) / 2.0) as usize;
            let full = full.into_vec();
            let mut max_diff = 0i32;
            for y in 0..224 {
                for x in 0..224 {
                    for c in 0..3 {
                        let a = fast[(y * 224 + x) * 3 + c] as i32;
                        let b = full[((y + top) * nw as usize + x + left) * 3 + c] as i32;
                        max_diff = max_diff.max((a - b).abs());
                    }
                }
            }
            assert!(max_diff <= 1, "{w}x{h}: max pixel difference {max_diff}");
        }
    }

    #[test]
    fn tensor_is_normalised_channel_major() {
        let p = Preprocessing::RESNET_IMAGENET;
        let rgb = RgbImage::from_pixel(300, 400, image::Rgb([255, 0, 128]));
        let t = p.tensor(&rgb, "flat").unwrap();
        assert_eq!(t.len(), 3 * 224 * 224);
        let plane = 224 * 224;
        let expect = |v: f32, c: usize| (v / 255.0 - p.mean[c]) / p.std[c];
        assert!((t[0] - expect(255.0, 0)).abs() < 1e-5);
        assert!((t[plane + 5] - expect(0.0, 1)).abs() < 1e-5);
        assert!((t[2 * plane + 77] - expect(128.0, 2)).abs() < 1e-5);
    }

    #[test]
    fn tiny_and_extreme_aspect_images_work() {
        let p = Preprocessing::RESNET_IMAGENET;
        for (w, h) in [(1, 1), (10000, 3), (3, 10000), (1, 2)] {
            let t = p.tensor(&gradient(w, h), "odd").unwrap();
            assert_eq!(t.len(), 3 * 224 * 224);
            assert!(t.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn letterbox_keeps_the_whole_image_centred_on_mean_padding() {
        let p = Preprocessing::RESNET_IMAGENET_LETTERBOX;
        assert_eq!(p.letterboxed_size(800, 200), (224, 56));
        assert_eq!(p.letterboxed_size(3, 10000), (1, 224));
        assert_eq!(p.letterboxed_size(100, 100), (224, 224));
        // A red banner 4:1: rows 84..140 red, the rest mean grey (zero after normalisation).
        let rgb = RgbImage::from_pixel(400, 100, image::Rgb([255, 0, 0]));
        let pixels = p.resize_and_crop(&rgb, "banner").unwrap();
        assert_eq!(pixels.len(), 224 * 224 * 3);
        let at = |x: usize, y: usize| &pixels[(y * 224 + x) * 3..(y * 224 + x) * 3 + 3];
        assert_eq!(at(0, 0), [124, 116, 104]);
        assert_eq!(at(223, 83), [124, 116, 104]);
        assert_eq!(at(0, 84), [255, 0, 0]);
        assert_eq!(at(223, 139), [255, 0, 0]);
        assert_eq!(at(100, 140), [124, 116, 104]);
        let t = p.tensor(&rgb, "banner").unwrap();
        assert!(t[0].abs() < 0.01 && t[224 * 224].abs() < 0.01, "padding is ~0 after normalisation");
        for (w, h) in [(1, 1), (10000, 3), (3, 10000), (224, 1), (225, 224)] {
            let t = p.tensor(&gradient(w, h), "odd").unwrap();
            assert_eq!(t.len(), 3 * 224 * 224);
        }
    }

    #[test]
    fn tiles_cover_the_longer_side_of_elongated_images_only() {
        let p = Preprocessing::RESNET_IMAGENET.with_fit(Fit::Tiles);
        assert_eq!(p.tile_squares(100, 100), []);
        assert_eq!(p.tile_squares(125, 100), [], "1.25 is still near-square");
        assert_eq!(p.tile_squares(150, 100), [(0, 0, 100), (50, 0, 100)]);
        assert_eq!(p.tile_squares(100, 250), [(0, 0, 100), (0, 75, 100), (0, 150, 100)]);
        assert_eq!(p.tile_squares(1000, 10), [(0, 0, 10), (495, 0, 10), (990, 0, 10)]);
        assert_eq!(p.view_count(150, 100), 3);
        assert_eq!(Preprocessing::RESNET_IMAGENET_LETTERBOX.tile_squares(1000, 10), []);
        assert_eq!(Preprocessing::RESNET_IMAGENET_LETTERBOX.view_count(1000, 10), 1);

        // A 3:1 banner, left third red, middle green, right blue: the letterbox view comes first,
        // then one tile per third.
        let rgb = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let views = p.views(&rgb, "banner").unwrap();
        assert_eq!(views.len(), 4);
        assert_eq!(views[0], Preprocessing::RESNET_IMAGENET_LETTERBOX.resize_and_crop(&rgb, "banner").unwrap());
        for (view, colour) in views[1..].iter().zip([[255, 0, 0], [0, 255, 0], [0, 0, 255]]) {
            assert_eq!(view.len(), 224 * 224 * 3);
            // Only the edge columns may blend in a neighbour through the filter's support.
            let exact = view.chunks_exact(3).filter(|px| *px == colour).count();
            assert!(exact >= 224 * 220, "each tile is its third's colour ({exact} exact pixels)");
        }
        let tensor = p.tensor(&rgb, "banner").unwrap();
        assert_eq!(tensor.len(), 4 * 3 * 224 * 224);
        assert!(p.resize_and_crop(&rgb, "banner").is_err(), "several views need views()");
        for (w, h) in [(1, 1), (10000, 3), (3, 10000), (2, 1)] {
            let t = p.tensor(&gradient(w, h), "odd").unwrap();
            assert_eq!(t.len(), p.view_count(w, h) * 3 * 224 * 224);
            assert!(t.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn known_contracts_round_trip_through_their_description() {
        for p in Preprocessing::KNOWN {
            assert_eq!(Preprocessing::from_description(&p.describe()), Some(p));
        }
        assert_eq!(Preprocessing::from_description("RGB; something else"), None);
        assert_eq!(Fit::parse("letterbox"), Some(Fit::Letterbox));
        assert_eq!(Fit::parse("tiles"), Some(Fit::Tiles));
        let tiles = Preprocessing::RESNET_IMAGENET.with_fit(Fit::Tiles);
        assert_eq!(Preprocessing::from_description(&tiles.describe()), None, "no model may declare several views");
        assert_eq!(Preprocessing::RESNET_IMAGENET.with_fit(Fit::Letterbox), Preprocessing::RESNET_IMAGENET_LETTERBOX);
    }

    #[test]
    fn describe_matches_the_reference_metadata() {
        assert_eq!(
            Preprocessing::RESNET_IMAGENET.describe(),
            "RGB; resize shorter side 256; center crop 224; x/255; mean 0.485,0.456,0.406; std 0.229,0.224,0.225; NCHW"
        );
    }
}
