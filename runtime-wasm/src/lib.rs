//! `spamlens-wasm`: spamlens-core for the browser, through wasm-bindgen.
//!
//! A page loads the model bytes once (`new SpamlensModel(bytes)`) and asks for the backbone
//! features of image bytes; images never leave the page. Errors surface as JS exceptions carrying
//! `spamlens-core`'s message. The JS package, worker and classification API build on this.

use spamlens_core::{DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};
use wasm_bindgen::prelude::*;

/// The spamlens version, for diagnostics.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Installs a panic hook that reports Rust panics on the browser console instead of aborting silently.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// A loaded ONNX model.
#[wasm_bindgen]
pub struct SpamlensModel {
    model: Model,
}

#[wasm_bindgen]
impl SpamlensModel {
    /// Loads and optimises an ONNX model from its bytes.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<SpamlensModel, JsError> {
        let options = ModelOptions { batching: spamlens_core::Batching::PerItem, ..Default::default() };
        let model = Model::from_bytes(bytes, "model", &options)?;
        Ok(SpamlensModel { model })
    }

    /// The model's `metadata_props`, sha256, input and outputs as a JSON string.
    #[wasm_bindgen(js_name = infoJson)]
    pub fn info_json(&self) -> String {
        serde_json::json!({
            "sha256": self.model.sha256(),
            "input": self.model.input_name(),
            "inputDims": self.model.input_dims(),
            "outputs": self.model.output_names(),
            "metadata": self.model.metadata(),
        })
        .to_string()
    }

    /// Decodes and preprocesses `image` (named `name` in errors) and returns the named output.
    pub fn run(&self, image: &[u8], name: &str, output: &str) -> Result<Vec<f32>, JsError> {
        let prepared = prepare_image(image, name, &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)?;
        let outputs = self.model.run(prepared.tensor, 1)?;
        Ok(outputs.take(output)?.values)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
    }
}
