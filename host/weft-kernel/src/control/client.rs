//! The client side: one request per connection, progress lines handed to a
//! callback, the final line turned into a result or a [`ControlError`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{self, ControlError, MAX_RESPONSE_BYTES};

/// Why a call did not produce a result.
#[derive(Debug)]
pub enum CallError {
    /// Nothing answers on the socket.
    NoKernel(PathBuf),
    /// The kernel answered with an error.
    Command(ControlError),
    /// The connection broke or the answer made no sense.
    Transport(String),
}

/// Send `request` to `unit` of the kernel serving `state`.
pub async fn call<R: Serialize>(
    state: &Path,
    unit: &str,
    request: &R,
    mut on_progress: impl FnMut(&Value),
) -> Result<Value, CallError> {
    let path = protocol::socket_path(state);
    let stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(_) => return Err(CallError::NoKernel(state.to_path_buf())),
    };
    let (read, mut write) = stream.into_split();
    let id = 1u64;
    let line = json!({ "id": id, "unit": unit, "request": request }).to_string();
    let sent = async {
        write.write_all(line.as_bytes()).await?;
        write.write_all(b"\n").await?;
        write.flush().await
    };
    sent.await
        .map_err(|e| CallError::Transport(format!("writing to {}: {e}", path.display())))?;
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_RESPONSE_BYTES as u64)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| CallError::Transport(format!("reading the answer: {e}")))?;
        if n == 0 {
            return Err(CallError::Transport(format!(
                "the kernel closed the connection without answering `{unit}`"
            )));
        }
        let v: Value = serde_json::from_slice(&buf)
            .map_err(|e| CallError::Transport(format!("bad answer from the kernel: {e}")))?;
        if let Some(p) = v.get("progress") {
            on_progress(p);
            continue;
        }
        return match v.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
            Some(false) => {
                let e = v
                    .get("error")
                    .cloned()
                    .and_then(|e| serde_json::from_value::<ControlError>(e).ok())
                    .unwrap_or_else(|| ControlError::kernel("unknown error"));
                Err(CallError::Command(e))
            }
            None => Err(CallError::Transport(format!(
                "bad answer from the kernel: {v}"
            ))),
        };
    }
}
