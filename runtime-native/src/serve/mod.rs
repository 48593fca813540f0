//! `spamlens serve`: the HTTP classification service mail operators run next to their MTA or
//! webmail backend.
//!
//! Routes (documented in `openapi.json`, served at `/openapi.json`): `POST /v1/classify`,
//! `POST /v1/scan` and `POST /v1/feedback` (whole emails, see [`mail`]), `GET /v1/model`, `GET /metrics` (behind the optional bearer token), `GET /healthz`,
//! `GET /readyz`, `GET /openapi.json`, and with `--demo` the browser demo page at `/`.
//!
//! The listener is bound first (liveness answers at once) and the model loads in the background
//! (readiness answers 503 until it is in). Every request-level failure is a JSON error with a code;
//! per-image failures are reported inside the classify answer. SIGINT/SIGTERM stop accepting,
//! finish what is in flight, and exit 0.

mod auth;
mod error;
mod inference;
mod input;
mod mail;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::{Value, json};
use spamlens_core::scan::ImageOutcome;
use spamlens_core::{Classifier, DecodeLimits, ModelOptions};
use tokio::sync::Semaphore;

pub use auth::BearerToken;
use error::ApiError;
use inference::{ImageError, InferencePool, PoolOptions, Preprocessor};
use input::NamedImage;
use metrics::{Gauges, Metrics};

use crate::demo::DemoSite;

/// The OpenAPI 3.1 description of the routes, kept by hand and checked against the running server
/// by the integration tests.
pub const OPENAPI: &str = include_str!("openapi.json");

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
struct Settings {
    workers: usize,
    intra_op_threads: usize,
    decode_threads: usize,
    max_batch: usize,
    max_wait: Duration,
    max_queue: usize,
    max_requests: usize,
    max_body_bytes: usize,
    max_images: usize,
    limits: DecodeLimits,
    request_timeout: Duration,
    token: Option<BearerToken>,
    demo: Option<(PathBuf, PathBuf)>,
    ocr: crate::reading::OcrArgs,
}

impl Settings {
    fn from_args(args: &ServeArgs) -> Result<Self> {
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

    fn describe(&self) -> Value {
        json!({
            "workers": self.workers,
            "intra_op_threads": self.intra_op_threads,
            "decode_threads": self.decode_threads,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait.as_millis() as u64,
            "max_queue": self.max_queue,
            "max_requests": self.max_requests,
            "max_body_bytes": self.max_body_bytes,
            "max_images_per_request": self.max_images,
            "max_image_pixels": self.limits.max_pixels,
            "max_image_side": self.limits.max_width,
            "request_timeout_secs": self.request_timeout.as_secs_f64(),
            "auth": self.token.is_some(),
            "demo": self.demo.is_some(),
            "ocr": !self.ocr.no_ocr,
            "ocr_time_limit_ms": self.ocr.ocr_time_limit_ms,
        })
    }
}

/// What exists once the model is loaded.
struct Ready {
    classifier: Arc<Classifier>,
    ocr: crate::reading::Ocr,
    pool: InferencePool,
    preprocessor: Preprocessor,
    model_json: Value,
}

/// Shared by every handler.
struct AppState {
    settings: Settings,
    ready: OnceLock<Arc<Ready>>,
    demo: OnceLock<Router>,
    draining: AtomicBool,
    request_slots: Arc<Semaphore>,
    image_slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    started: Instant,
    mail: mail::MailState,
}

type Shared = Arc<AppState>;

impl AppState {
    fn ready(&self) -> Result<Arc<Ready>, ApiError> {
        self.ready
            .get()
            .cloned()
            .ok_or_else(|| ApiError::unavailable("not_ready", "the model is still loading; retry shortly", 1))
    }

    fn gauges(&self) -> Gauges {
        let ready = self.ready.get();
        Gauges {
            images_in_flight: self.settings.max_queue - self.image_slots.available_permits(),
            inference_queue: ready.map_or(0, |r| r.pool.queued()),
            queue_capacity: self.settings.max_queue,
            requests_in_flight: self.settings.max_requests - self.request_slots.available_permits(),
            ready: ready.is_some() && !self.draining.load(Ordering::Relaxed),
            model: ready.map(|r| {
                (
                    r.classifier.model().sha256().to_owned(),
                    r.classifier.labels().join(","),
                    r.model_json["name"].as_str().unwrap_or_default().to_owned(),
                )
            }),
            workers: self.settings.workers,
        }
    }
}

/// Runs the server until SIGINT/SIGTERM; returns once in-flight requests are answered.
pub fn run(args: ServeArgs) -> Result<()> {
    let settings = Settings::from_args(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args, settings))
}

