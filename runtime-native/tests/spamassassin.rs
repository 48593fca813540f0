//! The SpamAssassin plug-in (`integrations/spamassassin/`) against the real programs: Debian's
//! `spamassassin -t` loads the plug-in and its rules as an operator installs them (copied beside
//! the system's `.pre` files), in front of the real `spamlens serve` on loopback. The rules that hit
//! and their scores must follow spamlens' own answer for the same message, and with spamlens
//! stopped every message is still scored, with no spamlens rule. Needs SpamAssassin
//! (`scripts/test-deps.sh` installs it).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Server, json, post, workspace};

/// The rules `spamlens.cf` defines and their scores.
const RULES: [(&str, f64); 4] = [
    ("SPAMLENS_IMAGE_AD", 0.5),
    ("SPAMLENS_IMAGE_SPAM", 3.0),
    ("SPAMLENS_IMAGE_SPAM_HIGH", 2.5),
    ("SPAMLENS_TEXT_SPAM", 2.0),
];

/// A site configuration folder as an operator sets it up: the system's `.pre` files (they load
/// SpamAssassin's own plug-ins) and the two files of the integration, pointed at `scan_url`.
fn site_config(scan_url: &str) -> tempfile::TempDir {
    assert!(
        Path::new("/usr/bin/spamassassin").is_file(),
        "SpamAssassin is not installed: scripts/test-deps.sh installs it (apt-get install spamassassin)"
    );
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir("/etc/spamassassin").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "pre") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let integration = workspace().join("integrations/spamassassin");
    std::fs::copy(integration.join("Spamlens.pm"), dir.path().join("Spamlens.pm")).unwrap();
    let shipped = std::fs::read_to_string(integration.join("spamlens.cf")).unwrap();
    assert!(shipped.contains("spamlens_url      http://127.0.0.1:8080/v1/scan\n"), "the shipped url line changed");
    // A generous timeout: the first message waits for the model's first batch on a loaded machine.
    let cf = shipped
        .replace("spamlens_url      http://127.0.0.1:8080/v1/scan\n", &format!("spamlens_url      {scan_url}\n"))
        .replace("spamlens_timeout  15\n", "spamlens_timeout  120\n");
    std::fs::write(dir.path().join("spamlens.cf"), cf).unwrap();
    dir
}

/// `spamassassin -t` (local tests only, no network rules) on one message: the rules that hit with
/// their points, and what it logged with `-D spamlens`.
fn spamassassin(site: &Path, message: &[u8]) -> (Vec<(String, f64)>, String) {
    let mut child = Command::new("/usr/bin/spamassassin")
        .arg(format!("--siteconfigpath={}", site.display()))
        .args(["-L", "-t", "-D", "spamlens"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting spamassassin");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(message).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // spamassassin -t exits 1 for spam, 0 for ham; anything else is a failure.
    assert!(matches!(out.status.code(), Some(0 | 1)), "spamassassin failed ({}):\n{stderr}", out.status);
    let status = header_value(&stdout, "X-Spam-Status").unwrap_or_else(|| panic!("no X-Spam-Status:\n{stdout}"));
    let tests = status.split("tests=").nth(1).unwrap_or("").split(" autolearn=").next().unwrap_or("");
    let hits: Vec<String> =
        tests.split(',').map(|t| t.trim().to_owned()).filter(|t| t.starts_with("SPAMLENS_")).collect();
    // The points of each hit, from the report table (" 3.0 SPAMLENS_IMAGE_SPAM  description").
    let scored = hits
        .into_iter()
        .map(|rule| {
            let points = stdout
                .lines()
                .find_map(|line| {
                    let mut words = line.split_whitespace();
                    let points = words.next()?.parse::<f64>().ok()?;
                    (words.next()? == rule).then_some(points)
                })
                .unwrap_or_else(|| panic!("no points for {rule} in the report:\n{stdout}"));
            (rule, points)
        })
        .collect();
    (scored, stderr)
}

/// A header's unfolded value in the output message.
fn header_value(message: &str, name: &str) -> Option<String> {
    let mut lines = message.lines();
    let first = lines.find(|l| {
        l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name) && l[name.len()..].starts_with(':')
    })?;
    let mut value = first[name.len() + 1..].trim().to_owned();
    for line in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(line.trim());
    }
    Some(value)
}

