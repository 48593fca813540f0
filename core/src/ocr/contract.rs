//! What a fused model declares about the OCR it was trained with, and the check every runtime makes
//! before it feeds the model text: the same engine family, languages, trained data (by sha256),
//! page segmentation, image preparation and text featurizer. A verdict must not depend on where it
//! ran, so a runtime with other trained data refuses the model instead of scoring with it.

use serde::{Deserialize, Serialize};

use super::{OcrImageSpec, TextFeaturizer};

/// One language's trained data, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainedData {
    /// Tesseract's language code (`eng`, `rus`, `chi_sim`).
    pub language: String,
    /// sha256 (hex) of the `.traineddata` file.
    pub sha256: String,
}

/// The OCR side of a fused model's contract (`spamlens.ocr` metadata, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OcrContract {
    /// Engine family (`tesseract`).
    pub engine: String,
    /// Engine major version (5): the LSTM recogniser and its trained-data format.
    pub engine_major: u32,
    /// Engine mode (`lstm`: the LSTM recogniser only, Tesseract's OEM 1).
    pub engine_mode: String,
    /// Tesseract page segmentation mode (3: fully automatic).
    pub page_segmentation: u32,
    /// The trained data, in the order the languages are given to the engine.
    pub data: Vec<TrainedData>,
    /// The resolution (dpi) the engine is told the image has.
    pub dpi: u32,
    /// How images are prepared ([`OcrImageSpec::describe`]).
    pub image: String,
    /// How the text becomes model input ([`TextFeaturizer::describe`]).
    pub featurizer: String,
    /// The engine version the model was trained with (provenance; not checked).
    pub trained_with: String,
}

/// What a running engine is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineIdentity {
    /// Engine family (`tesseract`).
    pub engine: String,
    /// Full version string as the engine reports it (`5.3.0`, `5.1.0-288-g2a9c1`).
    pub version: String,
    /// Engine mode (`lstm`).
    pub engine_mode: String,
    /// Page segmentation mode.
    pub page_segmentation: u32,
    /// Resolution told to the engine.
    pub dpi: u32,
    /// The trained data it loaded, in language order.
    pub data: Vec<TrainedData>,
}

impl EngineIdentity {
    /// The major version (the digits before the first `.`), 0 when unreadable.
    pub fn major(&self) -> u32 {
        self.version.split(['.', '-']).next().and_then(|m| m.trim().parse().ok()).unwrap_or(0)
    }

    /// Languages joined as Tesseract takes them (`eng+rus+chi_sim`).
    pub fn languages(&self) -> String {
        self.data.iter().map(|d| d.language.as_str()).collect::<Vec<_>>().join("+")
    }
}

impl OcrContract {
    /// The contract of a model trained with `engine` output, prepared and featurized as given.
    pub fn new(engine: &EngineIdentity, image: &OcrImageSpec, featurizer: &TextFeaturizer) -> OcrContract {
        OcrContract {
            engine: engine.engine.clone(),
            engine_major: engine.major(),
            engine_mode: engine.engine_mode.clone(),
            page_segmentation: engine.page_segmentation,
            data: engine.data.clone(),
            dpi: engine.dpi,
            image: image.describe(),
            featurizer: featurizer.describe(),
            trained_with: format!("{} {}", engine.engine, engine.version),
        }
    }

    /// Parses the `spamlens.ocr` metadata value.
    pub fn from_json(text: &str) -> Result<OcrContract, String> {
        serde_json::from_str(text).map_err(|e| format!("not an OCR contract ({e})"))
    }

    /// The `spamlens.ocr` metadata value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Languages joined as Tesseract takes them (`eng+rus+chi_sim`).
    pub fn languages(&self) -> String {
        self.data.iter().map(|d| d.language.as_str()).collect::<Vec<_>>().join("+")
    }

    /// The image preparation this contract names, if this version implements it.
    pub fn image_spec(&self) -> Option<OcrImageSpec> {
        (OcrImageSpec::V1.describe() == self.image).then_some(OcrImageSpec::V1)
    }

    /// The featurizer this contract names, if this version implements it.
    pub fn text_featurizer(&self) -> Option<TextFeaturizer> {
        TextFeaturizer::from_description(&self.featurizer)
    }

    /// `Ok` when `engine` reads text the way the model was trained to expect; else every
    /// difference, in words.
    pub fn check(&self, engine: &EngineIdentity) -> Result<(), String> {
        let mut problems = Vec::new();
        if engine.engine != self.engine || engine.major() != self.engine_major {
            problems.push(format!(
                "the model needs {} {}.x, the runtime has {} {}",
                self.engine, self.engine_major, engine.engine, engine.version
            ));
        }
        if engine.engine_mode != self.engine_mode {
            problems.push(format!("engine mode {} (model) vs {} (runtime)", self.engine_mode, engine.engine_mode));
        }
        if engine.page_segmentation != self.page_segmentation || engine.dpi != self.dpi {
            problems.push(format!(
                "page segmentation {} at {} dpi (model) vs {} at {} dpi (runtime)",
                self.page_segmentation, self.dpi, engine.page_segmentation, engine.dpi
            ));
        }
        if engine.languages() != self.languages() {
            problems.push(format!("languages {} (model) vs {} (runtime)", self.languages(), engine.languages()));
        } else {
            for (want, have) in self.data.iter().zip(&engine.data) {
                if want.sha256 != have.sha256 {
                    problems.push(format!(
                        "{}.traineddata is {} in the runtime, the model was trained with {}",
                        want.language, have.sha256, want.sha256
                    ));
                }
            }
        }
        if self.image_spec().is_none() {
            problems.push(format!("image preparation '{}' is not one this runtime implements", self.image));
        }
        if self.text_featurizer().is_none() {
            problems.push(format!("text featurizer '{}' is not one this runtime implements", self.featurizer));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(version: &str, eng_sha: &str) -> EngineIdentity {
        EngineIdentity {
            engine: "tesseract".into(),
            version: version.into(),
            engine_mode: "lstm".into(),
            page_segmentation: 3,
            dpi: 300,
            data: vec![
                TrainedData { language: "eng".into(), sha256: eng_sha.into() },
                TrainedData { language: "rus".into(), sha256: "bb".into() },
            ],
        }
    }

    #[test]
    fn the_same_engine_family_and_data_pass_and_anything_else_is_named() {
        let contract = OcrContract::new(&engine("5.3.0", "aa"), &OcrImageSpec::V1, &TextFeaturizer::V1);
        assert_eq!(contract.engine_major, 5);
        assert_eq!(contract.languages(), "eng+rus");
        let json = contract.to_json();
        assert_eq!(OcrContract::from_json(&json).unwrap(), contract);
        assert!(contract.check(&engine("5.1.0-288-g2a9c1", "aa")).is_ok(), "browser build of Tesseract 5");
        let err = contract.check(&engine("4.1.1", "cc")).unwrap_err();
        assert!(err.contains("tesseract 5.x") && err.contains("eng.traineddata is cc"), "{err}");
        let mut fewer = engine("5.3.0", "aa");
        fewer.data.pop();
        assert!(contract.check(&fewer).unwrap_err().contains("languages eng+rus (model) vs eng (runtime)"));
        let mut other_prep = contract.clone();
        other_prep.image = "colour".into();
        assert!(other_prep.check(&engine("5.3.0", "aa")).unwrap_err().contains("image preparation"));
        assert!(OcrContract::from_json("{}").is_err());
    }
}
