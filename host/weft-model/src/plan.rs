//! A checked `weftapp.toml` and the install plan derived from it.
//!
//! These mirror `wit/apps.wit` (interface `app-types`) one to one: the
//! `apps` component builds them and converts them for its export; the host
//! converts the WIT records back and may persist them (serde). Field
//! meanings and defaults are in `docs/weftapp.md`; every default has been
//! applied by the time a plan exists. Agent capabilities and limits are the
//! kernel's own [`Capabilities`] and [`AgentLimits`].

use serde::{Deserialize, Serialize};

use crate::caps::Capabilities;
use crate::limits::AgentLimits;

/// One problem with a manifest (`diagnostic`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// Dotted path of the offending key, e.g. `agents[0].restart`; empty
    /// for syntax errors.
    pub key: String,
    /// What was expected and what was found.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    /// `line:col: key: message` (the host puts the file name in front).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.col, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.line, self.col, self.key, self.message
            )
        }
    }
}

/// `[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMeta {
    /// `[a-z0-9-]`, 1 to 64 characters.
    pub name: String,
    /// A semantic version, e.g. `1.2.0` or `2.0.0-rc.1+build.5`.
    pub version: String,
    /// Free text, `""` when absent.
    pub description: String,
    /// Free text, one per author.
    pub authors: Vec<String>,
    /// An SPDX expression, not checked.
    pub license: Option<String>,
}

/// `restart = { on_failure = { .. } }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnFailure {
    /// Restarts before the agent is given up on.
    pub max_retries: u32,
    /// Wait before each restart, in ms.
    pub backoff_ms: u64,
}

/// An agent's `restart`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Never restarted.
    #[default]
    Never,
    /// Restarted whenever it stops.
    Always,
    /// Restarted after a failure, a bounded number of times.
    OnFailure(OnFailure),
}

/// An agent's `role`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// The default.
    #[default]
    Worker,
    /// Directs workers.
    Coordinator,
    /// Watches other agents.
    Supervisor,
    /// Part of the system.
    System,
}

/// One `[[agents]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// `[A-Za-z0-9._-]`, 1 to 64, unique in the app; runs as `<app>.<id>`.
    pub id: String,
    /// Component path inside the bundle, normalized.
    pub component: String,
    /// Its role.
    pub role: AgentRole,
    /// Spawned when the app starts.
    pub auto_start: bool,
    /// What it may do; `tools.deny` already holds the ceiling's denials.
    pub capabilities: Capabilities,
    /// `None` without a `limits` table: the kernel's defaults apply.
    pub limits: Option<AgentLimits>,
    /// Its restart policy.
    pub restart: RestartPolicy,
    /// The `config` table as JSON object text, for the agent's `init`.
    pub config: String,
}

/// A tool's directory grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    /// Relative to the app's data dir (`.` is the data dir itself).
    pub host: String,
    /// Absolute path the tool sees.
    pub guest: String,
    /// Read-only (the default).
    pub read_only: bool,
}

/// An environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Its name.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A tool's runtime limits; `None` takes the runtime's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolLimits {
    /// Fuel per run.
    pub fuel: Option<u64>,
    /// Wall-clock limit per run, in ms.
    pub timeout_ms: Option<u64>,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: Option<u64>,
}

/// One `[[tools]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// `[a-z0-9-]`, 1 to 64, unique in the app.
    pub name: String,
    /// A tool-world component or a WASI command, inside the bundle.
    pub component: String,
    /// `grants.dirs`.
    pub dirs: Vec<DirGrant>,
    /// `grants.env`, in key order.
    pub env: Vec<EnvVar>,
    /// `limits`.
    pub limits: ToolLimits,
}

/// Where a service comes from: exactly one per service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceSource {
    /// A component path inside the bundle.
    Component(String),
    /// A container image reference.
    Image(String),
    /// An external endpoint.
    Url(String),
}

/// What a health check decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Is it alive?
    Liveness,
    /// Is it ready for work?
    Readiness,
}

/// A service's `health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Liveness or readiness.
    pub kind: ProbeKind,
    /// Between probes, in ms.
    pub interval_ms: u64,
    /// Failed probes in a row before it counts as down.
    pub failure_threshold: u32,
    /// Good probes in a row before it counts as up.
    pub success_threshold: u32,
}

