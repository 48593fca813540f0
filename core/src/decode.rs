//! Image bytes → 8-bit RGB, with limits checked before any pixel buffer is allocated.
//!
//! Email images are hostile input: a 60-byte PNG can claim to be 100000×100000. Every decode first
//! reads only the header, checks the dimensions and the decoded size against [`DecodeLimits`], and
//! only then decodes. Whatever the source colour model (palette, gray, 16-bit, CMYK, with or without
//! alpha), the result is RGB8 with transparency composited onto white, which is how a mail client
//! shows the image to its reader.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// Limits applied before decoding; over any of them the image is refused with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest accepted pixel count (width × height): a server caps the work one image can cause
    /// below what the side limits alone allow.
    pub max_pixels: u64,
    /// Largest accepted decoded size in bytes (width × height × bytes per pixel of the source
    /// colour type), which bounds the memory one image can take.
    pub max_decoded_bytes: u64,
    /// Largest accepted encoded input in bytes.
    pub max_input_bytes: usize,
}

impl DecodeLimits {
    /// 16384 px per side, 16384² pixels, 256 MiB decoded, 64 MiB encoded: larger than any image a
    /// mail needs to show.
    pub const DEFAULT: DecodeLimits = DecodeLimits {
        max_width: 16_384,
        max_height: 16_384,
        max_pixels: 16_384 * 16_384,
        max_decoded_bytes: 256 * 1024 * 1024,
        max_input_bytes: 64 * 1024 * 1024,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A decoded image: RGB8 pixels plus what the header said about the original.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// The pixels, alpha composited onto white.
    pub rgb: RgbImage,
    /// The container format that was detected from the bytes (not from a file name).
    pub format: ImageFormatName,
}

impl DecodedImage {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.rgb.width()
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.rgb.height()
    }
}

/// The image formats spamlens decodes, named as stored in feature stores and shown in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormatName {
    Jpeg,
    Png,
    Gif,
    Bmp,
    WebP,
    Tiff,
    Ico,
}

