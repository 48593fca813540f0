//! The combined graph (backbone + trained head) computes exactly what running the backbone and
//! then the head as two stages computes (≤ 1e-5), for f32 and f16 heads, and onnxruntime agrees
//! with tract on it (≤ 1e-4). Also checks the contract in `metadata_props` and the run's files.

use spamlens_core::classifier::{
    KIND_COMBINED, META_BACKBONE_SHA256, META_CREATED, META_KIND, META_LABELS, META_METRICS, META_PREPROCESSING,
    META_TRAINING, META_VERSION, PROBABILITIES_OUTPUT,
};
use spamlens_core::{
    Batching, Classifier, DecodeLimits, FEATURES_OUTPUT, Model, ModelOptions, Preprocessing, prepare_image,
};
use spamlens_integration_tests as fixtures;
use spamlens_model::{Precision, head_graph, read_head_graph};
use spamlens_trainer::experiment::{self, DataSpec, NoRunProgress, TrainRequest};
use spamlens_trainer::head::{TrainDevice, TrainOptions};

#[test]
fn combined_graph_equals_two_stages_and_onnxruntime_agrees() {
    let store = fixtures::dataset_features("image-spam-hunter");
    let backbone_path = fixtures::reference_backbone();
    let dir = tempfile::tempdir().unwrap();
    let request = TrainRequest {
        data: DataSpec::Stores { train: vec![store], test: vec![] },
        test_fraction: 0.25,
        split_seed: 1,
        options: TrainOptions { epochs: 5, ..TrainOptions::default() },
        device: TrainDevice::Cpu,
        out_dir: dir.path().to_path_buf(),
        precision: Precision::F32,
        backbone: Some(backbone_path.clone()),
        force: false,
        plots: true,
    };
    let artifacts = experiment::run(&request, &mut NoRunProgress).unwrap();
    for name in ["head.onnx", "model.onnx", "report.json", "report.md", "training.png", "confusion.png"] {
        assert!(dir.path().join(name).is_file(), "{name} missing; wrote {:?}", artifacts.files);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["history"].as_array().unwrap().len(), 5);
    assert!(report["test_metrics"]["weighted_f1"].as_f64().unwrap() > 0.9, "{}", report["test_metrics"]);

    // The contract the runtimes read.
    let combined_bytes = std::fs::read(dir.path().join("model.onnx")).unwrap();
    let classifier = Classifier::from_bytes(&combined_bytes, "model.onnx", &ModelOptions::default()).unwrap();
    let meta = classifier.model().metadata();
    let backbone_bytes = std::fs::read(&backbone_path).unwrap();
    let backbone_sha = spamlens_model::backbone::fetch::sha256_file(&backbone_path).unwrap();
    assert_eq!(meta[META_KIND], KIND_COMBINED);
    assert_eq!(meta[META_LABELS], "ham,spam");
    assert_eq!(meta[META_BACKBONE_SHA256], backbone_sha);
    assert_eq!(meta[META_PREPROCESSING], Preprocessing::RESNET_IMAGENET.describe());
    assert_eq!(meta[META_VERSION], env!("CARGO_PKG_VERSION"));
    assert!(meta[META_CREATED].ends_with('Z'));
    let metrics: serde_json::Value = serde_json::from_str(&meta[META_METRICS]).unwrap();
    assert!(metrics["weighted_f1"].as_f64().unwrap() > 0.9);
    let training: serde_json::Value = serde_json::from_str(&meta[META_TRAINING]).unwrap();
    assert_eq!(training["options"]["epochs"], 5);
    assert_eq!(classifier.model().output_names(), [PROBABILITIES_OUTPUT]);
    // The ImageNet classifier (fc1000) is pruned: the combined file is smaller than backbone + head.
    let head_bytes = std::fs::read(dir.path().join("head.onnx")).unwrap();
    assert!(combined_bytes.len() < backbone_bytes.len() + head_bytes.len() - 4_000_000);

    // Inputs: the shared test photos and dataset images of every format.
    let mut images: Vec<_> = fixtures::test_images().into_iter().map(|(p, _)| p).collect();
    images.extend(fixtures::dataset_sample(12));
    let limits = DecodeLimits::default();
    let prep = Preprocessing::RESNET_IMAGENET;
    let tensors: Vec<Vec<f32>> = images
        .iter()
        .map(|p| prepare_image(&std::fs::read(p).unwrap(), &p.display().to_string(), &limits, &prep).unwrap().tensor)
        .collect();

    let backbone = Model::from_bytes(
        &backbone_bytes,
        "backbone",
        &ModelOptions {
            outputs: Some(vec![FEATURES_OUTPUT.into()]),
            batching: Batching::PerItem,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let features: Vec<f32> = tensors
        .iter()
        .flat_map(|t| backbone.run(t.clone(), 1).unwrap().take(FEATURES_OUTPUT).unwrap().values)
        .collect();

    let full = Model::from_bytes(&combined_bytes, "model.onnx", &ModelOptions::default()).unwrap();
    let combined: Vec<f32> = tensors
        .iter()
        .flat_map(|t| full.run(t.clone(), 1).unwrap().take(PROBABILITIES_OUTPUT).unwrap().values)
        .collect();

    // Two stages, for the f32 head the run wrote and an f16 export of the same weights.
    let head = read_head_graph(&head_bytes, "head.onnx").unwrap();
    let f16_head = head_graph(
        &head.weights,
        &spamlens_model::HeadProvenance {
            source: spamlens_trainer::head::FeatureSource::Backbone {
                sha256: backbone_sha.clone(),
                preprocessing: prep.describe(),
            },
            training: serde_json::json!({}),
            metrics: None,
            thresholds: vec![],
            operating_point: None,
        },
        Precision::F16,
    )
    .unwrap();
    assert!(f16_head.len() * 10 < head_bytes.len() * 6, "f16 head {} vs f32 {}", f16_head.len(), head_bytes.len());
    let f16_combined_path = dir.path().join("model-f16.onnx");
    experiment::write_combined(&backbone_path, &f16_head, &f16_combined_path, false).unwrap();
    let f16_full =
        Model::from_bytes(&std::fs::read(&f16_combined_path).unwrap(), "model-f16.onnx", &ModelOptions::default())
            .unwrap();

    for (head_bytes, full, what) in [(&head_bytes, &full, "f32"), (&f16_head, &f16_full, "f16")] {
        let head_model = Model::from_bytes(head_bytes, "head", &ModelOptions::default()).unwrap();
        let two_stage = head_model.run(features.clone(), images.len()).unwrap().take(PROBABILITIES_OUTPUT).unwrap();
        let one_graph: Vec<f32> = tensors
            .iter()
            .flat_map(|t| full.run(t.clone(), 1).unwrap().take(PROBABILITIES_OUTPUT).unwrap().values)
            .collect();
        let diff = fixtures::max_abs_diff(&two_stage.values, &one_graph);
        println!("{what}: combined vs two stages, max |Δp| = {diff:.2e}");
        assert!(diff <= 1e-5, "{what}: combined graph differs from backbone → head by {diff}");
    }

    // The classifier API gives the same numbers and a label per image.
    for (i, path) in images.iter().enumerate() {
        let verdict = classifier.classify(&std::fs::read(path).unwrap(), &path.display().to_string()).unwrap();
        let p: Vec<f32> = verdict.probabilities.iter().map(|(_, p)| *p).collect();
        assert!(fixtures::max_abs_diff(&p, &combined[i * 2..i * 2 + 2]) <= 1e-6);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    // onnxruntime, independently, on the same preprocessed inputs.
    let flat: Vec<f32> = tensors.concat();
    let ort = fixtures::onnxruntime_run(&dir.path().join("model.onnx"), &flat, images.len(), PROBABILITIES_OUTPUT);
    let diff = fixtures::max_abs_diff(&ort, &combined);
    println!("onnxruntime vs tract on model.onnx: max |Δp| = {diff:.2e} over {} images", images.len());
    assert_eq!(ort.len(), combined.len());
    assert!(diff <= 1e-4, "onnxruntime and tract disagree by {diff}");
    let ort16 = fixtures::onnxruntime_run(&f16_combined_path, &flat, images.len(), PROBABILITIES_OUTPUT);
    let f16_values: Vec<f32> = tensors
        .iter()
        .flat_map(|t| f16_full.run(t.clone(), 1).unwrap().take(PROBABILITIES_OUTPUT).unwrap().values)
        .collect();
    assert!(fixtures::max_abs_diff(&ort16, &f16_values) <= 1e-4);
}

#[test]
fn classifier_refuses_graphs_that_are_not_combined_models() {
    let backbone = std::fs::read(fixtures::reference_backbone()).unwrap();
    let err = Classifier::from_bytes(&backbone, "resnet50.onnx", &ModelOptions::default()).unwrap_err().to_string();
    assert!(err.starts_with("model resnet50.onnx:") && err.contains("not a spamlens classifier"), "{err}");
    let err = Classifier::from_bytes(b"garbage", "junk.onnx", &ModelOptions::default()).unwrap_err().to_string();
    assert!(err.starts_with("model junk.onnx: cannot load"), "{err}");
}
