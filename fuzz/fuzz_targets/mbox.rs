//! Bytes → the mbox helpers (`is_mbox`, `split_mbox`, `strip_envelope_line`, `starts_with_header`),
//! which must agree with each other, then `parse_email` on every split message: never a panic.
//!
//! The check itself is `checks::mbox` (`fuzz/checks.rs`), which `tests/tests/fuzz_seeds.rs`
//! replays on the committed seeds.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::mbox(data));
