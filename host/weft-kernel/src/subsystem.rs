//! [`Subsystem`]: a pluggable part of the kernel, after Spin's factors.
//!
//! A subsystem is one folder with one registration: its `weft.toml`
//! section, the host interfaces it links into the agent world (once, at
//! boot), what it checks and does for each app (its plan steps), the state
//! it gives each agent instance, the message built-ins it answers, and its
//! control commands. The kernel knows none by name: it calls them through
//! this trait, in registration order. The kernel's own host interfaces
//! (IPC, tools, chain appends) are built-in subsystems of the same shape.
//! `docs/architecture.md` walks through adding one.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use weft_gate::GateBackend;
use weft_runtime::Runtime;

use weft_model::plan::Step;

use crate::act::{AgentPrincipal, AppPrincipal, Principal};
use crate::agent::AgentLinker;
use crate::console::{BootPhase, LogLevel};
use crate::control::{ControlCx, ControlError, ControlReply};
use crate::error::{KernelError, KernelResult};
use crate::ipc::Payload;
use crate::shared::Shared;
use crate::Kernel;

/// A boxed future, for the object-safe methods of [`Subsystem`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a subsystem could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{subsystem}: {message}")]
pub struct SubsystemError {
    /// The subsystem's name.
    pub subsystem: &'static str,
    /// What went wrong.
    pub message: String,
}

impl SubsystemError {
    /// A failure of `subsystem`.
    pub fn new(subsystem: &'static str, message: impl std::fmt::Display) -> Self {
        SubsystemError {
            subsystem,
            message: message.to_string(),
        }
    }
}

/// One pluggable unit of the kernel. Every method but [`Subsystem::name`]
/// has a default that does nothing, so a unit implements only what it has.
pub trait Subsystem: Send + Sync + 'static {
    /// Unique name: its `weft.toml` section, its control unit, the source of
    /// the notes it records.
    fn name(&self) -> &'static str;

    /// Link host interfaces into the agent world's linker. Called once,
    /// before the kernel exists.
    fn link(&self, _linker: &mut AgentLinker) -> KernelResult<()> {
        Ok(())
    }

    /// Boot-time setup: read its config section, load its components,
    /// install gate extensions. The kernel is not running yet.
    fn init(&self, _cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        Ok(())
    }

    /// The kernel is running: start drivers, restore state (boot waits
    /// for it, so what a subsystem restores is there when boot returns).
    fn start<'a>(&'a self, _kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async { Ok(()) })
    }

    /// The kernel is about to shut down (still Running, so still
    /// recording): take down what should not outlive it (containers),
    /// through the chokepoint. Called last registered first, before
    /// [`Subsystem::stop`].
    fn shutdown<'a>(&'a self, _kernel: &'a Kernel) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// The kernel is shutting down: stop drivers.
    fn stop(&self) {}

    /// Every gate action this unit's actions and queries ask for (patterns
    /// allowed: `tool.exec.*`). The kernel lists them all
    /// ([`crate::Kernel::action_kinds`]); a test walks each one.
    fn actions(&self) -> &'static [&'static str] {
        &[]
    }

    /// The `op`s of this unit's control requests.
    fn control_ops(&self) -> &'static [&'static str] {
        &[]
    }

    /// Gate actions apps may perform through this unit (added to the
    /// capability rule of every `app:*` principal at boot).
    fn app_actions(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether this subsystem carries out `step` of an app's plan. Checked
    /// at install, so an app that needs a missing subsystem is refused
    /// before anything is copied.
    fn claims_step(&self, _step: &Step) -> bool {
        false
    }

    /// Carry out `step` (one it claims) as `app`, through the chokepoint.
    fn app_step<'a>(&'a self, _cx: AppStepCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async { Err(KernelError::Invalid("step not claimed".into())) })
    }

    /// Let go of what this subsystem holds for an app (its jobs, its
    /// containers), as [`AppClearCx::reason`] says: before the app starts
    /// (a crash may have left things behind; a unit may keep what the
    /// start will take over), when it stops, when it is removed. Through
    /// the chokepoint.
    fn app_clear<'a>(&'a self, _cx: AppClearCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Every start step of the app succeeded: drop what a crash left
    /// behind that this start did not take over.
    fn app_started<'a>(&'a self, _cx: AppClearCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// What is wrong with a running app in this subsystem (a container
    /// that gave up restarting, with its exit code): the app shows as
    /// Degraded with these.
    fn app_problems(&self, _app: &str) -> Vec<String> {
        Vec::new()
    }

    /// Add what this subsystem allows a manifest to the policy the apps
    /// checker applies (a container engine and its limits).
    fn check_policy(&self, _policy: &mut weft_model::policy::CheckPolicy) {}

    /// Every subsystem has started (and the apps unit has resumed the
    /// apps that were running): sweep what no running app owns.
    fn booted<'a>(&'a self, _kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async { Ok(()) })
    }

    /// Rows this subsystem adds to `weaver ps` (each a JSON object with a
    /// `kind`, a `name`, a `state` and an `owner`).
    fn ps_rows(&self) -> Vec<Value> {
        Vec::new()
    }

    /// Per-agent state, put into the agent's store extensions when an
    /// instance is created (after `link`'s host functions read it).
    fn prepare(&self, _agent: &AgentPrincipal, _ext: &mut Extensions) -> KernelResult<()> {
        Ok(())
    }

    /// Host interfaces for tools and WASI commands (added to the runtime's
    /// tool linker once, at boot; see [`weft_runtime::Runtime::link_tools`]).
    fn tool_imports(&self) -> Option<weft_runtime::LinkTools> {
        None
    }

    /// Per-run state for [`Subsystem::tool_imports`], put into the tool's
    /// store before each run.
    fn prepare_tool(&self, _run: &ToolRun<'_>, _ext: &mut Extensions) -> KernelResult<()> {
        Ok(())
    }

    /// Message built-ins it answers (`{"cmd": NAME, ...}` handled by the
    /// host before the receiving agent's guest sees the message).
    fn builtins(&self) -> &'static [&'static str] {
        &[]
    }

    /// Answer one of [`Subsystem::builtins`].
    fn builtin<'a>(&'a self, cx: BuiltinCx<'a>) -> BoxFuture<'a, KernelResult<Payload>> {
        let cmd = cx.cmd.to_string();
        Box::pin(async move { Err(KernelError::NotFound(format!("no built-in `{cmd}`"))) })
    }

    /// Serve a control request addressed to this unit (as `cx.who`, the
    /// operator for the control socket).
    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        let name = self.name();
        Box::pin(async move { Err(ControlError::unknown(name, cx.op())) })
    }

    /// A line of status for `weaver kernel status`.
    fn status(&self) -> Value {
        Value::Null
    }

    /// For typed access (`Kernel::subsystem::<T>()`).
    fn as_any(&self) -> &dyn Any;
}

