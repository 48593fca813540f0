//! The quality issue's honest evaluation on the shared development sets: manifest groups, the
//! standard tasks, group-aware folds, cross-validation with a calibrated operating point; and the
//! exported contract of such a model (letterbox preprocessing, spam threshold) as the runtimes
//! read it.

use std::collections::{HashMap, HashSet};

use spamlens_core::classifier::{META_OPERATING_POINT, META_PREPROCESSING, META_THRESHOLDS, decide};
use spamlens_core::{Batching, Classifier, DecodeLimits, FEATURES_OUTPUT, Fit, Model, ModelOptions, Preprocessing};
use spamlens_integration_tests as fixtures;
use spamlens_model::{HeadProvenance, Precision, head_graph};
use spamlens_trainer::evaluation::groups::group_kfold;
use spamlens_trainer::evaluation::{CrossValidation, DatasetSpec, Pool, Recipe, TaskSpec, cross_validate, fit_recipe};
use spamlens_trainer::head::{FeatureSource, TrainDevice, TrainOptions};

fn shared_pool() -> Pool {
    let specs: Vec<DatasetSpec> = ["dredze2007", "image-spam-hunter"]
        .into_iter()
        .map(|name| DatasetSpec {
            name: name.into(),
            root: fixtures::imagespam_dataset(name),
            store: fixtures::dataset_features(name),
        })
        .collect();
    Pool::load(&specs).unwrap()
}

/// A small, quick recipe: the checks are about the procedure, not the best numbers.
fn quick_recipe() -> Recipe {
    Recipe {
        train: TrainOptions {
            hidden: vec![128],
            epochs: 30,
            batch_size: 64,
            weight_decay: 1e-4,
            dropout: 0.3,
            cosine_schedule: true,
            standardize: true,
            early_stopping: Some(5),
            ..TrainOptions::default()
        },
        ..Recipe::default()
    }
}

#[test]
fn pool_tasks_and_folds_follow_the_manifests() {
    let pool = shared_pool();
    assert_eq!(pool.rows.len(), 3623 + 1060, "every image once");
    // Groups are the manifests' (joint over both sets).
    let mut manifest_groups = HashSet::new();
    for name in ["dredze2007", "image-spam-hunter"] {
        let text = std::fs::read_to_string(fixtures::imagespam_dataset(name).join("manifest.tsv")).unwrap();
        manifest_groups.extend(text.lines().skip(1).filter_map(|l| l.split('\t').nth(8).map(str::to_owned)));
    }
    let pool_groups: HashSet<usize> = pool.rows.iter().map(|r| r.group).collect();
    assert_eq!(pool_groups.len(), manifest_groups.len());
    assert!(pool_groups.len() < pool.rows.len() * 9 / 10, "near-duplicates exist: {} groups", pool_groups.len());

    let tasks = TaskSpec::standard(&pool.datasets);
    let sizes: HashMap<String, usize> =
        tasks.iter().map(|t| (t.name.clone(), pool.task_rows(t).unwrap().len())).collect();
    assert_eq!(sizes["dredze-personal"], 1109 + 686);
    assert_eq!(sizes["dredze-public"], 1109 + 1828);
    assert_eq!(sizes["dredze-combined"], 3623);
    assert_eq!(sizes["image-spam-hunter"], 1060);
    assert_eq!(sizes["all"], 4683);
    assert!(pool.task_rows(&TaskSpec::parse("x=nowhere").unwrap()).is_err());

    // Folds over everything: no group in two folds, each class spread evenly.
    let all = pool.task_rows(&tasks[4]).unwrap();
    let data = pool.labelled(&all);
    let groups: Vec<usize> = all.iter().map(|&r| pool.rows[r].group).collect();
    let folds = group_kfold(&data.labels, &groups, 2, 5, 7).unwrap();
    let mut fold_of_group = HashMap::new();
    for (g, f) in groups.iter().zip(&folds) {
        assert_eq!(*fold_of_group.entry(*g).or_insert(*f), *f, "group {g} straddles folds");
    }
    for class in 0..2 {
        let total = data.labels.iter().filter(|&&l| l == class).count() as f64;
        for fold in 0..5 {
            let n = (0..all.len()).filter(|&i| folds[i] == fold && data.labels[i] == class).count() as f64;
            assert!((n / total - 0.2).abs() < 0.02, "class {class}, fold {fold}: {n} of {total}");
        }
    }
}

