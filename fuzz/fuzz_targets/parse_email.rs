//! Bytes → `email::parse_email` with the default and with tight `EmailLimits`: never a panic, and
//! the parsed images, remote URLs, body text and part count respect the limits.
//!
//! The check itself is `checks::parse_email` (`fuzz/checks.rs`), which `tests/tests/fuzz_seeds.rs`
//! replays on the committed seeds.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::parse_email(data));
