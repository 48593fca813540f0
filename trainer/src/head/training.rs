//! The training loop: Adam, class-weighted cross-entropy, shuffled mini-batches, an evaluation of
//! the test side after every epoch. One code path, generic over Burn's `AutodiffBackend`;
//! [`train`] picks the backend from a [`TrainDevice`].

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use super::HeadWeights;
use super::data::{LabelledFeatures, Split, balanced_class_weights};
use super::inference::{argmax_rows, probabilities_of};
use super::model::{Head, HeadConfig};
use super::options::{StoppingMetric, TrainDevice, TrainOptions};
use super::progress::{EpochRecord, TrainProgress};
use crate::error::{Result, TrainerError};
use crate::metrics::ConfusionMatrix;
use crate::random::SplitMix64;

impl TrainOptions {
    /// The score early stopping maximises for `eval` (negated loss, or the spam AUC), or an error
    /// when the metric needs `ham` and `spam` classes the data lacks.
    fn stopping_score(&self, eval: &Evaluation, data: &LabelledFeatures, rows: &[usize]) -> Result<f64> {
        match self.stop_on {
            StoppingMetric::Loss => Ok(-eval.loss),
            StoppingMetric::SpamAuc => {
                let (ham, spam) = spam_auc_classes(data)?;
                let width = data.classes.len();
                let (mut scores, mut is_spam) = (Vec::new(), Vec::new());
                for (i, &row) in rows.iter().enumerate() {
                    let label = data.labels[row];
                    if label == ham || label == spam {
                        scores.push(eval.probabilities[i * width + spam]);
                        is_spam.push(label == spam);
                    }
                }
                Ok(crate::operating_point::Curves::new(&scores, &is_spam).roc_auc)
            }
        }
    }
}

/// The `ham` and `spam` class indices early stopping on the spam AUC compares, or an error naming
/// the data when one is missing.
fn spam_auc_classes(data: &LabelledFeatures) -> Result<(usize, usize)> {
    let class = |name: &str| {
        data.classes.iter().position(|c| c == name).ok_or_else(|| TrainerError::Dataset {
            path: data.description.clone().into(),
            reason: format!("early stopping on the spam AUC needs a '{name}' class"),
        })
    };
    Ok((class("ham")?, class("spam")?))
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained head.
    pub weights: HeadWeights,
    /// One record per epoch.
    pub history: Vec<EpochRecord>,
    /// The final head's test confusion matrix (`None` without a test side).
    pub confusion: Option<ConfusionMatrix>,
    /// The final head's test probabilities, row-major `split.test.len() × classes`.
    pub test_probabilities: Vec<f32>,
    /// Training rows per second over all epochs (optimiser steps only).
    pub samples_per_second: f64,
    /// The device it ran on.
    pub device: String,
    /// The class weights used in the loss.
    pub class_weights: Vec<f32>,
    /// The epoch whose weights were kept (the last, or the best one with early stopping).
    pub best_epoch: usize,
}

/// Trains a head on `split.train` and evaluates it on `split.test` after every epoch.
pub fn train(
    data: &LabelledFeatures,
    split: &Split,
    options: &TrainOptions,
    device: TrainDevice,
    progress: &mut dyn TrainProgress,
) -> Result<TrainOutcome> {
    match device {
        TrainDevice::Cpu => {
            type Cpu = burn::backend::Autodiff<burn::backend::NdArray<f32>>;
            train_on::<Cpu>(data, split, options, &Default::default(), device, progress)
        }
        #[cfg(feature = "cuda")]
        TrainDevice::Cuda(index) => {
            type Gpu = burn::backend::Autodiff<burn::backend::Cuda<f32, i32>>;
            let gpu = burn::backend::cuda::CudaDevice::new(index);
            // burn-cuda panics (on its own threads too) when no driver or GPU is present: keep the
            // first panic's message quiet and turn it into an error that says what failed.
            static FIRST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(|info| {
                let mut first = FIRST_PANIC.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if first.is_none() {
                    let payload = info.payload();
                    let text = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "unknown failure".to_owned());
                    *first = Some(text);
                }
            }));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                train_on::<Gpu>(data, split, options, &gpu, device, progress)
            }));
            std::panic::set_hook(previous);
            outcome.unwrap_or_else(|_| {
                let reason = FIRST_PANIC
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| "unknown failure".to_owned());
                let reason: String = reason.chars().take(240).collect();
                Err(TrainerError::Device(format!(
                    "cuda:{index} failed (is the NVIDIA driver installed and a GPU visible?): {reason}"
                )))
            })
        }
        #[cfg(not(feature = "cuda"))]
        TrainDevice::Cuda(_) => Err(TrainerError::Device(
            "this build has no CUDA support; rebuild with `cargo build --release -p spamlens-trainer --features cuda`"
                .into(),
        )),
    }
}

