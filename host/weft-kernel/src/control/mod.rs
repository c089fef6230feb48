//! The control API: how `weaver` (the operator) talks to a running kernel
//! over `<state>/control.sock`. Each subsystem serves its own typed
//! requests ([`crate::Subsystem::control`]) and brings its own CLI
//! ([`cli`]); the server ([`server`]) routes by unit name and acts as
//! [`crate::Principal::Operator`].

pub mod cli;
pub mod client;
pub mod protocol;
pub mod server;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::act::{Principal, Query};
use crate::Kernel;
pub use protocol::{kind, ControlError};

/// What a control request produces.
pub type ControlReply = Result<Value, ControlError>;

/// Where a long command sends its progress objects.
pub type ProgressTx = tokio::sync::mpsc::UnboundedSender<Value>;

/// One control request, as a subsystem's [`crate::Subsystem::control`]
/// sees it.
pub struct ControlCx<'a> {
    /// The kernel.
    pub kernel: &'a Kernel,
    /// Who asks (the operator, for the control socket).
    pub who: &'a Principal,
    request: Value,
    progress: Option<&'a ProgressTx>,
}

impl<'a> ControlCx<'a> {
    /// A request from `who`.
    pub fn new(
        kernel: &'a Kernel,
        who: &'a Principal,
        request: Value,
        progress: Option<&'a ProgressTx>,
    ) -> Self {
        ControlCx {
            kernel,
            who,
            request,
            progress,
        }
    }

    /// The request's `op`, for messages.
    pub fn op(&self) -> &str {
        self.request.get("op").and_then(Value::as_str).unwrap_or("")
    }

    /// The request as the unit's typed request enum; a request that does
    /// not fit is a bad request naming what is wrong.
    pub fn parse<R: DeserializeOwned>(&self, unit: &str) -> Result<R, ControlError> {
        R::deserialize(&self.request).map_err(|e| {
            if self.op().is_empty() {
                ControlError::bad_request(format!("`{unit}` request without an `op`"))
            } else {
                ControlError::bad_request(format!("`{unit}` `{}`: {e}", self.op()))
            }
        })
    }

    /// Where progress goes, to hand to work that outlives this borrow.
    pub fn progress_sender(&self) -> Option<ProgressTx> {
        self.progress.cloned()
    }

    /// Report progress (best effort: the client may be gone).
    pub fn progress(&self, v: Value) {
        if let Some(tx) = self.progress {
            let _ignored_if_gone = tx.send(v);
        }
    }

    /// Ask the gate whether `who` may read this (`agent.list`,
    /// `chain.read`, ...): control queries pass the gate like actions.
    pub async fn query(&self, action: &'static str) -> Result<(), ControlError> {
        self.kernel.act(self.who, Query(action)).await?;
        Ok(())
    }
}

/// Serialize a result for the wire.
pub fn to_value<T: Serialize>(v: T) -> ControlReply {
    serde_json::to_value(v).map_err(|e| ControlError::kernel(e.to_string()))
}
