#![no_main]
//! Fuzz target `entity`: see [`lifeboat_fuzz::entity`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::entity(data));
