//! The `spamlens` binary: what a mail operator sees.

use std::path::{Path, PathBuf};
use std::process::Command;

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("SPAMLENS_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"));
    assert!(dir.join("resnet50-v1-keras-imagenet.onnx").is_file(), "{} lacks the backbone", dir.display());
    dir
}

#[test]
fn check_images_reports_each_file_and_fails_if_any_failed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnope").unwrap();
    let good = models_dir().join("testimages/pelican.jpeg");
    let out = Command::new(env!("CARGO_BIN_EXE_spamlens")).arg("check-images").arg(&good).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("ok\t") && lines[0].ends_with("JPEG 500x375"), "{stdout}");
    assert!(lines[1].starts_with(&format!("error\t{}: corrupt or unsupported PNG image", bad.display())), "{stdout}");

    let out = Command::new(env!("CARGO_BIN_EXE_spamlens")).arg("check-images").arg(&good).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn inspect_prints_the_signature_and_refuses_non_models() {
    let model = models_dir().join("resnet50-v1-keras-imagenet.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_spamlens")).arg("inspect").arg(&model).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("outputs: features, probs") && stdout.contains("sha256:  d632cdfb"), "{stdout}");

    let jpeg = models_dir().join("testimages/pelican.jpeg");
    let out = Command::new(env!("CARGO_BIN_EXE_spamlens")).arg("inspect").arg(&jpeg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pelican.jpeg: cannot load"));
}
