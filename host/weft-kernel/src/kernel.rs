//! [`Kernel`]: boot, the public API, and shutdown.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use serde_json::json;
use weft_chain::{ChainConfig, ChainManager, SigningKeyFile};
use weft_gate::{CapabilityGate, ChainedGate, GateBackend};
use weft_runtime::{LoadedComponent, PoolConfig, Runtime, RuntimeConfig};
use weft_tree::TreeManager;

use crate::a2a::A2ARouter;
use crate::agent::bindings;
use crate::capability::Capabilities;
use crate::config::KernelConfig;
use crate::console::{BootEvent, BootLog, BootPhase, LogLevel};
use crate::cron::CronService;
use crate::error::{KernelError, KernelResult};
use crate::gate::LayeredGate;
use crate::ipc::{MessageTarget, Payload};
use crate::process::{Pid, ProcessInfo};
use crate::service::{AuditLevel, ServiceEndpoint, ServiceEntry, ServiceRegistry, SystemService};
use crate::shared::{PermitCache, SendOutcome, Sender, Shared};
use crate::supervisor::{self, SpawnRequest};
use crate::tools::{ToolEntry, ToolListing, ToolRegistry};
use crate::topic::{HostSubscription, TopicRouter};

/// Kernel lifecycle. Only forward transitions are legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KernelState {
    Booting,
    Running,
    ShuttingDown,
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
    pub state: KernelState,
    pub processes: usize,
    pub live_tasks: usize,
    pub live_stores: usize,
    pub services: usize,
    pub tools: usize,
    pub topics: usize,
    pub chain: weft_chain::ChainStatus,
}

