//! Plan records to the kernel's and runtime's own types where they differ
//! (capabilities and agent limits are the same type on both sides).

use std::path::Path;
use std::time::Duration;

use weft_kernel::RestartPolicy;
use weft_model::plan as m;
use weft_runtime::{DirGrant, Grants, Limits};

/// An agent's restart policy, as the supervisor takes it.
pub fn restart(r: &m::RestartPolicy) -> RestartPolicy {
    match r {
        m::RestartPolicy::Never => RestartPolicy::Never,
        m::RestartPolicy::Always => RestartPolicy::Always,
        m::RestartPolicy::OnFailure(o) => RestartPolicy::OnFailure {
            max_retries: o.max_retries,
            backoff: Duration::from_millis(o.backoff_ms),
        },
    }
}

/// An agent's `config`, which the checker produced as a JSON object.
pub fn config(a: &m::AgentSpec) -> serde_json::Value {
    serde_json::from_str(&a.config).unwrap_or_else(|_| serde_json::json!({}))
}

/// A tool's runtime limits: the manifest's values over `base`.
pub fn tool_limits(l: &m::ToolLimits, base: &Limits) -> Limits {
    Limits {
        fuel: l.fuel.unwrap_or(base.fuel),
        timeout: l.timeout_ms.map_or(base.timeout, Duration::from_millis),
        max_memory_bytes: l.max_memory_bytes.map_or(base.max_memory_bytes, |m| {
            usize::try_from(m).unwrap_or(usize::MAX)
        }),
        ..base.clone()
    }
}

/// A tool's WASI grants, host dirs resolved under the app's `data_dir`
/// (the checker has already refused absolute paths and `..`).
pub fn tool_grants(t: &m::ToolSpec, data_dir: &Path) -> Grants {
    Grants {
        dirs: t
            .dirs
            .iter()
            .map(|d| DirGrant {
                host: data_dir.join(&d.host),
                guest: d.guest.clone(),
                read_only: d.read_only,
            })
            .collect(),
        env: t
            .env
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
        ..Grants::default()
    }
}
