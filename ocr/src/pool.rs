//! Engines shared by the threads of a run: each call borrows an idle engine (or starts one), so
//! at most one thread uses an engine at a time and no thread waits for another's image.

use std::sync::Mutex;

use spamlens_core::ocr::{EngineIdentity, OcrEngine, OcrImage, OcrImageSpec, OcrText};

use crate::error::Result;
use crate::tessdata::TessdataDir;
use crate::tesseract::{TesseractEngine, TesseractSettings};

/// A growing set of [`TesseractEngine`]s on one trained-data folder.
#[derive(Debug)]
pub struct EnginePool {
    data: TessdataDir,
    settings: TesseractSettings,
    identity: EngineIdentity,
    idle: Mutex<Vec<TesseractEngine>>,
}

impl EnginePool {
    /// Starts one engine (so a broken setup is reported now, not at the first image) and keeps it.
    pub fn new(data: TessdataDir, settings: TesseractSettings) -> Result<EnginePool> {
        let first = TesseractEngine::new(&data, &settings)?;
        let identity = first.identity().clone();
        Ok(EnginePool { data, settings, identity, idle: Mutex::new(vec![first]) })
    }

    /// What the engines are (for a model's contract check).
    pub fn identity(&self) -> &EngineIdentity {
        &self.identity
    }

    /// The trained data folder.
    pub fn data(&self) -> &TessdataDir {
        &self.data
    }

    /// The settings every engine runs with.
    pub fn settings(&self) -> &TesseractSettings {
        &self.settings
    }

    /// Reads the words of a prepared image with an idle engine; `input` names it in errors.
    pub fn recognize(&self, image: &OcrImage, input: &str) -> spamlens_core::Result<OcrText> {
        let mut engine = self.checkout(input)?;
        let words = engine.recognize(image, input);
        // An engine whose recognition failed is cleared and fit for the next image.
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(engine);
        Ok(image.text(words?))
    }

    /// Prepares and reads a decoded image (images too small to hold text are not read).
    pub fn read_text(&self, rgb: &image::RgbImage, spec: &OcrImageSpec, input: &str) -> spamlens_core::Result<OcrText> {
        match OcrImage::prepare(rgb, spec, input)? {
            None => Ok(OcrText::empty(rgb.width(), rgb.height())),
            Some(prepared) => self.recognize(&prepared, input),
        }
    }

    fn checkout(&self, input: &str) -> spamlens_core::Result<TesseractEngine> {
        if let Some(engine) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(engine);
        }
        TesseractEngine::new(&self.data, &self.settings)
            .map_err(|e| spamlens_core::Error::Ocr { input: input.to_owned(), reason: e.to_string() })
    }
}