/// [`train`] on a chosen backend and device.
pub fn train_on<B: AutodiffBackend>(
    data: &LabelledFeatures,
    split: &Split,
    options: &TrainOptions,
    device: &B::Device,
    which: TrainDevice,
    progress: &mut dyn TrainProgress,
) -> Result<TrainOutcome> {
    let classes = data.classes.len();
    if split.train.is_empty() {
        return Err(TrainerError::Dataset { path: data.description.clone().into(), reason: "no training rows".into() });
    }
    if classes < 2 {
        return Err(TrainerError::Dataset {
            path: data.description.clone().into(),
            reason: format!("only one class ({}); a classifier needs at least two", data.classes.join(", ")),
        });
    }
    if options.batch_size == 0 || options.epochs == 0 {
        return Err(TrainerError::Dataset {
            path: data.description.clone().into(),
            reason: "batch size and epochs must be positive".into(),
        });
    }
    let counts = data.class_counts(&split.train);
    let class_weights = if options.class_weights { balanced_class_weights(&counts) } else { vec![1.0; classes] };

    // Standardised features: a copy of the data, scaled with the training rows' statistics.
    let standardisation = options.standardize.then(|| feature_statistics(data, &split.train));
    let standardised;
    let data = match &standardisation {
        Some((mean, std)) => {
            let mut copy = data.clone();
            for row in copy.features.chunks_exact_mut(copy.dim) {
                row.iter_mut().zip(mean.iter().zip(std)).for_each(|(x, (m, s))| *x = (*x - m) / s);
            }
            standardised = copy;
            &standardised
        }
        None => data,
    };
    if options.early_stopping.is_some() && options.stop_on == StoppingMetric::SpamAuc {
        // Refused before the first epoch rather than after it.
        spam_auc_classes(data)?;
    }
    let config = HeadConfig { input_dim: data.dim, hidden: options.hidden.clone(), classes, dropout: options.dropout };
    let mut trainer = HeadTrainer::<B, _>::new(
        &config,
        &class_weights,
        options.learning_rate,
        options.weight_decay,
        options.seed,
        device,
    );
    let test_loss_fn = CrossEntropyLossConfig::new().init::<B::InnerBackend>(device);

    let steps_per_epoch = split.train.len().div_ceil(options.batch_size);
    progress.start((steps_per_epoch * options.epochs) as u64);
    let mut order = split.train.clone();
    let mut rng = SplitMix64::new(options.seed ^ 0x5eed_5eed_5eed_5eed);
    let mut history = Vec::with_capacity(options.epochs);
    let mut train_seconds_total = 0.0;
    let mut last_eval = None;
    let mut best: Option<(f64, usize, HeadWeights, Evaluation)> = None;
    for epoch in 1..=options.epochs {
        if options.cosine_schedule {
            let progress = (epoch - 1) as f64 / options.epochs as f64;
            trainer.learning_rate = options.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        }
        rng.shuffle(&mut order);
        let started = Instant::now();
        let mut loss_sum = 0.0;
        for chunk in order.chunks(options.batch_size) {
            let loss_value = trainer.step(data.gather(chunk), &data.gather_labels(chunk));
            if !loss_value.is_finite() {
                return Err(TrainerError::Dataset {
                    path: data.description.clone().into(),
                    reason: format!("training diverged: loss {loss_value} in epoch {epoch}; try a lower learning rate"),
                });
            }
            loss_sum += loss_value * chunk.len() as f64;
            progress.step();
        }
        let train_seconds = started.elapsed().as_secs_f64();
        train_seconds_total += train_seconds;

        let mut stop = false;
        let mut record = EpochRecord {
            epoch,
            train_loss: loss_sum / split.train.len() as f64,
            test_loss: None,
            test_weighted_f1: None,
            test_accuracy: None,
            train_seconds,
        };
        if !split.test.is_empty() {
            let eval = evaluate(&trainer.head.valid(), &test_loss_fn, data, &split.test, options.batch_size, device)?;
            record.test_loss = Some(eval.loss);
            record.test_weighted_f1 = Some(eval.confusion.weighted_f1());
            record.test_accuracy = Some(eval.confusion.accuracy());
            if let Some(patience) = options.early_stopping {
                let score = options.stopping_score(&eval, data, &split.test)?;
                if best.as_ref().is_none_or(|(b, ..)| score > *b) {
                    best = Some((score, epoch, trainer.head.valid().weights(&data.classes)?, eval.clone()));
                }
                stop = best.as_ref().is_some_and(|(_, best_epoch, ..)| epoch - best_epoch >= patience);
            }
            last_eval = Some(eval);
        }
        progress.epoch(&record);
        history.push(record);
        if stop {
            break;
        }
    }

    let (mut weights, best_epoch, last_eval) = match best {
        Some((_, epoch, weights, eval)) => (weights, epoch, Some(eval)),
        None => (trainer.head.valid().weights(&data.classes)?, history.len(), last_eval),
    };
    if let Some((mean, std)) = &standardisation {
        weights.fold_standardisation(mean, std)?;
    }
    let samples_per_second = (split.train.len() * history.len()) as f64 / train_seconds_total.max(1e-9);
    let (confusion, test_probabilities) = match last_eval {
        Some(eval) => (Some(eval.confusion), eval.probabilities),
        None => (None, Vec::new()),
    };
    Ok(TrainOutcome {
        weights,
        history,
        confusion,
        test_probabilities,
        samples_per_second,
        device: which.describe(),
        class_weights,
        best_epoch,
    })
}

