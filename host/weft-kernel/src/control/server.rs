//! The control socket server `weaver run` starts after boot: it reads
//! request lines, hands each to the unit it names as the operator, and
//! answers only once the chain holds everything the request recorded.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::protocol::{self, kind, ControlError, Envelope, MAX_REQUEST_BYTES};
use super::ControlCx;
use crate::act::Principal;
use crate::Kernel;

/// Name of the lock file a running kernel holds in its state dir.
pub const LOCK_FILE: &str = "kernel.lock";

/// Held for as long as a kernel runs on a state dir: an exclusive `flock`
/// on `<state>/kernel.lock`, released by the OS even after `kill -9`.
pub struct StateLock(#[allow(dead_code)] std::fs::File);

/// Why a state dir could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another kernel holds the lock.
    #[error("a kernel is already running on {0} (stop it with: weaver kernel stop --state {0})")]
    Running(String),
    /// The dir, lock or stale socket could not be handled.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Refuse to boot over a live kernel (even one still shutting down), and
/// remove a socket nobody serves. Runs before the kernel boots so a second
/// kernel never touches the chain. Creates the state dir owner-only.
pub fn claim(state: &Path) -> Result<StateLock, ClaimError> {
    let io = |what: &'static str, p: &Path| {
        let path = p.display().to_string();
        move |source| ClaimError::Io { what, path, source }
    };
    if !state.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state)
            .map_err(io("creating the state dir", state))?;
    }
    let lock_path = state.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("opening", &lock_path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(ClaimError::Running(state.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", &lock_path)(e)),
    }
    let path = protocol::socket_path(state);
    if path.exists() {
        // We hold the lock, so whoever bound this socket is gone.
        std::fs::remove_file(&path).map_err(io("removing the stale socket", &path))?;
    }
    Ok(StateLock(file))
}

/// The bound socket; removes its file when dropped.
pub struct Server {
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Nothing to do if it is already gone.
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!("removing {}: {e}", self.path.display());
        }
    }
}

impl Server {
    /// Bind `<state>/control.sock`, owner-only.
    pub fn bind(state: &Path) -> std::io::Result<Server> {
        let path = protocol::socket_path(state);
        // Bound under a private name, made owner-only, then renamed into
        // place: nobody can connect before the permissions are right.
        let tmp = state.join(format!(".control.sock.{}", std::process::id()));
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, &path)?;
        Ok(Server {
            path,
            listener: Some(listener),
        })
    }

    /// Accept connections until the returned task is aborted.
    pub fn serve(&mut self, kernel: Kernel) -> tokio::task::JoinHandle<()> {
        let listener = self.listener.take();
        tokio::spawn(async move {
            let Some(listener) = listener else { return };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let kernel = kernel.clone();
                        tokio::spawn(async move {
                            if let Err(e) = connection(stream, kernel).await {
                                tracing::debug!("control connection: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("control socket accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        })
    }
}

async fn connection(stream: UnixStream, kernel: Kernel) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let operator = Principal::Operator;
    loop {
        line.clear();
        // One byte over the limit tells an oversized line from a full one.
        let n = (&mut reader)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n > MAX_REQUEST_BYTES {
            let e =
                ControlError::bad_request(format!("request longer than {MAX_REQUEST_BYTES} bytes"));
            write_line(&mut write, &protocol::err_line(0, &e)).await?;
            // The rest of the line cannot be framed; drop the connection.
            return Ok(());
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let req: Envelope = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                // Echo the id back when there is one, so the client can match it.
                let id = serde_json::from_slice::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_u64))
                    .unwrap_or(0);
                let e = ControlError::bad_request(format!("malformed request: {e}"));
                write_line(&mut write, &protocol::err_line(id, &e)).await?;
                continue;
            }
        };
        let id = req.id;
        // Long commands report progress while they run; forward it as it comes.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let result = {
            let work = serve_one(&kernel, &operator, req.unit, req.request, &tx);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    Some(p) = rx.recv() => {
                        write_line(&mut write, &protocol::progress_line(id, p)).await?;
                    }
                }
            }
        };
        while let Ok(p) = rx.try_recv() {
            write_line(&mut write, &protocol::progress_line(id, p)).await?;
        }
        // Whatever the command recorded is on disk before the client hears
        // "done": a `kill -9` after the answer loses nothing it was told about.
        let chain = kernel.chain();
        let synced = tokio::task::spawn_blocking(move || chain.sync()).await;
        let result = match (result, synced) {
            (Ok(v), Ok(Ok(()))) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Ok(Err(e))) => Err(ControlError::new(
                kind::KERNEL,
                format!("chain sync failed: {e}"),
            )),
            (Ok(_), Err(e)) => Err(ControlError::new(
                kind::KERNEL,
                format!("chain sync panicked: {e}"),
            )),
        };
        let out = match result {
            Ok(v) => protocol::ok_line(id, v),
            Err(e) => protocol::err_line(id, &e),
        };
        write_line(&mut write, &out).await?;
        // A stop request is acted on only once its answer is out.
        if kernel.take_stop_request() {
            kernel.notify_stop();
        }
    }
}

async fn serve_one(
    kernel: &Kernel,
    who: &Principal,
    unit: String,
    request: Value,
    progress: &super::ProgressTx,
) -> Result<Value, ControlError> {
    let Some(u) = kernel.unit(&unit) else {
        return Err(ControlError::new(
            kind::UNKNOWN_COMMAND,
            format!(
                "unknown unit `{unit}` (this kernel has: {})",
                kernel.unit_names().join(", ")
            ),
        ));
    };
    if !(request.is_object()) {
        return Err(ControlError::bad_request("`request` must be an object"));
    }
    u.control(ControlCx::new(kernel, who, request, Some(progress)))
        .await
}

async fn write_line(w: &mut tokio::net::unix::OwnedWriteHalf, s: &str) -> std::io::Result<()> {
    w.write_all(s.as_bytes()).await?;
    w.write_all(b"\n").await?;
    w.flush().await
}
