//! libtesseract through its C API (`tesseract-sys`): one engine per thread, a time limit per image.

use std::ffi::{CStr, CString, c_char, c_int};
use std::time::{Duration, Instant};

use spamlens_core::ocr::{EngineIdentity, EngineWord, OcrEngine, OcrImage};
use tesseract_sys as tess;

use crate::error::{OcrSetupError, Result};
use crate::tessdata::{TRAINED_DATA, TessdataDir, pinned_data};

/// How spamlens runs Tesseract. Part of a fused model's OCR contract (page segmentation, dpi);
/// the time limit is the runtime's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TesseractSettings {
    /// Page segmentation mode (3: fully automatic; email images are banners, price lists, photos).
    pub page_segmentation: u32,
    /// The resolution the engine is told the image has (its layout rules assume a dpi).
    pub dpi: u32,
    /// Recognition of one image stops at this limit (the image keeps its image-only verdict).
    pub time_limit: Duration,
}

impl TesseractSettings {
    /// Page segmentation 3, 300 dpi, 10 s per image.
    pub const DEFAULT: TesseractSettings =
        TesseractSettings { page_segmentation: 3, dpi: 300, time_limit: Duration::from_secs(10) };
}

impl Default for TesseractSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Tesseract variables set on every engine, native and in the browser, so both read alike (some
/// defaults moved between 5.x releases).
pub const VARIABLES: [(&str, &str); 3] = [
    // Lines read with low confidence are tried again inverted: white text on dark banners.
    ("tessedit_do_invert", "1"),
    // Word confidences and boxes come from the result iterator; no hOCR or PDF is made.
    ("tessedit_create_hocr", "0"),
    ("tessedit_create_pdf", "0"),
];

/// The version of the linked libtesseract (`5.3.0`).
pub fn library_version() -> String {
    // SAFETY: TessVersion returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(tess::TessVersion()) }.to_string_lossy().into_owned()
}

/// Turns off Leptonica's messages on stderr ("Error in boxClipToRectangle: box outside rectangle"
/// for odd layouts): harmless to the result, noise in a server's log.
fn quiet_leptonica() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: sets a global severity level in Leptonica, once, before any engine exists.
    ONCE.call_once(|| unsafe {
        leptonica_sys::setMsgSeverity(leptonica_sys::L_SEVERITY_NONE as i32);
    });
}

/// One Tesseract instance with every pinned language loaded (LSTM only). Not shareable between
/// threads at the same time; move it or use an [`EnginePool`](crate::EnginePool).
pub struct TesseractEngine {
    api: *mut tess::TessBaseAPI,
    identity: EngineIdentity,
    settings: TesseractSettings,
}

// SAFETY: a TessBaseAPI may be used from any thread, one thread at a time; `&mut self` on every
// call that touches it guarantees that.
unsafe impl Send for TesseractEngine {}

impl std::fmt::Debug for TesseractEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TesseractEngine").field("identity", &self.identity).field("settings", &self.settings).finish()
    }
}

