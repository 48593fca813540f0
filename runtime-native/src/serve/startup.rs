//! The server's shared state, startup (bind first, load the model in the background) and
//! graceful shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use spamlens_core::{Classifier, ModelOptions};
use tokio::sync::Semaphore;

use super::api::{ModelInfo, ModelInput, OcrInfo};
use super::error::{ApiError, ErrorCode};
use super::inference::{InferencePool, PoolOptions, Preprocessor};
use super::mail::MailState;
use super::metrics::{Gauges, Metrics};
use super::router::router;
use super::settings::{ServeArgs, Settings};
use crate::demo::DemoSite;

/// What exists once the model is loaded.
pub(super) struct Ready {
    /// The loaded model.
    pub(super) classifier: Arc<Classifier>,
    /// The OCR engines the model reads text with (off for an image-only model).
    pub(super) ocr: crate::reading::Ocr,
    /// The inference workers.
    pub(super) pool: InferencePool,
    /// The decode threads.
    pub(super) preprocessor: Preprocessor,
    /// What `/v1/model` reports (without the text filter, which changes).
    pub(super) model: ModelInfo,
}

/// Shared by every handler.
pub(super) struct AppState {
    /// The checked flags.
    pub(super) settings: Settings,
    /// Set once the model is in.
    pub(super) ready: OnceLock<Arc<Ready>>,
    /// With --demo, the page once the model is in.
    pub(super) demo: OnceLock<Router>,
    /// Set on SIGINT/SIGTERM.
    pub(super) draining: AtomicBool,
    /// --max-requests permits.
    pub(super) request_slots: Arc<Semaphore>,
    /// --max-queue permits, one per image.
    pub(super) image_slots: Arc<Semaphore>,
    /// What /metrics reports.
    pub(super) metrics: Arc<Metrics>,
    /// When the server started.
    pub(super) started: Instant,
    /// The text filter and the feedback log.
    pub(super) mail: MailState,
}

/// The state as the router holds it.
pub(super) type Shared = Arc<AppState>;

impl AppState {
    /// The loaded model, or 503 `not_ready` while it loads.
    pub(super) fn ready(&self) -> Result<Arc<Ready>, ApiError> {
        self.ready
            .get()
            .cloned()
            .ok_or_else(|| ApiError::unavailable(ErrorCode::NotReady, "the model is still loading; retry shortly", 1))
    }

    /// The live values `/metrics` reports beside its counters.
    pub(super) fn gauges(&self) -> Gauges {
        let ready = self.ready.get();
        Gauges {
            images_in_flight: self.settings.max_queue - self.image_slots.available_permits(),
            inference_queue: ready.map_or(0, |r| r.pool.queued()),
            queue_capacity: self.settings.max_queue,
            requests_in_flight: self.settings.max_requests - self.request_slots.available_permits(),
            ready: ready.is_some() && !self.draining.load(Ordering::Relaxed),
            model: ready.map(|r| {
                (r.classifier.model().sha256().to_owned(), r.classifier.labels().join(","), r.model.name.clone())
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
    let mail = MailState::load(args.text_filter.clone(), args.feedback_dir.clone(), rule)?;
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
    let app = router(state.clone())?;
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
    let ocr_info = classifier.text_inputs().zip(ocr.pool()).map(|(text, pool)| OcrInfo {
        engine: pool.identity().clone(),
        tessdata: pool.data().path().display().to_string(),
        contract: text.contract().clone(),
        image_thresholds: classifier.image_thresholds(),
    });
    let model_info = ModelInfo {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        sha256: model.sha256().to_owned(),
        bytes: bytes.len(),
        labels: classifier.labels().to_vec(),
        preprocessing: classifier.preprocessing().describe(),
        input: ModelInput { name: model.input_name().to_owned(), dims: model.input_dims().to_vec() },
        ocr: ocr_info,
        metadata: model.metadata().clone(),
        server: settings.describe(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
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
    let _ = state.ready.set(Arc::new(Ready { classifier, ocr, pool, preprocessor, model: model_info }));
    println!(
        "spamlens serve: ready: model {name} (sha256 {}), {} workers × {} threads, max batch {}, loaded in {:.1}s",
        sha.get(..12).unwrap_or(&sha),
        settings.workers,
        settings.intra_op_threads,
        settings.max_batch,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
