//! [`ComponentHealth`]: health aggregation by the health component. The
//! host owns the probes (async functions, one per name) and the clock; the
//! component says which probes are due and what the results add up to.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_chain::now_ns;
use weft_kernel::ipc::SendMessage;
use weft_kernel::{Kernel, KernelState, MessageTarget, Payload, Principal};
use weft_runtime::{Limits, LoadedComponent, Runtime};

use crate::bindings::health::weft::kernel::health_types as wit;
use crate::bindings::health::{Health, HealthPre};
use crate::exec::{lock, world, Guest, Instance};
use crate::ComponentError;

world!(Health, HealthPre, "health");

pub use wit::{DegradedItem, HealthReport, Overall, ProbeKind, ProbeSpec, ProbeStatus};

/// A probe: `Ok(detail)` when healthy, `Err(why)` when not.
pub type ProbeFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// Longest a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-call limits of the health component.
pub fn default_limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        timeout: Duration::from_millis(500),
        max_memory_bytes: 32 << 20,
        max_output_bytes: 64 << 10,
        ..Limits::default()
    }
}

/// Told when a probe's verdict changes (after its threshold).
pub type ChangeFn = Arc<dyn Fn(&ProbeStatus) + Send + Sync>;

struct Inner {
    guest: Guest<Health>,
    instance: Mutex<Option<Instance<Health>>>,
    specs: Mutex<Vec<ProbeSpec>>,
    probes: Mutex<HashMap<String, ProbeFn>>,
    /// Serializes changes of the probe set (add and remove merge into it).
    edit: Mutex<()>,
    /// The last verdict seen of each probe, to notice changes.
    verdicts: Mutex<HashMap<String, bool>>,
    watchers: Mutex<Vec<ChangeFn>>,
}

/// The health service. Cheap to clone.
#[derive(Clone)]
pub struct ComponentHealth {
    inner: Arc<Inner>,
}

impl ComponentHealth {
    /// Instantiates the health component (no probes registered yet).
    pub fn new(
        runtime: &Runtime,
        component: LoadedComponent,
        limits: Limits,
    ) -> Result<Self, ComponentError> {
        let guest = Guest::new(runtime, component, limits)?;
        let inst = guest.instantiate()?;
        Ok(ComponentHealth {
            inner: Arc::new(Inner {
                guest,
                instance: Mutex::new(Some(inst)),
                specs: Mutex::default(),
                probes: Mutex::default(),
                edit: Mutex::default(),
                verdicts: Mutex::default(),
                watchers: Mutex::default(),
            }),
        })
    }

    /// Run `f` on the instance; a failed instance is replaced by a fresh
    /// one configured with the current probes (their counters restart).
    fn with<R>(
        &self,
        f: impl AsyncFnOnce(&Health, &mut crate::exec::GuestStore) -> wasmtime::Result<R>,
    ) -> Result<R, ComponentError> {
        let i = &self.inner;
        let mut slot = lock(&i.instance);
        let mut inst = match slot.take() {
            Some(inst) => inst,
            None => {
                let mut inst = i.guest.instantiate()?;
                let specs = lock(&i.specs).clone();
                i.guest
                    .call(&mut inst, async |w, s| w.call_configure(s, &specs).await)?
                    .map_err(ComponentError::Component)?;
                inst
            }
        };
        let r = i.guest.call(&mut inst, f)?;
        *slot = Some(inst);
        Ok(r)
    }

    /// Replace the probe set: each spec with the function that runs it.
    pub fn configure(&self, probes: Vec<(ProbeSpec, ProbeFn)>) -> Result<(), ComponentError> {
        let _edit = lock(&self.inner.edit);
        self.set(probes)
    }

    fn set(&self, probes: Vec<(ProbeSpec, ProbeFn)>) -> Result<(), ComponentError> {
        let specs: Vec<ProbeSpec> = probes.iter().map(|(s, _)| s.clone()).collect();
        self.with(async |w, s| w.call_configure(s, &specs).await)?
            .map_err(ComponentError::Component)?;
        lock(&self.inner.verdicts).retain(|name, _| specs.iter().any(|s| &s.name == name));
        *lock(&self.inner.specs) = specs;
        *lock(&self.inner.probes) = probes.into_iter().map(|(s, f)| (s.name, f)).collect();
        Ok(())
    }

    /// Add probes (replacing any of the same name); the others keep their
    /// counters.
    pub fn add_probes(&self, add: Vec<(ProbeSpec, ProbeFn)>) -> Result<(), ComponentError> {
        let _edit = lock(&self.inner.edit);
        let mut all = self.current();
        all.retain(|(s, _)| !add.iter().any(|(a, _)| a.name == s.name));
        all.extend(add);
        self.set(all)
    }