async fn serve(args: ServeArgs, settings: Settings) -> Result<()> {
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let rule = spamlens_core::scan::VerdictRule {
        image_spam_threshold: args.image_spam_threshold,
        image_ad_threshold: args.image_ad_threshold,
        ..spamlens_core::scan::VerdictRule::default()
    };
    let mail = mail::MailState::load(args.text_filter.clone(), args.feedback_dir.clone(), rule)?;
    let state: Shared = Arc::new(AppState {
        mail,
        request_slots: Arc::new(Semaphore::new(settings.max_requests)),
        image_slots: Arc::new(Semaphore::new(settings.max_queue)),
        settings,
        ready: OnceLock::new(),
        demo: OnceLock::new(),
        draining: AtomicBool::new(false),
        metrics: Arc::new(Metrics::default()),
        started: Instant::now(),
    });
    println!("spamlens serve: listening on http://{bound}/ (loading the model)");

    let loader = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || load(&state, args.model, args.backbone.as_deref()))
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal_state = state.clone();
    let shutdown = async move {
        crate::demo::shutdown_signal().await;
        signal_state.draining.store(true, Ordering::Relaxed);
        eprintln!("spamlens serve: stopping: no new connections; finishing requests in flight");
        let _ = stop_tx.send(true);
    };
    let app = router(state.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let server = async move { server.await.context("serving") };
    tokio::pin!(server);

    // A model that cannot load ends the process with its error instead of an unready server.
    let mut loader = std::pin::pin!(loader);
    let mut loaded = false;
    let outcome = loop {
        tokio::select! {
            result = &mut server => break result,
            joined = &mut loader, if !loaded => {
                loaded = true;
                match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) => bail!("loading the model failed: {e}"),
                }
            }
            () = grace_expired(stop_rx.clone(), state.settings.request_timeout + Duration::from_secs(5)) => {
                tracing::warn!("requests were still open after the shutdown grace period; exiting anyway");
                break Ok(());
            }
        }
    };
    if let Some(ready) = state.ready.get() {
        ready.pool.shutdown();
    }
    outcome?;
    eprintln!("spamlens serve: stopped");
    Ok(())
}

/// Resolves `grace` after the shutdown signal.
async fn grace_expired(mut stop: tokio::sync::watch::Receiver<bool>, grace: Duration) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(grace).await;
}

