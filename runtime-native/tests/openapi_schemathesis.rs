//! Schemathesis (property-based API testing from PyPI; `scripts/test-deps.sh` installs it) against
//! a live `spamlens serve` with a bearer token: every check (server errors, status codes, content
//! types, headers and bodies against the served OpenAPI document, schema-valid requests accepted and
//! schema-invalid ones rejected, the token enforced, 405 with Allow) must pass on every case.
//!
//! `support/schemathesis_hooks.py` gives Schemathesis real files for the media types it has no
//! sample of (BMP, TIFF, ICO images; RFC 5322 messages), and `support/schemathesis.toml` takes 422
//! as an answer to a schema-valid classify body whose bytes are not an image (see its comment).

mod support;

use std::process::Command;

use support::Server;

/// Most cases per operation and phase (about 1,400 cases, about a minute on two cores).
const MAX_EXAMPLES: &str = "400";

#[test]
fn schemathesis_finds_no_failure_against_the_served_document() {
    let version = Command::new("schemathesis").arg("--version").output();
    let installed = version.as_ref().is_ok_and(|out| out.status.success());
    assert!(
        installed,
        "schemathesis is not installed ({version:?}): run scripts/test-deps.sh (pip install schemathesis)"
    );

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "schemathesis-token\n").unwrap();
    let mut permissions = std::fs::metadata(&token_file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(&token_file, permissions).unwrap();
    let server = Server::start(&["--token-file", token_file.to_str().unwrap()]);

    let support = support::workspace().join("runtime-native/tests/support");
    let python_path = match std::env::var_os("PYTHONPATH") {
        Some(existing) => {
            let mut paths = vec![support.clone()];
            paths.extend(std::env::split_paths(&existing));
            std::env::join_paths(paths).unwrap()
        }
        None => support.clone().into_os_string(),
    };
    // Schemathesis and Hypothesis keep caches in the working folder: a scratch one, not the checkout.
    // One worker: with two, Hypothesis parses strategy sources with `ast` in two threads at once,
    // which CPython 3.11 can fail with "AST constructor recursion depth mismatch" (a tool error).
    let out = Command::new("schemathesis")
        .current_dir(dir.path())
        .env("PYTHONPATH", python_path)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .arg("--config-file")
        .arg(support.join("schemathesis.toml"))
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args(["--checks", "all", "-H", "Authorization: Bearer schemathesis-token"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "1", "--workers", "1", "--generation-database", "none"])
        .arg("--no-color")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "schemathesis reported failures ({}):\n{text}", out.status);
    // "Test cases:\n  N generated, N passed, K skipped": every generated case passed.
    let counts = text
        .lines()
        .find_map(|l| l.trim().split_once(" generated, "))
        .and_then(|(generated, rest)| {
            Some((generated.parse::<u64>().ok()?, rest.split(' ').next()?.parse::<u64>().ok()?))
        })
        .unwrap_or_else(|| panic!("no case counts in the schemathesis output:\n{text}"));
    assert!(counts.0 > 0 && counts.0 == counts.1, "{} cases generated, {} passed:\n{text}", counts.0, counts.1);
    // Every operation but the document itself (which Schemathesis leaves out) was tested.
    assert!(text.contains("7 selected / 7 total"), "{text}");
}
