//! `spamlens-core`: what the native and the WebAssembly runtimes share.
//!
//! Image bytes are decoded within [`DecodeLimits`] ([`decode`]), turned into the backbone's input
//! tensor by the one preprocessing implementation ([`preprocess`]), and run through an ONNX graph
//! with tract ([`model`]); a [`Classifier`] reads a combined graph's contract from its metadata and
//! turns image bytes into a labelled [`Verdict`]. Whole messages are parsed by [`email`], their
//! text scored by the CLA_ANN text filter ([`cla_ann`]) and the parts combined into one verdict per
//! message by [`scan`]. Text drawn in images enters through [`ocr`]: the pixels an OCR engine is
//! given, the words it read, and the text features a fused model weighs. There is no file or
//! network I/O here: callers hand in bytes and names.

pub mod cla_ann;
pub mod classifier;
pub mod decode;
pub mod email;
pub mod error;
pub mod feedback;
pub mod model;
pub mod ocr;
pub mod preprocess;
pub mod scan;

pub use classifier::{Classifier, ImageReading, ReadText, Scores, Verdict};
pub use decode::{DecodeLimits, DecodedImage, ImageFormatName, decode_rgb, detect_format};
pub use error::{Error, Result};
pub use model::{
    Batching, LoadPhase, LoadPhases, Model, ModelInput, ModelOptions, ModelOutputs, NodeTiming, OutputTensor,
};
pub use preprocess::{Fit, MAX_TILES, Preprocessing, TILE_MIN_ASPECT};

/// The name of the 2048-d feature output of the spamlens backbone graph.
pub const FEATURES_OUTPUT: &str = "features";
/// The width of the backbone's feature vector.
pub const FEATURE_DIM: usize = 2048;

/// An image decoded and preprocessed into input tensors, with what was learnt on the way.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// `3 × crop × crop` normalised floats, channel-major, per view: one view, or for
    /// [`Fit::Tiles`] the letterbox and each tile one after the other.
    pub tensor: Vec<f32>,
    /// How many views `tensor` holds.
    pub views: usize,
    /// Width of the decoded image in pixels.
    pub width: u32,
    /// Height of the decoded image in pixels.
    pub height: u32,
    /// Detected container format.
    pub format: ImageFormatName,
    /// The OCR engine's input, when the model reads text and the image is large enough to hold any.
    pub ocr_image: Option<ocr::OcrImage>,
    /// Whether the model reads this image's text (a fused model with reading on): then an image
    /// without `ocr_image` has no text to read, which is a reading, not a failure.
    pub reads_text: bool,
}

impl PreparedImage {
    /// Takes the tensor out, keeping what describes the image.
    pub fn split(self) -> (Vec<f32>, PreparedImage) {
        let PreparedImage { tensor, views, width, height, format, ocr_image, reads_text } = self;
        (tensor, PreparedImage { tensor: Vec::new(), views, width, height, format, ocr_image, reads_text })
    }
}

/// Decodes `bytes` (called `input` in errors) and preprocesses them for the backbone.
pub fn prepare_image(
    bytes: &[u8],
    input: &str,
    limits: &DecodeLimits,
    preprocessing: &Preprocessing,
) -> Result<PreparedImage> {
    let decoded = decode_rgb(bytes, input, limits)?;
    prepare_decoded(&decoded, input, preprocessing)
}

/// Preprocesses a decoded image for the backbone.
pub fn prepare_decoded(decoded: &DecodedImage, input: &str, preprocessing: &Preprocessing) -> Result<PreparedImage> {
    let tensor = preprocessing.tensor(&decoded.rgb, input)?;
    let views = tensor.len() / preprocessing.values_per_image().max(1);
    Ok(PreparedImage {
        tensor,
        views,
        width: decoded.width(),
        height: decoded.height(),
        format: decoded.format,
        ocr_image: None,
        reads_text: false,
    })
}
