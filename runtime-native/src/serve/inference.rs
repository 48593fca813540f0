//! The server's two pools: decoding/preprocessing on one, model runs on the other, so a slow or
//! hostile image never holds an inference worker.
//!
//! Inference uses dynamic batching: prepared images from all concurrent requests go into one
//! queue; a free worker takes the oldest, then whatever else is already queued (up to
//! `max_batch`), waiting up to `max_wait` for more, and runs them as one batch. Every worker runs
//! the same loaded plan (tract states are per call), with one thread per inference unless
//! `intra_op_threads` says otherwise. Requests that gave up (timeout, client gone) are skipped.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use spamlens_core::ocr::{OcrImage, OcrText};
use spamlens_core::{Classifier, PreparedImage, ReadText, Scores};
use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::reading::Ocr;

/// The stable code of one image's failure (the `error.code` of a failed image in a classify answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageErrorCode {
    /// The image has no bytes.
    EmptyImage,
    /// The bytes are not an image format the decoder reads (JPEG, PNG, GIF, BMP, WebP, TIFF, ICO).
    UnsupportedFormat,
    /// Over the byte, side or pixel limit (`--max-image-pixels`).
    ImageTooLarge,
    /// The image could not be decoded.
    CorruptImage,
    /// A JSON image is not valid base64.
    BadBase64,
    /// The model failed on the image.
    InferenceFailed,
    /// The server failed on the image.
    InternalError,
}

impl ImageErrorCode {
    /// The code as it is written in answers and in the `spamlens_images_total{outcome}` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyImage => "empty_image",
            Self::UnsupportedFormat => "unsupported_format",
            Self::ImageTooLarge => "image_too_large",
            Self::CorruptImage => "corrupt_image",
            Self::BadBase64 => "bad_base64",
            Self::InferenceFailed => "inference_failed",
            Self::InternalError => "internal_error",
        }
    }
}

/// Why one image could not be classified: a stable code and a message naming the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImageError {
    /// What kind of failure.
    pub code: ImageErrorCode,
    /// The message, naming the image.
    pub message: String,
}

impl ImageError {
    /// The code and message for a core error.
    pub fn from_core(error: &spamlens_core::Error) -> Self {
        use spamlens_core::Error as E;
        let code = match error {
            E::EmptyInput { .. } => ImageErrorCode::EmptyImage,
            E::UnknownFormat { .. } => ImageErrorCode::UnsupportedFormat,
            E::InputTooLarge { .. }
            | E::DimensionsTooLarge { .. }
            | E::TooManyPixels { .. }
            | E::DecodedSizeTooLarge { .. } => ImageErrorCode::ImageTooLarge,
            E::ZeroSize { .. } | E::Decode { .. } | E::Resize { .. } => ImageErrorCode::CorruptImage,
            _ => ImageErrorCode::InferenceFailed,
        };
        ImageError { code, message: error.to_string() }
    }

    /// An internal failure on one image.
    pub fn internal(message: String) -> Self {
        ImageError { code: ImageErrorCode::InternalError, message }
    }
}

/// How the inference pool runs.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Inference worker threads.
    pub workers: usize,
    /// Most images in one model run.
    pub max_batch: usize,
    /// How long a worker holding fewer than `max_batch` images waits for more.
    pub max_wait: Duration,
}

struct Job {
    tensor: Vec<f32>,
    text: Option<OcrText>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Scores, ImageError>>,
}

/// Inference workers fed by one queue.
pub struct InferencePool {
    sender: Mutex<Option<Sender<Job>>>,
    receiver: Receiver<Job>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl InferencePool {
    /// Starts `options.workers` threads running `classifier`.
    pub fn start(classifier: Arc<Classifier>, options: PoolOptions, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let mut workers = Vec::with_capacity(options.workers);
        for index in 0..options.workers.max(1) {
            let (classifier, receiver, metrics) = (classifier.clone(), receiver.clone(), metrics.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("spamlens-infer-{index}"))
                    .spawn(move || worker_loop(&classifier, &receiver, options, &metrics))?,
            );
        }
        Ok(InferencePool { sender: Mutex::new(Some(sender)), receiver, workers: Mutex::new(workers) })
    }

    /// Queues one prepared image, with the text read from it, and waits for its scores.
    pub async fn score(&self, tensor: Vec<f32>, text: Option<OcrText>) -> Result<Scores, ImageError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { tensor, text, enqueued: Instant::now(), reply };
        let sender = self.sender.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let sent = sender.is_some_and(|s| s.send(job).is_ok());
        if !sent {
            return Err(ImageError::internal("the inference pool has stopped (the server is shutting down)".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ImageError::internal("an inference worker stopped before answering".into())))
    }

