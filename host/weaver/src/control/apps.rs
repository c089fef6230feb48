//! `app.*` control commands: the kernel's [`weft_apps::AppManager`].

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_apps::{AppError, AppManager, Progress};

use super::handlers::{str_arg, to_value, ProgressTx, Reply};
use super::protocol::{kind, WireError};
use super::server::Ctl;

fn manager(ctl: &Ctl) -> Result<Arc<AppManager>, WireError> {
    ctl.apps.clone().ok_or_else(|| {
        WireError::new(
            kind::KERNEL,
            format!(
                "apps are not available in this kernel: {}",
                ctl.apps_problem.as_deref().unwrap_or("no app manager")
            ),
        )
    })
}

fn app_error(e: AppError) -> WireError {
    let k = match e.kind() {
        "kernel" | "chain" | "io" | "registry" => kind::KERNEL,
        "not-found" => kind::NOT_FOUND,
        "denied" => kind::DENIED,
        _ => kind::FAILED,
    };
    WireError::new(k, e.to_string())
}

/// The bundle path; the client sends it absolute (our cwd is not theirs).
fn bundle(args: &Value) -> Result<PathBuf, WireError> {
    let p = PathBuf::from(str_arg(args, "bundle")?);
    if !p.is_absolute() {
        return Err(WireError::bad_request("`bundle` must be an absolute path"));
    }
    Ok(p)
}

pub async fn dispatch(ctl: &Ctl, cmd: &str, args: &Value, progress: ProgressTx) -> Reply {
    let m = manager(ctl)?;
    let report = move |p: Progress| {
        // The client may be gone; progress is best effort.
        let _ = progress.send(serde_json::to_value(p).unwrap_or(Value::Null));
    };
    match cmd {
        "app.ls" => to_value(m.list()),
        "app.install" => to_value(
            m.install(&bundle(args)?, &report)
                .await
                .map_err(app_error)?,
        ),
        "app.upgrade" => {
            let name = str_arg(args, "name")?;
            to_value(
                m.upgrade(name, &bundle(args)?, &report)
                    .await
                    .map_err(app_error)?,
            )
        }
        "app.start" => to_value(m.start(str_arg(args, "name")?).await.map_err(app_error)?),
        "app.stop" => to_value(m.stop(str_arg(args, "name")?).await.map_err(app_error)?),
        "app.rm" => {
            let name = str_arg(args, "name")?;
            m.remove(name).await.map_err(app_error)?;
            Ok(json!({ "removed": name }))
        }
        other => Err(WireError::new(
            kind::UNKNOWN_COMMAND,
            format!("unknown command `{other}`"),
        )),
    }
}