/// One run of a registered tool, for [`Subsystem::prepare_tool`].
pub struct ToolRun<'a> {
    /// The kernel, for what the tool's host calls do as actions.
    pub kernel: &'a Kernel,
    /// The tool.
    pub tool: &'a crate::tools::ToolEntry,
    /// Who registered it (the app for an app's tool): what its host calls
    /// act as.
    pub registrar: &'a Principal,
    /// Who asked for the run.
    pub caller: &'a Principal,
}

/// What [`Subsystem::init`] may use.
pub struct InitCx<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) name: &'static str,
}

impl InitCx<'_> {
    /// This subsystem's `weft.toml` section, parsed into `T` (default when
    /// absent). Errors name the file, line and column.
    pub fn section<T: DeserializeOwned + Default>(&self) -> KernelResult<T> {
        self.shared.config.section(self.name)
    }

    /// The runtime, to load and run this subsystem's own components.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// The kernel's state dir (this subsystem keeps its files under it).
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }

    /// The `weft.toml` this kernel was configured from, if any (relative
    /// paths in a section are relative to its directory).
    pub fn config_path(&self) -> Option<&Path> {
        self.shared.config.path()
    }

    /// The environment the kernel runs in (`dev`, `staging` or `prod`).
    pub fn environment(&self) -> &str {
        &self.shared.config.kernel.environment
    }

    /// The kernel's environments.
    pub fn environments(&self) -> &crate::environment::Environments {
        &self.shared.environments
    }

    /// Install (or replace) the gate's governance backend.
    pub fn set_governance(&self, gov: Arc<dyn GateBackend>) {
        self.shared.gate.set_governance(Some(gov));
    }

    /// Record a boot-time fact (gated as the kernel, like every note).
    pub fn note<T: Serialize + ?Sized>(&self, kind: &str, payload: &T) -> KernelResult<u64> {
        self.shared.note(self.name, kind, payload)
    }

    /// A line in the kernel log.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.shared.log.push(
            BootPhase::Services,
            level,
            format!("{}: {}", self.name, message.into()),
        );
    }
}

