//! What a training run reports while it runs: one record per epoch and the callbacks that receive
//! them (the binary draws progress bars, tests stay silent).

use serde::Serialize;

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean (class-weighted) training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean unweighted cross-entropy on the test rows (`None` without a test side).
    pub test_loss: Option<f64>,
    /// Weighted F1 on the test rows.
    pub test_weighted_f1: Option<f64>,
    /// Accuracy on the test rows.
    pub test_accuracy: Option<f64>,
    /// Wall-clock seconds for the epoch's training steps (evaluation excluded).
    pub train_seconds: f64,
}

/// Progress callbacks for a training run.
pub trait TrainProgress {
    /// Called once before the first epoch with the total number of optimiser steps.
    fn start(&mut self, _total_steps: u64) {}
    /// Called after every optimiser step.
    fn step(&mut self) {}
    /// Called after every epoch.
    fn epoch(&mut self, _record: &EpochRecord) {}
}

/// A [`TrainProgress`] that ignores everything.
#[derive(Debug, Default)]
pub struct NoTrainProgress;
impl TrainProgress for NoTrainProgress {}