impl TesseractEngine {
    /// Starts Tesseract on the trained data in `data` (LSTM only, every pinned language).
    pub fn new(data: &TessdataDir, settings: &TesseractSettings) -> Result<TesseractEngine> {
        let version = library_version();
        let languages = data.languages();
        let init_error = |reason: String| OcrSetupError::EngineInit {
            version: version.clone(),
            languages: languages.clone(),
            datapath: data.path().to_path_buf(),
            reason,
        };
        let datapath = CString::new(data.path().to_string_lossy().as_bytes())
            .map_err(|_| init_error("the folder name has a NUL byte".into()))?;
        let language = CString::new(languages.as_bytes()).map_err(|_| init_error("bad language list".into()))?;
        // SAFETY: plain C API calls on a handle we own; strings outlive the calls.
        quiet_leptonica();
        let api = unsafe { tess::TessBaseAPICreate() };
        if api.is_null() {
            return Err(init_error("TessBaseAPICreate returned nothing".into()));
        }
        let mut engine = TesseractEngine {
            api,
            identity: EngineIdentity {
                engine: "tesseract".into(),
                version: version.clone(),
                engine_mode: "lstm".into(),
                page_segmentation: settings.page_segmentation,
                dpi: settings.dpi,
                data: pinned_data(),
            },
            settings: settings.clone(),
        };
        // Warnings ("Empty page!!", "Too few characters") go nowhere rather than to a server's stderr.
        engine.set_variable("debug_file", "/dev/null").map_err(init_error)?;
        let rc = unsafe {
            tess::TessBaseAPIInit2(api, datapath.as_ptr(), language.as_ptr(), tess::TessOcrEngineMode_OEM_LSTM_ONLY)
        };
        if rc != 0 {
            return Err(init_error(format!("TessBaseAPIInit2 returned {rc}")));
        }
        let loaded = unsafe { tess::TessBaseAPIGetInitLanguagesAsString(api) };
        let loaded = if loaded.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(loaded) }.to_string_lossy().into_owned()
        };
        if loaded != languages {
            return Err(init_error(format!("it loaded '{loaded}'")));
        }
        for (name, value) in VARIABLES {
            engine.set_variable(name, value).map_err(init_error)?;
        }
        unsafe { tess::TessBaseAPISetPageSegMode(api, settings.page_segmentation as tess::TessPageSegMode) };
        debug_assert_eq!(TRAINED_DATA.len(), engine.identity.data.len());
        Ok(engine)
    }

    fn set_variable(&mut self, name: &str, value: &str) -> std::result::Result<(), String> {
        let (n, v) = (CString::new(name).map_err(|e| e.to_string())?, CString::new(value).map_err(|e| e.to_string())?);
        // SAFETY: handle owned by self; strings live across the call.
        let ok = unsafe { tess::TessBaseAPISetVariable(self.api, n.as_ptr(), v.as_ptr()) };
        if ok == 0 { Err(format!("Tesseract has no variable {name}")) } else { Ok(()) }
    }

    /// The settings this engine runs with.
    pub fn settings(&self) -> &TesseractSettings {
        &self.settings
    }
}

impl OcrEngine for TesseractEngine {
    fn identity(&self) -> &EngineIdentity {
        &self.identity
    }

    fn recognize(&mut self, image: &OcrImage, input: &str) -> spamlens_core::Result<Vec<EngineWord>> {
        let failed = |reason: String| spamlens_core::Error::Ocr { input: input.to_owned(), reason };
        let (width, height) = (image.width as usize, image.height as usize);
        if width == 0 || height == 0 || image.pixels.len() != width * height {
            return Err(failed(format!("{} pixels for a {width}x{height} grey image", image.pixels.len())));
        }
        let (w, h) = (
            c_int::try_from(width).map_err(|_| failed("image too wide".into()))?,
            c_int::try_from(height).map_err(|_| failed("image too tall".into()))?,
        );
        let limit_ms = self.settings.time_limit.as_millis().min(i32::MAX as u128) as c_int;
        single_threaded_openmp();
        let started = Instant::now();
        // SAFETY: the pixel buffer outlives recognition (Tesseract copies it into its own Pix in
        // SetImage); the monitor is freed below on every path.
        let words = unsafe {
            tess::TessBaseAPISetImage(self.api, image.pixels.as_ptr(), w, h, 1, w);
            tess::TessBaseAPISetSourceResolution(self.api, self.settings.dpi as c_int);
            let monitor = tess::TessMonitorCreate();
            tess::TessMonitorSetDeadlineMSecs(monitor, limit_ms);
            let rc = tess::TessBaseAPIRecognize(self.api, monitor);
            tess::TessMonitorDelete(monitor);
            if rc != 0 {
                tess::TessBaseAPIClear(self.api);
                let elapsed = started.elapsed();
                return Err(if elapsed >= self.settings.time_limit {
                    spamlens_core::Error::OcrTimedOut { input: input.to_owned(), limit_ms: limit_ms as u64 }
                } else {
                    failed(format!("recognition returned {rc} after {} ms", elapsed.as_millis()))
                });
            }
            let words = read_words(self.api);
            tess::TessBaseAPIClear(self.api);
            words
        };
        if started.elapsed() > self.settings.time_limit {
            // The deadline is checked between words; a page that ended past it is still a timeout,
            // so a limit means the same whatever the image.
            return Err(spamlens_core::Error::OcrTimedOut { input: input.to_owned(), limit_ms: limit_ms as u64 });
        }
        Ok(words)
    }
}

