//! `weaver logs APP/SERVICE`: a container service's output, streamed from
//! the engine through the control socket (a gated query).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, FromArgMatches};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::CliCommand;
use weft_kernel::control::{kind, ControlCx, ControlError, ControlReply};

use super::Inner;
use crate::{LabelFilter, OutputStream};

/// The containers unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// A service's container output.
    Logs {
        /// The app.
        app: String,
        /// The service.
        service: String,
        /// Keep streaming new output.
        #[serde(default)]
        follow: bool,
        /// Only the last N lines of the past.
        #[serde(default)]
        tail: Option<usize>,
    },
}

/// Serve one request.
pub(crate) async fn serve(inner: Arc<Inner>, cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("containers")? {
        Request::Logs {
            app,
            service,
            follow,
            tail,
        } => {
            cx.query("container.logs").await?;
            let engine = inner
                .engine()
                .await
                .map_err(|e| ControlError::new(kind::KERNEL, e.to_string()))?;
            // The running service's container, else the newest one labelled
            // with it (a service that failed to start still has its output).
            let id = match inner.service(&app, &service) {
                Some(s) => s.id.clone(),
                None => engine
                    .list_by_labels(
                        &LabelFilter::kernel(inner.kernel_id())
                            .app(&app)
                            .service(&service),
                    )
                    .await
                    .map_err(|e| ControlError::new(kind::KERNEL, e.to_string()))?
                    .pop()
                    .map(|c| c.id)
                    .ok_or_else(|| {
                        ControlError::new(
                            kind::NOT_FOUND,
                            format!("no container for service `{service}` of app `{app}`"),
                        )
                    })?,
            };
            let Some(tx) = cx.progress_sender() else {
                return Err(ControlError::kernel("logs need a streaming connection"));
            };
            let mut lines = engine.logs(&id, follow, tail);
            let mut n = 0u64;
            while let Some(item) = lines.next().await {
                let line = item.map_err(|e| ControlError::new(kind::KERNEL, e.to_string()))?;
                let stream = match line.stream {
                    OutputStream::Stdout => "stdout",
                    OutputStream::Stderr => "stderr",
                };
                if tx
                    .send(json!({ "stream": stream, "line": line.line }))
                    .is_err()
                {
                    break; // The client is gone.
                }
                n += 1;
            }
            Ok(json!({ "container": id.as_str(), "lines": n }))
        }
    }
}

#[derive(Args)]
struct LogsArgs {
    /// `APP/SERVICE`: a container service of a running (or failed) app.
    target: String,
    /// Keep printing new output until the container stops (Ctrl-C to quit).
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines of the past.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
}

/// `weaver logs APP/SERVICE`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            LogsArgs::augment_args(clap::Command::new("logs"))
                .about("Print a container service's output (stdout and stderr)")
        },
        run: |cx, m| {
            Box::pin(async move {
                let a = LogsArgs::from_arg_matches(m)?;
                let Some((app, service)) = a.target.split_once('/') else {
                    eprintln!(
                        "weaver: expected APP/SERVICE (e.g. `weaver logs web/db`), found `{}`",
                        a.target
                    );
                    return Ok(ExitCode::from(2));
                };
                let req = Request::Logs {
                    app: app.into(),
                    service: service.into(),
                    follow: a.follow,
                    tail: a.tail,
                };
                let printed = weft_kernel::control::cli::ask_with_progress(
                    cx.state,
                    "containers",
                    &req,
                    |p: &Value| {
                        let line = p["line"].as_str().unwrap_or_default();
                        if p["stream"] == "stderr" {
                            eprintln!("{line}");
                        } else {
                            println!("{line}");
                        }
                    },
                )
                .await;
                Ok::<ExitCode, anyhow::Error>(match printed {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(code) => code,
                })
            })
        },
    }
}
