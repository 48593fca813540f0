//! The browser side, end to end: the JS package under Node, and the demo page (served by
//! `spamlens demo`, and exported to a plain static server) in Debian's headless Chromium, with the
//! real default model, compared with native `spamlens classify`.
//!
//! Needs what `.ci/run` installs: the JS package built by `runtime-wasm/build.sh`, Node, Debian's
//! `chromium`, `npm ci --prefix tests/browser` (playwright-core), and the backbone from
//! `spamlens-train backbone fetch`. Missing pieces fail with the command that provides them.

use spamlens_integration_tests::Embed;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files and tools the browser tests need, each with how to get it.
fn require_web_tooling(browser: bool) {
    let package = workspace().join("runtime-wasm/js/dist");
    for file in ["spamlens_wasm.js", "spamlens_simd.wasm", "spamlens_relaxed.wasm"] {
        assert!(package.join(file).is_file(), "{}/{file} is missing: run runtime-wasm/build.sh", package.display());
    }
    let node = Command::new("node").arg("--version").output();
    assert!(node.is_ok_and(|o| o.status.success()), "node is missing (Debian: apt-get install nodejs)");
    if browser {
        assert!(
            workspace().join("tests/browser/node_modules/playwright-core").is_dir(),
            "playwright-core is missing: npm ci --prefix tests/browser"
        );
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(Path::new(&chromium).is_file(), "{chromium} is missing: apt-get install chromium");
    }
}

/// The backbone the built-in head needs (`.ci/run` fetches it before the tests).
fn fetched_backbone() -> PathBuf {
    let path = spamlens_model::backbone::default_backbone_path();
    assert!(path.is_file(), "{} is missing: run target/debug/spamlens-train backbone fetch", path.display());
    path
}

/// A cache folder shared by this binary's tests so the default model is combined once.
/// The OCR trained data native spamlens reads with (the browser is served the same files).
fn tessdata() -> PathBuf {
    spamlens_ocr::tessdata::locate(None, &cache_dir()).unwrap_or_else(|e| panic!("{e}")).path().to_path_buf()
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-test-cache")
}

fn spamlens() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spamlens"));
    command
        .env("SPAMLENS_CACHE", cache_dir())
        .env("SPAMLENS_MODELS", fetched_backbone().parent().unwrap())
        .env_remove("SPAMLENS_MODEL");
    command
}

/// Native `spamlens classify --json` on `files` with the default model: the reference results, keyed
/// by file name, and the combined model's path.
fn native_reference(files: &[PathBuf]) -> (Vec<Value>, PathBuf) {
    let lines = native_classify(files, None);
    let model = cached_model(|name| !name.contains(".int8")).expect("the default model is cached after classify");
    (lines, model)
}

/// Native `spamlens classify --json` on `files` with `model` (default: the built-in one).
fn native_classify(files: &[PathBuf], model: Option<&Path>) -> Vec<Value> {
    let mut command = spamlens();
    command.arg("classify").arg("--json");
    if let Some(model) = model {
        command.arg("--model").arg(model);
    }
    let out = command.args(files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "native classify failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), files.len());
    lines
}

/// A model in the shared cache whose file name `wanted` accepts.
/// The newest cached model whose file name `wanted` accepts (older ones may be left by earlier
/// versions of the quantiser or the ranges).
fn cached_model(wanted: impl Fn(&str) -> bool) -> Option<PathBuf> {
    std::fs::read_dir(cache_dir().join("models"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".onnx") && wanted(n)))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().unwrap().to_string_lossy().into_owned()
}

/// A server process that is killed when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command`, which prints its URL on the first stdout line, and returns it.
fn start(mut command: Command, url_of: impl Fn(&str) -> Option<String>) -> (Server, String) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("the server printed nothing").unwrap();
    let url = url_of(&first).unwrap_or_else(|| panic!("no URL in '{first}'"));
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, url)
}

