#![no_main]
//! Fuzz target `private_envelope`: see [`lifeboat_fuzz::private_envelope`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::private_envelope(data));