    /// Prepared images waiting for a worker.
    pub fn queued(&self) -> usize {
        self.receiver.len()
    }

    /// Lets the workers finish what is queued, then joins them.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for worker in workers {
            if worker.join().is_err() {
                tracing::error!("an inference worker panicked while stopping");
            }
        }
    }
}

fn worker_loop(classifier: &Classifier, receiver: &Receiver<Job>, options: PoolOptions, metrics: &Metrics) {
    while let Ok(first) = receiver.recv() {
        let deadline = first.enqueued + options.max_wait;
        let mut batch = vec![first];
        while batch.len() < options.max_batch {
            match receiver.try_recv() {
                Ok(job) => {
                    batch.push(job);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            if options.max_wait.is_zero() {
                break;
            }
            match receiver.recv_deadline(deadline) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Requests that timed out or whose client went away need no answer.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let waited = batch[0].enqueued.elapsed();
        let size = batch.len();
        let mut input = Vec::with_capacity(size * batch[0].tensor.len());
        let mut replies = Vec::with_capacity(size);
        let mut texts = Vec::with_capacity(size);
        for job in batch {
            input.extend_from_slice(&job.tensor);
            replies.push(job.reply);
            texts.push(job.text);
        }
        let started = Instant::now();
        let text_refs: Vec<Option<&OcrText>> = texts.iter().map(Option::as_ref).collect();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| classifier.score_batch(input, &text_refs)));
        metrics.batch(size, waited, started.elapsed());
        match outcome {
            Ok(Ok(rows)) => {
                for (reply, row) in replies.into_iter().zip(rows) {
                    let _ = reply.send(Ok(row));
                }
            }
            Ok(Err(error)) => {
                let error = ImageError::from_core(&error);
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Err(_) => {
                tracing::error!(batch = size, "inference panicked; the batch is answered with an error");
                for reply in replies {
                    let _ = reply.send(Err(ImageError::internal("inference panicked on this batch".into())));
                }
            }
        }
    }
}

/// The decode + preprocess pool.
pub struct Preprocessor {
    pool: rayon::ThreadPool,
}

impl Preprocessor {
    /// A pool of `threads` threads.
    pub fn start(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("spamlens-decode-{i}"))
            .build()?;
        Ok(Preprocessor { pool })
    }

    /// Decodes and preprocesses `bytes` (named `name` in errors) as `classifier` declares and, for a
    /// model that reads text, reads it with `ocr` on this pool too (bounded by the engine's time
    /// limit; a failure costs the image its text, not its verdict).
    pub async fn prepare(
        &self,
        classifier: Arc<Classifier>,
        ocr: Ocr,
        metrics: Arc<Metrics>,
        bytes: axum::body::Bytes,
        name: String,
    ) -> Result<Prepared, ImageError> {
        let (reply, answer) = oneshot::channel();
        self.pool.spawn(move || {
            if reply.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let started = Instant::now();
                let prepared = classifier.prepare(&bytes, &name)?;
                let decoded = started.elapsed();
                let read = |image: &OcrImage, input: &str| ocr.recognize(image, input, &|_| {});
                let engine: Option<ReadText<'_>> = if ocr.is_on() { Some(&read) } else { None };
                let ocr_started = Instant::now();
                let (text, ocr_problem) = classifier.text_of(&prepared, &name, engine);
                let ocr_elapsed = (ocr.is_on() && prepared.ocr_image.is_some()).then(|| ocr_started.elapsed());
                if let Some(elapsed) = ocr_elapsed {
                    let kind = match &ocr_problem {
                        None => "read",
                        Some(problem) if problem.contains("time limit") => "timeout",
                        Some(_) => "failed",
                    };
                    metrics.ocr(kind, elapsed);
                }
                Ok::<_, spamlens_core::Error>(Prepared { prepared, text, ocr_problem, decoded, ocr: ocr_elapsed })
            }));
            let _ = reply.send(match outcome {
                Ok(result) => result.map_err(|e| ImageError::from_core(&e)),
                Err(_) => Err(ImageError::internal(format!("{name}: the decoder panicked"))),
            });
        });
        answer.await.unwrap_or_else(|_| Err(ImageError::internal("a decode thread stopped before answering".into())))
    }
}

/// An image ready for inference, with its text.
pub struct Prepared {
    /// The decoded, preprocessed image.
    pub prepared: PreparedImage,
    /// The text read from it (`None`: not read; the image-only output decides).
    pub text: Option<OcrText>,
    /// Why the text was not read, when it should have been.
    pub ocr_problem: Option<String>,
    /// Decode and preprocessing time.
    pub decoded: Duration,
    /// OCR time, when the engine ran.
    pub ocr: Option<Duration>,
}