/// One plan step for a subsystem to carry out.
pub struct AppStepCx<'a> {
    /// The kernel.
    pub kernel: &'a Kernel,
    /// The app, as the principal the step acts as.
    pub app: &'a Principal,
    /// The app's version the step belongs to.
    pub version: &'a str,
    /// Where that version is installed (its bundle files, digest-checked
    /// at install).
    pub dir: &'a Path,
    /// The app's data dir (kept across versions).
    pub data_dir: &'a Path,
    /// The BLAKE3 digest of each bundle file, as verified at install (a
    /// file used later is checked against it again).
    pub digests: &'a std::collections::BTreeMap<String, String>,
    /// The step.
    pub step: &'a Step,
}

impl AppStepCx<'_> {
    /// The app's name.
    pub fn app_name(&self) -> &str {
        self.app
            .as_app()
            .map(AppPrincipal::name)
            .unwrap_or_default()
    }

    /// Load bundle file `rel` as a component, its BLAKE3 checked again
    /// against the lock verified at install (a file changed since is
    /// refused).
    pub fn load_component(&self, rel: &str) -> KernelResult<weft_runtime::LoadedComponent> {
        let path = self.dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|source| KernelError::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
        let actual = blake3::hash(&bytes).to_hex().to_string();
        let expected = self.digests.get(rel).map(String::as_str).unwrap_or("");
        if actual != expected {
            return Err(KernelError::Denied(format!(
                "`{rel}` does not match its bundle's lock (expected BLAKE3 {expected}, found \
                 {actual}): changed after install"
            )));
        }
        self.kernel.load_component_bytes(&bytes)
    }
}

/// Why [`Subsystem::app_clear`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearReason {
    /// The app's `version` is about to start.
    Start,
    /// The app is stopping.
    Stop,
    /// The app is being removed (after it stopped).
    Remove,
}

/// An app a subsystem is asked to let go of (or to sweep after a start).
pub struct AppClearCx<'a> {
    /// The kernel.
    pub kernel: &'a Kernel,
    /// The app, as the principal it acts as.
    pub app: &'a Principal,
    /// Its version (the one starting, running or removed).
    pub version: &'a str,
    /// Why.
    pub reason: ClearReason,
}

impl AppClearCx<'_> {
    /// The app's name.
    pub fn app_name(&self) -> &str {
        self.app
            .as_app()
            .map(AppPrincipal::name)
            .unwrap_or_default()
    }
}

/// A built-in request: who sent it, which agent received it, and the JSON
/// object of the message.
pub struct BuiltinCx<'a> {
    /// The kernel.
    pub kernel: Kernel,
    /// The built-in's name (the message's `cmd`).
    pub cmd: &'a str,
    /// Who sent the message, with their authority.
    pub sender: &'a Principal,
    /// The agent that received it: the built-in acts with the sender's
    /// authority and the receiver's (both must allow it).
    pub receiver: &'a Principal,
    /// The message's JSON object.
    pub request: &'a Value,
}

pub use weft_runtime::Extensions;

/// The registered subsystems, in registration order, with the built-in
/// index.
pub(crate) struct Units {
    list: Vec<Arc<dyn Subsystem>>,
    builtins: HashMap<&'static str, usize>,
}

impl Units {
    /// Index `list`; two units with one name, or one built-in claimed
    /// twice, is a configuration error.
    pub fn new(list: Vec<Arc<dyn Subsystem>>) -> KernelResult<Self> {
        let mut builtins = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (i, u) in list.iter().enumerate() {
            if !names.insert(u.name()) {
                return Err(KernelError::Invalid(format!(
                    "two subsystems are named `{}`",
                    u.name()
                )));
            }
            for b in u.builtins() {
                if builtins.insert(*b, i).is_some() {
                    return Err(KernelError::Invalid(format!(
                        "built-in `{b}` is claimed twice (`{}`)",
                        u.name()
                    )));
                }
            }
        }
        Ok(Units { list, builtins })
    }

    pub fn empty() -> Self {
        Units {
            list: Vec::new(),
            builtins: HashMap::new(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Subsystem>> {
        self.list.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Subsystem>> {
        self.list.iter().find(|u| u.name() == name)
    }

    pub fn for_builtin(&self, cmd: &str) -> Option<&Arc<dyn Subsystem>> {
        self.builtins.get(cmd).map(|i| &self.list[*i])
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|u| u.name()).collect()
    }
}
