#![no_main]
//! See `weft_fuzz::receipt`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::receipt::fuzz(data));
