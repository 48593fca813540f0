//! Writing ONNX: the only place in spamlens that produces `.onnx` files.
//!
//! [`OnnxGraphBuilder`] assembles nodes, initialisers and metadata and encodes them with
//! tract-onnx's generated protobuf types. The backbone converter builds on it today; the trained
//! head and the combined backbone + head graph are written with it too.

mod onnx;

pub use onnx::{Attribute, OnnxGraphBuilder, OutputSpec};