/// One `[[services]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// `[a-z0-9-]`, 1 to 64, unique in the app.
    pub name: String,
    /// Component, image or URL.
    pub source: ServiceSource,
    /// Ports, 1 to 65535, no duplicates.
    pub ports: Vec<u16>,
    /// Its environment, in key order.
    pub env: Vec<EnvVar>,
    /// Its health check, if any.
    pub health: Option<HealthCheck>,
}

/// `[hooks]`: component paths inside the bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Run once at install and upgrade.
    pub on_install: Option<String>,
    /// Run first when the app starts.
    pub on_start: Option<String>,
    /// Run last when the app stops.
    pub on_stop: Option<String>,
    /// Run when the app is removed.
    pub on_remove: Option<String>,
}

/// `[environment] name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Development: unsigned bundles allowed.
    Dev,
    /// Staging.
    Staging,
    /// Production.
    Prod,
}

/// `[[cron]]`: a scheduled message to one of the app's agents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJob {
    /// A 5- or 6-field cron expression, `every <duration>` or
    /// `at <RFC 3339 time>`.
    pub schedule: String,
    /// The id of an agent in `[[agents]]`.
    pub target: String,
    /// The message body as JSON text, `{}` when absent.
    pub payload: String,
}

/// The whole manifest, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `[app]`.
    pub app: AppMeta,
    /// `[[agents]]`, in manifest order.
    pub agents: Vec<AgentSpec>,
    /// `[[tools]]`.
    pub tools: Vec<ToolSpec>,
    /// `[[services]]`.
    pub services: Vec<ServiceSpec>,
    /// `[capabilities]`, the app-wide ceiling; `None` when absent.
    pub ceiling: Option<Capabilities>,
    /// `[hooks]`.
    pub hooks: Hooks,
    /// `[environment]`; `None` when absent.
    pub environment: Option<Environment>,
    /// `[[cron]]`.
    pub cron: Vec<CronJob>,
}

/// A hook to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    /// `on-install`, `on-start`, `on-stop` or `on-remove`.
    pub hook: String,
    /// Its component path.
    pub component: String,
}

/// One thing the host does. Every step goes through the host's gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Check these components (sorted, unique paths) against the lock.
    VerifyDigests(Vec<String>),
    /// Copy the bundle into the app's directory.
    CopyBundle,
    /// Compile this component (into the compile cache).
    Precompile(String),
    /// Run a hook component.
    RunHook(HookRun),
    /// Register this tool.
    RegisterTool(ToolSpec),
    /// Register (and for a component, run) this service.
    RegisterService(ServiceSpec),
    /// Spawn this agent as `<app>.<id>`.
    SpawnAgent(AgentSpec),
    /// Schedule this cron job, sent to `<app>.<target>`.
    AddCron(CronJob),
}

/// A checked manifest and the steps of each lifecycle operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPlan {
    /// The manifest, defaults applied.
    pub manifest: Manifest,
    /// Install and upgrade, in order: `verify-digests`, `copy-bundle`,
    /// `precompile`*, `run-hook(on-install)`?.
    pub install: Vec<Step>,
    /// Start, in order: `run-hook(on-start)`?, `register-tool`*,
    /// `register-service`*, `spawn-agent`* (the `auto_start` agents, in
    /// manifest order), `add-cron`*. Stop undoes these in reverse order,
    /// then runs [`InstallPlan::stop`].
    pub start: Vec<Step>,
    /// Stop, after the start steps are undone: `run-hook(on-stop)`?.
    pub stop: Vec<Step>,
    /// Remove, after stopping: `run-hook(on-remove)`?.
    pub remove: Vec<Step>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_survives_json() {
        let agent = AgentSpec {
            id: "a".into(),
            component: "a.wasm".into(),
            role: AgentRole::Coordinator,
            auto_start: true,
            capabilities: Capabilities::trusted(),
            limits: Some(AgentLimits::default()),
            restart: RestartPolicy::OnFailure(OnFailure {
                max_retries: 3,
                backoff_ms: 100,
            }),
            config: "{}".into(),
        };
        let plan = InstallPlan {
            manifest: Manifest {
                agents: vec![agent.clone()],
                ..Manifest::default()
            },
            install: vec![Step::VerifyDigests(vec!["a.wasm".into()]), Step::CopyBundle],
            start: vec![Step::SpawnAgent(agent)],
            stop: vec![],
            remove: vec![],
        };
        let text = serde_json::to_string(&plan).unwrap();
        assert!(
            text.contains(r#"{"verify_digests":["a.wasm"]},"copy_bundle""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<InstallPlan>(&text).unwrap(), plan);
    }
}
