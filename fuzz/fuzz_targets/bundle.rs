#![no_main]
//! See `weft_fuzz::bundle`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::bundle::fuzz(data));