fn run_page(url: &str, files: &[PathBuf], screenshot: Option<&Path>, email: Option<&Path>) -> Value {
    let mut command = Command::new("node");
    command.arg(workspace().join("tests/browser/demo.mjs")).arg("--url").arg(url);
    if let Some(path) = screenshot {
        command.arg("--screenshot").arg(path);
    }
    if let Some(path) = email {
        command.arg("--email").arg(path);
    }
    let out = command.args(files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser run failed\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// How the page's cards compare with native results.
struct Parity {
    /// Largest image-only probability difference (the same network on the same pixels).
    image: f64,
    /// Largest fused probability difference over the images whose OCR text is the same.
    fused: f64,
    /// Images whose OCR text differs, with both texts.
    differing: Vec<String>,
}

/// Compares the page's cards with native results: labels and fused probabilities where OCR read the
/// same text, image-only probabilities everywhere.
fn compare(cards: &[Value], native: &[Value]) -> Parity {
    let mut parity = Parity { image: 0.0, fused: 0.0, differing: Vec::new() };
    let largest = |a: &Value, b: &Value| {
        b.as_object()
            .unwrap()
            .iter()
            .map(|(class, p)| (a[class].as_f64().unwrap() - p.as_f64().unwrap()).abs())
            .fold(0.0f64, f64::max)
    };
    for reference in native {
        let name = file_name(reference["file"].as_str().unwrap());
        let card = cards.iter().find(|c| c["name"] == name.as_str()).unwrap_or_else(|| panic!("no card for {name}"));
        assert_eq!(card["state"], "done", "{card}");
        assert!(card["millis"].as_f64().unwrap() > 0.0);
        parity.image = parity.image.max(largest(&card["imageProbabilities"], &reference["image_probabilities"]));
        // Labels agree everywhere; Tesseract 5.1 (wasm) and 5.3 (Debian) may read a few characters apart.
        assert_eq!(card["label"], reference["label"], "{name}");
        if card["ocrText"] == reference["text"]["text"] {
            parity.fused = parity.fused.max(largest(&card["probabilities"], &reference["probabilities"]));
        } else {
            parity.differing.push(format!("{name}: {} vs {}", card["ocrText"], reference["text"]["text"]));
        }
    }
    assert!(parity.image <= 1e-4, "max |Δp| image-only browser vs native {}", parity.image);
    assert!(parity.fused <= 1e-3, "max |Δp| fused browser vs native (same OCR text) {}", parity.fused);
    assert!(
        parity.differing.len() * 10 <= native.len() * 4,
        "OCR text differs on more than 4 in 10 images:\n{}",
        parity.differing.join("\n")
    );
    parity
}

#[test]
fn js_package_api_under_node() {
    require_web_tooling(false);
    let mut files: Vec<PathBuf> = spamlens_integration_tests::test_images().into_iter().map(|(p, _)| p).collect();
    files.extend(spamlens_integration_tests::dataset_sample(20));
    let (native, model) = native_reference(&files);
    let expected = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-test-expected.jsonl");
    let lines: Vec<String> = native.iter().map(Value::to_string).collect();
    std::fs::write(&expected, lines.join("\n")).unwrap();

    // Whole emails: two SpamAssassin messages with images and two built from the shared images
    // (inline cid, data URI); native `spamlens scan --json` is the reference for scanEmail.
    let emails = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-test-emails");
    std::fs::create_dir_all(&emails).unwrap();
    let mut email_files: Vec<PathBuf> =
        ["spam-1/00256.edd9bfb44729edf3c4f177814fd8c9e1.txt", "hard-ham-1/00039.b2b936a8501444b213f61f9ff193b480.txt"]
            .iter()
            .map(|id| spamlens_integration_tests::spamassassin_corpus().join("data").join(id))
            .collect();
    let sample = spamlens_integration_tests::dataset_sample(4);
    let (a, b) = (std::fs::read(&sample[0]).unwrap(), std::fs::read(&sample[1]).unwrap());
    for (name, bytes) in [
        (
            "inline.eml",
            spamlens_integration_tests::build_email("Offer", "Buy now, click here", &[("a.jpg", &a, Embed::Inline)]),
        ),
        (
            "data-uri.eml",
            spamlens_integration_tests::build_email("Minutes", "See you on Monday", &[("b.jpg", &b, Embed::DataUri)]),
        ),
    ] {
        let path = emails.join(name);
        std::fs::write(&path, bytes).unwrap();
        email_files.push(path);
    }
    let out = spamlens().arg("scan").arg("--json").args(&email_files).output().unwrap();
    assert!(out.status.success(), "native scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let scan_expected = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-test-scan-expected.jsonl");
    std::fs::write(&scan_expected, &out.stdout).unwrap();

    let out = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(workspace().join("runtime-wasm/js/test/package.test.mjs"))
        .env("SPAMLENS_TEST_MODEL", &model)
        .env("SPAMLENS_TEST_EXPECTED", &expected)
        .env("SPAMLENS_TEST_SCAN_EXPECTED", &scan_expected)
        .env("SPAMLENS_TEST_TESSDATA", tessdata())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "node --test failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn demo_page_classifies_like_native_in_headless_chromium() {
    require_web_tooling(true);
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 cut off here").unwrap();
    let shared: Vec<PathBuf> = spamlens_integration_tests::test_images().into_iter().map(|(p, _)| p).collect();
    let dataset = spamlens_integration_tests::dataset_sample(20);
    // The corrupt file sits between real images: the ones after it must still classify.
    let mut files = shared.clone();
    files.push(corrupt.clone());
    files.extend(dataset.iter().cloned());
    let good: Vec<PathBuf> = shared.iter().chain(&dataset).cloned().collect();

    let mut command = spamlens();
    command.args(["demo", "--listen", "127.0.0.1:0"]);
    let (_server, url) =
        start(command, |line| line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_owned));
    // The page gets the built-in model with int8 compute; native runs the same file for parity.
    let served = cached_model(|name| name.contains(".int8-")).expect("the demo serves the int8 built-in model");
    let native = native_classify(&good, Some(&served));
    let artefacts = workspace().join("target/browser-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let screenshot = artefacts.join("demo.png");
    // A whole email the built-in text filter lets through, with an image: the page scans it and
    // "Mark as spam" teaches the filter in the browser.
    let email = dir.path().join("parcel.eml");
    let photo = std::fs::read(&shared[0]).unwrap();
    std::fs::write(
        &email,
        spamlens_integration_tests::build_email(
            "Re: update 1",
            "Hello, your parcel 7001 could not be delivered. Please confirm the address so the driver can try again tomorrow.",
            &[("photo.jpg", &photo, Embed::Inline)],
        ),
    )
    .unwrap();
    let page = run_page(&url, &files, Some(&screenshot), Some(&email));

    assert_eq!(page["problems"], serde_json::json!([]), "console errors or failed requests: {page}");
    assert_eq!(page["first"]["source"], "network", "{page}");
    assert_eq!(page["reload"]["source"], "cache", "a returning visitor reads the model from the Cache API: {page}");
    let cards = page["cards"].as_array().unwrap();
    assert_eq!(cards.len(), files.len());
    let broken = cards.iter().find(|c| c["name"] == "corrupt.jpg").unwrap();
    assert_eq!(broken["state"], "error", "{broken}");
    assert!(broken["error"].as_str().unwrap().starts_with("corrupt.jpg: "), "{broken}");
    let parity = compare(cards, &native);
    assert_eq!(page["dropped"]["state"], "done", "{page}");
    assert!(page["verdict"].as_str().unwrap().starts_with("As one email: "), "{page}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "the screenshot is written");
    let (before, after) = (&page["email"]["before"], &page["email"]["after"]);
    assert_eq!(before["state"], "done", "{page}");
    assert_eq!(before["verdict"], "ham", "{page}");
    assert_eq!(after["verdict"], "spam", "{page}");
    assert_eq!(after["decidedBy"], "text", "{page}");
    assert!(after["textScore"].as_f64() > before["textScore"].as_f64(), "{page}");
    assert!(after["learnt"].as_str().unwrap().starts_with("learnt: text score "), "{page}");
    let millis: Vec<f64> = cards.iter().filter_map(|c| c["millis"].as_f64()).collect();
    println!(
        "browser: {} images, max |Δp| vs native {:.2e} image-only, {:.2e} fused; OCR text differs on {} ({:?}); \
         model load {} ms, median {:.0} ms/image ({}), screenshot {}",
        millis.len(),
        parity.image,
        parity.fused,
        parity.differing.len(),
        parity.differing,
        page["first"]["loadMillis"],
        median(millis),
        page["first"]["simd"],
        screenshot.display()
    );
}

#[test]
fn exported_demo_works_on_a_plain_static_server() {
    require_web_tooling(true);
    let site = tempfile::tempdir().unwrap();
    let out = spamlens().arg("demo").arg("--export").arg(site.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["index.html", "demo.js", "model.json", "pkg/src/index.js", "pkg/dist/spamlens_simd.wasm"] {
        assert!(site.path().join(file).is_file(), "{file} was not exported");
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(site.path().join("model.json")).unwrap()).unwrap();
    assert!(site.path().join(manifest["url"].as_str().unwrap()).is_file());

    let mut command = Command::new("python3");
    command.args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0", "--directory"]).arg(site.path());
    command.stderr(Stdio::null()); // its request log
    let (_server, url) = start(command, |line| {
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        line.split(['(', ')']).find(|w| w.starts_with("http://")).map(str::to_owned)
    });
    let files: Vec<PathBuf> = spamlens_integration_tests::test_images().into_iter().map(|(p, _)| p).collect();
    let served = site.path().join(manifest["url"].as_str().unwrap());
    // The built-in model goes to browsers with int8 compute: under 30 MB, not ~96 MB.
    let bytes = manifest["bytes"].as_u64().unwrap();
    assert!((20_000_000..30_000_000).contains(&bytes), "the page downloads {bytes} bytes of model");
    let native = native_classify(&files, Some(&served));
    // Two workers: the first downloads and caches the model, the second loads it from the cache.
    let page = run_page(&format!("{url}?workers=2"), &files, None, None);
    assert_eq!(page["problems"], serde_json::json!([]), "{page}");
    assert_eq!(page["reload"]["source"], "cache", "{page}");
    compare(page["cards"].as_array().unwrap(), &native);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[test]
fn demo_refuses_a_model_that_is_not_a_classifier_and_a_missing_page() {
    require_web_tooling(false);
    let backbone = fetched_backbone();
    let out =
        spamlens().arg("demo").arg("--model").arg(&backbone).arg("--export").arg("/nonexistent").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot be served to the demo") && stderr.contains("not a spamlens classifier"),
        "{stderr}"
    );
    let empty = tempfile::tempdir().unwrap();
    let out = spamlens().arg("demo").arg("--www").arg(empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no index.html"));
}
