//! Writing ONNX: the only place in spamlens that produces `.onnx` files.
//!
//! [`OnnxGraphBuilder`] assembles nodes, initialisers and metadata and encodes them with
//! tract-onnx's generated protobuf types. The backbone converter builds on it; [`head`] writes the
//! trained head on its own and attached to the backbone (the combined graph the runtimes load).

pub mod head;
mod onnx;
pub mod quantize;
pub mod quantize_static;

pub use head::{
    HeadGraph, HeadProvenance, META_TEXT_THRESHOLDS, Precision, TextGraph, combine, fused_head_graph, head_graph,
    read_head_graph,
};
pub use onnx::{Attribute, OnnxGraphBuilder, OutputSpec, read_metadata};
pub use quantize::{META_WEIGHTS, QuantizationReport, quantize_conv_weights};
pub use quantize_static::{ActivationRanges, StaticQuantizationReport, calibrate, quantize_static};
