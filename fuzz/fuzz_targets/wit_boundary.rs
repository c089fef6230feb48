#![no_main]
//! See `weft_fuzz::wit_boundary`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::wit_boundary::fuzz(data));
