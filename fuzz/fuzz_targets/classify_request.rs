//! Bytes → a `POST /v1/classify` request (first line the Content-Type, the rest the body) →
//! `spamlens_request::classify_images`, the server's reading of raw, multipart and JSON/base64
//! bodies: never a panic, every image named, no image larger than the body.
//!
//! The check itself is `checks::classify_request` (`fuzz/checks.rs`), which
//! `tests/tests/fuzz_seeds.rs` replays on the committed seeds.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::classify_request(data));