/// Per-feature mean and standard deviation over `rows` (std floored at 1e-6: constant features
/// stay finite).
pub fn feature_statistics(data: &LabelledFeatures, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len().max(1) as f64;
    let mut sum = vec![0.0f64; data.dim];
    let mut sum_sq = vec![0.0f64; data.dim];
    for &r in rows {
        for ((s, q), &x) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(data.row(r)) {
            *s += f64::from(x);
            *q += f64::from(x) * f64::from(x);
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std: Vec<f32> =
        sum.iter().zip(&sum_sq).map(|(s, q)| ((q / n - (s / n) * (s / n)).max(0.0).sqrt() as f32).max(1e-6)).collect();
    (mean, std)
}

fn targets_tensor<B: burn::tensor::backend::Backend>(labels: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::<B, 1, Int>::from_data(TensorData::new(targets, [labels.len()]), device)
}

/// A head with its optimiser and loss: one [`HeadTrainer::step`] is one Adam update on one batch.
/// The training loop and the benches share it.
pub struct HeadTrainer<B: AutodiffBackend, O: Optimizer<Head<B>, B>> {
    /// The head being trained.
    pub head: Head<B>,
    optimizer: O,
    loss: CrossEntropyLoss<B>,
    learning_rate: f64,
    input_dim: usize,
    device: B::Device,
}

impl<B: AutodiffBackend> HeadTrainer<B, OptimizerAdaptor<Adam, Head<B>, B>> {
    /// Seeds the backend, initialises a head and Adam (Keras's ε = 1e-7, as in the reference code;
    /// burn's default is 1e-5; L2 `weight_decay` when positive), with the loss weighted by
    /// `class_weights`.
    pub fn new(
        config: &HeadConfig,
        class_weights: &[f32],
        learning_rate: f64,
        weight_decay: f64,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        // Backends keep one global RNG: seeding and drawing the initial weights must not interleave
        // with another head's in the same process, or "same seed, same model" breaks.
        static SEEDED_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let head = {
            let _guard = SEEDED_INIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            B::seed(device, seed);
            let head = config.init::<B>(device);
            // Burn initialises parameters lazily, on first access: draw them now, under the lock,
            // with one forward pass (dropout is the identity on the inner backend).
            let _ = head.valid().forward(Tensor::zeros([1, config.input_dim], device));
            head
        };
        HeadTrainer {
            head,
            optimizer: AdamConfig::new()
                .with_epsilon(1e-7)
                .with_weight_decay(
                    (weight_decay > 0.0).then(|| burn::optim::decay::WeightDecayConfig::new(weight_decay as f32)),
                )
                .init::<B, Head<B>>(),
            loss: CrossEntropyLossConfig::new().with_weights(Some(class_weights.to_vec())).init::<B>(device),
            learning_rate,
            input_dim: config.input_dim,
            device: device.clone(),
        }
    }
}

impl<B: AutodiffBackend, O: Optimizer<Head<B>, B>> HeadTrainer<B, O> {
    /// One optimiser step on `labels.len()` rows of `features` (row-major); returns the batch loss.
    pub fn step(&mut self, features: Vec<f32>, labels: &[usize]) -> f64 {
        let x = Tensor::<B, 2>::from_data(TensorData::new(features, [labels.len(), self.input_dim]), &self.device);
        let targets = targets_tensor::<B>(labels, &self.device);
        let loss = self.loss.forward(self.head.forward(x), targets);
        let value: f64 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &self.head);
        // Modules are cheap handles (parameters are shared, not copied): step takes the head by value.
        let head = self.head.clone();
        self.head = self.optimizer.step(self.learning_rate, head, grads);
        value
    }
}

#[derive(Clone)]
struct Evaluation {
    loss: f64,
    confusion: ConfusionMatrix,
    probabilities: Vec<f32>,
}

fn evaluate<B: burn::tensor::backend::Backend>(
    head: &super::Head<B>,
    loss_fn: &burn::nn::loss::CrossEntropyLoss<B>,
    data: &LabelledFeatures,
    rows: &[usize],
    batch_size: usize,
    device: &B::Device,
) -> Result<Evaluation> {
    let mut loss_sum = 0.0;
    let mut probabilities = Vec::with_capacity(rows.len() * data.classes.len());
    for chunk in rows.chunks(batch_size.max(1)) {
        let x = Tensor::<B, 2>::from_data(TensorData::new(data.gather(chunk), [chunk.len(), data.dim]), device);
        let targets = targets_tensor::<B>(&data.gather_labels(chunk), device);
        let logits = head.forward(x);
        let loss: f64 = loss_fn.forward(logits.clone(), targets).into_scalar().elem();
        loss_sum += loss * chunk.len() as f64;
        probabilities.extend(probabilities_of(logits)?);
    }
    let predicted = argmax_rows(&probabilities, data.classes.len());
    let labels: Vec<&str> = data.classes.iter().map(String::as_str).collect();
    let confusion = ConfusionMatrix::from_predictions(&labels, &data.gather_labels(rows), &predicted)?;
    Ok(Evaluation { loss: loss_sum / rows.len() as f64, confusion, probabilities })
}

#[cfg(test)]
mod tests {
    use super::super::progress::NoTrainProgress;
    use super::*;
    use crate::head::{FeatureSource, HeadWeights};

    /// Two Gaussian blobs in 16 dimensions, 3:1 imbalanced.
    fn blobs(n: usize, seed: u64) -> LabelledFeatures {
        let mut rng = SplitMix64::new(seed);
        let dim = 16;
        let mut features = Vec::with_capacity(n * dim);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = usize::from(i % 4 == 0);
            for d in 0..dim {
                let centre = if class == 1 && d < 4 { 1.5 } else { 0.0 };
                features.push(centre + (rng.unit() as f32 - 0.5));
            }
            labels.push(class);
        }
        LabelledFeatures {
            features,
            dim,
            labels,
            classes: vec!["ham".into(), "spam".into()],
            names: (0..n).map(|i| i.to_string()).collect(),
            source: FeatureSource::EmailCz,
            description: "blobs".into(),
        }
    }

    fn small_options(seed: u64) -> TrainOptions {
        TrainOptions {
            hidden: vec![8],
            epochs: 15,
            batch_size: 64,
            learning_rate: 1e-2,
            seed,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn learns_separable_data_and_same_seed_gives_the_same_model() {
        let data = blobs(400, 3);
        let split = crate::head::stratified_split(&data.labels, 2, 0.25, 1).unwrap();
        let a = train(&data, &split, &small_options(9), TrainDevice::Cpu, &mut NoTrainProgress).unwrap();
        let b = train(&data, &split, &small_options(9), TrainDevice::Cpu, &mut NoTrainProgress).unwrap();
        let c = train(&data, &split, &small_options(10), TrainDevice::Cpu, &mut NoTrainProgress).unwrap();
        // Same seed: the same model, up to last-bit rounding differences of the CPU backend's kernels
        // between runs, amplified by training (seen up to ~5e-5; tests/cli.rs checks two runs of the binary too).
        let max_diff = |x: &HeadWeights, y: &HeadWeights| {
            x.layers
                .iter()
                .zip(&y.layers)
                .flat_map(|(l, m)| l.weight.iter().zip(&m.weight).chain(l.bias.iter().zip(&m.bias)))
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(max_diff(&a.weights, &b.weights) < 1e-3, "same seed: {}", max_diff(&a.weights, &b.weights));
        assert!(max_diff(&a.weights, &c.weights) > 1e-2, "another seed: another model");
        assert_eq!(a.history.len(), 15);
        assert!(a.history[14].train_loss < a.history[0].train_loss, "{:?}", a.history);
        let f1 = a.confusion.as_ref().unwrap().weighted_f1();
        assert!(f1 > 0.95, "weighted F1 {f1} on separable blobs");
        assert_eq!(a.test_probabilities.len(), split.test.len() * 2);
        // Inverse-frequency weights: the minority class weighs 3× the majority.
        assert!((a.class_weights[1] / a.class_weights[0] - 3.0).abs() < 0.05, "{:?}", a.class_weights);
    }

    #[test]
    fn early_stopping_scores_loss_or_spam_auc() {
        let mut data = blobs(8, 1);
        let rows = [0, 1, 2, 3, 4, 5];
        // Rows 0 and 4 are spam (every fourth); p(spam) ranks one ham (row 1) above spam row 4.
        let spam_probability = [0.9, 0.6, 0.2, 0.1, 0.5, 0.3];
        let probabilities = spam_probability.iter().flat_map(|p| [1.0 - p, *p]).collect();
        let labels = ["ham", "spam"];
        let confusion = ConfusionMatrix::from_predictions(&labels, &[1, 0, 0, 0, 1, 0], &[1, 1, 0, 0, 0, 0]).unwrap();
        let eval = Evaluation { loss: 0.25, confusion, probabilities };
        let by_loss = TrainOptions { stop_on: StoppingMetric::Loss, ..small_options(1) };
        assert_eq!(by_loss.stopping_score(&eval, &data, &rows).unwrap(), -0.25);
        let by_auc = TrainOptions { stop_on: StoppingMetric::SpamAuc, ..small_options(1) };
        // 2 spam × 4 ham pairs; spam row 4 (0.5) is below ham row 1 (0.6): 7 of 8 ordered right.
        assert!((by_auc.stopping_score(&eval, &data, &rows).unwrap() - 7.0 / 8.0).abs() < 1e-9);
        data.classes = vec!["ham".into(), "junk".into()];
        let err = by_auc.stopping_score(&eval, &data, &rows).unwrap_err();
        assert!(err.to_string().contains("'spam' class"), "{err}");
        assert_eq!(StoppingMetric::parse("spam-auc"), Some(StoppingMetric::SpamAuc));
        assert_eq!(StoppingMetric::parse("auc"), None);

        // Training with it keeps the best epoch and learns the blobs.
        let data = blobs(400, 3);
        let split = crate::head::stratified_split(&data.labels, 2, 0.25, 1).unwrap();
        let options = TrainOptions { early_stopping: Some(3), ..by_auc };
        let outcome = train(&data, &split, &options, TrainDevice::Cpu, &mut NoTrainProgress).unwrap();
        assert!(outcome.best_epoch <= outcome.history.len());
        assert!(outcome.confusion.as_ref().unwrap().weighted_f1() > 0.95);
    }

    #[test]
    fn refuses_degenerate_requests() {
        let data = blobs(40, 1);
        let split = Split { train: (0..40).collect(), test: vec![] };
        let no_batch = TrainOptions { batch_size: 0, ..small_options(1) };
        assert!(train(&data, &split, &no_batch, TrainDevice::Cpu, &mut NoTrainProgress).is_err());
        let one_class = Split { train: (1..4).collect(), test: vec![] };
        let mut single = data.clone();
        single.classes.truncate(1);
        single.labels.iter_mut().for_each(|l| *l = 0);
        assert!(train(&single, &one_class, &small_options(1), TrainDevice::Cpu, &mut NoTrainProgress).is_err());
        #[cfg(not(feature = "cuda"))]
        {
            let err = train(&data, &split, &small_options(1), TrainDevice::Cuda(0), &mut NoTrainProgress).unwrap_err();
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
        assert!(TrainDevice::parse("tpu").is_err());
        assert_eq!(TrainDevice::parse("cuda:1").unwrap(), TrainDevice::Cuda(1));
    }
}
