//! Calling a subsystem component from synchronous code (the gate and the
//! kernel's `CronService` are synchronous traits).
//!
//! Stores from [`Runtime::new_store`] yield on fuel, so calls must be async;
//! they are driven on the caller's thread by [`Runtime::guard_blocking`].
//! Subsystem components import nothing but WASI, so a call never waits on
//! the host: the fiber only yields to let the executor poll it again.
//! Each call is armed with the fuel and deadline of [`Limits`], and a failure
//! is classified into a [`RunError`] like any other guest's.

use std::future::Future;
use std::sync::Mutex;

use wasmtime::Store;
use weft_runtime::{Grants, Limits, LoadedComponent, RunError, Runtime, StoreData};

pub(crate) type GuestStore = Store<StoreData<()>>;

/// A world's generated bindings, as this module needs them.
pub(crate) trait World: Sized + 'static {
    type Pre: Clone + Send + Sync + 'static;
    fn pre(rt: &Runtime, c: &LoadedComponent) -> Result<Self::Pre, RunError>;
    fn instantiate(
        pre: &Self::Pre,
        store: &mut GuestStore,
    ) -> impl Future<Output = wasmtime::Result<Self>>;
}

/// One live instance and its store.
pub(crate) struct Instance<W> {
    store: GuestStore,
    world: W,
}

/// A component of world `W`, pre-instantiated, with the limits each call
/// gets.
pub(crate) struct Guest<W: World> {
    runtime: Runtime,
    pub component: LoadedComponent,
    pre: W::Pre,
    limits: Mutex<Limits>,
    /// Entered around calls so WASI code that looks for a tokio runtime
    /// finds one even on a plain thread.
    handle: Option<tokio::runtime::Handle>,
}

impl<W: World> Guest<W> {
    pub fn new(
        runtime: &Runtime,
        component: LoadedComponent,
        limits: Limits,
    ) -> Result<Self, RunError> {
        let pre = W::pre(runtime, &component)?;
        Ok(Guest {
            runtime: runtime.clone(),
            component,
            pre,
            limits: Mutex::new(limits),
            handle: tokio::runtime::Handle::try_current().ok(),
        })
    }

    pub fn limits(&self) -> Limits {
        lock(&self.limits).clone()
    }

    pub fn set_limits(&self, limits: Limits) {
        *lock(&self.limits) = limits;
    }

    pub fn instantiate(&self) -> Result<Instance<W>, RunError> {
        let limits = self.limits();
        let mut store = self.runtime.new_store(&limits, &Grants::default(), ())?;
        let pre = self.pre.clone();
        let world = self.run(&mut store, &limits, async |s| W::instantiate(&pre, s).await)?;
        Ok(Instance { store, world })
    }

    /// One call on `inst`. After an error the instance must be dropped (a
    /// trapped instance cannot be re-entered).
    pub fn call<R>(
        &self,
        inst: &mut Instance<W>,
        f: impl AsyncFnOnce(&W, &mut GuestStore) -> wasmtime::Result<R>,
    ) -> Result<R, RunError> {
        let limits = self.limits();
        let Instance { store, world } = inst;
        let world = &*world;
        self.run(store, &limits, async |s| f(world, s).await)
    }

    fn run<R>(
        &self,
        store: &mut GuestStore,
        limits: &Limits,
        f: impl AsyncFnOnce(&mut GuestStore) -> wasmtime::Result<R>,
    ) -> Result<R, RunError> {
        let _enter = self.handle.as_ref().map(|h| h.enter());
        self.runtime.arm(store, limits);
        self.runtime.guard_blocking(store, limits, f)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

macro_rules! world {
    ($ty:ty, $pre:ident, $name:literal) => {
        impl crate::exec::World for $ty {
            type Pre = $pre<weft_runtime::StoreData<()>>;
            fn pre(
                rt: &weft_runtime::Runtime,
                c: &weft_runtime::LoadedComponent,
            ) -> Result<Self::Pre, weft_runtime::RunError> {
                let bad = |e: wasmtime::Error| weft_runtime::RunError::InvalidComponent {
                    reason: format!("not a {} component: {e:#}", $name),
                };
                let linker = rt.linker::<()>()?;
                let pre = linker.instantiate_pre(c.component()?).map_err(bad)?;
                $pre::new(pre).map_err(bad)
            }
            async fn instantiate(
                pre: &Self::Pre,
                store: &mut crate::exec::GuestStore,
            ) -> wasmtime::Result<Self> {
                pre.instantiate_async(store).await
            }
        }
    };
}
pub(crate) use world;
