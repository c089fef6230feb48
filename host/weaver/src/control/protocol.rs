//! Wire types. One JSON object per line, both directions:
//!
//! * request: `{"id": n, "cmd": "ps", "args": {...}}`
//! * success: `{"id": n, "ok": true, "result": ...}`
//! * failure: `{"id": n, "ok": false, "error": {"kind": "...", "message": "..."}}`
//! * progress (long commands, before the final line): `{"id": n, "progress": {...}}`

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

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub cmd: String,
    #[serde(default)]
    pub args: Value,
}

/// Error kinds; the client maps them to exit codes.
pub mod kind {
    /// The command ran and said no (gate deny, tool error, not found, ...): exit 1.
    pub const FAILED: &str = "failed";
    pub const DENIED: &str = "denied";
    pub const NOT_FOUND: &str = "not found";
    pub const TOOL: &str = "tool error";
    /// A guest was stopped or is invalid, or the kernel itself failed: exit 2.
    pub const GUEST: &str = "guest";
    pub const KERNEL: &str = "kernel";
    /// The request itself is wrong: exit 64.
    pub const BAD_REQUEST: &str = "bad request";
    pub const UNKNOWN_COMMAND: &str = "unknown command";
}

/// A failed command, as sent on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub kind: String,
    pub message: String,
}

impl WireError {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        WireError {
            kind: kind.to_string(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(kind::BAD_REQUEST, message)
    }

    /// The exit code a CLI command reports for this error.
    pub fn exit_code(&self) -> u8 {
        match self.kind.as_str() {
            kind::GUEST | kind::KERNEL => crate::exit::GUEST,
            kind::BAD_REQUEST | kind::UNKNOWN_COMMAND => crate::exit::USAGE,
            _ => crate::exit::FAILED,
        }
    }
}

impl From<weft_kernel::KernelError> for WireError {
    fn from(e: weft_kernel::KernelError) -> Self {
        use weft_kernel::KernelError as K;
        let k = match &e {
            K::Denied(_) | K::Deferred(_) => kind::DENIED,
            K::NotFound(_) | K::NoSuchName(_) | K::NoSuchProcess(_) => kind::NOT_FOUND,
            K::Run(_) | K::Limit(_) | K::Timeout(_) => kind::GUEST,
            K::Invalid(_) => kind::BAD_REQUEST,
            K::Failed(_) => kind::FAILED,
            _ => kind::KERNEL,
        };
        WireError::new(k, e.to_string())
    }
}

pub fn ok_line(id: u64, result: Value) -> String {
    json!({ "id": id, "ok": true, "result": result }).to_string()
}

pub fn err_line(id: u64, e: &WireError) -> String {
    json!({ "id": id, "ok": false, "error": e }).to_string()
}

pub fn progress_line(id: u64, progress: Value) -> String {
    json!({ "id": id, "progress": progress }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_errors_map_to_exit_codes() {
        let r: Request = serde_json::from_str(r#"{"id": 3, "cmd": "ps"}"#).unwrap();
        assert_eq!((r.id, r.cmd.as_str(), r.args.is_null()), (3, "ps", true));
        assert!(serde_json::from_str::<Request>(r#"{"cmd": "ps"}"#).is_err());
        assert_eq!(WireError::new(kind::DENIED, "").exit_code(), 1);
        assert_eq!(WireError::new(kind::GUEST, "").exit_code(), 2);
        assert_eq!(WireError::bad_request("").exit_code(), 64);
        let line = err_line(4, &WireError::new(kind::NOT_FOUND, "no"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"id": 4, "ok": false, "error": {"kind": "not found", "message": "no"}})
        );
    }
}
