//! `spamlens serve` flags and the checked settings the handlers read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use spamlens_core::DecodeLimits;

use super::BearerToken;
use super::api::ServerSettings;
use crate::demo::DemoSite;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `spamlens serve` flags. Defaults suit one server process per machine.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on; loopback by default (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A combined model. Default: the built-in head on the fetched backbone.
    #[arg(long, env = "SPAMLENS_MODEL")]
    pub model: Option<PathBuf>,
    /// Backbone for the built-in head (default: $SPAMLENS_MODELS, then backbone/ in the data folder: $SPAMLENS_DATA, $XDG_DATA_HOME/spamlens or ~/.local/share/spamlens).
    #[arg(long, conflicts_with = "model")]
    pub backbone: Option<PathBuf>,
    /// Inference workers, each running one batch at a time (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Threads inside one inference (tract's multithreaded matrix products). 1 with one worker per
    /// core was measured faster than fewer workers with more threads each (see the README).
    #[arg(long, default_value_t = 1)]
    pub intra_op_threads: usize,
    /// Threads decoding and preprocessing images, apart from the inference workers (default: one per core).
    #[arg(long)]
    pub decode_threads: Option<usize>,
    /// Most images in one model run (dynamic batching across concurrent requests). 1 by default:
    /// tract runs the ResNet-50 one image per plan on CPU, so a batch only serialises images on one
    /// worker (measured: batch 1 gave the most images/s and the lowest p90; see the README). Raise it
    /// for a model whose batched plan is faster.
    #[arg(long, default_value_t = 1)]
    pub max_batch: usize,
    /// How long a worker with a partial batch waits for more images, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub max_wait_ms: u64,
    /// Images admitted at once (decoding, queued or running); beyond it requests get 503 + Retry-After.
    #[arg(long, default_value_t = 128)]
    pub max_queue: usize,
    /// Classify requests handled at once (each may hold a body of --max-body-mib); beyond it 503.
    #[arg(long, default_value_t = 64)]
    pub max_requests: usize,
    /// Largest request body, in MiB (base64 JSON needs 4/3 of the image bytes).
    #[arg(long, default_value_t = 32)]
    pub max_body_mib: usize,
    /// Most images in one request.
    #[arg(long, default_value_t = 32)]
    pub max_images: usize,
    /// Largest image, in pixels (width × height), checked from the header before decoding.
    #[arg(long, default_value_t = 40_000_000)]
    pub max_image_pixels: u64,
    /// Seconds a classify request may take, body upload included; then 503 `timeout`.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout_secs: f64,
    /// Require `Authorization: Bearer <token>` on /v1/* and /metrics, the token read from this
    /// file (health, readiness, the OpenAPI document and the demo stay open).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Also serve the browser demo page and the model at `/` (needs runtime-wasm/build.sh's package).
    #[arg(long)]
    pub demo: bool,
    /// The demo page's folder (with --demo; default: $SPAMLENS_WWW, ./www, the checkout's www/).
    #[arg(long, requires = "demo")]
    pub www: Option<PathBuf>,
    /// The built JS package (with --demo; default: $SPAMLENS_JS, ./runtime-wasm/js, the checkout's).
    #[arg(long, requires = "demo")]
    pub package: Option<PathBuf>,
    /// The text filter for /v1/scan: a state file (from `spamlens feedback` or `spamlens-train
    /// text-filter train`), loaded if it exists and saved after each /v1/feedback. Default: the
    /// built-in filter, learning in memory only.
    #[arg(long, env = "SPAMLENS_TEXT_FILTER")]
    pub text_filter: Option<PathBuf>,
    /// Log /v1/feedback reactions (JSON Lines, Email.cz vocabulary) and the images they concern here.
    #[arg(long)]
    pub feedback_dir: Option<PathBuf>,
    /// /v1/scan: an image with at least this spam probability makes the message spam (default:
    /// the model's own operating point, its `spamlens.thresholds` metadata).
    #[arg(long)]
    pub image_spam_threshold: Option<f32>,
    /// /v1/scan: an image with at least this ad probability makes a not-spam message an ad
    /// (default: an image the model labels ad).
    #[arg(long)]
    pub image_ad_threshold: Option<f32>,
    #[command(flatten)]
    pub ocr: crate::reading::OcrArgs,
}

