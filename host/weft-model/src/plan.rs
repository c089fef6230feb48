//! A checked `weftapp.toml` and the install plan derived from it.
//!
//! These mirror `wit/apps.wit` (interface `app-types`) one to one: the
//! `apps` component builds them and converts them for its export; the host
//! converts the WIT records back and may persist them (serde). Field
//! meanings and defaults are in `docs/weftapp.md`; every default has been
//! applied by the time a plan exists. Agent capabilities and limits are the
//! kernel's own [`Capabilities`] and [`AgentLimits`].

pub use crate::role::{AgentPriority, AgentRole};
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

/// One `[[agents]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// `[A-Za-z0-9._-]`, 1 to 64, unique in the app; runs as `<app>.<id>`.
    pub id: String,
    /// Component path inside the bundle, normalized.
    pub component: String,
    /// Its role.
    pub role: AgentRole,
    /// Its scheduling share.
    #[serde(default)]
    pub priority: AgentPriority,
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
    /// `network`: where its runs may make HTTP requests, as the app.
    #[serde(default)]
    pub network: crate::net::NetCaps,
    /// `limits`.
    pub limits: ToolLimits,
}

/// Where a service comes from: exactly one per service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceSource {
    /// A component path inside the bundle.
    Component(String),
    /// A container image reference, `[registry/]name[:tag][@sha256:<64 hex>]`.
    Image(String),
    /// A bundle path to a `docker save` tarball: locked by BLAKE3 like a
    /// component (it is in the plan's `verify-digests` list) and loaded at
    /// install, so installing needs no registry.
    ImageArchive(String),
    /// An external endpoint.
    Url(String),
}

impl ServiceSource {
    /// Is this a container service (`image` or `image_archive`)?
    pub fn is_container(&self) -> bool {
        matches!(
            self,
            ServiceSource::Image(_) | ServiceSource::ImageArchive(_)
        )
    }
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

/// An HTTP GET probe (`http = { port, path, status }`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProbe {
    /// A container port published in the service's `ports`.
    pub port: u16,
    /// Absolute request path, `/` by default.
    pub path: String,
    /// The status that means healthy, 100 to 599; 200 by default.
    pub status: u16,
}

/// What the health component runs for a container service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// No probe of its own: component and URL services (their own health
    /// check applies).
    #[default]
    None,
    /// Connect over TCP to this published container port.
    Tcp(u16),
    /// An HTTP GET.
    Http(HttpProbe),
    /// Run this argv in the container; healthy when it exits 0.
    Exec(Vec<String>),
}

/// A service's `health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Liveness or readiness.
    pub kind: ProbeKind,
    /// Between probes, in ms.
    pub interval_ms: u64,
    /// Failed probes in a row before it counts as down.
    pub failure_threshold: u32,
    /// Good probes in a row before it counts as up.
    pub success_threshold: u32,
    /// How to probe; [`Probe::None`] for component and URL services.
    pub probe: Probe,
}

/// A container's `pull` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Never pull: the image must be present (loaded from the archive, or
    /// already on the engine). The default for `image_archive`.
    Never,
    /// Pull the reference when the engine lacks it. The default for `image`.
    IfNotPresent,
}

/// A published port, `"HOST:CONTAINER"`. The host address (127.0.0.1
/// unless the environment allows otherwise) and the allowed host port
/// range are the kernel's policy, applied at install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    /// Host port, 1 to 65535, unique in the service.
    pub host: u16,
    /// Container port, 1 to 65535.
    pub container: u16,
}

/// A bind mount, `"HOST:CONTAINER[:ro]"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// Relative to the app's data dir (`.` is the data dir itself); never
    /// absolute, never `..`.
    pub host: String,
    /// Absolute path in the container; not `/`, no `..`, unique.
    pub container: String,
    /// Mounted read-only (`:ro`).
    pub read_only: bool,
}

/// Where `Service` and `ServiceMethod` messages to a container service go:
/// an HTTP POST of the JSON body to this container port and path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCall {
    /// A container port published in the service's `ports`.
    pub port: u16,
    /// Absolute path, `/` by default.
    pub path: String,
}

/// How a container service runs. Weft's security defaults are not fields:
/// never privileged, its own network and PID namespace, no Docker socket,
/// every Linux capability dropped but [`ContainerSpec::cap_add`],
/// `no-new-privileges`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// When to pull the image.
    pub pull: PullPolicy,
    /// argv; empty runs the image's default command.
    pub command: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortMap>,
    /// Bind mounts under the app's data dir.
    pub volumes: Vec<VolumeMount>,
    /// Memory limit in bytes (at least [`MIN_CONTAINER_MEMORY`]); `None`:
    /// no limit of its own.
    pub memory_bytes: Option<u64>,
    /// CPU limit in 10⁻⁹ CPUs (`0.5` CPUs is `500_000_000`); `None`: no
    /// limit of its own.
    pub nano_cpus: Option<u64>,
    /// Weft's restart policy for the container (not Docker's).
    pub restart: RestartPolicy,
    /// Linux capabilities kept, without `CAP_` (`NET_BIND_SERVICE`), each
    /// in [`LINUX_CAPABILITIES`] and none in [`NEVER_CAPABILITIES`]; the
    /// environment must allow each at install.
    pub cap_add: Vec<String>,
    /// Mount the root filesystem read-only.
    pub read_only: bool,
    /// Where calls go; `None`: the service takes no calls.
    pub call: Option<ServiceCall>,
}