    /// Remove the probes whose names start with `prefix`.
    pub fn remove_probes(&self, prefix: &str) -> Result<(), ComponentError> {
        let _edit = lock(&self.inner.edit);
        let mut all = self.current();
        let before = all.len();
        all.retain(|(s, _)| !s.name.starts_with(prefix));
        if all.len() == before {
            return Ok(());
        }
        self.set(all)
    }

    /// Be told of every change of a probe's verdict.
    pub fn watch(&self, f: ChangeFn) {
        lock(&self.inner.watchers).push(f);
    }

    fn current(&self) -> Vec<(ProbeSpec, ProbeFn)> {
        let probes = lock(&self.inner.probes);
        lock(&self.inner.specs)
            .iter()
            .filter_map(|s| probes.get(&s.name).map(|f| (s.clone(), f.clone())))
            .collect()
    }

    /// Report one probe result (the driver does this; tests may too).
    pub fn report(&self, name: &str, ok: bool, detail: &str) -> Result<(), ComponentError> {
        let now = now_ns();
        self.with(async |w, s| w.call_report(s, name, ok, detail, now).await)
    }

    /// The overall verdict and every probe's status.
    pub fn status(&self) -> Result<HealthReport, ComponentError> {
        self.with(async |w, s| w.call_status(s).await)
    }

    /// Run every due probe once and report the results. Returns the names
    /// of the probes run.
    pub async fn run_due(&self) -> Result<Vec<String>, ComponentError> {
        let now = now_ns();
        let due = self.with(async |w, s| w.call_due(s, now).await)?;
        for name in &due {
            let probe = lock(&self.inner.probes).get(name).cloned();
            let (ok, detail) = match probe {
                None => (false, "no probe function registered".to_string()),
                Some(p) => match tokio::time::timeout(PROBE_TIMEOUT, p()).await {
                    Ok(Ok(d)) => (true, d),
                    Ok(Err(e)) => (false, e),
                    Err(_) => (false, format!("no answer within {PROBE_TIMEOUT:?}")),
                },
            };
            self.report(name, ok, &detail)?;
        }
        if !due.is_empty() && !lock(&self.inner.watchers).is_empty() {
            self.tell_changes(&due)?;
        }
        Ok(due)
    }

    /// Tell the watchers which of the probes just run changed verdict.
    fn tell_changes(&self, ran: &[String]) -> Result<(), ComponentError> {
        let report = self.status()?;
        let changed: Vec<ProbeStatus> = {
            let mut seen = lock(&self.inner.verdicts);
            report
                .probes
                .into_iter()
                .filter(|p| ran.contains(&p.name))
                .filter(|p| seen.insert(p.name.clone(), p.passing) != Some(p.passing))
                .collect()
        };
        let watchers = lock(&self.inner.watchers).clone();
        for p in &changed {
            for w in &watchers {
                w(p);
            }
        }
        Ok(())
    }

    /// Start the driver: runs due probes every `every` until the kernel
    /// stops running.
    pub fn start(&self, kernel: Kernel, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while kernel.state() == KernelState::Running {
                if let Err(e) = me.run_due().await {
                    tracing::warn!("health: {e}");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// A probe that is healthy while the kernel is running.
pub fn kernel_probe(kernel: Kernel) -> ProbeFn {
    Arc::new(move || {
        let k = kernel.clone();
        Box::pin(async move {
            match k.state() {
                KernelState::Running => Ok("running".to_string()),
                s => Err(format!("kernel is {s:?}")),
            }
        })
    })
}

/// A probe that is healthy while every registered service passes its
/// `health_check`.
pub fn services_probe(kernel: Kernel) -> ProbeFn {
    Arc::new(move || {
        let k = kernel.clone();
        Box::pin(async move {
            let bad: Vec<String> = k
                .health_check_services()
                .into_iter()
                .filter_map(|(n, r)| r.err().map(|e| format!("{n}: {e}")))
                .collect();
            if bad.is_empty() {
                Ok("all services pass".to_string())
            } else {
                Err(bad.join("; "))
            }
        })
    })
}

/// A probe that pings an agent (a request with the text `ping`, sent as
/// the kernel); any reply within `timeout` is healthy.
pub fn agent_probe(kernel: Kernel, agent: &str, timeout: Duration) -> ProbeFn {
    let agent = agent.to_string();
    Arc::new(move || {
        let (k, agent) = (kernel.clone(), agent.clone());
        Box::pin(async move {
            let ping = SendMessage::new(
                MessageTarget::Named(agent.clone()),
                Payload::Text("ping".into()),
            )
            .wait(timeout);
            k.act(&Principal::Kernel, ping)
                .await
                .map(|_| format!("{agent} answered"))
                .map_err(|e| e.to_string())
        })
    })
}
