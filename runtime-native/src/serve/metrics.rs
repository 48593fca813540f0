//! Prometheus metrics on a `prometheus-client` registry, rendered in the OpenMetrics text format at
//! `GET /metrics` (the crate escapes label values and keeps histograms cumulative).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The media type of the rendered text (OpenMetrics 1.0; Prometheus picks its parser by it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the request and stage latency histograms.
const LATENCY_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0];
/// Upper bounds of the inference batch-size histogram.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
/// The window `spamlens_images_per_second` averages over.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// `route` and `status` of an answered request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

/// The matched route pattern (`unmatched`, `demo` for the rest).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// An image's label or error code, or an OCR outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The loaded model, as `spamlens_model_info` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    sha256: String,
    labels: String,
    name: String,
    version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Everything `/metrics` reports, shared by the handlers and the inference workers.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    images: Family<OutcomeLabels, Counter>,
    images_per_second: Gauge<f64, AtomicU64>,
    batch_size: Histogram,
    queue_seconds: Histogram,
    preprocess_seconds: Histogram,
    ocr_seconds: Histogram,
    ocr: Family<OutcomeLabels, Counter>,
    inference_seconds: Histogram,
    images_in_flight: Gauge,
    queue_capacity: Gauge,
    inference_queue: Gauge,
    requests_in_flight: Gauge,
    workers: Gauge,
    ready: Gauge,
    model: Family<ModelLabels, Gauge>,
    uptime_seconds: Gauge<f64, AtomicU64>,
    resident_bytes: Gauge,
    /// Images finished per whole second since start, for the recent rate.
    recent: Mutex<Vec<(u64, u64)>>,
}

/// Gauges read at render time from the live server.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// Images admitted and not yet answered (waiting for decode, in the inference queue, or running).
    pub images_in_flight: usize,
    /// Prepared images waiting for an inference worker.
    pub inference_queue: usize,
    /// The admission limit on `images_in_flight`.
    pub queue_capacity: usize,
    /// Requests being handled on the classify route.
    pub requests_in_flight: usize,
    /// 1 once the model is loaded.
    pub ready: bool,
    /// `(sha256, labels, name)` of the loaded model.
    pub model: Option<(String, String, String)>,
    /// Inference workers and threads per inference.
    pub workers: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("spamlens_http_requests", "HTTP requests answered, by route and status", requests.clone());
        let request_seconds = Histograms::<RouteLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "spamlens_http_request_duration_seconds",
            "Time from request to answer, by route",
            request_seconds.clone(),
        );
        let images = Family::<OutcomeLabels, Counter>::default();
        registry.register("spamlens_images", "Images answered, by label or error code", images.clone());
        let images_per_second = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "spamlens_images_per_second",
            "Images answered per second over the last 10 s",
            images_per_second.clone(),
        );
        let batch_size = Histogram::new(BATCH_BUCKETS);
        registry.register(
            "spamlens_inference_batch_size",
            "Images per inference batch (dynamic batching)",
            batch_size.clone(),
        );
        let queue_seconds = latency_histogram();
        registry.register(
            "spamlens_queue_wait_seconds",
            "Time a prepared image waited for an inference worker",
            queue_seconds.clone(),
        );
        let preprocess_seconds = latency_histogram();
        registry.register(
            "spamlens_preprocess_seconds",
            "Decode and preprocessing time per image",
            preprocess_seconds.clone(),
        );
        let ocr_seconds = latency_histogram();
        registry.register("spamlens_ocr_seconds", "OCR engine time per image whose text was read", ocr_seconds.clone());
        let ocr = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "spamlens_ocr_images",
            "Images given to the OCR engine, by outcome (read, failed, timeout)",
            ocr.clone(),
        );
        let inference_seconds = latency_histogram();
        registry.register("spamlens_inference_seconds", "Model run time per batch", inference_seconds.clone());
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let images_in_flight =
            gauge("spamlens_images_in_flight", "Images admitted and not yet answered (the bounded queue)");
        let queue_capacity = gauge("spamlens_queue_capacity", "Admission limit on images in flight");
        let inference_queue =
            gauge("spamlens_inference_queue_depth", "Prepared images waiting for an inference worker");
        let requests_in_flight = gauge("spamlens_requests_in_flight", "Classify requests being handled");
        let workers = gauge("spamlens_inference_workers", "Inference worker threads");
        let ready = gauge("spamlens_ready", "1 once the model is loaded and the server is not draining");
        let model = Family::<ModelLabels, Gauge>::default();
        registry.register("spamlens_model_info", "The loaded model (value is always 1)", model.clone());
        let uptime_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register("process_uptime_seconds", "Seconds since the server started", uptime_seconds.clone());
        let resident_bytes = Gauge::default();
        registry.register("process_resident_memory_bytes", "Resident set size", resident_bytes.clone());
        Metrics {
            started: Instant::now(),
            registry,
            requests,
            request_seconds,
            images,
            images_per_second,
            batch_size,
            queue_seconds,
            preprocess_seconds,
            ocr_seconds,
            ocr,
            inference_seconds,
            images_in_flight,
            queue_capacity,
            inference_queue,
            requests_in_flight,
            workers,
            ready,
            model,
            uptime_seconds,
            resident_bytes,
            recent: Mutex::new(Vec::new()),
        }
    }
}

