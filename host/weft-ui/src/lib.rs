//! The dashboard: a local web page a running kernel serves (`weaver run
//! --ui 127.0.0.1:PORT` or `[ui] listen`), showing processes, apps, the
//! chain, governance decisions and escalations, live over SSE.
//!
//! Everything the page reads or does goes through the units' control
//! requests as the operator, exactly as `weaver` does over the control
//! socket: reads pass the gate, approvals and denials are the same gated
//! actions as `weaver gov approve/deny`. A random token made at boot
//! (printed by `weaver run`, written to `<state>/ui.token`, shown by
//! `weaver ui`) guards every data endpoint ([`auth`]).

pub mod auth;
pub mod control;
mod server;

use std::any::Any;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;
use serde_json::{json, Value};
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{BoxFuture, InitCx, Kernel, KernelError, Subsystem, SubsystemError};

pub use control::cli;

/// The token file, owner-only, in the state dir while the dashboard runs.
pub const TOKEN_FILE: &str = "ui.token";

/// `[ui]` in `weft.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiSection {
    /// Where the dashboard listens, `IP:PORT` (port 0: any free port).
    /// Absent: no dashboard.
    pub listen: Option<String>,
    /// Allow a non-loopback address (the token is then all that guards it,
    /// over plain HTTP).
    pub public: bool,
}

/// The `weaver run` flags that override `[ui]`.
#[derive(Debug, Default, Clone)]
pub struct CliFlags {
    /// `--ui ADDR`.
    pub listen: Option<String>,
    /// `--ui-public`.
    pub public: bool,
}

static CLI: OnceLock<CliFlags> = OnceLock::new();

/// Give this process's dashboard flags (call before booting the kernel).
pub fn set_cli_flags(flags: CliFlags) {
    let _already_set = CLI.set(flags);
}

/// Why a listen address is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenError {
    /// Not `IP:PORT`.
    #[error("`{0}` is not an address (expected IP:PORT, e.g. 127.0.0.1:8080)")]
    Malformed(String),
    /// Not loopback and not explicitly allowed.
    #[error(
        "`{0}` is not a loopback address: the dashboard is served over plain HTTP; \
         pass --ui-public (or `[ui] public = true`) to serve it there anyway"
    )]
    NotLoopback(String),
}

/// Parse and check where the dashboard may listen.
pub fn check_listen(addr: &str, public: bool) -> Result<SocketAddr, ListenError> {
    let a: SocketAddr = addr
        .trim()
        .parse()
        .map_err(|_| ListenError::Malformed(addr.to_string()))?;
    if !a.ip().is_loopback() && !public {
        return Err(ListenError::NotLoopback(addr.to_string()));
    }
    Ok(a)
}

/// A running dashboard.
struct Running {
    addr: SocketAddr,
    token: String,
    token_file: PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The dashboard unit.
#[derive(Default)]
pub struct UiUnit {
    listen: OnceLock<SocketAddr>,
    running: Mutex<Option<Running>>,
}

impl UiUnit {
    /// A dashboard unit (serving only when configured).
    pub fn new() -> Self {
        Self::default()
    }

    /// The page's address with its token, once serving.
    pub fn url(&self) -> Option<String> {
        let r = self.running.lock().unwrap_or_else(|p| p.into_inner());
        r.as_ref()
            .map(|r| format!("http://{}/?token={}", r.addr, r.token))
    }

    /// Where the dashboard listens, once serving.
    pub fn addr(&self) -> Option<SocketAddr> {
        let r = self.running.lock().unwrap_or_else(|p| p.into_inner());
        r.as_ref().map(|r| r.addr)
    }

    fn token_file(&self) -> Option<PathBuf> {
        let r = self.running.lock().unwrap_or_else(|p| p.into_inner());
        r.as_ref().map(|r| r.token_file.clone())
    }

    async fn serve(&self, kernel: &Kernel, at: SocketAddr) -> Result<(), SubsystemError> {
        let err = |what: &str, e: std::io::Error| SubsystemError::new("ui", format!("{what}: {e}"));
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| err(&format!("listening on {at}"), e))?;
        let addr = listener.local_addr().map_err(|e| err("local address", e))?;
        let token = auth::new_token().map_err(|e| err("making the token", e))?;
        let token_file = kernel.state_dir().join(TOKEN_FILE);
        write_private(&token_file, &format!("{token}\n"))
            .map_err(|e| err(&format!("writing {}", token_file.display()), e))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let app = server::router(server::Ctx::new(kernel.clone(), &token, stopped.clone()));
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            let shutdown = async move {
                let _closed_or_stopped = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!("dashboard server: {e}");
            }
        });
        kernel.log(LogLevel::Info, format!("ui: dashboard on http://{addr}/"));
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running {
            addr,
            token,
            token_file,
            stop,
            task,
        });
        Ok(())
    }
}

/// Write `text` to `path`, readable by its owner only (replacing any old file).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl Subsystem for UiUnit {
    fn name(&self) -> &'static str {
        "ui"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let mut section: UiSection = cx
            .section()
            .map_err(|e: KernelError| SubsystemError::new("ui", e))?;
        let flags = CLI.get().cloned().unwrap_or_default();
        let from_flag = flags.listen.is_some();
        if let Some(l) = flags.listen {
            section.listen = Some(l);
        }
        section.public |= flags.public;
        let Some(listen) = section.listen else {
            return Ok(());
        };
        let at = check_listen(&listen, section.public).map_err(|e| {
            let whence = if from_flag { "--ui" } else { "[ui] listen" };
            SubsystemError::new("ui", format!("{whence}: {e}"))
        })?;
        let _first = self.listen.set(at);
        Ok(())
    }

    fn booted<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            match self.listen.get() {
                Some(at) => self.serve(kernel, *at).await,
                None => Ok(()),
            }
        })
    }

    fn shutdown<'a>(&'a self, _kernel: &'a Kernel) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let running = self
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let Some(r) = running else { return };
            let _no_receivers_is_fine = r.stop.send(true);
            let mut task = r.task;
            // Live streams end at their next tick; do not wait on a stuck one.
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
            if let Err(e) = std::fs::remove_file(&r.token_file) {
                tracing::debug!("removing {}: {e}", r.token_file.display());
            }
        })
    }

    fn stop(&self) {
        let r = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = r.as_ref() {
            let _no_receivers_is_fine = r.stop.send(true);
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        &["ui.url"]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["url"]
    }

    fn status(&self) -> Value {
        match self.addr() {
            Some(a) => json!(format!("http://{a}/")),
            None => json!("off"),
        }
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(async move {
            let _req = cx.parse::<control::Request>("ui")?;
            cx.query("ui.url").await?;
            Ok(match (self.url(), self.token_file()) {
                (Some(url), Some(file)) => {
                    json!({ "enabled": true, "url": url, "token_file": file })
                }
                _ => json!({ "enabled": false }),
            })
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn loopback_only_unless_public() {
        assert!(check_listen("127.0.0.1:0", false).is_ok());
        assert!(check_listen("[::1]:8080", false).is_ok());
        assert_eq!(
            check_listen("0.0.0.0:8080", false),
            Err(ListenError::NotLoopback("0.0.0.0:8080".into()))
        );
        assert!(check_listen("0.0.0.0:8080", true).is_ok());
        assert_eq!(
            check_listen("localhost", false),
            Err(ListenError::Malformed("localhost".into()))
        );
    }

    #[test]
    fn token_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(TOKEN_FILE);
        std::fs::write(&p, "old").unwrap();
        write_private(&p, "new\n").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
    }
}
