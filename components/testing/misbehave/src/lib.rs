//! A hostile tool for the runtime's tests. `invoke({"mode": M})` does:
//! `ok` echo the input; `loop` spin forever; `alloc` grow memory until
//! refused; `recurse` recurse without end; `panic` panic with a message;
//! `flood` print to stdout forever; `work` {n} burn n iterations of CPU and
//! return a checksum (for the fuel-overhead benchmark).

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tool" });
}
use bindings::*;

use std::hint::black_box;

struct Misbehave;

impl Guest for Misbehave {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "misbehave".into(),
            description: "Test guest that misbehaves on request.".into(),
            params_schema: r#"{"type":"object","properties":{"mode":{"enum":["ok","loop","alloc","recurse","panic","flood","work"]},"n":{"type":"integer"}},"required":["mode"]}"#.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let v: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        match v["mode"].as_str() {
            Some("ok") => Ok(input),
            Some("loop") => {
                let mut i: u64 = 0;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            Some("alloc") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page so the memory is really used.
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            Some("recurse") => Ok(recurse(black_box(u64::MAX)).to_string()),
            Some("panic") => panic!("misbehave was asked to panic"),
            Some("flood") => loop {
                println!("flooding stdout with a line that never ends the flood");
            },
            Some("work") => {
                let n = v["n"].as_u64().unwrap_or(1_000_000);
                let mut h: u64 = 0xcbf29ce484222325;
                for i in 0..n {
                    h = (h ^ i).wrapping_mul(0x100000001b3);
                }
                Ok(format!("{{\"checksum\":{h}}}"))
            }
            _ => Err(ToolError::InvalidInput(format!("unknown mode in {input}"))),
        }
    }
}

/// Tree recursion: LLVM cannot turn it into a loop, and with no
/// address-taken locals every frame lives on the wasm stack (not the shadow
/// stack in linear memory), so it overflows the engine's stack.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    recurse(n - 1).wrapping_add(recurse(n - 2))
}

export!(Misbehave);
