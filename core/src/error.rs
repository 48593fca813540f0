//! The one error type of `spamlens-core`: every variant names the input it is about and what is wrong.

/// Everything that can go wrong while decoding, preprocessing or running a model, parsing an
/// email, or loading a text filter.
///
/// `input` is the caller's name for the image (a path, an attachment name, "upload #3"), and `model`
/// the caller's name for the model, so a message can be shown to a user as it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input had no bytes at all.
    #[error("{input}: empty input (0 bytes)")]
    EmptyInput { input: String },

    /// The bytes are not one of the image formats spamlens decodes.
    #[error("{input}: not a supported image (first bytes {magic}); supported: JPEG, PNG, GIF, BMP, WebP, TIFF, ICO")]
    UnknownFormat { input: String, magic: String },

    /// The encoded input is larger than the configured byte limit.
    #[error("{input}: {bytes} bytes of encoded image, over the input-size limit of {limit} bytes")]
    InputTooLarge { input: String, bytes: usize, limit: usize },

    /// The header announces a width or height over the configured limit; nothing was decoded.
    #[error("{input}: {format} image is {width}x{height} pixels, over the dimension limit of {max_width}x{max_height}")]
    DimensionsTooLarge { input: String, format: String, width: u32, height: u32, max_width: u32, max_height: u32 },

    /// The header announces more pixels (width × height) than the configured limit; nothing was decoded.
    #[error("{input}: {format} image is {width}x{height} = {pixels} pixels, over the pixel limit of {limit}")]
    TooManyPixels { input: String, format: String, width: u32, height: u32, pixels: u64, limit: u64 },

    /// Decoding would allocate more than the configured number of bytes; nothing was decoded.
    #[error(
        "{input}: decoding the {width}x{height} {format} image needs {needed} bytes, over the decoded-size limit of {limit} bytes"
    )]
    DecodedSizeTooLarge { input: String, format: String, width: u32, height: u32, needed: u64, limit: u64 },

    /// The header says zero width or height.
    #[error("{input}: {format} image has zero width or height ({width}x{height})")]
    ZeroSize { input: String, format: String, width: u32, height: u32 },

    /// The decoder rejected the data (truncated, corrupt, or an unsupported variant of the format).
    #[error("{input}: corrupt or unsupported {format} image: {reason}")]
    Decode { input: String, format: String, reason: String },

    /// Resizing failed (should not happen for images that passed the limits; reported, not panicked).
    #[error("{input}: resizing failed: {reason}")]
    Resize { input: String, reason: String },

    /// The model bytes could not be parsed or prepared for running.
    #[error("model {model}: cannot load: {reason}")]
    ModelLoad { model: String, reason: String },

    /// The model loaded but its signature is not one spamlens can drive.
    #[error("model {model}: unexpected signature: {reason}")]
    ModelSignature { model: String, reason: String },

    /// A caller asked for an output the model does not have.
    #[error("model {model}: no output named '{name}' (outputs: {available})")]
    NoSuchOutput { model: String, name: String, available: String },

    /// The batch handed to the model has the wrong length for its declared shape.
    #[error("model {model}: input batch of {got} floats does not hold {batch} images of {per_image} floats")]
    BatchShape { model: String, got: usize, batch: usize, per_image: usize },

    /// The input is larger than the message-size limit; nothing was parsed.
    #[error("{input}: {bytes} bytes of message, over the message-size limit of {limit} bytes")]
    MessageTooLarge { input: String, bytes: usize, limit: usize },

    /// The input holds no email message (no header at its start).
    #[error("{input}: not an email message: {reason}")]
    NotAMessage { input: String, reason: String },

    /// A text filter state or setting is unusable (names the file or the setting).
    #[error("text filter: {reason}")]
    TextFilter { reason: String },

    /// A message-verdict rule has a setting out of its range (names the setting).
    #[error("verdict rule: {reason}")]
    VerdictRule { reason: String },

    /// The OCR engine could not read the image (the image still gets its image-only verdict).
    #[error("{input}: OCR failed: {reason}")]
    Ocr { input: String, reason: String },

    /// The OCR engine ran past its time limit (the image still gets its image-only verdict).
    #[error("{input}: OCR stopped after the {limit_ms} ms time limit")]
    OcrTimedOut { input: String, limit_ms: u64 },

    /// tract failed while running the graph.
    #[error("model {model}: inference failed: {reason}")]
    Inference { model: String, reason: String },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
