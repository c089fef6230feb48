//! [`Runtime`]: the one engine, its deadlines, the artifact cache and the
//! pre-instantiated components. Cheap to clone; share it everywhere.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig, Store,
    UpdateDeadline,
};

use crate::cache::{ArtifactCache, Digest, LoadSource};
use crate::config::{Limits, Preemption, RuntimeConfig};
use crate::error::{classify, DeadlineHit, FailureContext, RunError};
use crate::sandbox::{Grants, StoreData};

/// What a component is, judged from its exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentKind {
    /// Exports `describe` and `invoke`: the `weft:kernel` tool world.
    Tool,
    /// Exports `wasi:cli/run`: a plain WASI 0.2 command program.
    Command,
    /// A WASI preview1 core module exporting `_start` (what
    /// `wasm32-wasip1` toolchains emit): run as it is, through wasmtime-wasi's
    /// preview1 implementation, under the same limits and grants.
    Preview1,
    /// Exports something else (agents and subsystems have their own worlds,
    /// checked when they are instantiated).
    Other,
}

impl ComponentKind {
    /// Runs as a program (`wasi:cli/run` or preview1 `_start`) rather than
    /// through the tool world.
    pub fn is_command(self) -> bool {
        matches!(self, ComponentKind::Command | ComponentKind::Preview1)
    }
}

/// Compiled code: a component, or a preview1 core module.
#[derive(Clone)]
pub enum Code {
    /// A WebAssembly component.
    Component(Component),
    /// A core module (WASI preview1).
    Module(Module),
}

/// A compiled component (or preview1 core module) plus what we know about it.
#[derive(Clone)]
pub struct LoadedComponent {
    /// BLAKE3 of the component's bytes.
    pub digest: Digest,
    /// The compiled code.
    pub code: Code,
    /// Which world it exports, as far as running it is concerned.
    pub kind: ComponentKind,
    /// Names of the component's exports, for error messages.
    pub exports: Vec<String>,
    /// Where the compiled code came from (memory, disk cache, fresh compile).
    pub source: LoadSource,
}

