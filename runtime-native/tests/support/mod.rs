//! Starting the real `spamlens serve` on an ephemeral loopback port, and a small HTTP client
//! around it, for the server and soak tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The backbone the built-in head needs (`.ci/run` fetches it before the tests).
pub fn fetched_backbone() -> PathBuf {
    let path = spamlens_model::backbone::default_backbone_path();
    assert!(path.is_file(), "{} is missing: run target/debug/spamlens-train backbone fetch", path.display());
    path
}

/// `spamlens` with the default model cached under this test binary's tmpdir.
pub fn spamlens() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spamlens"));
    command
        .env("SPAMLENS_CACHE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("server-test-cache"))
        .env("SPAMLENS_MODELS", fetched_backbone().parent().unwrap())
        .env_remove("SPAMLENS_MODEL")
        .env_remove("SPAMLENS_WWW")
        .env_remove("SPAMLENS_JS");
    command
}

/// A running `spamlens serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    lines: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl Server {
    /// Starts `spamlens serve --listen 127.0.0.1:0 ARGS...` and waits until it is ready.
    pub fn start(args: &[&str]) -> Server {
        let server = Self::spawn(args);
        server.wait_for_line("spamlens serve: ready", Duration::from_secs(300));
        server
    }

    /// Starts the server and returns as soon as it listens (the model may still be loading).
    pub fn spawn(args: &[&str]) -> Server {
        Self::spawn_command(spamlens(), args)
    }

    /// Starts `command serve --listen 127.0.0.1:0 ARGS...` (a `spamlens()` with its environment
    /// changed) and returns as soon as it listens.
    pub fn spawn_command(mut command: Command, args: &[&str]) -> Server {
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting spamlens serve");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(120)).expect("the server printed nothing");
        let base = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_else(|| panic!("no address in '{first}'"));
        Server { child, base, lines: std::sync::Mutex::new(lines) }
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_for_line(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.lock().unwrap().recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no '{prefix}' line from the server: {e}"),
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident set size of the server process, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    /// A gauge or counter from /metrics (first sample whose name and labels start with `series`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (status, text, _) = get(&self.url("/metrics"), &[]);
        assert_eq!(status, 200, "{text}");
        metric(&text, series)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the first sample in Prometheus `text` whose series starts with `series`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series) && matches!(l.as_bytes().get(series.len()), Some(b' ' | b'{' | b',' | b'}')))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// An answer: status, body text, and the headers asked for by name.
pub type Answer = (u16, String, Vec<(String, String)>);

fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().unwrap_or_default();
    (status, body, headers)
}

/// GET `url` with extra `headers`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    answer(request.call().unwrap_or_else(|e| panic!("GET {url}: {e}")))
}

/// POST `body` as `content_type` to `url` with extra `headers`; `Err` when no answer came.
pub fn try_post(url: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Result<Answer, String> {
    let mut request = agent().post(url).header("Content-Type", content_type);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send(body).map(answer).map_err(|e| format!("POST {url}: {e}"))
}

/// POST that must be answered.
pub fn post(url: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
    try_post(url, content_type, body, headers).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses a JSON answer body.
pub fn json(answer: &Answer) -> Value {
    serde_json::from_str(&answer.1).unwrap_or_else(|e| panic!("not JSON ({e}): {}", answer.1))
}

/// The value of header `name` in an answer.
pub fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.2.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// A multipart/form-data body with one file part per `(file name, bytes)`: (content type, body).
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "spamlens-test-boundary-7d1f0c";
    let mut body = Vec::new();
    for (i, (name, bytes)) in parts.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"image{i}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The shared test photos and `n` shared dataset images, as (file name, bytes).
pub fn real_images(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = spamlens_integration_tests::test_images().into_iter().map(|(p, _)| p).collect();
    files.extend(spamlens_integration_tests::dataset_sample(n));
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

/// The messages the mail-filter plug-in tests send through rspamd and SpamAssassin, named: two
/// built from the shared image sets (an image-spam stock pump inline, a reference photo attached)
/// and every third SpamAssassin corpus message with image parts (hams and spams). The first is the
/// stock pump.
pub fn mail_filter_messages() -> Vec<(String, Vec<u8>)> {
    use spamlens_integration_tests::{
        Embed, SPAMASSASSIN_IMAGE_MESSAGES, build_email, shared_dir, spamassassin_corpus,
    };
    let read = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shared = shared_dir();
    let pump = read(&shared.join("data/imagespam/dredze2007/spam/personal/92400953b77bcaea.png"));
    let photo_path = std::fs::read_dir(shared.join("models/testimages"))
        .unwrap_or_else(|e| panic!("{}: {e}", shared.join("models/testimages").display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "jpeg" || x == "png"))
        .min()
        .expect("a reference test image");
    let photo = read(&photo_path);
    let mut messages = vec![
        (
            "built: stock pump inline".to_owned(),
            build_email("Hot pick for Monday", "See the attached chart.", &[("chart.png", &pump, Embed::Inline)]),
        ),
        (
            "built: photo attached".to_owned(),
            build_email(
                "Photos from the weekend",
                "Here is the picture I promised, see you on Tuesday.",
                &[("photo.jpg", &photo, Embed::Attachment)],
            ),
        ),
    ];
    for id in SPAMASSASSIN_IMAGE_MESSAGES.iter().step_by(3) {
        messages.push((format!("SpamAssassin {id}"), read(&spamassassin_corpus().join("data").join(id))));
    }
    messages
}