impl ImageFormatName {
    /// Upper-case short name ("JPEG", "PNG", …), the same vocabulary as the shared manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Gif => "GIF",
            Self::Bmp => "BMP",
            Self::WebP => "WEBP",
            Self::Tiff => "TIFF",
            Self::Ico => "ICO",
        }
    }

    fn from_image_format(format: ImageFormat) -> Option<Self> {
        Some(match format {
            ImageFormat::Jpeg => Self::Jpeg,
            ImageFormat::Png => Self::Png,
            ImageFormat::Gif => Self::Gif,
            ImageFormat::Bmp => Self::Bmp,
            ImageFormat::WebP => Self::WebP,
            ImageFormat::Tiff => Self::Tiff,
            ImageFormat::Ico => Self::Ico,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ImageFormatName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detects the format of `bytes` from their content alone.
pub fn detect_format(bytes: &[u8], input: &str) -> Result<ImageFormatName> {
    if bytes.is_empty() {
        return Err(Error::EmptyInput { input: input.to_owned() });
    }
    image::guess_format(bytes)
        .ok()
        .and_then(ImageFormatName::from_image_format)
        .ok_or_else(|| Error::UnknownFormat { input: input.to_owned(), magic: magic_hex(bytes) })
}

/// Decodes `bytes` (named `input` in errors) into RGB8 within `limits`.
///
/// GIF and animated WebP give their first frame. Alpha is composited onto white; 16-bit and float
/// images are scaled to 8 bits; CMYK JPEG is converted to RGB by the decoder.
pub fn decode_rgb(bytes: &[u8], input: &str, limits: &DecodeLimits) -> Result<DecodedImage> {
    if bytes.len() > limits.max_input_bytes {
        return Err(Error::InputTooLarge {
            input: input.to_owned(),
            bytes: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let format = detect_format(bytes, input)?;
    let decode_error = |e: image::ImageError| Error::Decode {
        input: input.to_owned(),
        format: format.to_string(),
        reason: e.to_string(),
    };

    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(to_image_format(format));
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_decoded_bytes);
    // Our own checks below give the precise messages; the decoder's limits are the backstop for
    // formats whose decoders allocate while reading the header.
    reader.limits(decoder_limits);
    let decoder = reader.into_decoder().map_err(|e| limit_or_decode_error(e, bytes, input, format, limits))?;

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::ZeroSize { input: input.to_owned(), format: format.to_string(), width, height });
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(Error::DimensionsTooLarge {
            input: input.to_owned(),
            format: format.to_string(),
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    check_pixel_count(input, format, width, height, limits)?;
    let bytes_per_pixel = u64::from(decoder.color_type().bytes_per_pixel());
    // Converting to RGBA8 for compositing may need up to 4 bytes per pixel more.
    let needed = u64::from(width) * u64::from(height) * (bytes_per_pixel.max(4));
    if needed > limits.max_decoded_bytes {
        return Err(Error::DecodedSizeTooLarge {
            input: input.to_owned(),
            format: format.to_string(),
            width,
            height,
            needed,
            limit: limits.max_decoded_bytes,
        });
    }

    let image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    let alpha = if format == ImageFormatName::Tiff && tiff_alpha_is_premultiplied(bytes) {
        AlphaKind::Premultiplied
    } else {
        AlphaKind::Straight
    };
    Ok(DecodedImage { rgb: flatten_onto_white(image, alpha), format })
}

/// Turns a decoder error into ours. When the decoder refused the header because of our limits,
/// the header is read again without limits (header parsing allocates no pixel buffers) so the
/// message can say which dimensions were over which limit.
fn limit_or_decode_error(
    e: image::ImageError,
    bytes: &[u8],
    input: &str,
    format: ImageFormatName,
    limits: &DecodeLimits,
) -> Error {
    if matches!(e, image::ImageError::Limits(_)) {
        let mut reader = ImageReader::new(Cursor::new(bytes));
        reader.set_format(to_image_format(format));
        reader.no_limits();
        if let Ok((width, height)) = reader.into_dimensions() {
            if width > limits.max_width || height > limits.max_height {
                return Error::DimensionsTooLarge {
                    input: input.to_owned(),
                    format: format.to_string(),
                    width,
                    height,
                    max_width: limits.max_width,
                    max_height: limits.max_height,
                };
            }
            if let Err(pixels) = check_pixel_count(input, format, width, height, limits) {
                return pixels;
            }
            return Error::DecodedSizeTooLarge {
                input: input.to_owned(),
                format: format.to_string(),
                width,
                height,
                needed: u64::from(width) * u64::from(height) * 4,
                limit: limits.max_decoded_bytes,
            };
        }
    }
    let reason = if matches!(e, image::ImageError::Limits(_)) {
        format!(
            "over the decode limits ({}x{} pixels, {} bytes decoded): {e}",
            limits.max_width, limits.max_height, limits.max_decoded_bytes
        )
    } else {
        e.to_string()
    };
    Error::Decode { input: input.to_owned(), format: format.to_string(), reason }
}

/// Refuses an image whose width × height is over [`DecodeLimits::max_pixels`].
fn check_pixel_count(
    input: &str,
    format: ImageFormatName,
    width: u32,
    height: u32,
    limits: &DecodeLimits,
) -> Result<()> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::TooManyPixels {
            input: input.to_owned(),
            format: format.to_string(),
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

fn to_image_format(format: ImageFormatName) -> ImageFormat {
    match format {
        ImageFormatName::Jpeg => ImageFormat::Jpeg,
        ImageFormatName::Png => ImageFormat::Png,
        ImageFormatName::Gif => ImageFormat::Gif,
        ImageFormatName::Bmp => ImageFormat::Bmp,
        ImageFormatName::WebP => ImageFormat::WebP,
        ImageFormatName::Tiff => ImageFormat::Tiff,
        ImageFormatName::Ico => ImageFormat::Ico,
    }
}

/// How colour values relate to alpha in the decoded pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AlphaKind {
    /// Colour is independent of alpha (PNG, GIF, WebP, most TIFF).
    Straight,
    /// Colour is already multiplied by alpha (TIFF `ExtraSamples` = 1, "associated alpha"), which
    /// the `image` crate passes through unchanged.
    Premultiplied,
}

/// Whether the first IFD of a TIFF declares associated (premultiplied) alpha: tag 338
/// `ExtraSamples` with value 1. A minimal, bounds-checked read of the classic TIFF header.
fn tiff_alpha_is_premultiplied(bytes: &[u8]) -> bool {
    let read_u16 = |at: usize, big: bool| -> Option<u16> {
        let b = bytes.get(at..at + 2)?;
        Some(if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    };
    let read_u32 = |at: usize, big: bool| -> Option<u32> {
        let b = bytes.get(at..at + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let big = match bytes.get(0..2) {
        Some(b"MM") => true,
        Some(b"II") => false,
        _ => return false,
    };
    let inner = || -> Option<bool> {
        if read_u16(2, big)? != 42 {
            return None; // BigTIFF and others: treat as straight alpha
        }
        let ifd = read_u32(4, big)? as usize;
        let count = read_u16(ifd, big)? as usize;
        for index in 0..count.min(4096) {
            let entry = ifd + 2 + index * 12;
            if read_u16(entry, big)? == 338 {
                // SHORT values (type 3); the first extra sample is the alpha channel of RGBA.
                return Some(read_u16(entry + 2, big)? == 3 && read_u16(entry + 8, big)? == 1);
            }
        }
        Some(false)
    };
    inner().unwrap_or(false)
}

/// RGB8 from any colour type; transparent pixels become white as a mail client would draw them.
fn flatten_onto_white(image: DynamicImage, alpha_kind: AlphaKind) -> RgbImage {
    if !image.color().has_alpha() {
        return match image {
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => other.to_rgb8(),
        };
    }
    let rgba = image.to_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = RgbImage::new(width, height);
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u32::from(src[3]);
        for channel in 0..3 {
            let colour = u32::from(src[channel]);
            dst[channel] = match alpha_kind {
                // c·a + 255·(1 − a), rounded; at most 255.
                AlphaKind::Straight => ((colour * alpha + 255 * (255 - alpha) + 127) / 255) as u8,
                // The colour already carries the alpha factor.
                AlphaKind::Premultiplied => (colour + 255 - alpha).min(255) as u8,
            };
        }
    }
    rgb
}

fn magic_hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_is_composited_onto_white() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([0, 100, 200, 255]));
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(rgba), AlphaKind::Straight);
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0, 100, 200]);
    }

    #[test]
    fn half_transparent_black_is_mid_gray() {
        let mut rgba = image::RgbaImage::new(1, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 128]));
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(rgba), AlphaKind::Straight);
        assert_eq!(rgb.get_pixel(0, 0).0, [127, 127, 127]);
    }

    #[test]
    fn premultiplied_alpha_is_composited_without_a_second_multiply() {
        let mut rgba = image::RgbaImage::new(1, 1);
        // 68 grey at alpha 108, premultiplied: 68·108/255 ≈ 29.
        rgba.put_pixel(0, 0, image::Rgba([29, 29, 29, 108]));
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(rgba), AlphaKind::Premultiplied);
        assert_eq!(rgb.get_pixel(0, 0).0, [176, 176, 176]);
    }

    #[test]
    fn tiff_extra_samples_tag_is_read() {
        // Little-endian TIFF, one IFD with one entry: ExtraSamples (338), SHORT, count 1, value 1.
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&[1, 0, 0x52, 0x01, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        assert!(tiff_alpha_is_premultiplied(&tiff));
        tiff[18] = 2; // unassociated alpha
        assert!(!tiff_alpha_is_premultiplied(&tiff));
        assert!(!tiff_alpha_is_premultiplied(b"II*\0\xff\xff\xff\x7f"));
        assert!(!tiff_alpha_is_premultiplied(b"MM"));
    }

    #[test]
    fn empty_and_unknown_inputs_are_named() {
        let err = decode_rgb(&[], "a.png", &DecodeLimits::DEFAULT).unwrap_err();
        assert_eq!(err.to_string(), "a.png: empty input (0 bytes)");
        let err = decode_rgb(b"hello world", "b.jpg", &DecodeLimits::DEFAULT).unwrap_err();
        assert!(matches!(err, Error::UnknownFormat { .. }), "{err}");
        assert!(err.to_string().starts_with("b.jpg: not a supported image (first bytes 68 65 6c"));
    }

    #[test]
    fn input_byte_limit_is_checked_first() {
        let limits = DecodeLimits { max_input_bytes: 4, ..DecodeLimits::DEFAULT };
        let err = decode_rgb(&[0u8; 5], "x", &limits).unwrap_err();
        assert!(matches!(err, Error::InputTooLarge { bytes: 5, limit: 4, .. }), "{err}");
    }
}
