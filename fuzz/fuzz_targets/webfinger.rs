#![no_main]
//! Fuzz target `webfinger`: see [`lifeboat_fuzz::webfinger`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::webfinger(data));