impl LoadedComponent {
    /// The compiled component; a core module is refused with
    /// [`RunError::InvalidComponent`] saying what it is.
    pub fn component(&self) -> Result<&Component, RunError> {
        match &self.code {
            Code::Component(c) => Ok(c),
            Code::Module(_) => Err(RunError::invalid(
                "this is a WASI preview1 core module, which runs only as a command (a tool or \
                 hook, or `weaver tool run`); build for wasm32-wasip2, or wrap it with \
                 `wasm-tools component new`, to use it here",
            )),
        }
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("digest", &self.digest)
            .field("kind", &self.kind)
            .field("exports", &self.exports)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The shared wasm runtime. One per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: RuntimeConfig,
    cache: Option<ArtifactCache>,
    components: Mutex<HashMap<Digest, LoadedComponent>>,
    pub(crate) pres: crate::pre::PreCache,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Build the engine (component model, fuel, pooling allocator; epochs
    /// and their ticker thread only under [`Preemption::Epochs`]).
    ///
    /// A configured cache dir is created (mode 0700) if missing; one that is
    /// not private to the current user is refused with
    /// [`RunError::Cache`] (see [`crate::CacheError`]).
    pub fn new(config: RuntimeConfig) -> Result<Self, RunError> {
        // The cache dir is checked first: a refusal costs no engine.
        if let Some(dir) = &config.cache_dir {
            crate::cache::secure_dir(dir)?;
        }
        let engine = Engine::new(&engine_config(&config)?)
            .map_err(|e| RunError::Host(format!("cannot create engine: {e:#}")))?;
        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ArtifactCache::new(dir, &engine));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        if let Preemption::Epochs { tick } = config.preemption {
            spawn_ticker(engine.clone(), tick, ticker_stop.clone())?;
        }
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                config,
                cache,
                components: Mutex::default(),
                pres: Default::default(),
                ticker_stop,
            }),
        })
    }

    /// The one wasmtime engine every component is compiled for.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The settings the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    pub(crate) fn pres(&self) -> &crate::pre::PreCache {
        &self.inner.pres
    }

    /// Load a component file (see [`Runtime::load`]).
    pub fn load_file(&self, path: &Path) -> Result<LoadedComponent, RunError> {
        let bytes = std::fs::read(path)
            .map_err(|e| RunError::Host(format!("cannot read {}: {e}", path.display())))?;
        self.load(&bytes)
    }

    /// Compile a component, or fetch it from the in-memory map or the disk
    /// cache. Bytes that are not a valid component give `InvalidComponent`.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, RunError> {
        let digest = Digest::of(bytes);
        if let Some(c) = lock(&self.inner.components).get(&digest) {
            let mut c = c.clone();
            c.source = LoadSource::Memory;
            return Ok(c);
        }
        let engine = &self.inner.engine;
        let is_module = check_header(bytes)?;
        let (code, source) = match self
            .inner
            .cache
            .as_ref()
            .and_then(|c| c.load(engine, &digest, is_module))
        {
            Some(c) => (c, LoadSource::DiskCache),
            None => {
                let c = compile(engine, bytes, is_module)?;
                if let Some(cache) = &self.inner.cache {
                    cache.store(&digest, &c);
                }
                (c, LoadSource::Compiled)
            }
        };
        let (kind, exports) = match &code {
            Code::Component(component) => {
                let exports: Vec<String> = component
                    .component_type()
                    .exports(engine)
                    .map(|(name, _)| name.to_string())
                    .collect();
                let kind = if exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")) {
                    ComponentKind::Command
                } else if exports.iter().any(|e| e == "invoke")
                    && exports.iter().any(|e| e == "describe")
                {
                    ComponentKind::Tool
                } else {
                    ComponentKind::Other
                };
                (kind, exports)
            }
            Code::Module(module) => {
                let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
                let start = module
                    .get_export("_start")
                    .is_some_and(|t| matches!(t, wasmtime::ExternType::Func(_)));
                let kind = if start {
                    ComponentKind::Preview1
                } else {
                    ComponentKind::Other
                };
                (kind, exports)
            }
        };
        let loaded = LoadedComponent {
            digest,
            code,
            kind,
            exports,
            source,
        };
        lock(&self.inner.components).insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// Forget a component's compiled code and pre-instantiations held in
    /// memory (the disk cache keeps it). Used when an app is removed.
    pub fn evict(&self, digest: &Digest) {
        lock(&self.inner.components).remove(digest);
        self.inner.pres.evict(digest);
    }

    /// A linker with WASI 0.2 already in it, for embedders (the kernel) that
    /// add their own interfaces on top.
    pub fn linker<T: Send + 'static>(&self) -> Result<Linker<StoreData<T>>, RunError> {
        let mut linker = Linker::new(&self.inner.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RunError::Host(format!("cannot link WASI: {e:#}")))?;
        Ok(linker)
    }

    /// A fresh store bound by `limits`, with a WASI context built only from
    /// `grants`. Arm it with [`Runtime::arm`] before each call.
    pub fn new_store<T: Send>(
        &self,
        limits: &Limits,
        grants: &Grants,
        data: T,
    ) -> Result<Store<StoreData<T>>, RunError> {
        let limits = self.clamp(limits);
        let mut store = Store::new(
            &self.inner.engine,
            StoreData::new(&limits, grants, self.inner.config.blocking_fs, data)?,
        );
        store.limiter(|s| &mut s.limiter);
        store
            .fuel_async_yield_interval(Some(self.inner.config.fuel_yield_interval))
            .map_err(|e| RunError::Host(format!("{e:#}")))?;
        if let Preemption::Epochs { .. } = self.inner.config.preemption {
            // Installed once; `arm` only moves the epoch deadline, so arming
            // a call costs no allocation and no clock read. The ticker never
            // runs fast, so reaching the deadline in ticks means the time is up.
            store.epoch_deadline_callback(|cx| {
                Err::<UpdateDeadline, _>(wasmtime::Error::new(DeadlineHit(cx.data().timeout)))
            });
        }
        self.arm(&mut store, &limits);
        Ok(store)
    }

    /// Scale the fuel `store` runs between yields to the scheduler to
    /// `quarters`/4 of the configured slice: under contention for a core,
    /// a store's share of guest time follows its slice (an agent's
    /// `priority`). The slice never drops below 1,000 fuel.
    pub fn set_fuel_slice<T>(
        &self,
        store: &mut Store<StoreData<T>>,
        quarters: u64,
    ) -> Result<(), RunError> {
        let slice = (self
            .inner
            .config
            .fuel_yield_interval
            .saturating_mul(quarters)
            / 4)
        .max(1_000);
        store
            .fuel_async_yield_interval(Some(slice))
            .map_err(|e| RunError::Host(format!("{e:#}")))
    }

    /// Reset fuel and the wall-clock deadline for the next call.
    pub fn arm<T: Send>(&self, store: &mut Store<StoreData<T>>, limits: &Limits) {
        // Fuel is always enabled on our engine, so this cannot fail.
        let _ = store.set_fuel(limits.fuel);
        store.data_mut().timeout = limits.timeout;
        if let Preemption::Epochs { tick } = self.inner.config.preemption {
            store.set_epoch_deadline(ticks_for(limits.timeout, tick));
        }
    }

    /// Fuel consumed since the last [`Runtime::arm`] with `limits`.
    pub fn fuel_used<T>(&self, store: &Store<StoreData<T>>, limits: &Limits) -> u64 {
        limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0))
    }

    /// What the call since the last [`Runtime::arm`] consumed.
    pub fn usage<T>(
        &self,
        store: &Store<StoreData<T>>,
        limits: &Limits,
        start: Instant,
    ) -> crate::Usage {
        crate::Usage {
            fuel_used: self.fuel_used(store, limits),
            wall: start.elapsed(),
            peak_memory: store.data().peak_memory(),
        }
    }

    /// Run `call` against `store` under the store's deadline and classify
    /// any failure. A call that finishes on its first poll (most do) never
    /// reads the clock or touches the timer wheel: the deadline's timer
    /// starts at the first yield, which is at most one fuel slice (or one
    /// host call) after the call began, and drops the call at the first
    /// yield after it fires. Under [`Preemption::Epochs`] it is only a
    /// backstop for time spent outside wasm: the guest's own deadline then
    /// counts from [`Runtime::arm`].
    pub async fn guard<T: Send, R>(
        &self,
        store: &mut Store<StoreData<T>>,
        limits: &Limits,
        call: impl AsyncFnOnce(&mut Store<StoreData<T>>) -> wasmtime::Result<R>,
    ) -> Result<R, RunError> {
        let outcome = {
            let mut fut = std::pin::pin!(call(&mut *store));
            let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
            match first {
                Poll::Ready(r) => Some(r),
                Poll::Pending => {
                    let backstop = tokio::time::Instant::now() + limits.timeout + self.grace();
                    tokio::time::timeout_at(backstop, fut).await.ok()
                }
            }
        };
        self.settle(store, limits, outcome)
    }

    /// [`Runtime::guard`] for synchronous callers (the gate's governance
    /// and other subsystem components): drives `call` on this thread,
    /// parking between polls, and drops it at the first yield past the
    /// deadline. The store must have been armed.
    pub fn guard_blocking<T: Send, R>(
        &self,
        store: &mut Store<StoreData<T>>,
        limits: &Limits,
        call: impl AsyncFnOnce(&mut Store<StoreData<T>>) -> wasmtime::Result<R>,
    ) -> Result<R, RunError> {
        let outcome = {
            let fut = std::pin::pin!(call(&mut *store));
            crate::blocking::drive(fut, limits.timeout + self.grace())
        };
        self.settle(store, limits, outcome)
    }

    /// A guarded call's outcome (`None`: dropped at its deadline) as a
    /// result, failures classified.
    fn settle<T, R>(
        &self,
        store: &Store<StoreData<T>>,
        limits: &Limits,
        outcome: Option<wasmtime::Result<R>>,
    ) -> Result<R, RunError> {
        let err = match outcome {
            Some(Ok(r)) => return Ok(r),
            Some(Err(e)) => e,
            None => wasmtime::Error::new(DeadlineHit(limits.timeout)),
        };
        Err(self.classify(store, limits, err))
    }

    /// How long past its deadline the host timer waits: none when it is the
    /// deadline, time for the epoch to fire first when it is a backstop.
    fn grace(&self) -> Duration {
        match self.inner.config.preemption {
            Preemption::Yields => Duration::ZERO,
            Preemption::Epochs { tick } => tick * 50 + Duration::from_millis(50),
        }
    }

    /// Turn a raw error from a call on `store` into a [`RunError`].
    pub fn classify<T>(
        &self,
        store: &Store<StoreData<T>>,
        limits: &Limits,
        err: wasmtime::Error,
    ) -> RunError {
        let d = store.data();
        classify(
            err,
            FailureContext {
                fuel_budget: limits.fuel,
                timeout: limits.timeout,
                max_wasm_stack: self.inner.config.max_wasm_stack,
                denied_growth: d.limiter.denied,
                overflowed: d.stdout.overflow().or(d.stderr.overflow()),
                stderr_tail: d.stderr.tail(512),
            },
        )
    }

    fn clamp(&self, limits: &Limits) -> Limits {
        let mut l = limits.clone();
        let pool = &self.inner.config.pool;
        l.max_memory_bytes = l.max_memory_bytes.min(pool.max_memory_bytes);
        l.max_table_elements = l.max_table_elements.min(pool.table_elements);
        l
    }
}