impl Kernel {
    /// Boot on `state_dir`: open (and verify) the chain, restore the tree,
    /// set up the gate and the runtime, then go Running.
    pub async fn boot(config: KernelConfig, state_dir: &Path) -> KernelResult<Kernel> {
        let log = BootLog::new(config.kernel.log_capacity);
        log.push(
            BootPhase::Init,
            LogLevel::Info,
            format!("booting on {}", state_dir.display()),
        );
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
        for d in [state_dir, &chain_dir, &cache_dir] {
            std::fs::create_dir_all(d).map_err(io("cannot create", d))?;
        }

        let key = SigningKeyFile::load_or_create(chain_dir.join(weft_chain::KEY_FILE))?;
        let (chain, report) = ChainManager::open(
            &chain_dir,
            ChainConfig {
                chain_id: config.chain.chain_id,
                checkpoint_every: config.chain.checkpoint_every,
                signing_key: Some(key.signing_key().clone()),
                flush_interval: Duration::from_millis(config.chain.flush_interval_ms),
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
                "chain: {} events, {} checkpoints verified; public key {}",
                report.events,
                report.checkpoints,
                weft_chain::public_key_hex(&chain.public_key())
            ),
        );

        let tree = if report.created {
            let t = TreeManager::new(chain.clone());
            t.bootstrap()?;
            t
        } else {
            TreeManager::restore(chain.clone())?
        };
        // Agents do not survive a restart; drop what a crash left behind.
        for node in tree.list("/kernel/agents").unwrap_or_default() {
            if node.path != "/kernel/agents" {
                let _ = tree.remove_recursive(&node.path);
            }
        }

        let r = &config.runtime;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir),
            epoch_tick: Duration::from_millis(r.epoch_tick_ms),
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
        let mut agent_linker = runtime.linker()?;
        bindings::Agent::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut agent_linker,
            |s| s,
        )
        .map_err(|e| KernelError::Failed(format!("cannot link agent syscalls: {e:#}")))?;

        let capability = CapabilityGate::new();
        capability
            .allow("kernel", &["**"])
            .map_err(|e| KernelError::Failed(e.to_string()))?;
        let layered = Arc::new(LayeredGate::new(capability));
        let gate = ChainedGate::new(
            layered.clone() as Arc<dyn GateBackend>,
            chain.clone(),
            key.signing_key().clone(),
        )
        .sign_every_decision(config.chain.sign_every_decision);
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

        let shared = Arc::new(Shared {
            a2a: A2ARouter::new(config.ipc.inbox_capacity),
            processes: crate::process::ProcessTable::new(config.kernel.max_processes),
            config,
            state_dir: state_dir.to_path_buf(),
            state: RwLock::new(KernelState::Booting),
            log,
            runtime,
            topics: TopicRouter::default(),
            services: ServiceRegistry::default(),
            tools: ToolRegistry::default(),
            chain,
            tree,
            layered,
            gate,
            gate_epoch: AtomicU64::new(0),
            agent_linker,
            agent_pres: Mutex::default(),
            controls: DashMap::new(),
            tasks: DashMap::new(),
            cron: RwLock::new(None),
            next_msg: AtomicU64::new(1),
            live: Default::default(),
        });
        let kernel = Kernel { shared };
        kernel.transition(KernelState::Running)?;
        kernel
            .shared
            .record("kernel", "kernel.boot", &json!({ "state_dir": state_dir }))?;
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

    pub fn state(&self) -> KernelState {
        self.shared.kernel_state()
    }

    /// Stop every agent (children before parents), record the shutdown,
    /// write the final checkpoint and halt.
    pub async fn shutdown(&self) -> KernelResult<()> {
        self.transition(KernelState::ShuttingDown)?;
        self.shared
            .log
            .push(BootPhase::Shutdown, LogLevel::Info, "shutting down");
        let roots: Vec<Pid> = self
            .shared
            .processes
            .list()
            .into_iter()
            .filter(|p| p.parent.is_none())
            .map(|p| p.pid)
            .collect();
        for pid in roots {
            let _ = supervisor::stop(&self.shared, pid, "kernel").await;
        }
        self.shared
            .record("kernel", "kernel.shutdown", &json!({}))?;
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

    // --- components and agents -------------------------------------------------

    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// Compile (or fetch from the cache) a component file.
    pub fn load_component(&self, path: &Path) -> KernelResult<LoadedComponent> {
        Ok(self.shared.runtime.load_file(path)?)
    }

    pub async fn spawn(&self, req: SpawnRequest) -> KernelResult<Pid> {
        supervisor::spawn(&self.shared, req).await
    }

    /// Stop an agent and (first) all its descendants.
    pub async fn stop(&self, pid: Pid) -> KernelResult<()> {
        supervisor::stop(&self.shared, pid, "kernel").await
    }

    pub async fn restart(&self, pid: Pid) -> KernelResult<()> {
        supervisor::restart(&self.shared, pid, "kernel").await
    }

    pub fn inspect(&self, pid: Pid) -> Option<ProcessInfo> {
        supervisor::inspect(&self.shared, pid)
    }

    pub fn pid_of(&self, name: &str) -> Option<Pid> {
        self.shared.processes.pid_of(name)
    }

    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.shared.processes.list()
    }

    // --- messages ---------------------------------------------------------------

    /// Send from outside (pid 0, full IPC scope), through the gate.
    pub async fn send(&self, to: MessageTarget, payload: Payload) -> KernelResult<SendOutcome> {
        let mut permits = PermitCache::new();
        self.shared
            .send(&Sender::kernel(), to, payload, None, &mut permits)
            .await
    }

    /// Send and wait for the reply.
    pub async fn request(
        &self,
        to: MessageTarget,
        payload: Payload,
        timeout: Duration,
    ) -> KernelResult<Payload> {
        let mut permits = PermitCache::new();
        match self
            .shared
            .send(&Sender::kernel(), to, payload, Some(timeout), &mut permits)
            .await?
        {
            SendOutcome::Replied(p) => Ok(p),
            other => Err(KernelError::Failed(format!(
                "expected a reply, got {other:?}"
            ))),
        }
    }

    /// Receive what is published on `topic`, from the host side.
    pub fn subscribe(&self, topic: &str) -> HostSubscription {
        self.shared.topics.subscribe_host(topic, 4096)
    }

    pub fn topics(&self) -> Vec<String> {
        self.shared.topics.list_topics()
    }

    // --- tools and services -----------------------------------------------------

    /// Register a tool agents can call (if their capabilities allow).
    pub fn register_tool(&self, entry: ToolEntry) -> KernelResult<u64> {
        let seq = self.shared.record(
            "kernel",
            "tool.register",
            &json!({ "name": entry.name, "digest": entry.component.digest.to_hex() }),
        )?;
        self.shared.tools.insert(entry);
        Ok(seq)
    }

    pub fn unregister_tool(&self, name: &str) -> bool {
        self.shared.tools.remove(name).is_some()
    }

    pub fn tools(&self) -> Vec<ToolListing> {
        self.shared.tools.list()
    }

    /// Run a registered tool as the kernel (used by `weaver tool run NAME`).
    pub async fn invoke_tool(&self, name: &str, input: &str) -> KernelResult<serde_json::Value> {
        self.shared
            .invoke_tool(&Sender::kernel(), name, input)
            .await
    }

    /// Register a named service; through the gate, on the chain and in the
    /// tree under `/kernel/services`.
    pub fn register_service(
        &self,
        name: &str,
        endpoint: ServiceEndpoint,
        audit_level: AuditLevel,
        native: Option<Arc<dyn SystemService>>,
    ) -> KernelResult<u64> {
        self.shared.ensure_running()?;
        let owner_pid = match &endpoint {
            ServiceEndpoint::AgentInbox(p) => Some(*p),
            _ => None,
        };
        // The host registers services (for apps and subsystems), so the
        // kernel asks; the owner is recorded.
        let by = "kernel";
        self.shared.gate(
            by,
            "service.register",
            &json!({ "service": name, "endpoint": endpoint }),
        )?;
        if let Some(n) = &native {
            n.start().map_err(|e| {
                KernelError::Failed(format!("service `{name}` failed to start: {e}"))
            })?;
        }
        let seq = self.shared.record(
            by,
            "service.register",
            &json!({ "name": name, "owner_pid": owner_pid, "endpoint": endpoint, "audit_level": audit_level }),
        )?;
        self.shared.services.register(ServiceEntry {
            name: name.to_string(),
            owner_pid,
            endpoint: endpoint.clone(),
            audit_level,
            chain_seq: seq,
            native,
        })?;
        let _ = self.shared.tree.insert(
            &format!("/kernel/services/{name}"),
            [("endpoint".to_string(), json!(endpoint))]
                .into_iter()
                .collect(),
        );
        Ok(seq)
    }

    /// Stop and remove a service.
    pub fn unregister_service(&self, name: &str) -> KernelResult<()> {
        let e = self
            .shared
            .services
            .unregister(name)
            .ok_or_else(|| KernelError::NotFound(format!("no service `{name}`")))?;
        if let Some(n) = e.native {
            let _ = n.stop();
        }
        let _ = self.shared.tree.remove(&format!("/kernel/services/{name}"));
        self.shared
            .record("kernel", "service.unregister", &json!({ "name": name }))?;
        Ok(())
    }

    pub fn services(&self) -> Vec<ServiceEntry> {
        self.shared.services.list()
    }

    pub fn health_check_services(&self) -> Vec<(String, Result<(), String>)> {
        self.shared.services.health_check_all()
    }

    /// Install the service `cron.add` / `cron.remove` route to.
    pub fn set_cron_service(&self, cron: Option<Arc<dyn CronService>>) {
        *self.shared.cron.write().unwrap_or_else(|p| p.into_inner()) = cron;
    }

    /// The cron service `cron.add` / `cron.remove` route to, if any.
    pub fn cron_service(&self) -> Option<Arc<dyn CronService>> {
        self.shared.cron().ok()
    }

    /// Install or replace the governance backend of the gate. Cached
    /// permits are dropped so the new policy applies to the next action.
    pub fn set_governance(&self, gov: Option<Arc<dyn GateBackend>>) {
        self.shared.layered.set_governance(gov);
        self.shared.gate_epoch.fetch_add(1, Ordering::Release);
    }

    /// Ask the gate directly (recorded on the chain like any decision).
    pub fn check(
        &self,
        agent: &str,
        action: &str,
        context: &serde_json::Value,
    ) -> weft_gate::GateDecision {
        self.shared.gate.check(agent, action, context)
    }

    // --- chain, tree, logs --------------------------------------------------------

    pub fn chain(&self) -> &Arc<ChainManager> {
        &self.shared.chain
    }

    pub fn tree(&self) -> &TreeManager {
        &self.shared.tree
    }

    pub fn logs(&self) -> Vec<BootEvent> {
        self.shared.log.events()
    }

    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.shared.log.push(BootPhase::Runtime, level, message);
    }

    pub fn config(&self) -> &KernelConfig {
        &self.shared.config
    }

    /// The state dir the kernel booted on (chain, keys, subsystem state).
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }

    pub fn stats(&self) -> KernelStats {
        let s = &self.shared;
        KernelStats {
            state: s.kernel_state(),
            processes: s.processes.count(),
            live_tasks: s.live.tasks.load(Ordering::Relaxed),
            live_stores: s.live.stores.load(Ordering::Relaxed),
            services: s.services.list().len(),
            tools: s.tools.list().len(),
            topics: s.topics.list_topics().len(),
            chain: s.chain.status(),
        }
    }

    /// The default capabilities for a trusted agent: every IPC target and
    /// topic, every tool, chain appends, children.
    pub fn trusted_capabilities() -> Capabilities {
        Capabilities {
            tools: crate::capability::ToolPermissions {
                allow: vec!["*".into()],
                deny: vec![],
            },
            ipc: crate::capability::IpcScope::All,
            sandbox: crate::capability::SandboxPolicy::Strict,
            chain_append: true,
            spawn: true,
        }
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
