//! The rspamd plug-in (`integrations/rspamd/`) against the real daemons: Debian's rspamd runs with
//! the plug-in and its configuration as an operator installs them, in front of the real `spamlens
//! serve` on loopback; real messages go through `rspamc`. The symbols and scores rspamd adds must
//! be exactly what spamlens answered for the same message, and with spamlens stopped rspamd must
//! still answer, without a spamlens symbol. Needs rspamd (`scripts/test-deps.sh` installs it).

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spamlens_integration_tests::{Embed, build_email, shared_dir};
use support::{Server, json, post, workspace};

/// The symbols the plug-in adds, and the scores `local.d/spamlens.conf` gives them.
const IMAGE_SPAM: (&str, f64) = ("SPAMLENS_IMAGE_SPAM", 6.0);
const IMAGE_AD: (&str, f64) = ("SPAMLENS_IMAGE_AD", 1.0);
const TEXT_SPAM: (&str, f64) = ("SPAMLENS_TEXT_SPAM", 4.0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// A running rspamd with the plug-in, stopped when dropped.
struct Rspamd {
    child: Child,
    normal: u16,
    dir: tempfile::TempDir,
}

impl Rspamd {
    /// Starts Debian's rspamd (system configuration in /etc/rspamd) with a local configuration
    /// folder holding the plug-in's files from the repository, pointed at `scan_url`, with the
    /// bearer `token` line set as an operator sets it.
    fn start(scan_url: &str, token: Option<&str>) -> Rspamd {
        assert!(
            Path::new("/usr/bin/rspamd").is_file() && Path::new("/usr/bin/rspamc").is_file(),
            "rspamd is not installed: scripts/test-deps.sh installs it (apt-get install rspamd)"
        );
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path();
        let integration = workspace().join("integrations/rspamd");
        for sub in ["local.d", "plugins.d", "db", "run", "log"] {
            std::fs::create_dir_all(local.join(sub)).unwrap();
        }
        std::fs::copy(integration.join("plugins.d/spamlens.lua"), local.join("plugins.d/spamlens.lua")).unwrap();
        std::fs::copy(integration.join("rspamd.conf.local"), local.join("rspamd.conf.local")).unwrap();
        // The operator's settings file as shipped, with this test's server and a generous timeout
        // (the first message waits for the model's first batch on a loaded CI machine).
        let shipped = std::fs::read_to_string(integration.join("local.d/spamlens.conf")).unwrap();
        assert!(shipped.contains("url = \"http://127.0.0.1:8080/v1/scan\";"), "the shipped url line changed");
        let settings = shipped
            .replace("url = \"http://127.0.0.1:8080/v1/scan\";", &format!("url = \"{scan_url}\";"))
            .replace("timeout = 15;", "timeout = 120;");
        assert!(shipped.contains("# token = \"…\";"), "the shipped token line changed");
        let settings = match token {
            Some(token) => settings.replace("# token = \"…\";", &format!("token = \"{token}\";")),
            None => settings,
        };
        std::fs::write(local.join("local.d/spamlens.conf"), settings).unwrap();
        let (normal, controller, proxy) = (free_port(), free_port(), free_port());
        let write = |name: &str, text: String| std::fs::write(local.join("local.d").join(name), text).unwrap();
        write(
            "worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{normal}\";\ncount = 1;\ntask_timeout = 150s;\n"),
        );
        write("worker-controller.inc", format!("bind_socket = \"127.0.0.1:{controller}\";\n"));
        write("worker-proxy.inc", format!("bind_socket = \"127.0.0.1:{proxy}\";\n"));
        write("logging.inc", "type = \"file\";\nfilename = \"$LOGDIR/rspamd.log\";\nlevel = \"info\";\n".into());
        // No network here: DNS-based rules give up quickly instead of holding each message.
        write("options.inc", "dns { timeout = 1s; retransmits = 1; }\ntask_timeout = 150s;\n".into());

        let mut command = Command::new("/usr/bin/rspamd");
        command.args(["-f", "-c", "/etc/rspamd/rspamd.conf"]);
        for (var, sub) in [("LOCAL_CONFDIR", ""), ("DBDIR", "db"), ("RUNDIR", "run"), ("LOGDIR", "log")] {
            command.args(["--var", &format!("{var}={}", local.join(sub).display())]);
        }
        if is_root() {
            // rspamd refuses to run its workers as root unless told to.
            command.args(["-i", "-u", "root", "-g", "root"]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("starting rspamd");
        let mut rspamd = Rspamd { child, normal, dir };
        rspamd.wait_ready();
        rspamd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/rspamd.log")).unwrap_or_default()
    }

    /// Waits until the normal worker answers a check (it compiles its regexps first).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rspamd exited ({status}) while starting:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.normal)).is_ok()
                && self.try_check(b"Subject: ping\r\n\r\nping\r\n").is_ok()
            {
                assert!(
                    self.log().contains("init lua module spamlens"),
                    "rspamd did not load the spamlens plug-in:\n{}",
                    self.log()
                );
                return;
            }
            assert!(Instant::now() < deadline, "rspamd did not answer within 240 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn try_check(&self, message: &[u8]) -> Result<Value, String> {
        let file = self.dir.path().join("message.eml");
        std::fs::write(&file, message).unwrap();
        let out = Command::new("/usr/bin/rspamc")
            .args(["-h", &format!("127.0.0.1:{}", self.normal), "-t", "180", "--json"])
            .arg(&file)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("rspamc failed ({}): {text}{}", out.status, String::from_utf8_lossy(&out.stderr)));
        }
        // rspamc prints "Results for file: …" before the JSON object.
        let start = text.find('{').ok_or_else(|| format!("no JSON from rspamc: {text}"))?;
        serde_json::from_str(&text[start..]).map_err(|e| format!("rspamc's JSON ({e}): {text}"))
    }

    /// `rspamc --json FILE`: rspamd's answer for one message.
    fn check(&self, message: &[u8]) -> Value {
        self.try_check(message).unwrap_or_else(|e| panic!("{e}\n{}", self.log()))
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The symbols rspamd's answer holds whose name starts with SPAMLENS_: name → (score, options).
fn spamlens_symbols(answer: &Value) -> Vec<(String, f64, Vec<String>)> {
    let mut found: Vec<_> = answer["symbols"]
        .as_object()
        .expect("rspamd's answer has symbols")
        .iter()
        .filter(|(name, _)| name.starts_with("SPAMLENS_"))
        .map(|(name, symbol)| {
            let options = symbol["options"]
                .as_array()
                .map(|o| o.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            (name.clone(), symbol["score"].as_f64().unwrap(), options)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The symbols the plug-in must add for spamlens' own `/v1/scan` answer: each image label's
/// symbol scaled by the highest probability of that label, with every such image as an option;
/// the text symbol when the text filter says spam.
fn expected_symbols(scan: &Value) -> Vec<(String, f64, Vec<String>)> {
    let mut expected = Vec::new();
    for (label, (symbol, score)) in [("ad", IMAGE_AD), ("spam", IMAGE_SPAM)] {
        let images: Vec<(String, f64)> = scan["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|image| image["label"] == label)
            .map(|image| (image["name"].as_str().unwrap().to_owned(), image["probabilities"][label].as_f64().unwrap()))
            .collect();
        if let Some(best) = images.iter().map(|(_, p)| *p).reduce(f64::max) {
            let options = images.iter().map(|(name, p)| format!("{name}:{p:.3}")).collect();
            expected.push((symbol.to_owned(), score * best, options));
        }
    }
    if scan["text"]["is_spam"] == true {
        expected.push((TEXT_SPAM.0.to_owned(), TEXT_SPAM.1, Vec::new()));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    expected
}

fn assert_symbols_match(name: &str, rspamd: &Value, scan: &Value) {
    let got = spamlens_symbols(rspamd);
    let want = expected_symbols(scan);
    let names = |list: &[(String, f64, Vec<String>)]| list.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "{name}: rspamd's spamlens symbols differ from spamlens' answer {scan}");
    for ((symbol, score, options), (_, want_score, want_options)) in got.iter().zip(&want) {
        assert!((score - want_score).abs() < 0.01, "{name}: {symbol} scored {score}, expected {want_score}");
        if symbol == TEXT_SPAM.0 {
            let text = &scan["text"];
            let first =
                format!("score={:.3}/{:.3}", text["score"].as_f64().unwrap(), text["threshold"].as_f64().unwrap());
            assert_eq!(options.first(), Some(&first), "{name}: {symbol} options {options:?}");
        } else {
            assert_eq!(options, want_options, "{name}: {symbol} options");
        }
    }
}

/// `integrations/spamlens-learn LABEL < message` against `server`: its JSON answer.
fn learn(server: &Server, label: &str, message: &[u8], token_file: Option<&Path>) -> Value {
    let mut command = Command::new(workspace().join("integrations/spamlens-learn"));
    command.arg(label).env("SPAMLENS_URL", &server.base).env_remove("SPAMLENS_TOKEN_FILE");
    if let Some(file) = token_file {
        command.env("SPAMLENS_TOKEN_FILE", file);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(message).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "spamlens-learn {label}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("spamlens-learn's answer ({e})"))
}

fn image(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rspamd_adds_spamlens_symbols_and_keeps_mail_flowing_without_it() {
    let mut server = Server::start(&[]);
    let rspamd = Rspamd::start(&server.url("/v1/scan"), None);

    let messages = support::mail_filter_messages();

    let mut image_spam_seen = false;
    let mut without_symbols = 0;
    for (name, message) in &messages {
        let scan = json(&post(&server.url("/v1/scan"), "message/rfc822", message, &[]));
        let answer = rspamd.check(message);
        assert_symbols_match(name, &answer, &scan);
        eprintln!("{name}: verdict {}, rspamd {:?}", scan["verdict"]["label"], spamlens_symbols(&answer));
        image_spam_seen |= spamlens_symbols(&answer).iter().any(|s| s.0 == IMAGE_SPAM.0);
        without_symbols += usize::from(spamlens_symbols(&answer).is_empty());
    }
    // The stock pump is spam by its image and the words in it (p ≈ 1.0 in the README).
    let pump_answer = rspamd.check(&messages[0].1);
    let pump_symbols = spamlens_symbols(&pump_answer);
    let spam = pump_symbols.iter().find(|s| s.0 == IMAGE_SPAM.0).expect("the stock pump got SPAMLENS_IMAGE_SPAM");
    assert!(spam.1 > 0.9 * IMAGE_SPAM.1, "the stock pump's image score {}", spam.1);
    assert_eq!(spam.2.len(), 1, "one spam image option: {:?}", spam.2);
    assert!(spam.2[0].starts_with("chart.png:"), "{:?}", spam.2);
    assert!(image_spam_seen);
    assert!(without_symbols >= 1, "some ham message got no spamlens symbol");

    // "Mark as spam" from the mail system reaches spamlens' text filter.
    let learnt = learn(&server, "spam", &messages[0].1, None);
    assert_eq!(learnt["label"], "spam", "{learnt}");
    assert_eq!(learnt["reaction"], "USER_MESSAGE_MARK_SPAM", "{learnt}");
    assert!(learnt["after"]["score"].as_f64() >= learnt["before"]["score"].as_f64(), "{learnt}");

    // With spamlens stopped, mail keeps flowing: rspamd answers with its other rules, no
    // spamlens symbol, and says why in its log.
    server.terminate();
    server.wait_exit(Duration::from_secs(30));
    let answer = rspamd.check(&messages[0].1);
    assert!(spamlens_symbols(&answer).is_empty(), "spamlens symbols while it is down: {answer}");
    assert!(answer["action"].is_string(), "rspamd gave an action: {answer}");
    assert!(rspamd.log().contains("no spamlens symbols"), "rspamd's log does not say spamlens was unreachable");
    drop(rspamd);
}

/// A server that needs a bearer token: the plug-in sends the token set in its settings, and
/// without it the message is scored without spamlens symbols (the 401 is logged, not passed on).
#[test]
fn rspamd_sends_the_bearer_token_and_survives_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token-for-rspamd\n").unwrap();
    let server = Server::start(&["--token-file", token_file.to_str().unwrap()]);
    let pump = image(&shared_dir().join("data/imagespam/dredze2007/spam/personal/92400953b77bcaea.png"));
    let message = build_email("Hot pick", "chart", &[("chart.png", &pump, Embed::Inline)]);

    let without = Rspamd::start(&server.url("/v1/scan"), None);
    let answer = without.check(&message);
    assert!(spamlens_symbols(&answer).is_empty(), "symbols without the token: {answer}");
    assert!(without.log().contains("answered 401"), "the refusal is not logged:\n{}", without.log());
    drop(without);

    let refused = Command::new(workspace().join("integrations/spamlens-learn"))
        .arg("ham")
        .env("SPAMLENS_URL", &server.base)
        .env_remove("SPAMLENS_TOKEN_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&message)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(!refused.status.success(), "spamlens-learn without the token succeeded");
    let learnt = learn(&server, "ham", &message, Some(&token_file));
    assert_eq!(learnt["label"], "ham", "{learnt}");

    let with = Rspamd::start(&server.url("/v1/scan"), Some("s3cret-token-for-rspamd"));
    let answer = with.check(&message);
    assert!(spamlens_symbols(&answer).iter().any(|s| s.0 == IMAGE_SPAM.0), "no image symbol with the token: {answer}");
}
