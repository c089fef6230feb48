#![no_main]
//! See `weft_fuzz::chain`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::chain::fuzz_log(data));