/// Epoch ticks that cover at least `d`: the tick in progress when a call
/// is armed may be almost over, so one more is added.
fn ticks_for(d: Duration, tick: Duration) -> u64 {
    (d.as_nanos().div_ceil(tick.as_nanos().max(1)) + 1).min(u32::MAX as u128) as u64
}

/// `Ok(true)` for a core module, `Ok(false)` for a component.
fn check_header(bytes: &[u8]) -> Result<bool, RunError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(RunError::invalid("not a WebAssembly binary (bad magic)"));
    }
    // A core module has layer 0 / version 1; a component has layer 1.
    Ok(bytes[6..8] == [0, 0])
}

fn compile(engine: &Engine, bytes: &[u8], is_module: bool) -> Result<Code, RunError> {
    if is_module {
        Module::new(engine, bytes)
            .map(Code::Module)
            .map_err(RunError::invalid)
    } else {
        Component::new(engine, bytes)
            .map(Code::Component)
            .map_err(RunError::invalid)
    }
}

fn engine_config(rc: &RuntimeConfig) -> Result<Config, RunError> {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(matches!(rc.preemption, Preemption::Epochs { .. }))
        .max_wasm_stack(rc.max_wasm_stack)
        // Fiber stacks must hold the wasm stack plus host frames.
        .async_stack_size(rc.max_wasm_stack + (1 << 20))
        .parallel_compilation(true);
    let p = &rc.pool;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(p.total_component_instances)
        .total_core_instances(p.total_core_instances)
        .total_memories(p.total_memories)
        .total_tables(p.total_tables)
        .total_stacks(p.total_stacks)
        .max_memory_size(p.max_memory_bytes)
        .table_elements(p.table_elements)
        .max_core_instances_per_component(p.max_core_instances_per_component)
        .max_memories_per_component(p.max_memories_per_component)
        .max_tables_per_component(p.max_tables_per_component)
        .max_component_instance_size(p.max_component_instance_size)
        .max_core_instance_size(p.max_core_instance_size)
        .linear_memory_keep_resident(p.keep_resident_bytes)
        .table_keep_resident(p.keep_resident_bytes)
        .pagemap_scan(wasmtime::Enabled::Auto);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(c)
}

fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<(), RunError> {
    std::thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
        .map_err(|e| RunError::Host(format!("cannot start epoch ticker: {e}")))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
