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
    if format == ImageFormatName::Tiff
        && let Some(palette) = TiffPalette::find(bytes)
    {
        let palette =
            palette.map_err(|reason| Error::Decode { input: input.to_owned(), format: format.to_string(), reason })?;
        let indices = decode_rgb(&palette.indices_as_gray, input, limits)?;
        return Ok(DecodedImage { rgb: palette.colourise(indices.rgb), format });
    }
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

/// The first image file directory (IFD) of a classic TIFF: what the few tags the `image` crate
/// does not handle need, read with every offset bounds-checked.
struct TiffIfd<'a> {
    bytes: &'a [u8],
    big_endian: bool,
    /// (tag, field type, count, position of the 4-byte value/offset field).
    entries: Vec<(u16, u16, u32, usize)>,
}

impl<'a> TiffIfd<'a> {
    /// The first IFD, or `None` for anything that is not a readable classic TIFF (BigTIFF too).
    fn read(bytes: &'a [u8]) -> Option<Self> {
        let big_endian = match bytes.get(0..2) {
            Some(b"MM") => true,
            Some(b"II") => false,
            _ => return None,
        };
        let mut ifd = TiffIfd { bytes, big_endian, entries: Vec::new() };
        if ifd.u16_at(2)? != 42 {
            return None;
        }
        let start = ifd.u32_at(4)? as usize;
        let count = ifd.u16_at(start)? as usize;
        for index in 0..count.min(4096) {
            let entry = start.checked_add(2 + index * 12)?;
            let (tag, kind, n) = (ifd.u16_at(entry)?, ifd.u16_at(entry + 2)?, ifd.u32_at(entry + 4)?);
            ifd.entries.push((tag, kind, n, entry + 8));
        }
        Some(ifd)
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = self.bytes.get(at..at.checked_add(2)?)?;
        Some(if self.big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    /// The SHORT values (type 3) of `tag`, inline or at their offset; `None` when absent or of
    /// another type.
    fn shorts(&self, tag: u16) -> Option<Vec<u16>> {
        let &(_, kind, count, field) = self.entries.iter().find(|e| e.0 == tag)?;
        if kind != 3 || count > 1 << 16 {
            return None;
        }
        let start = if count <= 2 { field } else { self.u32_at(field)? as usize };
        (0..count as usize).map(|i| self.u16_at(start.checked_add(i * 2)?)).collect()
    }

    /// The first SHORT value of `tag`.
    fn short(&self, tag: u16) -> Option<u16> {
        self.shorts(tag)?.first().copied()
    }

    /// Where `tag`'s first inline SHORT value lies in the file.
    fn short_position(&self, tag: u16) -> Option<usize> {
        self.entries.iter().find(|e| e.0 == tag && e.1 == 3).map(|e| e.3)
    }
}

/// Whether the first IFD of a TIFF declares associated (premultiplied) alpha: tag 338
/// `ExtraSamples` with value 1.
fn tiff_alpha_is_premultiplied(bytes: &[u8]) -> bool {
    TiffIfd::read(bytes).and_then(|ifd| ifd.short(338)) == Some(1)
}

/// A palette TIFF (PhotometricInterpretation 3, "RGB palette"), which the `image` crate refuses:
/// the same file marked as 8-bit gray, so that the decoder (and its limits) read the indices, and
/// the colour map that turns them into RGB.
struct TiffPalette {
    indices_as_gray: Vec<u8>,
    colours: Vec<[u8; 3]>,
}

impl TiffPalette {
    /// `None` when `bytes` is not a palette TIFF; an error when it is one spamlens cannot read.
    fn find(bytes: &[u8]) -> Option<std::result::Result<Self, String>> {
        let ifd = TiffIfd::read(bytes)?;
        if ifd.short(262)? != 3 {
            return None;
        }
        let bits = ifd.short(258).unwrap_or(1);
        let samples = ifd.short(277).unwrap_or(1);
        if bits != 8 || samples != 1 {
            return Some(Err(format!(
                "palette TIFF with {samples} sample(s) of {bits} bits is unsupported (8-bit palettes are read)"
            )));
        }
        let Some(map) = ifd.shorts(320).filter(|m| m.len() == 3 * 256) else {
            return Some(Err("palette TIFF without a 768-entry ColorMap".into()));
        };
        let Some(position) = ifd.short_position(262) else {
            return Some(Err("palette TIFF with an unreadable PhotometricInterpretation".into()));
        };
        let mut indices_as_gray = bytes.to_vec();
        let black_is_zero = if ifd.big_endian { 1u16.to_be_bytes() } else { 1u16.to_le_bytes() };
        indices_as_gray[position..position + 2].copy_from_slice(&black_is_zero);
        // ColorMap holds all reds, then all greens, then all blues, as 16-bit values.
        let colours = (0..256).map(|i| [map[i], map[256 + i], map[512 + i]].map(|v| (v >> 8) as u8)).collect();
        Some(Ok(TiffPalette { indices_as_gray, colours }))
    }

    /// The indices decoded as gray (every channel equal) turned into the palette's colours.
    fn colourise(&self, mut gray: RgbImage) -> RgbImage {
        for pixel in gray.pixels_mut() {
            pixel.0 = self.colours[usize::from(pixel.0[0])];
        }
        gray
    }
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

    /// A 3×1 uncompressed 8-bit palette TIFF (little-endian) whose pixels are indices 0, 1, 255
    /// of a map where index i is (i, 255 - i, 7).
    fn palette_tiff(bits: u16) -> Vec<u8> {
        let entries: [(u16, u16, u32, u32); 10] = [
            (256, 3, 1, 3), // ImageWidth
            (257, 3, 1, 1), // ImageLength
            (258, 3, 1, u32::from(bits)),
            (259, 3, 1, 1),   // no compression
            (262, 3, 1, 3),   // RGB palette
            (273, 4, 1, 0),   // StripOffsets, patched below
            (277, 3, 1, 1),   // SamplesPerPixel
            (278, 3, 1, 1),   // RowsPerStrip
            (279, 4, 1, 3),   // StripByteCounts
            (320, 3, 768, 0), // ColorMap, patched below
        ];
        let ifd_len = 2 + entries.len() * 12 + 4;
        let (map_at, pixels_at) = (8 + ifd_len, 8 + ifd_len + 768 * 2);
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            let value = match tag {
                273 => pixels_at as u32,
                320 => map_at as u32,
                _ => value,
            };
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&kind.to_le_bytes());
            tiff.extend_from_slice(&count.to_le_bytes());
            tiff.extend_from_slice(&value.to_le_bytes());
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
        for channel in 0..3u16 {
            for i in 0..256u16 {
                let v = [i, 255 - i, 7][usize::from(channel)];
                tiff.extend_from_slice(&(v * 257).to_le_bytes());
            }
        }
        tiff.extend_from_slice(&[0, 1, 255]);
        tiff
    }

    #[test]
    fn palette_tiff_is_read_through_its_colour_map() {
        let decoded = decode_rgb(&palette_tiff(8), "p.tif", &DecodeLimits::DEFAULT).unwrap();
        assert_eq!((decoded.width(), decoded.height(), decoded.format), (3, 1, ImageFormatName::Tiff));
        let pixels: Vec<[u8; 3]> = decoded.rgb.pixels().map(|p| p.0).collect();
        assert_eq!(pixels, [[0, 255, 7], [1, 254, 7], [255, 0, 7]]);
        let err = decode_rgb(&palette_tiff(4), "p4.tif", &DecodeLimits::DEFAULT).unwrap_err().to_string();
        assert!(err.starts_with("p4.tif: ") && err.contains("palette TIFF with 1 sample(s) of 4 bits"), "{err}");
        // Limits still apply to the palette path.
        let tight = DecodeLimits { max_width: 2, ..DecodeLimits::DEFAULT };
        assert!(decode_rgb(&palette_tiff(8), "p.tif", &tight).is_err());
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