/// A count as a gauge value (saturating; counts never come near `i64::MAX`).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// One answered request on `route` (the matched route pattern) with `status`.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route: route.to_owned(), status }).inc();
        self.request_seconds.get_or_create(&RouteLabels { route: route.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// One image answered: `outcome` is its label, or its error code.
    pub fn image(&self, outcome: &str) {
        self.images.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
        let second = self.started.elapsed().as_secs();
        // A panic elsewhere while holding the lock leaves plain counts behind: keep counting.
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match recent.last_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => recent.push((second, 1)),
        }
        let oldest = second.saturating_sub(RATE_WINDOW.as_secs() + 1);
        recent.retain(|(s, _)| *s >= oldest);
    }

    /// Time an image spent being decoded and preprocessed.
    pub fn preprocess(&self, elapsed: Duration) {
        self.preprocess_seconds.observe(elapsed.as_secs_f64());
    }

    /// One image's text read by OCR (`outcome`: `read`, `failed` or `timeout`) and the engine time.
    pub fn ocr(&self, outcome: &str, elapsed: Duration) {
        self.ocr.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
        self.ocr_seconds.observe(elapsed.as_secs_f64());
    }

    /// One batch run by an inference worker: its size, how long its oldest image waited, how long it ran.
    pub fn batch(&self, size: usize, waited: Duration, ran: Duration) {
        self.batch_size.observe(size as f64);
        self.queue_seconds.observe(waited.as_secs_f64());
        self.inference_seconds.observe(ran.as_secs_f64());
    }

    /// Images answered per second over the last whole seconds of [`RATE_WINDOW`].
    fn recent_rate(&self, now: Duration) -> f64 {
        let second = now.as_secs();
        let recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Whole seconds only: the current one is still filling.
        let count: u64 =
            recent.iter().filter(|(s, _)| *s < second && *s + RATE_WINDOW.as_secs() >= second).map(|(_, n)| n).sum();
        let window = RATE_WINDOW.as_secs().min(second).max(1);
        count as f64 / window as f64
    }

    /// The OpenMetrics text exposition, with the live `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let now = self.started.elapsed();
        self.images_per_second.set(self.recent_rate(now));
        self.images_in_flight.set(gauge_value(gauges.images_in_flight));
        self.queue_capacity.set(gauge_value(gauges.queue_capacity));
        self.inference_queue.set(gauge_value(gauges.inference_queue));
        self.requests_in_flight.set(gauge_value(gauges.requests_in_flight));
        self.workers.set(gauge_value(gauges.workers));
        self.ready.set(i64::from(gauges.ready));
        if let Some((sha256, labels, name)) = &gauges.model {
            let labels = ModelLabels {
                sha256: sha256.clone(),
                labels: labels.clone(),
                name: name.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            };
            self.model.get_or_create(&labels).set(1);
        }
        self.uptime_seconds.set(now.as_secs_f64());
        if let Some(rss) = resident_bytes() {
            self.resident_bytes.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial text, still parseable.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding the metrics failed: {e}");
        }
        out
    }
}

/// The process's resident set size (Linux), for watching memory in production and in the soak test.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_labelled() {
        let metrics = Metrics::default();
        metrics.request("/v1/classify", 200, Duration::from_millis(30));
        metrics.request("/v1/classify", 200, Duration::from_millis(300));
        metrics.request("/v1/classify", 413, Duration::from_millis(1));
        metrics.batch(3, Duration::from_millis(2), Duration::from_millis(400));
        metrics.image("spam");
        metrics.image("corrupt_image");
        let model = Some(("abc".to_owned(), "ham,spam".to_owned(), "a \"quoted\" \\ name".to_owned()));
        let text = metrics.render(&Gauges { queue_capacity: 64, ready: true, model, ..Gauges::default() });
        assert!(text.contains("spamlens_http_requests_total{route=\"/v1/classify\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("spamlens_http_requests_total{route=\"/v1/classify\",status=\"413\"} 1\n"), "{text}");
        assert!(
            text.contains("spamlens_http_request_duration_seconds_bucket{le=\"0.05\",route=\"/v1/classify\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("# HELP spamlens_ready 1 once the model is loaded and the server is not draining.\n"));
        assert!(text.contains("spamlens_http_request_duration_seconds_count{route=\"/v1/classify\"} 3\n"), "{text}");
        assert!(text.contains("spamlens_inference_batch_size_bucket{le=\"2.0\"} 0\n"), "{text}");
        assert!(text.contains("spamlens_inference_batch_size_bucket{le=\"4.0\"} 1\n"), "{text}");
        assert!(text.contains("spamlens_images_total{outcome=\"corrupt_image\"} 1\n"), "{text}");
        assert!(text.contains("spamlens_queue_capacity 64\n"), "{text}");
        assert!(text.contains("spamlens_ready 1\n"), "{text}");
        // The label value is escaped by the encoder.
        assert!(text.contains("name=\"a \\\"quoted\\\" \\\\ name\""), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Every sample line is `name{labels} value` with a numeric value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
