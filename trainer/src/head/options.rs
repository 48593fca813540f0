//! The head's hyper-parameters (with the paper's defaults), the metric early stopping watches, and
//! the device training runs on.

use serde::Serialize;

use crate::error::{Result, TrainerError};

/// Hyper-parameters. Defaults are the paper's (section 5) and its reference code's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainOptions {
    /// Hidden layer widths (paper: one layer of 2048).
    pub hidden: Vec<usize>,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per optimiser step (reference code: 5000).
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Weight the loss of each class by its inverse training frequency.
    pub class_weights: bool,
    /// Seeds the initial weights and the batch order.
    pub seed: u64,
    /// Adam's L2 weight decay (0: none, the paper's).
    pub weight_decay: f64,
    /// Dropout after each hidden layer while training (0: none).
    pub dropout: f64,
    /// Cosine learning-rate decay from `learning_rate` to 0 over the epochs (else constant).
    pub cosine_schedule: bool,
    /// Standardise each feature with the training rows' mean and std; folded into the first
    /// layer afterwards, so the exported head still takes raw features.
    pub standardize: bool,
    /// Stop when the test side's [`stop_on`](Self::stop_on) metric has not improved for this many
    /// epochs and keep the best epoch's weights. The test side must then be a validation set, not
    /// the final test.
    pub early_stopping: Option<usize>,
    /// What early stopping watches on the validation side.
    pub stop_on: StoppingMetric,
}

/// The validation quantity early stopping keeps the best epoch of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoppingMetric {
    /// Cross-entropy loss (lower is better): calibration and ranking together.
    #[default]
    Loss,
    /// ROC AUC of p(spam) between the `ham` and `spam` rows (higher is better): the ranking a
    /// threshold for a target false-positive rate relies on, whatever the calibration.
    SpamAuc,
}

impl StoppingMetric {
    /// The name used on command lines (`loss`, `spam-auc`).
    pub fn name(&self) -> &'static str {
        match self {
            StoppingMetric::Loss => "loss",
            StoppingMetric::SpamAuc => "spam-auc",
        }
    }

    /// Parses [`StoppingMetric::name`].
    pub fn parse(text: &str) -> Option<StoppingMetric> {
        [StoppingMetric::Loss, StoppingMetric::SpamAuc].into_iter().find(|m| m.name() == text)
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            hidden: vec![2048],
            epochs: 80,
            batch_size: 5000,
            learning_rate: 1e-3,
            class_weights: true,
            seed: 2018,
            weight_decay: 0.0,
            dropout: 0.0,
            cosine_schedule: false,
            standardize: false,
            early_stopping: None,
            stop_on: StoppingMetric::Loss,
        }
    }
}

impl TrainOptions {
    /// Checks the hyper-parameters a command line can get wrong; the error says which and why.
    pub fn check(&self) -> Result<()> {
        let bad = |reason: &str| Err(TrainerError::Dataset { path: "options".into(), reason: reason.to_owned() });
        if self.hidden.contains(&0) || self.epochs == 0 || self.batch_size == 0 {
            return bad("hidden widths, epochs and batch size must be positive");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("the learning rate must be positive");
        }
        if !((0.0..1.0).contains(&self.dropout) && self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("dropout must be in [0, 1) and weight decay non-negative");
        }
        if self.early_stopping == Some(0) {
            return bad("early-stopping patience must be at least one epoch");
        }
        Ok(())
    }
}

/// Where the training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainDevice {
    /// Burn's ndarray backend on the CPU (multi-threaded matrix products).
    Cpu,
    /// An NVIDIA GPU through burn-cuda (the `cuda` cargo feature), by index.
    Cuda(usize),
}

impl TrainDevice {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn parse(text: &str) -> Result<TrainDevice> {
        match text {
            "cpu" => Ok(TrainDevice::Cpu),
            "cuda" | "gpu" => Ok(TrainDevice::Cuda(0)),
            other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(index) => Ok(TrainDevice::Cuda(index)),
                None => Err(TrainerError::Device(format!("unknown device '{other}' (expected cpu, cuda or cuda:N)"))),
            },
        }
    }

    /// The backend's name for reports.
    pub fn describe(&self) -> String {
        match self {
            TrainDevice::Cpu => format!("cpu (burn-ndarray, {} threads)", rayon::current_num_threads()),
            TrainDevice::Cuda(i) => format!("cuda:{i} (burn-cuda)"),
        }
    }
}
