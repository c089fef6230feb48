//! `/apps/<name>` in the resource tree (version, state, environment,
//! signer) and the app's environment in the kernel, kept current with the
//! registry by the action that changed it: every change is a `tree.*`
//! event on the chain.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};
use weft_tree::Metadata;

use crate::manager::AppManager;
use crate::registry::AppInfo;

fn metadata(info: &AppInfo) -> Metadata {
    let mut m = Metadata::new();
    m.insert("version".into(), json!(info.version));
    m.insert(
        "state".into(),
        serde_json::to_value(info.state).unwrap_or(Value::Null),
    );
    m.insert("environment".into(), json!(info.environment));
    m.insert("signer".into(), json!(info.signer));
    m
}

/// Bring `/apps/<name>` and the app's environment in line with the
/// registry (the app removed: both go).
pub(crate) fn sync(cx: &mut ActCx<'_>, m: &AppManager, name: &str) -> KernelResult<()> {
    let path = format!("/apps/{name}");
    let Some(info) = m.get(name) else {
        cx.clear_app_environment(name);
        if cx.tree().get(&path).is_some() {
            cx.tree().remove_recursive(&path)?;
        }
        return Ok(());
    };
    cx.set_app_environment(name, &info.environment)?;
    cx.tree().upsert(&path, metadata(&info))?;
    Ok(())
}

/// `app.sync`: at boot, every installed app's environment and tree node
/// (nodes of apps no longer installed go). Only the kernel does this.
pub(crate) struct Sync {
    manager: Arc<AppManager>,
}

impl Sync {
    pub(crate) fn new(manager: Arc<AppManager>) -> Self {
        Sync { manager }
    }
}

impl Action for Sync {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("app.sync")
    }

    fn gate_context(&self) -> Value {
        json!({})
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::Kernel => Ok(()),
            _ => Err(KernelError::Denied(
                "only the kernel syncs apps at boot".into(),
            )),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let mut names: Vec<String> = self.manager.list().into_iter().map(|a| a.name).collect();
        if let Ok(nodes) = cx.tree().list("/apps") {
            for n in nodes {
                if n.path.matches('/').count() == 2 && !names.contains(&n.name) {
                    names.push(n.name);
                }
            }
        }
        let mut failed = Vec::new();
        for name in names {
            // One app's environment gone from weft.toml does not stop the
            // others: it fails when it starts, saying why.
            if let Err(e) = sync(cx, &self.manager, &name) {
                failed.push(format!("{name}: {e}"));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(KernelError::Invalid(failed.join("; ")))
        }
    }
}
