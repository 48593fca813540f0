//! The native engine on real spam images from the shared development set (`../shared`), with the
//! pinned trained data (Debian's packages, or the cache that `spamlens-train ocr-data fetch` fills).

use std::path::PathBuf;
use std::time::Duration;

use spamlens_core::ocr::{OcrEngine, OcrImage, OcrImageSpec};
use spamlens_core::{DecodeLimits, decode_rgb};
use spamlens_ocr::{EnginePool, TesseractEngine, TesseractSettings, tessdata};

fn shared_image(relative: &str) -> Vec<u8> {
    let root = std::env::var_os("SPAMLENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = root.join("data/imagespam").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; the OCR tests need the shared datasets beside the checkout (../shared)", path.display())
    })
}

fn data() -> tessdata::TessdataDir {
    tessdata::locate(None, &spamlens_fetch_cache()).unwrap_or_else(|e| panic!("{e}"))
}

fn spamlens_fetch_cache() -> PathBuf {
    std::env::var_os("SPAMLENS_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/spamlens")).unwrap_or_default()
    })
}

#[test]
fn reads_a_pharmacy_price_list() {
    let bytes = shared_image("dredze2007/spam/personal/00f6d904d9621b3d.png");
    let decoded = decode_rgb(&bytes, "viagra.png", &DecodeLimits::DEFAULT).unwrap();
    let pool = EnginePool::new(data(), TesseractSettings::DEFAULT).unwrap();
    assert_eq!(pool.identity().engine, "tesseract");
    assert_eq!(pool.identity().major(), 5);
    let text = pool.read_text(&decoded.rgb, &OcrImageSpec::V1, "viagra.png").unwrap();
    let all = text.text().to_lowercase();
    for word in ["viagra", "cialis", "xanax", "$129.95", "click here"] {
        assert!(all.contains(word), "'{word}' not read in:\n{all}");
    }
    let layout = text.layout();
    assert!(layout.lines >= 8 && layout.confident_words >= 20, "{layout:?}");
    assert!(text.words.iter().all(|w| w.bbox[2] <= decoded.width() && w.bbox[3] <= decoded.height()));
}

#[test]
fn a_tight_time_limit_is_a_named_timeout_and_the_engine_stays_usable() {
    let bytes = shared_image("dredze2007/spam/personal/009fe5b5c213d04e.png");
    let decoded = decode_rgb(&bytes, "stock.png", &DecodeLimits::DEFAULT).unwrap();
    let prepared = OcrImage::prepare(&decoded.rgb, &OcrImageSpec::V1, "stock.png").unwrap().unwrap();
    let tight = TesseractSettings { time_limit: Duration::from_millis(1), ..TesseractSettings::DEFAULT };
    let mut engine = TesseractEngine::new(&data(), &tight).unwrap();
    let err = engine.recognize(&prepared, "stock.png").unwrap_err().to_string();
    assert!(err.starts_with("stock.png: OCR stopped after the 1 ms time limit"), "{err}");
    let mut engine = TesseractEngine::new(&data(), &TesseractSettings::DEFAULT).unwrap();
    let words = engine.recognize(&prepared, "stock.png").unwrap();
    assert!(words.iter().any(|w| w.text.contains("CBFE")), "{words:?}");
}
