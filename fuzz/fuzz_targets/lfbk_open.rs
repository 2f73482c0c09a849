#![no_main]
//! Fuzz target `lfbk_open`: see [`lifeboat_fuzz::lfbk_open`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::lfbk_open(data));