/// Loads the model, starts the pools and (with --demo) prepares the page; then the server is ready.
fn load(state: &AppState, model: Option<PathBuf>, backbone: Option<&std::path::Path>) -> Result<()> {
    let started = Instant::now();
    let settings = &state.settings;
    let built_in = model.is_none();
    let path = match model {
        Some(path) => path,
        None => crate::default_model::default_model(backbone)?,
    };
    let name = path.display().to_string();
    let bytes = std::fs::read(&path).with_context(|| format!("reading model {name}"))?;
    let options = ModelOptions { intra_op_threads: Some(settings.intra_op_threads), ..ModelOptions::default() };
    let classifier = Classifier::from_bytes(&bytes, &name, &options)?.with_limits(settings.limits);
    let (classifier, ocr) = crate::reading::Ocr::for_classifier(classifier, &settings.ocr)?;
    let classifier = Arc::new(classifier);
    let model = classifier.model();
    let model_json = json!({
        "name": path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        "sha256": model.sha256(),
        "bytes": bytes.len(),
        "labels": classifier.labels(),
        "preprocessing": classifier.preprocessing().describe(),
        "input": { "name": model.input_name(), "dims": model.input_dims() },
        "ocr": classifier.text_inputs().zip(ocr.pool()).map(|(text, pool)| json!({
            "engine": pool.identity(),
            "tessdata": pool.data().path().display().to_string(),
            "contract": text.contract(),
            "image_thresholds": classifier.image_thresholds(),
        })),
        "metadata": model.metadata(),
        "server": settings.describe(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    drop(bytes);
    let pool_options =
        PoolOptions { workers: settings.workers, max_batch: settings.max_batch, max_wait: settings.max_wait };
    let pool = InferencePool::start(classifier.clone(), pool_options, state.metrics.clone())
        .context("starting the inference workers")?;
    let preprocessor = Preprocessor::start(settings.decode_threads).context("starting the decode threads")?;
    if let Some((www, package)) = &settings.demo {
        // The built-in model goes to browsers with int8 compute (as `spamlens demo` serves it); a
        // model given with --model is served as it is.
        let site = if built_in {
            let browser_model = crate::default_model::default_browser_model(backbone)?;
            DemoSite::with_variant_of(www.clone(), package.clone(), &browser_model, &classifier)?
        } else {
            let size = std::fs::metadata(&path).with_context(|| format!("reading {name}"))?.len();
            DemoSite::with_classifier(www.clone(), package.clone(), &path, &classifier, size)?
        };
        let _ = state.demo.set(site.router());
    }
    let sha = model.sha256().to_owned();
    let _ = state.ready.set(Arc::new(Ready { classifier, ocr, pool, preprocessor, model_json }));
    println!(
        "spamlens serve: ready: model {name} (sha256 {}), {} workers × {} threads, max batch {}, loaded in {:.1}s",
        &sha[..12],
        settings.workers,
        settings.intra_op_threads,
        settings.max_batch,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/v1/classify", post(classify).layer(DefaultBodyLimit::disable()))
        .route("/v1/scan", post(scan).layer(DefaultBodyLimit::disable()))
        .route("/v1/feedback", post(feedback).layer(DefaultBodyLimit::disable()))
        .route("/v1/model", get(model_info))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .merge(protected)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the server failed on this request")
        .into_response()
}

async fn record_request(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None if state.settings.demo.is_some() => "demo".to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(request).await;
    state.metrics.request(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.settings.token {
        let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !token.accepts(presented) {
            let message = if presented.is_some() {
                "the bearer token is wrong"
            } else {
                "this route needs Authorization: Bearer <token> (the server runs with --token-file)"
            };
            return refuse(request, ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)).await;
        }
    }
    next.run(request).await
}

async fn fallback(State(state): State<Shared>, request: Request) -> Response {
    if let Some(demo) = state.demo.get() {
        let result = tower::ServiceExt::oneshot(demo.clone(), request).await;
        return match result {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    if state.settings.demo.is_some() {
        return ApiError::unavailable("not_ready", "the demo is served once the model has loaded", 1).into_response();
    }
    ApiError::not_found(request.uri().path()).into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}; see /openapi.json", request.method(), request.uri().path()),
    )
    .into_response()
}

async fn healthz(State(state): State<Shared>) -> Response {
    axum::Json(json!({ "status": "ok", "uptime_seconds": state.started.elapsed().as_secs_f64() })).into_response()
}

async fn readyz(State(state): State<Shared>) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        return ApiError::unavailable("draining", "the server is shutting down", 1).into_response();
    }
    match state.ready() {
        Ok(ready) => {
            axum::Json(json!({ "status": "ready", "model": ready.classifier.model().sha256() })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn model_info(State(state): State<Shared>) -> Response {
    match state.ready() {
        Ok(ready) => {
            let mut body = ready.model_json.clone();
            body["text_filter"] = state.mail.describe();
            axum::Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let text = state.metrics.render(&state.gauges());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn classify(State(state): State<Shared>, request: Request) -> Response {
    let ready = match state.ready() {
        Ok(ready) => ready,
        Err(e) => return e.into_response(),
    };
    guarded(&state, classify_request(&state, &ready, request)).await
}

async fn scan(State(state): State<Shared>, request: Request) -> Response {
    let ready = match state.ready() {
        Ok(ready) => ready,
        Err(e) => return e.into_response(),
    };
    guarded(&state, mail::scan(&state, &ready, request)).await
}

async fn feedback(State(state): State<Shared>, request: Request) -> Response {
    guarded(&state, mail::feedback(&state, request)).await
}

/// Runs a request handler within the request slots (--max-requests) and the request timeout.
async fn guarded(state: &AppState, handler: impl std::future::Future<Output = Result<Response, ApiError>>) -> Response {
    let Ok(_request_slot) = state.request_slots.clone().try_acquire_owned() else {
        return ApiError::unavailable(
            "overloaded",
            format!("{} requests are already being handled (--max-requests); retry later", state.settings.max_requests),
            1,
        )
        .into_response();
    };
    let timeout = state.settings.request_timeout;
    match tokio::time::timeout(timeout, handler).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::unavailable(
            "timeout",
            format!("the request was not answered within {}s (--request-timeout-secs)", timeout.as_secs_f64()),
            1,
        )
        .into_response(),
    }
}

/// Most bytes of a refused request's body read and thrown away so that the client, which may be
/// writing the whole body before it reads, gets the answer instead of a reset connection; past it
/// the answer is sent and the connection closed.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;

/// How long a refused request's body is read for at most (a slow client cannot hold the server).
const DISCARD_TIME: Duration = Duration::from_secs(10);

/// Reads and drops what is left of a refused request's body (up to [`DISCARD_LIMIT`] and
/// [`DISCARD_TIME`]).
async fn discard_body(body: Body) {
    let mut stream = body.into_data_stream();
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DISCARD_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

/// Answers `error` to `request` after discarding its body.
async fn refuse(request: Request, error: ApiError) -> Response {
    discard_body(request.into_body()).await;
    error.into_response()
}

/// Collects the body within the limit; over it, the rest is discarded and the answer is 413.
async fn read_body(body: Body, limit: usize, declared: Option<usize>) -> Result<Bytes, ApiError> {
    let too_large = |size: String| {
        ApiError::too_large(
            "payload_too_large",
            format!("the request body is {size}, over the limit of {limit} bytes (--max-body-mib)"),
        )
    };
    if let Some(length) = declared
        && length > limit
    {
        discard_body(body).await;
        return Err(too_large(format!("{length} bytes")));
    }
    let mut collected = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        if collected.len() + chunk.len() > limit {
            let mut seen = collected.len() + chunk.len();
            drop(collected);
            while let Some(Ok(chunk)) = stream.next().await {
                seen += chunk.len();
                if seen > limit + DISCARD_LIMIT {
                    return Err(too_large(format!("over {seen} bytes")));
                }
            }
            return Err(too_large(format!("{seen} bytes")));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

async fn classify_request(state: &AppState, ready: &Arc<Ready>, request: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let settings = &state.settings;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let (parts, body) = request.into_parts();
    let body = read_body(body, settings.max_body_bytes, declared).await?;
    let images = input::images(parts, body).await?;
    if images.is_empty() {
        return Err(ApiError::bad_request("the request holds no images"));
    }
    if images.len() > settings.max_images {
        return Err(ApiError::too_large(
            "too_many_images",
            format!(
                "the request holds {} images, over the limit of {} (--max-images)",
                images.len(),
                settings.max_images
            ),
        ));
    }
    let count = u32::try_from(images.len()).unwrap_or(u32::MAX);
    let Ok(_image_slots) = state.image_slots.clone().try_acquire_many_owned(count) else {
        let in_flight = settings.max_queue - state.image_slots.available_permits();
        return Err(ApiError::unavailable(
            "overloaded",
            format!(
                "the queue is full: {in_flight} of {} images in flight (--max-queue), this request adds {count}; retry later",
                settings.max_queue
            ),
            1,
        ));
    };
    let answers =
        futures_util::future::join_all(images.into_iter().map(|image| classify_one(state, ready, image))).await;
    let classified = answers.iter().filter(|a| a.get("error").is_none()).count();
    let failed = answers.len() - classified;
    let body = json!({
        "model": ready.classifier.model().sha256(),
        "images": answers,
        "classified": classified,
        "failed": failed,
        "millis": round_millis(started.elapsed()),
    });
    // 200 when at least one image was classified; 422 when none could be (each says why).
    let status = if classified > 0 { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, axum::Json(body)).into_response())
}

fn round_millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10_000.0).round() / 10.0
}

async fn classify_one(state: &AppState, ready: &Arc<Ready>, image: NamedImage) -> Value {
    let started = Instant::now();
    let name = image.name;
    let outcome: Result<Value, ImageError> = async {
        let bytes = image.bytes?;
        let prepared = ready
            .preprocessor
            .prepare(ready.classifier.clone(), ready.ocr.clone(), state.metrics.clone(), bytes, name.clone())
            .await?;
        let before_inference = started.elapsed();
        state.metrics.preprocess(prepared.decoded);
        let inference::Prepared { prepared, text, ocr_problem, decoded, ocr } = prepared;
        let (tensor, prepared) = prepared.split();
        let scores = ready.pool.score(tensor, text.clone()).await?;
        let verdict = spamlens_core::Verdict::new(scores, &prepared, text);
        let outcome = ImageOutcome::from_reading(Ok(spamlens_core::ImageReading { verdict, ocr_problem }));
        let mut answer = serde_json::to_value(outcome)
            .map_err(|e| ImageError { code: "internal_error", message: format!("{name}: {e}") })?;
        answer["name"] = json!(name);
        answer["millis"] = json!(round_millis(started.elapsed()));
        answer["timings"] = json!({
            "decode_millis": round_millis(decoded),
            "ocr_millis": ocr.map(round_millis),
            "inference_millis": round_millis(started.elapsed() - before_inference),
        });
        Ok(answer)
    }
    .await;
    match outcome {
        Ok(answer) => {
            state.metrics.image(answer["label"].as_str().unwrap_or_default());
            answer
        }
        Err(error) => {
            state.metrics.image(error.code);
            json!({ "name": name, "error": { "code": error.code, "message": error.message } })
        }
    }
}
