//! The control socket's wire format. One JSON object per line, both ways:
//!
//! * request: `{"id": n, "unit": "cron", "request": {"op": "add", ...}}` —
//!   `unit` names a subsystem, `request` is that unit's typed request (an
//!   internally tagged enum, shared by its CLI and its server side);
//! * success: `{"id": n, "ok": true, "result": ...}`;
//! * failure: `{"id": n, "ok": false, "error": {"kind": "...", "message": "..."}}`;
//! * progress (long commands, before the final line): `{"id": n, "progress": {...}}`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Largest request line the server reads; longer lines are refused.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest response line the client accepts (a chain export can be big).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The socket of the kernel serving `state`.
pub fn socket_path(state: &Path) -> PathBuf {
    state.join("control.sock")
}

/// One request line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Echoed in the answer.
    pub id: u64,
    /// The subsystem that serves it.
    pub unit: String,
    /// That subsystem's request.
    #[serde(default)]
    pub request: Value,
}

/// Error kinds; the CLI maps them to exit codes.
pub mod kind {
    /// The command ran and said no: exit 1.
    pub const FAILED: &str = "failed";
    /// The gate or a capability refused it: exit 1.
    pub const DENIED: &str = "denied";
    /// No such agent, tool, app, ...: exit 1.
    pub const NOT_FOUND: &str = "not found";
    /// A tool ran and returned an error: exit 1.
    pub const TOOL: &str = "tool error";
    /// A guest was stopped or is invalid: exit 2.
    pub const GUEST: &str = "guest";
    /// The kernel itself failed: exit 2.
    pub const KERNEL: &str = "kernel";
    /// The request is malformed: exit 64.
    pub const BAD_REQUEST: &str = "bad request";
    /// No such unit or operation: exit 64.
    pub const UNKNOWN_COMMAND: &str = "unknown command";
}

/// Exit codes shared by every `weaver` command.
pub mod exit {
    /// The thing ran and reported failure.
    pub const FAILED: u8 = 1;
    /// The guest or the kernel failed.
    pub const GUEST: u8 = 2;
    /// Bad usage.
    pub const USAGE: u8 = 64;
}

/// A failed command, as sent on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ControlError {
    /// One of [`kind`].
    pub kind: String,
    /// For a person.
    pub message: String,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ControlError {}

impl ControlError {
    /// An error of `kind`.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        ControlError {
            kind: kind.to_string(),
            message: message.into(),
        }
    }

    /// The request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(kind::BAD_REQUEST, message)
    }

    /// The kernel failed.
    pub fn kernel(message: impl Into<String>) -> Self {
        Self::new(kind::KERNEL, message)
    }

    /// `unit` has no operation `op`.
    pub fn unknown(unit: &str, op: &str) -> Self {
        Self::new(
            kind::UNKNOWN_COMMAND,
            format!("unknown command `{op}` for `{unit}`"),
        )
    }

    /// The exit code a CLI command reports for this error.
    pub fn exit_code(&self) -> u8 {
        match self.kind.as_str() {
            kind::GUEST | kind::KERNEL => exit::GUEST,
            kind::BAD_REQUEST | kind::UNKNOWN_COMMAND => exit::USAGE,
            _ => exit::FAILED,
        }
    }
}

impl From<crate::KernelError> for ControlError {
    fn from(e: crate::KernelError) -> Self {
        use crate::KernelError as K;
        let k = match &e {
            K::Denied(_) | K::Deferred(_) => kind::DENIED,
            K::NotFound(_) | K::NoSuchName(_) | K::NoSuchProcess(_) => kind::NOT_FOUND,
            K::Run(_) | K::Limit(_) | K::Timeout(_) => kind::GUEST,
            K::Invalid(_) => kind::BAD_REQUEST,
            K::Failed(_) => kind::FAILED,
            K::Subsystem { internal: true, .. } => kind::KERNEL,
            K::Subsystem { .. } => kind::FAILED,
            _ => kind::KERNEL,
        };
        ControlError::new(k, e.to_string())
    }
}

/// A success line.
pub fn ok_line(id: u64, result: Value) -> String {
    json!({ "id": id, "ok": true, "result": result }).to_string()
}

/// A failure line.
pub fn err_line(id: u64, e: &ControlError) -> String {
    json!({ "id": id, "ok": false, "error": e }).to_string()
}

/// A progress line.
pub fn progress_line(id: u64, progress: Value) -> String {
    json!({ "id": id, "progress": progress }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_parse_and_errors_map_to_exit_codes() {
        let r: Envelope =
            serde_json::from_str(r#"{"id": 3, "unit": "agents", "request": {"op": "ps"}}"#)
                .unwrap();
        assert_eq!((r.id, r.unit.as_str()), (3, "agents"));
        assert!(serde_json::from_str::<Envelope>(r#"{"unit": "agents"}"#).is_err());
        assert!(serde_json::from_str::<Envelope>(r#"{"id": 1, "cmd": "ps"}"#).is_err());
        assert_eq!(ControlError::new(kind::DENIED, "").exit_code(), 1);
        assert_eq!(ControlError::new(kind::GUEST, "").exit_code(), 2);
        assert_eq!(ControlError::bad_request("").exit_code(), 64);
        let line = err_line(4, &ControlError::new(kind::NOT_FOUND, "no"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"id": 4, "ok": false, "error": {"kind": "not found", "message": "no"}})
        );
    }
}
