#![no_main]
//! Fuzz target `form`: see [`lifeboat_fuzz::form`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::form(data));
