#![no_main]
//! Fuzz target `archive`: see [`lifeboat_fuzz::archive`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::archive(data));
