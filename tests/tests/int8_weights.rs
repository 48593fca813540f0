//! int8 weight storage on the real backbone and the built-in model: `spamlens-train quantize`
//! quarters the file, onnxruntime and tract agree on the quantised graph (so the load-time
//! widening means what `DequantizeLinear` means), the features stay within rounding noise of the
//! f32 backbone's, and the built-in fused model's decisions do not move on the shared images.
//! The statically quantised backbone (`quantize --calibrate`, int8 compute) is checked the same way.

use spamlens_core::classifier::{META_KIND, PROBABILITIES_OUTPUT};
use spamlens_core::{Batching, DecodeLimits, FEATURES_OUTPUT, Model, ModelOptions, Preprocessing, prepare_image};
use spamlens_integration_tests as fixtures;
use spamlens_model::quantize::{META_WEIGHTS, WEIGHTS_INT8_PER_CHANNEL};
use spamlens_model::quantize_static::WEIGHTS_INT8_STATIC;
use spamlens_model::{calibrate, combine, quantize_conv_weights, quantize_static, read_head_graph};

fn images_and_tensors() -> (Vec<std::path::PathBuf>, Vec<Vec<f32>>) {
    let mut images: Vec<_> = fixtures::test_images().into_iter().map(|(p, _)| p).collect();
    images.extend(fixtures::dataset_sample(16));
    let tensors = images
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            prepare_image(
                &bytes,
                &p.display().to_string(),
                &DecodeLimits::default(),
                &Preprocessing::RESNET_IMAGENET_LETTERBOX,
            )
            .unwrap()
            .tensor
        })
        .collect();
    (images, tensors)
}

fn per_item(name: &str, bytes: &[u8], outputs: &[&str]) -> Model {
    let options = ModelOptions {
        outputs: Some(outputs.iter().map(|s| (*s).to_owned()).collect()),
        batching: Batching::PerItem,
        ..ModelOptions::default()
    };
    Model::from_bytes(bytes, name, &options).unwrap()
}