/// The checked configuration the handlers read.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// Inference workers.
    pub(super) workers: usize,
    /// Threads inside one inference.
    pub(super) intra_op_threads: usize,
    /// Decode and preprocessing threads.
    pub(super) decode_threads: usize,
    /// Most images in one model run.
    pub(super) max_batch: usize,
    /// How long a partial batch waits for more images.
    pub(super) max_wait: Duration,
    /// Images admitted at once.
    pub(super) max_queue: usize,
    /// Requests handled at once.
    pub(super) max_requests: usize,
    /// Largest request body.
    pub(super) max_body_bytes: usize,
    /// Most images in one request.
    pub(super) max_images: usize,
    /// Per-image decode limits.
    pub(super) limits: DecodeLimits,
    /// How long a request may take.
    pub(super) request_timeout: Duration,
    /// The token /v1/* and /metrics need, if any.
    pub(super) token: Option<BearerToken>,
    /// With --demo: the page folder and the JS package.
    pub(super) demo: Option<(PathBuf, PathBuf)>,
    /// OCR switches.
    pub(super) ocr: crate::reading::OcrArgs,
}

impl Settings {
    /// Checks the flags: counts at least 1, a positive timeout, a request that can be admitted.
    pub(super) fn from_args(args: &ServeArgs) -> Result<Self> {
        let positive = |value: usize, flag: &str| -> Result<usize> {
            if value == 0 {
                bail!("{flag} must be at least 1");
            }
            Ok(value)
        };
        let max_body_bytes = positive(args.max_body_mib, "--max-body-mib")?.saturating_mul(1024 * 1024);
        if !(args.request_timeout_secs.is_finite() && args.request_timeout_secs > 0.0) {
            bail!("--request-timeout-secs must be a positive number of seconds");
        }
        if args.max_image_pixels == 0 {
            bail!("--max-image-pixels must be at least 1");
        }
        let max_images = positive(args.max_images, "--max-images")?;
        let max_queue = positive(args.max_queue, "--max-queue")?;
        if max_images > max_queue {
            bail!(
                "--max-images ({max_images}) is over --max-queue ({max_queue}): such a request could never be admitted"
            );
        }
        let demo = if args.demo { Some(DemoSite::locate_files(args.www.clone(), args.package.clone())?) } else { None };
        Ok(Settings {
            workers: positive(args.workers.unwrap_or_else(cores), "--workers")?,
            intra_op_threads: positive(args.intra_op_threads, "--intra-op-threads")?,
            decode_threads: positive(args.decode_threads.unwrap_or_else(cores), "--decode-threads")?,
            max_batch: positive(args.max_batch, "--max-batch")?,
            max_wait: Duration::from_millis(args.max_wait_ms),
            max_queue,
            max_requests: positive(args.max_requests, "--max-requests")?,
            max_body_bytes,
            max_images,
            limits: DecodeLimits {
                max_pixels: args.max_image_pixels,
                max_input_bytes: max_body_bytes,
                ..DecodeLimits::DEFAULT
            },
            request_timeout: Duration::from_secs_f64(args.request_timeout_secs),
            token: args.token_file.as_deref().map(BearerToken::from_file).transpose()?,
            demo,
            ocr: args.ocr.clone(),
        })
    }

    /// The limits and switches in force, as `/v1/model` reports them.
    pub(super) fn describe(&self) -> ServerSettings {
        ServerSettings {
            workers: self.workers,
            intra_op_threads: self.intra_op_threads,
            decode_threads: self.decode_threads,
            max_batch: self.max_batch,
            max_wait_ms: u64::try_from(self.max_wait.as_millis()).unwrap_or(u64::MAX),
            max_queue: self.max_queue,
            max_requests: self.max_requests,
            max_body_bytes: self.max_body_bytes,
            max_images_per_request: self.max_images,
            max_image_pixels: self.limits.max_pixels,
            max_image_side: self.limits.max_width,
            request_timeout_secs: self.request_timeout.as_secs_f64(),
            auth: self.token.is_some(),
            demo: self.demo.is_some(),
            ocr: !self.ocr.no_ocr,
            ocr_time_limit_ms: self.ocr.ocr_time_limit_ms,
        }
    }
}
