//! The control socket server `weaver run` starts after boot.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use weft_kernel::Kernel;
use weft_subsystems::{ComponentCron, ComponentGovernance, ComponentHealth};

use super::protocol::{self, Request, WireError, MAX_REQUEST_BYTES};

/// What handlers can reach.
pub struct Ctl {
    pub kernel: Kernel,
    pub governance: Option<Arc<ComponentGovernance>>,
    pub cron: Option<ComponentCron>,
    pub health: Option<ComponentHealth>,
    /// Apps; `None` when the `apps` component could not be loaded (why: `apps_problem`).
    pub apps: Option<Arc<weft_apps::AppManager>>,
    pub apps_problem: Option<String>,
    pub started: Instant,
    /// Notified by the `shutdown` command; `weaver run` waits on it.
    pub shutdown: Arc<Notify>,
}

/// Name of the lock file a running kernel holds in its state dir.
pub const LOCK_FILE: &str = "kernel.lock";

/// Held for as long as a kernel runs on a state dir: an exclusive `flock`
/// on `<state>/kernel.lock`, released by the OS even after `kill -9`.
pub struct StateLock(#[allow(dead_code)] std::fs::File);

/// Refuse to boot over a live kernel (even one still shutting down), and
/// remove a socket nobody serves. Runs before the kernel boots so a second
/// kernel never touches the chain. Creates the state dir owner-only.
pub fn claim(state: &Path) -> anyhow::Result<StateLock> {
    if !state.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state)
            .with_context(|| format!("creating the state dir {}", state.display()))?;
    }
    let lock_path = state.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "a kernel is already running on {} (stop it with: weaver kernel stop --state {})",
            state.display(),
            state.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", lock_path.display()))
        }
    }
    let path = protocol::socket_path(state);
    if path.exists() {
        // We hold the lock, so whoever bound this socket is gone.
        std::fs::remove_file(&path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
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
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Server {
    pub fn bind(state: &Path) -> anyhow::Result<Server> {
        let path = protocol::socket_path(state);
        // Bound under a private name, made owner-only, then renamed into
        // place: nobody can connect before the permissions are right.
        let tmp = state.join(format!(".control.sock.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let listener =
            UnixListener::bind(&tmp).with_context(|| format!("binding {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("moving the socket to {}", path.display()))?;
        Ok(Server {
            path,
            listener: Some(listener),
        })
    }

    /// Accept connections until the returned task is aborted.
    pub fn serve(&mut self, ctl: Arc<Ctl>) -> tokio::task::JoinHandle<()> {
        let listener = self.listener.take();
        tokio::spawn(async move {
            let Some(listener) = listener else { return };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let ctl = ctl.clone();
                        tokio::spawn(async move {
                            if let Err(e) = connection(stream, ctl).await {
                                tracing::debug!("control connection: {e:#}");
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

async fn connection(stream: UnixStream, ctl: Arc<Ctl>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
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
                WireError::bad_request(format!("request longer than {MAX_REQUEST_BYTES} bytes"));
            write_line(&mut write, &protocol::err_line(0, &e)).await?;
            // The rest of the line cannot be framed; drop the connection.
            return Ok(());
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let req: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                // Echo the id back when there is one, so the client can match it.
                let id = serde_json::from_slice::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_u64))
                    .unwrap_or(0);
                let e = WireError::bad_request(format!("malformed request: {e}"));
                write_line(&mut write, &protocol::err_line(id, &e)).await?;
                continue;
            }
        };
        let id = req.id;
        // Long commands report progress while they run; forward it as it comes.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let work = super::handlers::dispatch(&ctl, &req.cmd, &req.args, tx);
        tokio::pin!(work);
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                Some(p) = rx.recv() => {
                    write_line(&mut write, &protocol::progress_line(id, p)).await?;
                }
            }
        };
        while let Ok(p) = rx.try_recv() {
            write_line(&mut write, &protocol::progress_line(id, p)).await?;
        }
        // Whatever the command recorded is on disk before the client hears
        // "done": a `kill -9` after the answer loses nothing it was told about.
        let chain = ctl.kernel.chain().clone();
        let synced = tokio::task::spawn_blocking(move || chain.sync()).await;
        let result = match (result, synced) {
            (Ok(v), Ok(Ok(()))) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Ok(Err(e))) => Err(WireError::new(
                protocol::kind::KERNEL,
                format!("chain sync failed: {e}"),
            )),
            (Ok(_), Err(e)) => Err(WireError::new(
                protocol::kind::KERNEL,
                format!("chain sync panicked: {e}"),
            )),
        };
        let out = match result {
            Ok(v) => protocol::ok_line(id, v),
            Err(e) => protocol::err_line(id, &e),
        };
        write_line(&mut write, &out).await?;
        if req.cmd == "shutdown" {
            // Answer first, then let `weaver run` stop the kernel.
            ctl.shutdown.notify_one();
        }
    }
}

async fn write_line(w: &mut tokio::net::unix::OwnedWriteHalf, s: &str) -> anyhow::Result<()> {
    w.write_all(s.as_bytes()).await?;
    w.write_all(b"\n").await?;
    w.flush().await?;
    Ok(())
}
