//! Prometheus metrics, kept by hand (a few counters and histograms do not need a registry crate)
//! and rendered in the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the request and stage latency histograms.
const LATENCY_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0];
/// Upper bounds of the inference batch-size histogram.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
/// The window `spamlens_images_per_second` averages over.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// A cumulative histogram with fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    request_seconds: BTreeMap<String, Histogram>,
    images: BTreeMap<String, u64>,
    batch_size: Histogram,
    queue_seconds: Histogram,
    preprocess_seconds: Histogram,
    inference_seconds: Histogram,
    /// OCR engine time per image read.
    ocr_seconds: Histogram,
    /// OCR outcomes: `read`, `failed`, `timeout`.
    ocr: BTreeMap<String, u64>,
    /// Images finished per whole second since start, for the recent rate.
    recent: Vec<(u64, u64)>,
}

/// Everything `/metrics` reports, shared by the handlers and the inference workers.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    inner: Mutex<Inner>,
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
        Metrics {
            started: Instant::now(),
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                request_seconds: BTreeMap::new(),
                images: BTreeMap::new(),
                batch_size: Histogram::new(&BATCH_BUCKETS),
                queue_seconds: Histogram::new(&LATENCY_BUCKETS),
                preprocess_seconds: Histogram::new(&LATENCY_BUCKETS),
                inference_seconds: Histogram::new(&LATENCY_BUCKETS),
                ocr_seconds: Histogram::new(&LATENCY_BUCKETS),
                ocr: BTreeMap::new(),
                recent: Vec::new(),
            }),
        }
    }
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic elsewhere while holding the lock leaves plain counters behind: keep counting.
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// One answered request on `route` (the matched route pattern) with `status`.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.with(|m| {
            *m.requests.entry((route.to_owned(), status)).or_default() += 1;
            m.request_seconds
                .entry(route.to_owned())
                .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
                .observe(elapsed.as_secs_f64());
        });
    }

    /// One image answered: `outcome` is its label, or its error code.
    pub fn image(&self, outcome: &str) {
        let second = self.started.elapsed().as_secs();
        self.with(|m| {
            *m.images.entry(outcome.to_owned()).or_default() += 1;
            match m.recent.last_mut() {
                Some((s, n)) if *s == second => *n += 1,
                _ => m.recent.push((second, 1)),
            }
            let oldest = second.saturating_sub(RATE_WINDOW.as_secs() + 1);
            m.recent.retain(|(s, _)| *s >= oldest);
        });
    }

    /// Time an image spent being decoded and preprocessed.
    pub fn preprocess(&self, elapsed: Duration) {
        self.with(|m| m.preprocess_seconds.observe(elapsed.as_secs_f64()));
    }

    /// One image's text read by OCR (`outcome`: `read`, `failed` or `timeout`) and the engine time.
    pub fn ocr(&self, outcome: &str, elapsed: Duration) {
        self.with(|m| {
            *m.ocr.entry(outcome.to_owned()).or_default() += 1;
            m.ocr_seconds.observe(elapsed.as_secs_f64());
        });
    }

    /// One batch run by an inference worker: its size, how long its oldest image waited, how long it ran.
    pub fn batch(&self, size: usize, waited: Duration, ran: Duration) {
        self.with(|m| {
            m.batch_size.observe(size as f64);
            m.queue_seconds.observe(waited.as_secs_f64());
            m.inference_seconds.observe(ran.as_secs_f64());
        });
    }

    /// The text exposition format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let now = self.started.elapsed();
        self.with(|m| {
            out.push_str("# HELP spamlens_http_requests_total HTTP requests answered, by route and status.\n");
            out.push_str("# TYPE spamlens_http_requests_total counter\n");
            for ((route, status), n) in &m.requests {
                let _ = writeln!(out, "spamlens_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
            out.push_str("# HELP spamlens_http_request_duration_seconds Time from request to answer, by route.\n");
            out.push_str("# TYPE spamlens_http_request_duration_seconds histogram\n");
            for (route, histogram) in &m.request_seconds {
                histogram.render(&mut out, "spamlens_http_request_duration_seconds", &format!("route=\"{route}\""));
            }
            out.push_str("# HELP spamlens_images_total Images answered, by label or error code.\n");
            out.push_str("# TYPE spamlens_images_total counter\n");
            for (outcome, n) in &m.images {
                let _ = writeln!(out, "spamlens_images_total{{outcome=\"{outcome}\"}} {n}");
            }
            let second = now.as_secs();
            // Whole seconds only: the current one is still filling.
            let recent: u64 = m
                .recent
                .iter()
                .filter(|(s, _)| *s < second && *s + RATE_WINDOW.as_secs() >= second)
                .map(|(_, n)| n)
                .sum();
            let window = RATE_WINDOW.as_secs().min(second).max(1);
            out.push_str("# HELP spamlens_images_per_second Images answered per second over the last 10 s.\n");
            out.push_str("# TYPE spamlens_images_per_second gauge\n");
            let _ = writeln!(out, "spamlens_images_per_second {}", recent as f64 / window as f64);
            out.push_str("# HELP spamlens_inference_batch_size Images per inference batch (dynamic batching).\n");
            out.push_str("# TYPE spamlens_inference_batch_size histogram\n");
            m.batch_size.render(&mut out, "spamlens_inference_batch_size", "");
            out.push_str("# HELP spamlens_queue_wait_seconds Time a prepared image waited for an inference worker.\n");
            out.push_str("# TYPE spamlens_queue_wait_seconds histogram\n");
            m.queue_seconds.render(&mut out, "spamlens_queue_wait_seconds", "");
            out.push_str("# HELP spamlens_preprocess_seconds Decode and preprocessing time per image.\n");
            out.push_str("# TYPE spamlens_preprocess_seconds histogram\n");
            m.preprocess_seconds.render(&mut out, "spamlens_preprocess_seconds", "");
            out.push_str("# HELP spamlens_ocr_seconds OCR engine time per image whose text was read.\n");
            out.push_str("# TYPE spamlens_ocr_seconds histogram\n");
            m.ocr_seconds.render(&mut out, "spamlens_ocr_seconds", "");
            out.push_str("# HELP spamlens_ocr_images_total Images given to the OCR engine, by outcome (read, failed, timeout).\n");
            out.push_str("# TYPE spamlens_ocr_images_total counter\n");
            for (outcome, n) in &m.ocr {
                let _ = writeln!(out, "spamlens_ocr_images_total{{outcome=\"{outcome}\"}} {n}");
            }
            out.push_str("# HELP spamlens_inference_seconds Model run time per batch.\n");
            out.push_str("# TYPE spamlens_inference_seconds histogram\n");
            m.inference_seconds.render(&mut out, "spamlens_inference_seconds", "");
        });
        let gauge = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
        };
        gauge(
            &mut out,
            "spamlens_images_in_flight",
            "Images admitted and not yet answered (the bounded queue).",
            gauges.images_in_flight.to_string(),
        );
        gauge(
            &mut out,
            "spamlens_queue_capacity",
            "Admission limit on images in flight.",
            gauges.queue_capacity.to_string(),
        );
        gauge(
            &mut out,
            "spamlens_inference_queue_depth",
            "Prepared images waiting for an inference worker.",
            gauges.inference_queue.to_string(),
        );
        gauge(
            &mut out,
            "spamlens_requests_in_flight",
            "Classify requests being handled.",
            gauges.requests_in_flight.to_string(),
        );
        gauge(&mut out, "spamlens_inference_workers", "Inference worker threads.", gauges.workers.to_string());
        gauge(
            &mut out,
            "spamlens_ready",
            "1 once the model is loaded and the server is not draining.",
            u8::from(gauges.ready).to_string(),
        );
        if let Some((sha256, labels, name)) = &gauges.model {
            out.push_str("# HELP spamlens_model_info The loaded model (value is always 1).\n");
            out.push_str("# TYPE spamlens_model_info gauge\n");
            let name = name.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "spamlens_model_info{{sha256=\"{sha256}\",labels=\"{labels}\",name=\"{name}\",version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            );
        }
        gauge(
            &mut out,
            "process_uptime_seconds",
            "Seconds since the server started.",
            format!("{:.3}", now.as_secs_f64()),
        );
        if let Some(rss) = resident_bytes() {
            gauge(&mut out, "process_resident_memory_bytes", "Resident set size.", rss.to_string());
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
        let text = metrics.render(&Gauges { queue_capacity: 64, ready: true, ..Gauges::default() });
        assert!(text.contains("spamlens_http_requests_total{route=\"/v1/classify\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("spamlens_http_requests_total{route=\"/v1/classify\",status=\"413\"} 1\n"), "{text}");
        assert!(text.contains("spamlens_http_request_duration_seconds_bucket{route=\"/v1/classify\",le=\"0.05\"} 2\n"));
        assert!(text.contains("spamlens_http_request_duration_seconds_bucket{route=\"/v1/classify\",le=\"0.5\"} 3\n"));
        assert!(text.contains("spamlens_http_request_duration_seconds_count{route=\"/v1/classify\"} 3\n"));
        assert!(text.contains("spamlens_inference_batch_size_bucket{le=\"2\"} 0\n"), "{text}");
        assert!(text.contains("spamlens_inference_batch_size_bucket{le=\"4\"} 1\n"), "{text}");
        assert!(text.contains("spamlens_images_total{outcome=\"corrupt_image\"} 1\n"));
        assert!(text.contains("spamlens_queue_capacity 64\n"));
        assert!(text.contains("spamlens_ready 1\n"));
        // Every sample line is `name{labels} value` with a numeric value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
