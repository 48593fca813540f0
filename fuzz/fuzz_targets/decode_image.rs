//! Image bytes → `decode_rgb` within small `DecodeLimits` → `prepare_decoded` with the shipped
//! model's letterbox and the tiles fit: never a panic, and a decoded image respects the limits and
//! gives a finite tensor of the right size.
//!
//! The check itself is `checks::decode_image` (`fuzz/checks.rs`), which `tests/tests/fuzz_seeds.rs`
//! replays on the committed seeds.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode_image(data));
