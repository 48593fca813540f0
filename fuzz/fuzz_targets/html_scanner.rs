//! Bytes (as lossy UTF-8) → `email::html::image_references`: never a panic, linear time, and every
//! reference found is a non-empty lower-case content id, an `image/` data URI or an http(s) URL.
//!
//! The check itself is `checks::html_scanner` (`fuzz/checks.rs`), which `tests/tests/fuzz_seeds.rs`
//! replays on the committed seeds.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::html_scanner(data));
