#![no_main]
//! See `weft_fuzz::control`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::control::fuzz(data));
