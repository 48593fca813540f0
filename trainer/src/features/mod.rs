//! Feature extraction: image folders → 2048-d backbone features in a Parquet store.

pub mod extract;
pub mod store;

use std::path::Path;

use spamlens_core::{Fit, Model, ModelOptions, Preprocessing};

use crate::error::{Result, TrainerError};
pub use extract::{ExtractOptions, ExtractProgress, ExtractReport, Failure, NoExtractProgress, extract_to_store};
pub use store::{FeatureRow, FeatureStore, StoreProvenance};

/// A backbone loaded for feature extraction: the model, the preprocessing it declares, and the
/// provenance recorded in stores.
#[derive(Debug)]
pub struct Backbone {
    /// The model (all its outputs; the ImageNet head costs ~0.05% of the backbone's work).
    pub model: Model,
    /// The preprocessing the model's metadata declares (checked against `spamlens-core`'s).
    pub preprocessing: Preprocessing,
    /// What feature stores record about it.
    pub provenance: StoreProvenance,
}

impl Backbone {
    /// Loads the backbone ONNX at `path`. Refuses models whose declared preprocessing is not the
    /// one `spamlens-core` implements, and models without the feature output.
    pub fn load(path: &Path, intra_op_threads: Option<usize>) -> Result<Backbone> {
        let bytes = std::fs::read(path).map_err(|e| TrainerError::io(path, e))?;
        let name = path.display().to_string();
        // Per-item plans are the fastest per image for a convolutional backbone (see `Batching`).
        let options = ModelOptions {
            intra_op_threads,
            outputs: None,
            batching: spamlens_core::Batching::PerItem,
            ..ModelOptions::default()
        };
        let model = Model::from_bytes(&bytes, &name, &options)?;
        let feature_tensor = model
            .metadata()
            .get("feature_tensor")
            .cloned()
            .unwrap_or_else(|| spamlens_core::FEATURES_OUTPUT.to_owned());
        if !model.output_names().contains(&feature_tensor) {
            return Err(spamlens_core::Error::NoSuchOutput {
                model: name,
                name: feature_tensor,
                available: model.output_names().join(", "),
            }
            .into());
        }
        let preprocessing = Preprocessing::RESNET_IMAGENET;
        if model.input_dims() != [3, preprocessing.crop as usize, preprocessing.crop as usize] {
            return Err(spamlens_core::Error::ModelSignature {
                model: name,
                reason: format!("input is [N, {:?}], expected [N, 3, 224, 224]", model.input_dims()),
            }
            .into());
        }
        if let Some(declared) = model.metadata().get("preprocessing")
            && declared != &preprocessing.describe()
        {
            return Err(spamlens_core::Error::ModelSignature {
                model: name,
                reason: format!(
                    "declares preprocessing '{declared}', but spamlens implements '{}'",
                    preprocessing.describe()
                ),
            }
            .into());
        }
        let provenance = StoreProvenance {
            backbone_sha256: model.sha256().to_owned(),
            backbone_source: model.metadata().get("source").cloned().unwrap_or_default(),
            preprocessing: preprocessing.describe(),
            feature_tensor,
        };
        Ok(Backbone { model, preprocessing, provenance })
    }

    /// The same backbone fed images fitted another way (centre crop or letterbox); the stores it
    /// writes, and the heads trained on them, record the choice.
    pub fn with_fit(mut self, fit: Fit) -> Backbone {
        self.preprocessing = self.preprocessing.with_fit(fit);
        self.provenance.preprocessing = self.preprocessing.describe();
        self
    }
}