#[test]
fn cross_validation_scores_every_image_once_with_a_calibrated_threshold() {
    let pool = shared_pool();
    let task = TaskSpec::parse("image-spam-hunter=image-spam-hunter").unwrap();
    let cv = CrossValidation { folds: 5, seed: 3, recipe: quick_recipe(), image_signals: false, text: None };
    let mut done = Vec::new();
    let result = cross_validate(&pool, &task, &cv, TrainDevice::Cpu, &mut |fold, _| done.push(fold)).unwrap();
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    assert_eq!(done, [1, 2, 3, 4, 5]);
    assert_eq!(result.counts, [552, 508]);
    let at_threshold = result.at_threshold.as_ref().unwrap();
    assert_eq!(at_threshold.confusion.total(), 1060, "every image scored once, out of fold");
    assert!(at_threshold.weighted_f1 > 0.95, "weighted F1 {}", at_threshold.weighted_f1);
    assert!(result.roc_auc.unwrap() > 0.98, "ROC AUC {:?}", result.roc_auc);
    // Thresholds are chosen on validation ham only; out of fold they hold roughly (1% target).
    let fp = at_threshold.ham_to_spam_false_positive_rate.unwrap();
    assert!(fp <= 0.03, "ham→spam {fp}");
    assert!(fp <= result.at_argmax.ham_to_spam_false_positive_rate.unwrap(), "the threshold never loosens argmax");
    assert_eq!(result.fold_thresholds.len(), 5);
    assert!(result.fold_thresholds.iter().all(|t| (0.5..1.0).contains(t)), "{:?}", result.fold_thresholds);
    assert!(result.fold_temperatures.iter().all(|t| (0.25..=8.0).contains(t)), "{:?}", result.fold_temperatures);
    assert!(result.recall_at_fp_1pct.unwrap() >= result.recall_at_fp_01pct.unwrap());
}

/// A head fitted by the recipe, exported with its operating point, on letterboxed features of the
/// reference backbone: the combined graph declares letterbox and the threshold, and the classifier
/// computes backbone → head on letterboxed pixels and labels by the threshold.
#[test]
fn an_operating_point_and_letterbox_travel_in_the_combined_graph() {
    let pool = shared_pool();
    let task = TaskSpec::parse("ish=image-spam-hunter").unwrap();
    let rows = pool.task_rows(&task).unwrap();
    let data = pool.labelled(&rows);
    let groups: Vec<usize> = rows.iter().map(|&r| pool.rows[r].group).collect();
    let all: Vec<usize> = (0..data.len()).collect();
    let fitted = fit_recipe(&data, &all, &groups, &quick_recipe(), TrainDevice::Cpu, 1).unwrap();
    let threshold = fitted.spam_threshold.unwrap();
    assert!(fitted.validation_false_positive_rate.unwrap() <= 0.01);

    // Declared as letterboxed features (the weights came from centre-crop ones: this checks the
    // contract and the arithmetic, not the quality).
    let backbone_path = fixtures::reference_backbone();
    let backbone_sha = spamlens_model::backbone::fetch::sha256_file(&backbone_path).unwrap();
    let letterbox = Preprocessing::RESNET_IMAGENET_LETTERBOX;
    let provenance = HeadProvenance {
        source: FeatureSource::Backbone { sha256: backbone_sha, preprocessing: letterbox.describe() },
        training: serde_json::json!({}),
        metrics: None,
        thresholds: vec![("spam".into(), threshold)],
        operating_point: Some(serde_json::json!({"target_ham_to_spam_false_positive_rate": 0.01})),
    };
    let head_bytes = head_graph(&fitted.weights, &provenance, Precision::F32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let combined_path = dir.path().join("model.onnx");
    spamlens_trainer::experiment::write_combined(&backbone_path, &head_bytes, &combined_path, false).unwrap();
    let combined = std::fs::read(&combined_path).unwrap();
    let classifier = Classifier::from_bytes(&combined, "model.onnx", &ModelOptions::default()).unwrap();
    let meta = classifier.model().metadata();
    assert_eq!(meta[META_PREPROCESSING], letterbox.describe());
    assert_eq!(classifier.preprocessing().fit, Fit::Letterbox);
    assert_eq!(meta[META_THRESHOLDS], format!("spam={threshold}"));
    assert!(meta.contains_key(META_OPERATING_POINT));
    assert_eq!(classifier.threshold("spam"), Some(threshold));

    let backbone = Model::from_bytes(
        &std::fs::read(&backbone_path).unwrap(),
        "backbone",
        &ModelOptions {
            outputs: Some(vec![FEATURES_OUTPUT.into()]),
            batching: Batching::PerItem,
            ..Default::default()
        },
    )
    .unwrap();
    let images = fixtures::dataset_sample(10);
    for path in &images {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let verdict = classifier.classify(&bytes, &name).unwrap();
        let tensor = spamlens_core::prepare_image(&bytes, &name, &DecodeLimits::default(), &letterbox).unwrap().tensor;
        let features = backbone.run(tensor, 1).unwrap().take(FEATURES_OUTPUT).unwrap().values;
        let expected = fitted.weights.probabilities(&features);
        let got: Vec<f32> = verdict.probabilities.iter().map(|(_, p)| *p).collect();
        let diff = expected.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "{name}: two stages {expected:?}, combined {got:?}");
        let label = decide(&got, &[(1, threshold)]);
        assert_eq!(verdict.label, ["ham", "spam"][label], "{name}: p(spam) {} vs threshold {threshold}", got[1]);
    }

    // A head declaring a preprocessing this backbone cannot take is refused.
    let odd = HeadProvenance {
        source: FeatureSource::Backbone {
            sha256: spamlens_model::backbone::fetch::sha256_file(&backbone_path).unwrap(),
            preprocessing: "RGB; something else".into(),
        },
        ..provenance
    };
    let odd_head = head_graph(&fitted.weights, &odd, Precision::F32).unwrap();
    let err =
        spamlens_trainer::experiment::write_combined(&backbone_path, &odd_head, &dir.path().join("odd.onnx"), false)
            .unwrap_err();
    assert!(err.to_string().contains("something else"), "{err}");

    // So is a head of tile-averaged features: the graph takes one view per image.
    let tiles = HeadProvenance {
        source: FeatureSource::Backbone {
            sha256: spamlens_model::backbone::fetch::sha256_file(&backbone_path).unwrap(),
            preprocessing: Preprocessing::RESNET_IMAGENET.with_fit(Fit::Tiles).describe(),
        },
        ..odd
    };
    let tiles_head = head_graph(&fitted.weights, &tiles, Precision::F32).unwrap();
    let tiles_path = dir.path().join("tiles.onnx");
    let err =
        spamlens_trainer::experiment::write_combined(&backbone_path, &tiles_head, &tiles_path, false).unwrap_err();
    assert!(err.to_string().contains("one view per image"), "{err}");
    assert!(!tiles_path.exists());
}