/// The rules that must hit for spamlens' own `/v1/scan` answer.
fn expected_rules(scan: &Value) -> Vec<(String, f64)> {
    let images = scan["images"].as_array().unwrap();
    let best = |label: &str| {
        images
            .iter()
            .filter(|image| image["label"] == label)
            .filter_map(|image| image["probabilities"][label].as_f64())
            .reduce(f64::max)
    };
    let hit = |rule: &str| match rule {
        "SPAMLENS_IMAGE_AD" => best("ad").is_some(),
        "SPAMLENS_IMAGE_SPAM" => best("spam").is_some(),
        "SPAMLENS_IMAGE_SPAM_HIGH" => best("spam").is_some_and(|p| p >= 0.9),
        "SPAMLENS_TEXT_SPAM" => scan["text"]["is_spam"] == true,
        other => unreachable!("{other}"),
    };
    RULES.iter().filter(|(rule, _)| hit(rule)).map(|(rule, score)| ((*rule).to_owned(), *score)).collect()
}

#[test]
fn spamassassin_scores_spamlens_rules_and_keeps_mail_flowing_without_it() {
    let mut server = Server::start(&[]);
    let site = site_config(&server.url("/v1/scan"));
    let lint = Command::new("/usr/bin/spamassassin")
        .arg(format!("--siteconfigpath={}", site.path().display()))
        .arg("--lint")
        .output()
        .unwrap();
    assert!(lint.status.success(), "spamassassin --lint: {}", String::from_utf8_lossy(&lint.stderr));

    let messages = support::mail_filter_messages();
    let mut image_spam_seen = false;
    let mut without_rules = 0;
    for (name, message) in &messages {
        let scan = json(&post(&server.url("/v1/scan"), "message/rfc822", message, &[]));
        let (mut hits, log) = spamassassin(site.path(), message);
        hits.sort_by(|a, b| a.0.cmp(&b.0));
        let want = expected_rules(&scan);
        assert_eq!(
            hits.iter().map(|h| &h.0).collect::<Vec<_>>(),
            want.iter().map(|h| &h.0).collect::<Vec<_>>(),
            "{name}: SpamAssassin's spamlens rules differ from spamlens' answer {scan}\n{log}"
        );
        for ((rule, points), (_, score)) in hits.iter().zip(&want) {
            assert!((points - score).abs() < 1e-6, "{name}: {rule} scored {points}, spamlens.cf says {score}");
        }
        eprintln!("{name}: verdict {}, SpamAssassin {hits:?}", scan["verdict"]["label"]);
        image_spam_seen |= hits.iter().any(|h| h.0 == "SPAMLENS_IMAGE_SPAM");
        without_rules += usize::from(hits.is_empty());
    }
    // The stock pump (p ≈ 1.0) hits both image tiers.
    let (pump, _) = spamassassin(site.path(), &messages[0].1);
    for rule in ["SPAMLENS_IMAGE_SPAM", "SPAMLENS_IMAGE_SPAM_HIGH"] {
        assert!(pump.iter().any(|h| h.0 == rule), "the stock pump did not hit {rule}: {pump:?}");
    }
    assert!(image_spam_seen);
    assert!(without_rules >= 1, "some ham message hit no spamlens rule");

    // With spamlens stopped, every message is still scored, with no spamlens rule, and the plug-in
    // says why in its log.
    server.terminate();
    server.wait_exit(Duration::from_secs(30));
    let (hits, log) = spamassassin(site.path(), &messages[0].1);
    assert!(hits.is_empty(), "spamlens rules while it is down: {hits:?}");
    assert!(log.contains("no spamlens rules"), "the plug-in did not log the failure:\n{log}");
}
