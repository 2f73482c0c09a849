#![no_main]
//! Fuzz target `nodeinfo`: see [`lifeboat_fuzz::nodeinfo`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifeboat_fuzz::nodeinfo(data));
