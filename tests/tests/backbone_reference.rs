//! The real backbone under tract, checked against an independent implementation
//! (PIL + numpy + onnxruntime, `tests/reference/ort_features.py`).

use std::path::PathBuf;

use spamlens_core::{Batching, DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};
use spamlens_integration_tests as fixtures;

fn load_backbone() -> Model {
    let path = fixtures::reference_backbone();
    let bytes = std::fs::read(&path).expect("read backbone");
    let options = ModelOptions { batching: Batching::PerItem, ..Default::default() };
    Model::from_bytes(&bytes, &path.display().to_string(), &options).expect("load backbone")
}

/// Features and ImageNet probabilities of one image, or the error message.
type Outcome = Result<(Vec<f32>, Vec<f32>), String>;

/// Our features and ImageNet probabilities for each image, two threads sharing one model.
fn ours(model: &Model, images: &[PathBuf]) -> Vec<Outcome> {
    let run = |path: &PathBuf| -> Outcome {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let name = path.display().to_string();
        let image = prepare_image(&bytes, &name, &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)
            .map_err(|e| e.to_string())?;
        let out = model.run(image.tensor, 1).map_err(|e| e.to_string())?;
        let features = out.get("features").map_err(|e| e.to_string())?.values.clone();
        let probs = out.get("probs").map_err(|e| e.to_string())?.values.clone();
        Ok((features, probs))
    };
    let half = images.len().div_ceil(2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| images[..half].iter().map(run).collect::<Vec<_>>());
        let second: Vec<_> = images[half..].iter().map(run).collect();
        let mut all = first.join().expect("worker thread");
        all.extend(second);
        all
    })
}

#[test]
fn shared_backbone_recognises_the_test_photos() {
    let model = load_backbone();
    assert_eq!(model.input_dims(), [3, 224, 224]);
    assert_eq!(model.output_names(), ["features", "probs"]);
    assert_eq!(model.metadata().get("feature_tensor").map(String::as_str), Some("features"));
    // Every step of the load is timed once, in order (a per-item plan never tries a symbolic one).
    let phases: Vec<&str> = model.load_phases().0.iter().map(|p| p.phase).collect();
    assert_eq!(
        phases,
        ["sha256", "protobuf", "widen weights", "onnx graph", "typing", "declutter", "optimise", "plan"]
    );
    assert!(model.load_phases().0.iter().all(|p| p.millis >= 0.0 && p.millis.is_finite()));
    assert!(model.load_phases().total_millis() > 0.0);
    let images: Vec<PathBuf> = fixtures::test_images().into_iter().map(|(p, _)| p).collect();
    for ((path, expected), result) in fixtures::test_images().iter().zip(ours(&model, &images)) {
        let (features, probs) = result.expect("test photo classifies");
        assert_eq!(features.len(), 2048);
        assert!(features.iter().all(|v| v.is_finite() && *v >= 0.0), "features after ReLU+pool are ≥ 0");
        let top1 = fixtures::argmax(&probs);
        assert_eq!(top1, *expected, "{}: top-1 {top1} (p={:.4})", path.display(), probs[top1]);
        let sum: f32 = probs.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "softmax sums to {sum}");
    }
}

#[test]
fn a_batch_equals_its_items_run_alone() {
    let model = load_backbone();
    let tensors: Vec<Vec<f32>> = fixtures::test_images()
        .iter()
        .map(|(p, _)| {
            let bytes = std::fs::read(p).unwrap();
            prepare_image(&bytes, "t", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET).unwrap().tensor
        })
        .collect();
    let batch = model.run(tensors.concat(), tensors.len()).unwrap();
    let batch = batch.get("features").unwrap();
    assert_eq!(batch.shape, vec![3, 2048]);
    for (i, tensor) in tensors.into_iter().enumerate() {
        let alone = model.run(tensor, 1).unwrap();
        assert_eq!(batch.row(i).unwrap(), alone.get("features").unwrap().values.as_slice());
    }
    let err = model.run(vec![0.0; 10], 1).unwrap_err().to_string();
    assert!(err.contains("does not hold 1 images of 150528 floats"), "{err}");
}

#[test]
fn features_match_onnxruntime_and_pil() {
    let model = load_backbone();
    let mut images: Vec<PathBuf> = fixtures::test_images().into_iter().map(|(p, _)| p).collect();
    images.extend(fixtures::dataset_sample(50));
    assert_eq!(images.len(), 53);
    let (ort_version, reference) = fixtures::python_reference(&fixtures::reference_backbone(), &images);
    let ours = ours(&model, &images);

    let mut worst = (f64::INFINITY, String::new());
    let mut max_diff = 0.0f32;
    for ((path, ours), theirs) in images.iter().zip(&ours).zip(&reference) {
        assert_eq!(&theirs.path, path);
        let (features, probs) = ours.as_ref().unwrap_or_else(|e| panic!("{}: spamlens failed: {e}", path.display()));
        let expected = theirs.features.as_ref().unwrap_or_else(|e| panic!("{}: reference failed: {e}", path.display()));
        let cos = fixtures::cosine(features, expected);
        max_diff = max_diff.max(fixtures::max_abs_diff(features, expected));
        if cos < worst.0 {
            worst = (cos, path.display().to_string());
        }
        assert!(cos >= 0.999, "{}: cosine similarity {cos:.6} with the onnxruntime+PIL reference", path.display());
        if let Some(expected_top1) = fixtures::test_images().iter().find(|(p, _)| p == path).map(|(_, c)| *c) {
            assert_eq!(theirs.top1, Some(expected_top1), "reference top-1 on {}", path.display());
            assert_eq!(fixtures::argmax(probs), expected_top1, "our top-1 on {}", path.display());
        }
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "reference check (onnxruntime {ort_version} + PIL): {} images, min cosine {:.6} ({}), max |Δfeature| {max_diff:.4}",
        images.len(),
        worst.0,
        worst.1
    );
}
