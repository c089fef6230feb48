#![no_main]
//! See `weft_fuzz::manifest`. Differential: the `apps` component's answer
//! must equal the same checking code's answer built natively.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let native = apps::check::check(text, weft_fuzz::manifest::FILE);
    let component = weft_fuzz::manifest::check(text);
    assert_eq!(component, native, "the component and its native build disagree");
});
