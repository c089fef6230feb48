//! `{{name}}`: a Weft component service (an `agent`-world component).
//!
//! The kernel runs it as `<app>.service.{{name}}` and routes service calls to
//! it: a message sent to the service `{{name}}` arrives with `method` set.
//! Methods: `hello` (the default when none is given) answers
//! `{"hello": <what was sent>, "calls": n}`, `count` answers `{"calls": n}`.

wit_bindgen::generate!({ path: "wit", world: "agent" });

use std::sync::atomic::{AtomicU64, Ordering};

use weft::kernel::ipc::Level;
use weft::kernel::kernel;

/// Calls answered since this instance started.
static CALLS: AtomicU64 = AtomicU64::new(0);

struct Service;

impl Guest for Service {
    fn init(config: String) -> Result<(), String> {
        // The kernel passes {"service": "{{name}}", "env": {...}} (weftapp.toml `env`).
        kernel::log(Level::Info, &format!("service ready, config {config}"));
        Ok(())
    }

    fn handle(msg: Message) -> Result<Option<Payload>, String> {
        let method = msg.method.as_deref().unwrap_or("hello");
        let reply = match method {
            "hello" => {
                let sent = match msg.payload {
                    Payload::Text(text) => serde_json::Value::String(text),
                    Payload::Json(json) => {
                        serde_json::from_str(&json).map_err(|e| e.to_string())?
                    }
                    Payload::Binary(b) => {
                        return Err(format!("send text or JSON, not {} bytes", b.len()))
                    }
                };
                let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                serde_json::json!({ "hello": sent, "calls": n })
            }
            "count" => serde_json::json!({ "calls": CALLS.load(Ordering::Relaxed) }),
            other => {
                return Err(format!(
                    "unknown method `{other}` (this service answers `hello` and `count`)"
                ))
            }
        };
        Ok(Some(Payload::Json(reply.to_string())))
    }
}

export!(Service);