/// The committed default head is the evaluated recipe's final model: letterboxed features of the
/// fetched backbone, a spam threshold for 1% ham→spam false positives, and how it was chosen.
#[test]
fn the_built_in_head_declares_letterbox_and_its_operating_point() {
    let bytes = std::fs::read(fixtures::workspace_root().join("models/default/head.onnx")).unwrap();
    let head = spamlens_model::read_head_graph(&bytes, "models/default/head.onnx").unwrap();
    assert_eq!(head.meta(META_PREPROCESSING), Some(Preprocessing::RESNET_IMAGENET_LETTERBOX.describe().as_str()));
    let labels = head.weights.labels.clone();
    let thresholds = spamlens_core::classifier::parse_thresholds(head.meta(META_THRESHOLDS).unwrap(), &labels).unwrap();
    assert_eq!(thresholds.len(), 1);
    assert_eq!(labels[thresholds[0].0], "spam");
    assert!((0.5..1.0).contains(&thresholds[0].1), "{thresholds:?}");
    let point: serde_json::Value = serde_json::from_str(head.meta(META_OPERATING_POINT).unwrap()).unwrap();
    assert_eq!(point["target_ham_to_spam_false_positive_rate"], 0.01);
    let metrics: serde_json::Value = serde_json::from_str(head.meta("spamlens.metrics").unwrap()).unwrap();
    assert_eq!(metrics["evaluation"], "group-aware cross-validation (out-of-fold)");
    // It reads text: the fused recipe, with the pinned trained data in its contract and an
    // image-only operating point for images whose text could not be read.
    assert_eq!(metrics["model"], "fused");
    let text = head.text.as_ref().expect("the built-in head reads text");
    assert_eq!(text.contract.languages(), "eng+rus+chi_sim");
    assert_eq!(text.contract.data, spamlens_ocr::tessdata::pinned_data());
    assert_eq!(text.contract.engine_major, 5);
    assert!(
        text.contract
            .check(&spamlens_core::ocr::EngineIdentity {
                engine: "tesseract".into(),
                version: spamlens_ocr::library_version(),
                engine_mode: "lstm".into(),
                page_segmentation: spamlens_ocr::TesseractSettings::DEFAULT.page_segmentation,
                dpi: spamlens_ocr::TesseractSettings::DEFAULT.dpi,
                data: spamlens_ocr::tessdata::pinned_data(),
            })
            .is_ok()
    );
    assert_eq!(text.image_thresholds.len(), 1);
    assert!((0.5..1.0).contains(&text.image_thresholds[0].1), "{:?}", text.image_thresholds);
}

/// Stores of centre-crop and letterboxed features are never mixed, neither by `train` (through
/// `LabelledFeatures::from_stores`) nor by `evaluate` (through `Pool::load`).
#[test]
fn stores_of_different_preprocessings_are_refused() {
    let store = fixtures::dataset_features("image-spam-hunter");
    let mut letterboxed = spamlens_trainer::features::FeatureStore::read(&store).unwrap();
    letterboxed.provenance.preprocessing = Preprocessing::RESNET_IMAGENET_LETTERBOX.describe();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("ish.letterbox.parquet");
    letterboxed.write(&other).unwrap();
    let err = spamlens_trainer::head::LabelledFeatures::from_stores(&[store.clone(), other.clone()]).unwrap_err();
    assert!(err.to_string().contains("different preprocessings"), "{err}");
    let specs = [
        DatasetSpec { name: "a".into(), root: fixtures::imagespam_dataset("image-spam-hunter"), store },
        DatasetSpec { name: "b".into(), root: fixtures::imagespam_dataset("image-spam-hunter"), store: other },
    ];
    let err = Pool::load(&specs).unwrap_err();
    assert!(err.to_string().contains("cannot be mixed"), "{err}");
}