/// The smallest container memory limit a manifest may ask for: Docker
/// refuses less than 6 MiB.
pub const MIN_CONTAINER_MEMORY: u64 = 6 << 20;

/// Every Linux capability name, without the `CAP_` prefix.
pub const LINUX_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Capabilities a manifest may never ask for, whatever the environment
/// allows: each is enough to escape the container or take over the host
/// (mounts and namespaces, module loading, raw I/O, reboot, LSM override,
/// eBPF, `open_by_handle_at`).
pub const NEVER_CAPABILITIES: &[&str] = &[
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "DAC_READ_SEARCH",
];

/// One `[[services]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// `[a-z0-9-]`, 1 to 64, unique in the app.
    pub name: String,
    /// Component, image, image archive or URL.
    pub source: ServiceSource,
    /// Its environment, in key order.
    pub env: Vec<EnvVar>,
    /// Its health check, if any.
    pub health: Option<HealthCheck>,
    /// How its container runs: present exactly for `image` and
    /// `image_archive` services.
    pub container: Option<ContainerSpec>,
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
    pub environment: Option<String>,
    /// `[[cron]]`.
    pub cron: Vec<CronJob>,
    /// `[[routes]]` (absent from plans stored before routes existed).
    #[serde(default)]
    pub routes: Vec<crate::net::Route>,
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
    /// Check these files against the lock: every component and image
    /// archive path, sorted, unique.
    VerifyDigests(Vec<String>),
    /// Copy the bundle into the app's directory.
    CopyBundle,
    /// Compile this component (into the compile cache).
    Precompile(String),
    /// Run a hook component.
    RunHook(HookRun),
    /// Make this container service's image present on the engine: load
    /// its `image_archive`, or pull its `image` as its `pull` says. An
    /// install step, so starting needs no registry.
    PrepareImage(ServiceSpec),
    /// Register this tool.
    RegisterTool(ToolSpec),
    /// Register (and for a component or image, run) this service.
    RegisterService(ServiceSpec),
    /// Spawn this agent as `<app>.<id>`.
    SpawnAgent(AgentSpec),
    /// Schedule this cron job, sent to `<app>.<target>`.
    AddCron(CronJob),
    /// Route inbound HTTP requests on a path to `<app>.<agent>`.
    AddRoute(crate::net::Route),
}

/// A checked manifest and the steps of each lifecycle operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPlan {
    /// The manifest, defaults applied.
    pub manifest: Manifest,
    /// Install and upgrade, in order: `verify-digests`, `copy-bundle`,
    /// `precompile`*, `prepare-image`*, `run-hook(on-install)`?.
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
            priority: AgentPriority::High,
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

    #[test]
    fn a_container_service_survives_json() {
        let svc = ServiceSpec {
            name: "web".into(),
            source: ServiceSource::ImageArchive("images/web.tar".into()),
            env: vec![EnvVar {
                key: "MODE".into(),
                value: "x".into(),
            }],
            health: Some(HealthCheck {
                kind: ProbeKind::Readiness,
                interval_ms: 5000,
                failure_threshold: 3,
                success_threshold: 1,
                probe: Probe::Http(HttpProbe {
                    port: 8080,
                    path: "/".into(),
                    status: 200,
                }),
            }),
            container: Some(ContainerSpec {
                pull: PullPolicy::Never,
                command: vec!["httpd".into()],
                ports: vec![PortMap {
                    host: 18080,
                    container: 8080,
                }],
                volumes: vec![VolumeMount {
                    host: "www".into(),
                    container: "/www".into(),
                    read_only: true,
                }],
                memory_bytes: Some(64 << 20),
                nano_cpus: Some(500_000_000),
                restart: RestartPolicy::OnFailure(OnFailure {
                    max_retries: 3,
                    backoff_ms: 500,
                }),
                cap_add: vec!["NET_BIND_SERVICE".into()],
                read_only: false,
                call: Some(ServiceCall {
                    port: 8080,
                    path: "/cgi-bin/svc".into(),
                }),
            }),
        };
        assert!(svc.source.is_container());
        let text = serde_json::to_string(&Step::RegisterService(svc.clone())).unwrap();
        assert!(
            text.contains(r#""source":{"image_archive":"images/web.tar"}"#),
            "{text}"
        );
        assert!(text.contains(r#""pull":"never""#), "{text}");
        assert_eq!(
            serde_json::from_str::<Step>(&text).unwrap(),
            Step::RegisterService(svc)
        );
        for cap in NEVER_CAPABILITIES {
            assert!(LINUX_CAPABILITIES.contains(cap), "{cap}");
        }
    }
}
