//! [`Kernel`]: boot, the chokepoint ([`Kernel::act`]), read-only views, and
//! shutdown.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use serde_json::json;
use weft_chain::{ChainConfig, ChainManager, SigningKeyFile};
use weft_gate::{CapabilityGate, CapabilityRule, ChainedGate, GateBackend, GateDecision};
use weft_runtime::{LoadedComponent, PoolConfig, Preemption, Runtime, RuntimeConfig};
use weft_tree::TreeManager;

use crate::act::{Action, Principal};
use crate::agent::{bindings, Agents};
use crate::chain::ChainView;
use crate::config::KernelConfig;
use crate::console::{BootEvent, BootLog, BootPhase, LogLevel};
use crate::error::{KernelError, KernelResult};
use crate::gate::{GateStack, LayeredGate};
use crate::ipc::service::ServiceEntry;
use crate::ipc::Ipc;
use crate::process::{Pid, ProcessInfo, ProcessTable};
use crate::shared::Shared;
use crate::subsystem::{InitCx, Subsystem, Units};
use crate::tools::registry::ToolRegistry;
use crate::tools::ToolListing;

/// Kernel lifecycle. Only forward transitions are legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KernelState {
    /// Opening the chain, linking, initialising subsystems.
    Booting,
    /// Serving actions.
    Running,
    /// Stopping agents and subsystems.
    ShuttingDown,
    /// The chain is closed.
    Halted,
}

impl KernelState {
    fn can_become(self, to: KernelState) -> bool {
        use KernelState::*;
        matches!(
            (self, to),
            (Booting, Running)
                | (Booting, Halted)
                | (Running, ShuttingDown)
                | (ShuttingDown, Halted)
        )
    }
}

/// A running kernel. Cheap to clone: every clone is the same kernel.
#[derive(Clone)]
pub struct Kernel {
    shared: Arc<Shared>,
}

/// Counts for `kernel status` and leak checks.
#[derive(Clone, Debug, Serialize)]
pub struct KernelStats {
    /// Lifecycle state.
    pub state: KernelState,
    /// Rows in the process table.
    pub processes: usize,
    /// Agent tasks alive.
    pub live_tasks: usize,
    /// Agent stores alive.
    pub live_stores: usize,
    /// Registered services.
    pub services: usize,
    /// Registered tools.
    pub tools: usize,
    /// Topics with a subscriber.
    pub topics: usize,
    /// Records nobody could be told were lost (see `docs/kernel.md`).
    pub lost_records: u64,
    /// The chain's status.
    pub chain: weft_chain::ChainStatus,
}

/// The gate actions every app principal (`app:<name>`) may ask for; what
/// it may do them to is checked in-process (its own names, its ceiling).
const APP_ACTIONS: &[&str] = &[
    "agent.spawn",
    "agent.stop",
    "agent.restart",
    "tool.register",
    "tool.unregister",
    "service.register",
    "service.unregister",
    "ipc.send",
];

