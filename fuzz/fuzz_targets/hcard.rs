#![no_main]
//! Fuzz target `hcard`: see [`lifeboat_fuzz::hcard`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::hcard(data));
