//! Engine settings for tract measured to run our convolutional graphs faster on this kind of CPU.
//!
//! tract 0.23.9 exposes its heuristics as knobs. Two of its defaults cost us time natively
//! (`spamlens-op-profile` and `spamlens-throughput` on a 2-core Intel Xeon with AVX-512, ResNet-50,
//! in one script against the defaults; the README's Benchmarks section has the numbers):
//! - 3×3 convolutions gather their im2col panels lazily, one scalar at a time, inside the matrix
//!   product (10% of the time). Materialising im2col for kernels under 10 taps (the 3×3 ones;
//!   the 7×7 stem stays lazy) is 6–8% faster on one core and on two.
//! - On Intel CPUs with AVX-512, tract's kernel-selection cost model is marked "forced"
//!   (uncalibrated): it picks 32×5 tiles for the 7×7 outputs of the last stage and re-streams their
//!   weights from L3. The model tract calibrated on AMD's AVX-512 picks tiles that are another
//!   8–9% faster on this Intel Xeon.
//!
//! An operator's own `TRACT_*` environment variables still win over both.
//! WebAssembly keeps tract's defaults (its own eager-scratch ceiling and blocked convolutions).

/// The im2col knob and the value we optimise models with.
#[cfg(not(target_family = "wasm"))]
const LAZY_IM2COL_MIN_KERNEL: (&str, &str) = ("TRACT_LAZY_IM2COL_MIN_KERNEL", "10");

/// Runs `optimise` (tract's declutter + optimise of one model) with our knob values in scope, unless
/// the process environment sets the same knob.
pub(crate) fn with_engine_knobs<R>(optimise: impl FnOnce() -> R) -> R {
    #[cfg(not(target_family = "wasm"))]
    {
        let (name, value) = LAZY_IM2COL_MIN_KERNEL;
        if std::env::var_os(name).is_none()
            && let Ok(scope) = tract_onnx::tract_core::knobs::KnobScope::new([(name, value)])
        {
            return scope.enter(optimise);
        }
    }
    optimise()
}

/// Selects tract's AMD-calibrated AVX-512 kernel cost model on Intel CPUs with AVX-512, where its
/// Intel model is uncalibrated (see the module docs). Does nothing elsewhere, or when
/// `TRACT_X86_KIND` is already set. tract reads this choice only from the environment.
///
/// # Safety
/// Sets a process environment variable: call it at the start of `main`, before any other thread
/// exists (the same contract as [`std::env::set_var`]).
pub unsafe fn select_matmul_cost_model() {
    #[cfg(target_arch = "x86_64")]
    {
        const KIND: &str = "TRACT_X86_KIND";
        if std::env::var_os(KIND).is_none() && is_intel() && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the caller guarantees that no other thread runs yet.
            unsafe { std::env::set_var(KIND, "amd") };
        }
    }
}

/// Whether the CPU reports the vendor string "GenuineIntel".
#[cfg(target_arch = "x86_64")]
fn is_intel() -> bool {
    // CPUID leaf 0 is available on every x86_64 CPU.
    #[allow(unused_unsafe)]
    let id = unsafe { std::arch::x86_64::__cpuid(0) };
    let mut vendor = [0u8; 12];
    vendor[0..4].copy_from_slice(&id.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&id.edx.to_le_bytes());
    vendor[8..12].copy_from_slice(&id.ecx.to_le_bytes());
    &vendor == b"GenuineIntel"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(target_family = "wasm"))]
    fn the_im2col_knob_is_one_tract_knows_and_can_scope() {
        let (name, value) = LAZY_IM2COL_MIN_KERNEL;
        let scope = tract_onnx::tract_core::knobs::KnobScope::new([(name, value)]);
        assert!(scope.is_ok(), "tract no longer accepts {name}={value} in a scope: {:?}", scope.err());
    }

    /// A one-convolution ONNX model: input `x` [N, 8, 16, 16], a 3×3 kernel to 64 channels (more
    /// than one row panel of any kernel, so tract weighs eager against lazy im2col).
    #[cfg(not(target_family = "wasm"))]
    fn conv3x3_model() -> Vec<u8> {
        use prost::Message;
        use tract_onnx::pb;
        let dim = |v: i64| pb::tensor_shape_proto::Dimension {
            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
            ..Default::default()
        };
        let value_info = |name: &str, dims: &[i64]| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto { dim: dims.iter().map(|&d| dim(d)).collect() }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let weights: Vec<u8> = (0..64 * 8 * 9).flat_map(|i| ((i % 7) as f32 * 0.1).to_le_bytes()).collect();
        let model = pb::ModelProto {
            ir_version: 7,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
            graph: Some(pb::GraphProto {
                name: "conv".into(),
                node: vec![pb::NodeProto {
                    name: "conv".into(),
                    op_type: "Conv".into(),
                    input: vec!["x".into(), "w".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                initializer: vec![pb::TensorProto {
                    name: "w".into(),
                    dims: vec![64, 8, 3, 3],
                    data_type: pb::tensor_proto::DataType::Float as i32,
                    raw_data: weights,
                    ..Default::default()
                }],
                input: vec![value_info("x", &[1, 8, 16, 16])],
                output: vec![value_info("y", &[1, 64, 14, 14])],
                ..Default::default()
            }),
            ..Default::default()
        };
        model.encode_to_vec()
    }

    #[test]
    #[cfg(not(target_family = "wasm"))]
    fn a_3x3_convolution_materialises_its_im2col_unless_the_environment_says_otherwise() {
        use crate::{Batching, Model, ModelOptions};
        let options = ModelOptions { batching: Batching::PerItem, ..Default::default() };
        let model = Model::from_bytes(&conv3x3_model(), "conv3x3.onnx", &options).unwrap();
        let ops: Vec<String> =
            model.profile(vec![vec![0.5; 8 * 16 * 16]], 1, 1).unwrap().into_iter().map(|n| n.op).collect();
        let expected = match std::env::var(LAZY_IM2COL_MIN_KERNEL.0) {
            Ok(value) if value.parse::<usize>().is_ok_and(|v| v <= 9) => "LazyIm2col",
            _ => "Im2col",
        };
        assert!(ops.iter().any(|op| op == expected), "expected an {expected} node in {ops:?}");
    }

    #[test]
    fn optimise_runs_once_and_returns_its_value() {
        let mut calls = 0;
        assert_eq!(
            with_engine_knobs(|| {
                calls += 1;
                7
            }),
            7
        );
        assert_eq!(calls, 1);
    }
}
