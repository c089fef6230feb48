//! `{{name}}`: a Weft agent (the `agent` world of `wit/agent.wit`).
//!
//! An agent is a long-lived process that handles one message at a time and
//! keeps its memory between messages. This one counts what it is sent,
//! logs each message through the kernel's `log` syscall (it shows in
//! `weaver kernel logs`) and replies `{"agent", "n", "echo"}`.

wit_bindgen::generate!({ path: "wit", world: "agent" });

use std::sync::atomic::{AtomicU64, Ordering};

use weft::kernel::ipc::Level;
use weft::kernel::kernel;

/// Messages handled since this instance started.
static SEEN: AtomicU64 = AtomicU64::new(0);

struct Agent;

impl Guest for Agent {
    fn init(_config: String) -> Result<(), String> {
        kernel::log(Level::Info, &format!("{} is ready", kernel::self_name()));
        Ok(())
    }

    fn handle(msg: Message) -> Result<Option<Payload>, String> {
        let echo = match msg.payload {
            Payload::Text(text) => serde_json::Value::String(text),
            // The kernel checked that a JSON payload parses.
            Payload::Json(json) => serde_json::from_str(&json).map_err(|e| e.to_string())?,
            Payload::Binary(b) => return Err(format!("send text or JSON, not {} bytes", b.len())),
        };
        let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        kernel::log(
            Level::Info,
            &format!("message {n} from {}: {echo}", msg.sender_name),
        );
        let reply = serde_json::json!({ "agent": kernel::self_name(), "n": n, "echo": echo });
        Ok(Some(Payload::Json(reply.to_string())))
    }
}

export!(Agent);
