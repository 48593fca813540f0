//! Bytes → `cla_ann::ClaAnn::from_json`; a state that loads scores a fixed message (`tokens` +
//! `score`) and loads again after `to_json`: never a panic.
//!
//! The check itself is `checks::cla_ann_state` (`fuzz/checks.rs`), which `tests/tests/fuzz_seeds.rs`
//! replays on the committed seeds.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::cla_ann_state(data));
