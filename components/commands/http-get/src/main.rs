//! `http-get`: a plain WASI 0.2 command (`fn main`, stdin, stdout, exit
//! code) that makes one HTTP request through `wasi:http`. As a tool it gets
//! its input on stdin: `{"url": URL, "method"?: "GET", "body"?: TEXT}`, and
//! prints `{"status", "body"}`; a refused or failed request exits 1 with
//! the reason on stderr. The kernel lets it reach only what its
//! `[[tools]] network` grants allow (`docs/network.md`).

use std::io::Read;
use std::process::ExitCode;

// Generated from the WIT in wit/; private.
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "http-get", generate_all });
}

// The request code, shared with the `fetcher` agent.
#[path = "../../../agents/fetcher/src/http.rs"]
mod http;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    let v: serde_json::Value = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("input is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(url) = v["url"].as_str() else {
        eprintln!("expected {{\"url\": URL}}");
        return ExitCode::from(2);
    };
    let method = v["method"].as_str().unwrap_or("GET");
    match http::fetch(method, url, v["body"].as_str()) {
        Ok((status, body)) => {
            println!("{}", serde_json::json!({ "status": status, "body": body }));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
