//! The validated manifest and install plan as plain Rust types. They mirror
//! `wit/apps.wit` one to one; `lib.rs` converts them for the component
//! export, and host-target unit tests use them directly.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub col: u32,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Diag {
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

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppMeta {
    pub name: String,
    pub version: String,
    pub description: String,
    pub authors: Vec<String>,
    pub license: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ToolPerms {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Ipc {
    All,
    ParentOnly,
    #[default]
    None,
    Named(Vec<String>),
    Topics(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sandbox {
    #[default]
    Strict,
    Granted,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Caps {
    pub tools: ToolPerms,
    pub ipc: Ipc,
    pub sandbox: Sandbox,
    pub chain_append: bool,
    pub spawn: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentLimits {
    pub fuel_per_message: u64,
    pub timeout_ms: u64,
    pub max_memory_bytes: u64,
    pub max_messages: u64,
    pub max_tool_calls: u64,
}

impl Default for AgentLimits {
    /// The kernel's `AgentLimits::default()`, so a partial table means
    /// "the kernel defaults, except these".
    fn default() -> Self {
        AgentLimits {
            fuel_per_message: 100_000_000,
            timeout_ms: 5_000,
            max_memory_bytes: 64 << 20,
            max_messages: 0,
            max_tool_calls: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Restart {
    #[default]
    Never,
    Always,
    OnFailure {
        max_retries: u32,
        backoff_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Worker,
    Coordinator,
    Supervisor,
    System,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub component: String,
    pub role: Role,
    pub auto_start: bool,
    pub capabilities: Caps,
    pub limits: Option<AgentLimits>,
    pub restart: Restart,
    /// JSON object text.
    pub config: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    pub host: String,
    pub guest: String,
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ToolLimits {
    pub fuel: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_memory_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub component: String,
    pub dirs: Vec<DirGrant>,
    pub env: Vec<(String, String)>,
    pub limits: ToolLimits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Component(String),
    Image(String),
    Url(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub kind: ProbeKind,
    pub interval_ms: u64,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub source: Source,
    pub ports: Vec<u16>,
    pub env: Vec<(String, String)>,
    pub health: Option<Health>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Hooks {
    pub on_install: Option<String>,
    pub on_start: Option<String>,
    pub on_stop: Option<String>,
    pub on_remove: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    Dev,
    Staging,
    Prod,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Manifest {
    pub app: AppMeta,
    pub agents: Vec<Agent>,
    pub tools: Vec<Tool>,
    pub services: Vec<Service>,
    pub ceiling: Option<Caps>,
    pub hooks: Hooks,
    pub environment: Option<Env>,
    pub cron: Vec<CronJob>,
}

/// `[[cron]]`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CronJob {
    pub schedule: String,
    pub target: String,
    /// JSON text.
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    VerifyDigests(Vec<String>),
    GateCheck(String),
    CopyBundle,
    Precompile(String),
    RunHook { hook: String, component: String },
    RegisterTool(String),
    RegisterService(String),
    SpawnAgent(String),
    AddCron(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub manifest: Manifest,
    pub steps: Vec<Step>,
}
