#![no_main]
//! Fuzz target `magic_envelope`: see [`lifeboat_fuzz::magic_envelope`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::magic_envelope(data));
