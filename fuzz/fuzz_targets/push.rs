#![no_main]
//! Fuzz target `push`: see [`lifeboat_fuzz::push`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::push(data));
