//! The classifier head: a small dense network over backbone features, trained with Burn.
//!
//! Laid out like burn's `examples/guide`: [`model`] (the module), [`data`] (features, splits,
//! batches), [`options`] (hyper-parameters, device), [`training`] (the loop, generic over the
//! backend; [`progress`] what it reports), [`inference`] (probabilities and
//! predictions). [`HeadWeights`] is the framework-free result that the ONNX export writes.

pub mod data;
pub mod inference;
pub mod model;
pub mod options;
pub mod progress;
pub mod training;

pub use data::{FeatureSource, LabelledFeatures, Split, balanced_class_weights, stratified_split};
pub use model::{Head, HeadConfig};
pub use options::{StoppingMetric, TrainDevice, TrainOptions};
pub use progress::{EpochRecord, NoTrainProgress, TrainProgress};
pub use training::{TrainOutcome, train};

pub use spamlens_model::weights::{DenseLayer, HeadWeights};