impl Kernel {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Kernel { shared }
    }

    /// Boot with the kernel's own units only.
    pub async fn boot(config: KernelConfig, state_dir: &Path) -> KernelResult<Kernel> {
        Self::boot_with(config, state_dir, Vec::new()).await
    }

    /// Boot on `state_dir` with `subsystems` (in this order, after the
    /// built-in ones): open (and verify) the chain, restore the tree, set up
    /// the gate and the runtime, link and initialise every subsystem, then
    /// go Running and start them.
    pub async fn boot_with(
        config: KernelConfig,
        state_dir: &Path,
        subsystems: Vec<Arc<dyn Subsystem>>,
    ) -> KernelResult<Kernel> {
        let log = BootLog::new(config.kernel.log_capacity);
        log.push(
            BootPhase::Init,
            LogLevel::Info,
            format!("booting on {}", state_dir.display()),
        );
        let mut units: Vec<Arc<dyn Subsystem>> = vec![
            Arc::new(crate::status::KernelUnit),
            Arc::new(crate::agent::control::AgentsUnit),
            Arc::new(crate::ipc::IpcUnit),
            Arc::new(crate::tools::ToolsUnit),
            Arc::new(crate::chain::ChainUnit),
        ];
        units.extend(subsystems);
        let units = Units::new(units)?;
        config.check_sections(&units.names())?;

        let io = |what: &str, p: &Path| {
            let ctx = format!("{what} {}", p.display());
            move |source| KernelError::Io {
                context: ctx,
                source,
            }
        };
        let chain_dir = state_dir.join("chain");
        let cache_dir = config
            .kernel
            .cache_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("cache"));
        for d in [state_dir, &chain_dir] {
            std::fs::create_dir_all(d).map_err(io("cannot create", d))?;
        }

        let key = SigningKeyFile::load_or_create(chain_dir.join(weft_chain::KEY_FILE))?;
        let (chain, report) = ChainManager::open(
            &chain_dir,
            ChainConfig {
                chain_id: config.chain.chain_id,
                signing_key: Some(key.signing_key().clone()),
                flush_interval: Duration::from_millis(config.chain.flush_interval_ms),
                max_segment_bytes: config.chain.segment_mib << 20,
                keep: config.chain.keep.clone(),
                archive_dir: config.chain.archive.clone(),
                ..ChainConfig::default()
            },
        )?;
        let chain = Arc::new(chain);
        if report.truncated_bytes > 0 {
            log.push(
                BootPhase::Init,
                LogLevel::Warn,
                format!(
                    "chain: truncated a torn tail of {} bytes ({})",
                    report.truncated_bytes,
                    report.torn_reason.clone().unwrap_or_default()
                ),
            );
        }
        log.push(
            BootPhase::Init,
            LogLevel::Info,
            format!(
                "chain: {} events in {} segments, resumed from the signed head of size {} ({} events replayed); public key {}",
                report.events,
                report.segments,
                report.resumed_from,
                report.replayed_events,
                weft_chain::public_key_hex(&chain.public_key())
            ),
        );
        if config.chain.checkpoint_every.is_some() || config.chain.sign_every_decision.is_some() {
            log.push(
                BootPhase::Init,
                LogLevel::Warn,
                "chain: `checkpoint_every` and `sign_every_decision` are ignored since chain format 2 (a signed tree head at every commit proves every event)",
            );
        }

        let tree = if report.created {
            let t = TreeManager::new(chain.clone());
            t.bootstrap()?;
            t
        } else {
            TreeManager::restore(chain.clone())?
        };
        // Agents and services do not survive a restart (apps register theirs
        // again as they resume); drop what a crash left behind.
        for root in ["/kernel/agents", "/kernel/services"] {
            for node in tree.list(root).unwrap_or_default() {
                if node.path != root && tree.get(&node.path).is_some() {
                    tree.remove_recursive(&node.path)?;
                }
            }
        }
        let environments =
            crate::environment::Environments::new(&config.kernel.environment, &config.environments);
        environments.sync_tree(&tree)?;

        let r = &config.runtime;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir),
            preemption: match r.preemption {
                crate::config::PreemptionMode::Yields => Preemption::Yields,
                crate::config::PreemptionMode::Epochs => Preemption::Epochs {
                    tick: Duration::from_millis(r.epoch_tick_ms),
                },
            },
            fuel_yield_interval: r.fuel_yield_interval,
            pool: PoolConfig {
                total_component_instances: r.pool_instances,
                total_core_instances: r.pool_instances * 4,
                // Each memory slot reserves 4 GiB of address space (so wasm
                // needs no bounds checks); most instances have one memory.
                total_memories: r.pool_instances + r.pool_instances / 4,
                total_tables: r.pool_instances * 4,
                total_stacks: r.pool_instances,
                max_memory_bytes: (r.pool_max_memory_mib as usize) << 20,
                keep_resident_bytes: (r.keep_resident_kib as usize) << 10,
                ..PoolConfig::default()
            },
            ..RuntimeConfig::default()
        })?;
        let mut linker = runtime.linker()?;
        // The kernel's own interfaces; subsystems link theirs (e.g. `ecc`) below.
        {
            use bindings::weft::kernel::{ipc, kernel as syscalls, types};
            use wasmtime::component::HasSelf;
            let failed = |e: wasmtime::Error| {
                KernelError::Failed(format!("cannot link agent syscalls: {e:#}"))
            };
            types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(failed)?;
            ipc::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(failed)?;
            syscalls::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(failed)?;
        }
        for u in units.iter() {
            u.link(&mut linker)?;
            if let Some(link) = u.tool_imports() {
                runtime.link_tools(u.name(), link);
            }
        }
        if units.get("ecc").is_none() {
            // Agents import `ecc`; without the unit they get a typed error.
            crate::agent::no_ecc::link(&mut linker)?;
        }
        if units.get("apps").is_none() {
            crate::agent::no_supervisor::link(&mut linker)?;
        }

        let capability = CapabilityGate::new();
        let bad = |e: weft_gate::GateError| KernelError::Invalid(e.to_string());
        capability.allow("kernel", &["**"]).map_err(bad)?;
        capability
            .add_rule(CapabilityRule {
                agent: "operator".into(),
                allow: config.operator.allow.clone(),
                deny: config.operator.deny.clone(),
            })
            .map_err(bad)?;
        let mut app_actions: Vec<&str> = APP_ACTIONS.to_vec();
        for u in units.iter() {
            app_actions.extend(u.app_actions());
        }
        capability.allow("app:*", &app_actions).map_err(bad)?;
        let layered = Arc::new(LayeredGate::new(capability));
        let chained = ChainedGate::new(layered.clone() as Arc<dyn GateBackend>, chain.clone());
        log.push(
            BootPhase::Services,
            LogLevel::Info,
            "gate: capability (deny by default), no governance yet",
        );
        log.push(
            BootPhase::Network,
            LogLevel::Info,
            "network: none configured",
        );

        let escalations =
            crate::escalation::Escalations::restore(config.escalation.clone(), &chain)?;
        let shared = Arc::new(Shared {
            environments,
            ipc: Ipc::new(config.ipc.inbox_capacity),
            agents: Agents {
                table: ProcessTable::new(config.kernel.max_processes),
                linker,
                pres: Mutex::default(),
                controls: DashMap::new(),
                tasks: DashMap::new(),
                principals: DashMap::new(),
                live: Default::default(),
            },
            config,
            state_dir: state_dir.to_path_buf(),
            state: RwLock::new(KernelState::Booting),
            log,
            runtime,
            tools: ToolRegistry::default(),
            chain,
            tree,
            gate: GateStack::new(layered, chained),
            escalations,
            units: OnceLock::new(),
            lost_records: Default::default(),
            stop_requested: Default::default(),
            stop: Default::default(),
        });
        if shared.units.set(units).is_err() {
            return Err(KernelError::Failed("subsystems registered twice".into()));
        }
        let kernel = Kernel { shared };
        for u in kernel.shared.units().iter() {
            let cx = InitCx {
                shared: &kernel.shared,
                name: u.name(),
            };
            u.init(&cx)
                .map_err(|e| KernelError::Failed(format!("subsystem {e}")))?;
        }
        kernel.transition(KernelState::Running)?;
        kernel
            .shared
            .note("kernel", "kernel.boot", &json!({ "state_dir": state_dir }))?;
        let units: Vec<_> = kernel.shared.units().iter().cloned().collect();
        for u in &units {
            u.start(&kernel)
                .await
                .map_err(|e| KernelError::Failed(format!("subsystem {e}")))?;
        }
        for u in &units {
            u.booted(&kernel)
                .await
                .map_err(|e| KernelError::Failed(format!("subsystem {e}")))?;
        }
        kernel
            .shared
            .log
            .push(BootPhase::Ready, LogLevel::Info, "kernel running");
        Ok(kernel)
    }

    fn transition(&self, to: KernelState) -> KernelResult<()> {
        let mut s = self.shared.state.write().unwrap_or_else(|p| p.into_inner());
        if !s.can_become(to) {
            return Err(KernelError::IllegalKernelTransition { from: *s, to });
        }
        *s = to;
        Ok(())
    }

    /// Where the kernel is in its lifecycle.
    pub fn state(&self) -> KernelState {
        self.shared.kernel_state()
    }

    /// Stop the subsystems (last registered first), every agent (children
    /// before parents), record the shutdown, write the final checkpoint and
    /// halt.
    pub async fn shutdown(&self) -> KernelResult<()> {
        let units: Vec<_> = self.shared.units().iter().cloned().collect();
        if self.state() == KernelState::Running {
            // Still Running, so what they take down is gated and recorded.
            for u in units.iter().rev() {
                u.shutdown(self).await;
            }
        }
        self.transition(KernelState::ShuttingDown)?;
        self.shared
            .log
            .push(BootPhase::Shutdown, LogLevel::Info, "shutting down");
        for u in units.iter().rev() {
            u.stop();
        }
        let roots: Vec<Pid> = self
            .shared
            .agents
            .table
            .list()
            .into_iter()
            .filter(|p| p.parent.is_none())
            .map(|p| p.pid)
            .collect();
        for pid in roots {
            match crate::supervisor::stop_tree(&self.shared, pid).await {
                Ok(()) | Err(KernelError::NoSuchProcess(_)) => {}
                Err(e) => self.shared.log.push(
                    BootPhase::Shutdown,
                    LogLevel::Error,
                    format!("stopping agent {pid}: {e}"),
                ),
            }
        }
        self.shared.note("kernel", "kernel.shutdown", &json!({}))?;
        let chain = self.shared.chain.clone();
        tokio::task::spawn_blocking(move || chain.shutdown())
            .await
            .map_err(|e| KernelError::Failed(format!("chain shutdown: {e}")))??;
        self.transition(KernelState::Halted)?;
        self.shared
            .log
            .push(BootPhase::Shutdown, LogLevel::Info, "halted");
        Ok(())
    }

    // --- the chokepoint ---------------------------------------------------------

    /// Carry out `action` as `who`: checked in-process, asked of the gate
    /// (capabilities, then governance), recorded, then performed. The only
    /// way to change kernel state or append to the chain (see
    /// [`crate::act`]).
    pub async fn act<A: Action>(&self, who: &Principal, action: A) -> KernelResult<A::Output> {
        crate::act::act(&self.shared, who, action, None).await
    }

    /// Ask the gate whether `agent` may do `action` in `context`, as the
    /// gate would for a real action: the decision is recorded with a
    /// receipt (`weaver gov check` passes its own gate check first).
    pub fn ask_gate(&self, agent: &str, action: &str, context: &serde_json::Value) -> GateDecision {
        self.shared.gate.chained.check(agent, action, context)
    }

    // --- components ---------------------------------------------------------------

    /// Compile (or fetch from the cache) a component file.
    pub fn load_component(&self, path: &Path) -> KernelResult<LoadedComponent> {
        Ok(self.shared.runtime.load_file(path)?)
    }

    /// Compile (or fetch from the cache) component bytes.
    pub fn load_component_bytes(&self, bytes: &[u8]) -> KernelResult<LoadedComponent> {
        Ok(self.shared.runtime.load(bytes)?)
    }

    // --- read-only views ------------------------------------------------------------

    /// One process, as `inspect` shows it.
    pub fn inspect(&self, pid: Pid) -> Option<ProcessInfo> {
        self.shared.agents.table.info(pid)
    }

    /// The pid of the live agent `name`.
    pub fn pid_of(&self, name: &str) -> Option<Pid> {
        self.shared.agents.table.pid_of(name)
    }

    /// The principal named `name`, to act for it later (a job firing as
    /// its owner): `operator`, `app:<name>` (no ceiling: it may only act on
    /// its own names), or a live agent. Never the kernel.
    pub fn principal_of(&self, name: &str) -> Option<Principal> {
        match name {
            "operator" => Some(Principal::Operator),
            "kernel" => None,
            n => match n.strip_prefix("app:") {
                Some(app) => Some(Principal::app(app, None)),
                None => {
                    let pid = self.shared.agents.table.pid_of(n)?;
                    let p = self.shared.agents.principals.get(&pid)?;
                    Some(Principal::Agent(p.clone()))
                }
            },
        }
    }

    /// Every process.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.shared.agents.table.list()
    }

    /// Topics with subscribers.
    pub fn topics(&self) -> Vec<String> {
        self.shared.ipc.topics.list_topics()
    }

    /// Registered tools.
    pub fn tools(&self) -> Vec<ToolListing> {
        self.shared.tools.list()
    }

    /// The agents subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<Pid> {
        self.shared.ipc.topics.subscribers(topic)
    }

    /// Registered services.
    pub fn services(&self) -> Vec<ServiceEntry> {
        self.shared.ipc.services.list()
    }

    /// Health of every native service: name -> error, if any.
    pub fn health_check_services(&self) -> Vec<(String, Result<(), String>)> {
        self.shared.ipc.services.health_check_all()
    }

    /// The chain, read-only.
    pub fn chain(&self) -> ChainView {
        ChainView(self.shared.chain.clone())
    }

    /// The capabilities agent `pid` was spawned with.
    pub fn capabilities_of(&self, pid: Pid) -> Option<Arc<crate::Capabilities>> {
        self.shared
            .agents
            .table
            .get(pid)
            .map(|e| e.capabilities.clone())
    }

    /// The kernel's environments and which app runs in which.
    pub fn environments(&self) -> &crate::environment::Environments {
        &self.shared.environments
    }

    /// Every escalation (actions governance sent to a person), newest
    /// first. Decide one with [`crate::escalation::Decide`].
    pub fn escalations(&self) -> Vec<crate::escalation::Escalation> {
        self.shared.escalations.list()
    }

    /// The resource tree, read-only.
    pub fn tree(&self) -> crate::status::TreeView<'_> {
        crate::status::TreeView(&self.shared.tree)
    }

    /// The kernel log.
    pub fn logs(&self) -> Vec<BootEvent> {
        self.shared.log.events()
    }

    /// Add a line to the kernel log (not the chain).
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.shared.log.push(BootPhase::Runtime, level, message);
    }

    /// The configuration it booted with.
    pub fn config(&self) -> &KernelConfig {
        &self.shared.config
    }

    /// The state dir the kernel booted on (chain, keys, subsystem state).
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }

    /// Counts for `kernel status`.
    pub fn stats(&self) -> KernelStats {
        let s = &self.shared;
        KernelStats {
            state: s.kernel_state(),
            processes: s.agents.table.count(),
            live_tasks: s.agents.live.tasks.load(Ordering::Relaxed),
            live_stores: s.agents.live.stores.load(Ordering::Relaxed),
            services: s.ipc.services.list().len(),
            tools: s.tools.list().len(),
            topics: s.ipc.topics.list_topics().len(),
            lost_records: s.lost_records.load(Ordering::Relaxed),
            chain: s.chain.status(),
        }
    }

    // --- subsystems -----------------------------------------------------------------

    /// The subsystem named `name`.
    pub fn unit(&self, name: &str) -> Option<Arc<dyn Subsystem>> {
        self.shared.units().get(name).cloned()
    }

    /// The names of every subsystem, in registration order.
    pub fn unit_names(&self) -> Vec<&'static str> {
        self.shared.units().names()
    }

    /// Every subsystem, in registration order.
    pub fn units(&self) -> Vec<Arc<dyn Subsystem>> {
        self.shared.units().iter().cloned().collect()
    }

    /// What this kernel allows a manifest: each subsystem adds its part
    /// (no container engine unless a unit says there is one).
    pub fn check_policy(&self) -> weft_model::policy::CheckPolicy {
        let envs = &self.shared.environments;
        let mut p = weft_model::policy::CheckPolicy {
            containers: weft_model::policy::ContainerEngine::Absent,
            default_environment: Some(envs.default_env().name.clone()),
            outbound: envs
                .list()
                .into_iter()
                .filter_map(|e| {
                    Some(weft_model::policy::EnvOutbound {
                        environment: e.name.clone(),
                        outbound: e.outbound.clone()?,
                    })
                })
                .collect(),
        };
        for u in self.shared.units().iter() {
            u.check_policy(&mut p);
        }
        p
    }

    /// What the subsystems find wrong with running app `app` (see
    /// [`Subsystem::app_problems`]).
    pub fn app_problems(&self, app: &str) -> Vec<String> {
        self.shared
            .units()
            .iter()
            .flat_map(|u| u.app_problems(app))
            .collect()
    }

    /// Every gate action any unit asks for, with the unit that asks.
    pub fn action_kinds(&self) -> Vec<(&'static str, &'static str)> {
        self.shared
            .units()
            .iter()
            .flat_map(|u| u.actions().iter().map(move |a| (u.name(), *a)))
            .collect()
    }

    /// The subsystem of type `T`, for typed access.
    pub fn subsystem<T: Subsystem>(&self) -> Option<&T> {
        self.shared
            .units()
            .iter()
            .find_map(|u| u.as_any().downcast_ref::<T>())
    }

    // --- stopping from the control API ----------------------------------------------

    /// Ask `weaver run` to stop this kernel once the current control answer
    /// is out.
    pub(crate) fn request_stop(&self) {
        self.shared.stop_requested.store(true, Ordering::Release);
    }

    /// Whether a stop was requested (and clear it).
    pub(crate) fn take_stop_request(&self) -> bool {
        self.shared.stop_requested.swap(false, Ordering::AcqRel)
    }

    /// Wake whoever waits in [`Kernel::stopped`].
    pub(crate) fn notify_stop(&self) {
        self.shared.stop.notify_one();
    }

    /// Resolves once a stop was requested through the control API.
    pub async fn stopped(&self) {
        self.shared.stop.notified().await
    }
}

/// Where `weaver run` keeps state by default.
pub fn default_state_dir() -> Option<PathBuf> {
    dirs_state().map(|d| d.join("weft"))
}

fn dirs_state() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}
