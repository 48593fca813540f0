//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/`) through the same checks the cargo-fuzz
//! targets run (`fuzz/checks.rs`), on the stable toolchain: every input the fuzzers kept, and every
//! crash they found and that was fixed, stays covered by the normal test suite.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

/// The seed files of `target`, sorted; fails when the folder is missing or empty, so that a moved
/// folder cannot make the replay pass without replaying anything.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no seeds to replay", dir.display());
    files
}

fn replay(target: &str) {
    let check = checks::TARGETS.iter().find(|(name, _)| *name == target).map(|&(_, check)| check);
    let check = check.unwrap_or_else(|| panic!("no check named {target}"));
    for path in seeds(target) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Name the seed when its check panics: the panic message alone does not say which input.
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("{target}: the check panicked on seed {}", path.display());
        }
    }
}

#[test]
fn decode_image_seeds() {
    replay("decode_image");
}

#[test]
fn parse_email_seeds() {
    replay("parse_email");
}

#[test]
fn mbox_seeds() {
    replay("mbox");
}

#[test]
fn html_scanner_seeds() {
    replay("html_scanner");
}

#[test]
fn cla_ann_state_seeds() {
    replay("cla_ann_state");
}

#[test]
fn classify_request_seeds() {
    replay("classify_request");
}

/// Every target in `fuzz/checks.rs` has a replay test above (and so a seeds folder).
#[test]
fn every_target_is_replayed() {
    let replayed = ["decode_image", "parse_email", "mbox", "html_scanner", "cla_ann_state", "classify_request"];
    let targets: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(targets, replayed);
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for target in targets {
        assert!(fuzz.join(format!("{target}.rs")).is_file(), "no fuzz target {target}.rs in {}", fuzz.display());
    }
}