#[link(name = "gomp")]
unsafe extern "C" {
    fn omp_set_max_active_levels(max_levels: c_int);
}

/// Makes Tesseract's OpenMP regions run on the calling thread alone.
///
/// Debian's libtesseract is built with OpenMP and asks for 4–10 threads inside each line's LSTM;
/// on a machine whose cores already run one image each, those teams busy-wait for each other
/// (measured: 3.2 s instead of 0.27 s for one price list on 2 cores, 24 s instead of 2 s for a
/// page of text). `OMP_THREAD_LIMIT=1` would fix it, but libgomp reads it only when it is loaded,
/// before `main`. With no active parallel level allowed, every region is inactive and runs on one
/// thread; the setting belongs to the calling thread, so each thread that recognises sets it.
fn single_threaded_openmp() {
    // SAFETY: sets an OpenMP control variable of the calling thread; no memory is touched.
    unsafe { omp_set_max_active_levels(0) };
}

/// Walks the recognised words of the current page.
///
/// # Safety
/// `api` must be a live handle whose last `Recognize` succeeded.
unsafe fn read_words(api: *mut tess::TessBaseAPI) -> Vec<EngineWord> {
    let mut words = Vec::new();
    let iterator = unsafe { tess::TessBaseAPIGetIterator(api) };
    if iterator.is_null() {
        return words;
    }
    let word_level = tess::TessPageIteratorLevel_RIL_WORD;
    let mut line: Option<u32> = None;
    loop {
        let page = unsafe { tess::TessResultIteratorGetPageIterator(iterator) };
        if unsafe { tess::TessPageIteratorIsAtBeginningOf(page, tess::TessPageIteratorLevel_RIL_TEXTLINE) } != 0 {
            line = Some(line.map_or(0, |l| l + 1));
        }
        let text_ptr: *mut c_char = unsafe { tess::TessResultIteratorGetUTF8Text(iterator, word_level) };
        if !text_ptr.is_null() {
            let text = unsafe { CStr::from_ptr(text_ptr) }.to_string_lossy().into_owned();
            unsafe { tess::TessDeleteText(text_ptr) };
            let confidence = unsafe { tess::TessResultIteratorConfidence(iterator, word_level) };
            let (mut left, mut top, mut right, mut bottom) = (0, 0, 0, 0);
            let has_box = unsafe {
                tess::TessPageIteratorBoundingBox(page, word_level, &mut left, &mut top, &mut right, &mut bottom)
            } != 0;
            if has_box {
                let clamp = |v: c_int| u32::try_from(v.max(0)).unwrap_or(0);
                words.push(EngineWord {
                    text,
                    confidence,
                    bbox: [clamp(left), clamp(top), clamp(right), clamp(bottom)],
                    line: line.unwrap_or(0),
                });
            }
        }
        if unsafe { tess::TessResultIteratorNext(iterator, word_level) } == 0 {
            break;
        }
    }
    unsafe { tess::TessResultIteratorDelete(iterator) };
    words
}

impl Drop for TesseractEngine {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and used nowhere else.
        unsafe {
            tess::TessBaseAPIEnd(self.api);
            tess::TessBaseAPIDelete(self.api);
        }
    }
}