#[test]
fn int8_backbone_matches_onnxruntime_and_stays_close_to_f32() {
    let backbone_path = fixtures::reference_backbone();
    let f32_bytes = std::fs::read(&backbone_path).unwrap();
    let (int8_bytes, report) = quantize_conv_weights(&f32_bytes, "backbone").unwrap();
    println!("{report:?}");
    assert_eq!(report.tensors, 53, "every ResNet-50 convolution");
    // fc1000 (2 M values) stays f32 in the backbone; the combined model prunes it.
    assert!(int8_bytes.len() * 3 < f32_bytes.len() + 4_000_000, "{} vs {}", int8_bytes.len(), f32_bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let int8_path = dir.path().join("backbone.int8.onnx");
    std::fs::write(&int8_path, &int8_bytes).unwrap();

    let (images, tensors) = images_and_tensors();
    let f32_model = per_item("f32", &f32_bytes, &[FEATURES_OUTPUT]);
    let int8_model = per_item("int8", &int8_bytes, &[FEATURES_OUTPUT]);
    let run = |m: &Model| -> Vec<f32> {
        tensors.iter().flat_map(|t| m.run(t.clone(), 1).unwrap().take(FEATURES_OUTPUT).unwrap().values).collect()
    };
    let (reference, quantized) = (run(&f32_model), run(&int8_model));

    let ort = fixtures::onnxruntime_run(&int8_path, &tensors.concat(), images.len(), FEATURES_OUTPUT);
    let largest = quantized.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = fixtures::max_abs_diff(&ort, &quantized);
    println!("int8 backbone: onnxruntime vs tract max |Δ| = {diff:.2e} (features up to {largest:.1})");
    assert!(diff <= 1e-4 * largest.max(1.0), "onnxruntime and tract disagree on the int8 backbone by {diff}");

    let mut worst = 1.0f64;
    for (a, b) in reference.chunks_exact(2048).zip(quantized.chunks_exact(2048)) {
        worst = worst.min(fixtures::cosine(a, b));
    }
    println!("int8 vs f32 features: lowest cosine {worst:.5} over {} images", images.len());
    assert!(worst > 0.995, "int8 features drift from the f32 ones (cosine {worst})");
}

#[test]
fn statically_quantised_backbone_matches_onnxruntime_and_stays_near_f32() {
    let backbone_path = fixtures::reference_backbone();
    let f32_bytes = std::fs::read(&backbone_path).unwrap();
    let (images, tensors) = images_and_tensors();
    // Calibrate on shared images that are not among the ones compared.
    let calibration: Vec<(String, Vec<u8>)> = fixtures::dataset_sample(40)
        .into_iter()
        .filter(|p| !images.contains(p))
        .take(8)
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    let ranges = calibrate(
        &f32_bytes,
        "backbone",
        &Preprocessing::RESNET_IMAGENET_LETTERBOX,
        calibration.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
        2,
        || {},
    )
    .unwrap();
    assert_eq!(ranges.images + ranges.skipped.len(), calibration.len());
    assert!(ranges.images >= 6, "calibration images left out: {:?}", ranges.skipped);
    let (int8_bytes, report) = quantize_static(&f32_bytes, "backbone", &ranges).unwrap();
    println!("{report:?}");
    // Every ResNet-50 convolution but the first, which reads the 3-channel image.
    assert_eq!((report.convolutions, report.kept_f32), (52, 1));
    let dir = tempfile::tempdir().unwrap();
    let int8_path = dir.path().join("backbone.qlinear.onnx");
    std::fs::write(&int8_path, &int8_bytes).unwrap();

    let f32_model = per_item("f32", &f32_bytes, &[FEATURES_OUTPUT]);
    let int8_model = per_item("int8", &int8_bytes, &[FEATURES_OUTPUT]);
    assert_eq!(int8_model.metadata()[META_WEIGHTS], WEIGHTS_INT8_STATIC);
    let run = |m: &Model| -> Vec<f32> {
        tensors.iter().flat_map(|t| m.run(t.clone(), 1).unwrap().take(FEATURES_OUTPUT).unwrap().values).collect()
    };
    let (reference, quantized) = (run(&f32_model), run(&int8_model));

    let ort = fixtures::onnxruntime_run(&int8_path, &tensors.concat(), images.len(), FEATURES_OUTPUT);
    let mut engines = 1.0f64;
    let mut cosines = Vec::new();
    for ((a, b), o) in reference.chunks_exact(2048).zip(quantized.chunks_exact(2048)).zip(ort.chunks_exact(2048)) {
        cosines.push(fixtures::cosine(a, b));
        engines = engines.min(fixtures::cosine(o, b));
    }
    cosines.sort_by(f64::total_cmp);
    let median = cosines[cosines.len() / 2];
    println!(
        "int8 compute: tract vs onnxruntime lowest cosine {engines:.5}; vs f32 features cosine median {median:.4}, \
         lowest {:.4} over {} images",
        cosines[0],
        images.len()
    );
    // The engines may round a tie of a requantisation differently: one step of one activation.
    assert!(engines > 0.999, "onnxruntime and tract disagree on the QLinearConv backbone (cosine {engines})");
    // Per-tensor activation steps cost more than weight rounding; degenerate images (a 6×6 GIF,
    // a 500×10 strip) drift most. Whether decisions move is the quality gate's question.
    assert!(median > 0.98, "int8 compute features drift from the f32 ones (median cosine {median})");
}

/// The built-in model in f32 and the same model with int8 weights (`quantize`).
fn built_in_f32_and_int8_weights() -> (Vec<u8>, Vec<u8>) {
    let f32_bytes = built_in_f32();
    let (int8_bytes, report) = quantize_conv_weights(&f32_bytes, "model.onnx").unwrap();
    println!("built-in model: {} → {} bytes", report.bytes_before, report.bytes_after);
    (f32_bytes, int8_bytes)
}

fn built_in_f32() -> Vec<u8> {
    let backbone_path = fixtures::reference_backbone();
    let backbone = std::fs::read(&backbone_path).unwrap();
    let head_bytes = std::fs::read(fixtures::workspace_root().join("models/default/head.onnx")).unwrap();
    let head = read_head_graph(&head_bytes, "head.onnx").unwrap();
    // The head names the fetched backbone's sha256; the shared file holds the same weights with
    // other metadata (backbone_conversion.rs checks they compute the same), hence `force`.
    combine(&backbone, "backbone", &head, true).unwrap()
}

/// Runs both models on the shared test images and a dataset sample; returns the largest change of
/// any probability and how many image-only decisions crossed the built-in threshold.
fn decisions_against_f32(f32_bytes: &[u8], int8_bytes: &[u8], scheme: &str) -> (f32, usize, usize) {
    let outputs = [PROBABILITIES_OUTPUT, "image_probabilities"];
    let f32_model = per_item("f32", f32_bytes, &outputs);
    let int8_model = per_item("int8", int8_bytes, &outputs);
    assert_eq!(int8_model.metadata()[META_WEIGHTS], scheme);
    assert_eq!(int8_model.metadata()[META_KIND], f32_model.metadata()[META_KIND]);
    let threshold: f32 = f32_model.metadata()["spamlens.image_thresholds"]
        .strip_prefix("spam=")
        .and_then(|t| t.parse().ok())
        .expect("the built-in model's image threshold");

    let (images, tensors) = images_and_tensors();
    let text_inputs: Vec<Vec<f32>> =
        f32_model.inputs()[1..].iter().map(|input| vec![0.0; input.values_per_item()]).collect();
    let (mut worst, mut flips) = (0.0f32, 0);
    for (path, tensor) in images.iter().zip(&tensors) {
        let inputs: Vec<Vec<f32>> = std::iter::once(tensor.clone()).chain(text_inputs.iter().cloned()).collect();
        let a = f32_model.run_inputs(inputs.clone(), 1).unwrap();
        let b = int8_model.run_inputs(inputs, 1).unwrap();
        for output in outputs {
            let (pa, pb) = (&a.get(output).unwrap().values, &b.get(output).unwrap().values);
            worst = worst.max(fixtures::max_abs_diff(pa, pb));
        }
        let (pa, pb) =
            (a.get("image_probabilities").unwrap().values[1], b.get("image_probabilities").unwrap().values[1]);
        if (pa >= threshold) != (pb >= threshold) {
            flips += 1;
            println!("{}: image p(spam) {pa:.4} → {pb:.4} crosses {threshold}", path.display());
        }
    }
    println!(
        "{scheme} vs f32 built-in model: max |Δp| = {worst:.2e} over {} images, {flips} decisions changed",
        images.len()
    );
    (worst, flips, images.len())
}

#[test]
fn built_in_model_decides_the_same_with_int8_weights() {
    let (f32_bytes, int8_bytes) = built_in_f32_and_int8_weights();
    assert!(int8_bytes.len() <= 30_000_000, "the int8 model is {} bytes", int8_bytes.len());
    let (worst, flips, images) = decisions_against_f32(&f32_bytes, &int8_bytes, WEIGHTS_INT8_PER_CHANNEL);
    assert!(worst < 0.05, "int8 weights move a probability by {worst}");
    assert!(flips <= 1, "{flips} of {images} decisions changed");
}

/// What the demo page serves: the built-in model quantised with the committed activation ranges.
#[test]
fn built_in_model_with_int8_compute_keeps_its_decisions() {
    let f32_bytes = built_in_f32();
    let ranges_path = fixtures::workspace_root().join("models/default/activation-ranges.json");
    let ranges: spamlens_model::ActivationRanges =
        serde_json::from_str(&std::fs::read_to_string(&ranges_path).unwrap()).unwrap();
    let (int8_bytes, report) = quantize_static(&f32_bytes, "model.onnx", &ranges).unwrap();
    assert_eq!((report.convolutions, report.kept_f32), (52, 1));
    assert!(int8_bytes.len() <= 30_000_000, "the int8 model is {} bytes", int8_bytes.len());
    let (worst, flips, images) = decisions_against_f32(&f32_bytes, &int8_bytes, WEIGHTS_INT8_STATIC);
    assert!(worst < 0.15, "int8 compute moves a probability by {worst}");
    assert!(flips <= 2, "{flips} of {images} decisions changed");
}
