//! Shared setup for the kernel's tests: a kernel on a temp dir, the probe
//! agent, and helpers to talk to it.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use weft_kernel::ipc::topic::HostSubscription;
use weft_kernel::ipc::{SendMessage, SubscribeHost};
use weft_kernel::{
    AgentLimits, Capabilities, IpcScope, Kernel, KernelConfig, KernelResult, MessageTarget,
    Payload, Pid, Principal, RestartPolicy, SendOutcome, Spawn, SpawnRequest, Stop,
};
use weft_runtime::LoadedComponent;

/// The kernel's actions as the operator (a person at `weaver`) would
/// take them: each one through `Kernel::act`.
#[allow(async_fn_in_trait)]
pub trait Ops {
    async fn spawn(&self, req: SpawnRequest) -> KernelResult<Pid>;
    async fn stop(&self, pid: Pid) -> KernelResult<()>;
    async fn send(&self, to: MessageTarget, payload: Payload) -> KernelResult<SendOutcome>;
    async fn request(
        &self,
        to: MessageTarget,
        payload: Payload,
        wait: Duration,
    ) -> KernelResult<Payload>;
    async fn subscribe(&self, topic: &str) -> HostSubscription;
}

impl Ops for Kernel {
    async fn spawn(&self, req: SpawnRequest) -> KernelResult<Pid> {
        self.act(&Principal::Operator, Spawn::new(req)).await
    }

    async fn stop(&self, pid: Pid) -> KernelResult<()> {
        self.act(&Principal::Operator, Stop::new(pid)).await
    }

    async fn send(&self, to: MessageTarget, payload: Payload) -> KernelResult<SendOutcome> {
        self.act(&Principal::Operator, SendMessage::new(to, payload))
            .await
    }

    async fn request(
        &self,
        to: MessageTarget,
        payload: Payload,
        wait: Duration,
    ) -> KernelResult<Payload> {
        match self
            .act(
                &Principal::Operator,
                SendMessage::new(to, payload).wait(wait),
            )
            .await?
        {
            SendOutcome::Replied(p) => Ok(p),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    async fn subscribe(&self, topic: &str) -> HostSubscription {
        self.act(
            &Principal::Operator,
            SubscribeHost {
                topic: topic.to_string(),
                capacity: 4096,
            },
        )
        .await
        .expect("subscribe")
    }
}

pub struct TestKernel {
    pub kernel: Kernel,
    pub dir: tempfile::TempDir,
}

pub async fn boot() -> TestKernel {
    boot_with(KernelConfig::default()).await
}

pub async fn boot_with(mut config: KernelConfig) -> TestKernel {
    let dir = tempfile::tempdir().expect("tempdir");
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    config.runtime.pool_instances = config.runtime.pool_instances.min(2_000);
    let kernel = Kernel::boot(config, dir.path()).await.expect("boot");
    TestKernel { kernel, dir }
}

pub fn probe(k: &Kernel) -> LoadedComponent {
    k.load_component(&weft_testkit::guest("probe"))
        .expect("probe")
}

pub fn all_ipc() -> Capabilities {
    Capabilities {
        ipc: IpcScope::All,
        ..Capabilities::default()
    }
}

pub async fn spawn(k: &Kernel, name: &str, config: Value, caps: Capabilities) -> Pid {
    let mut req = SpawnRequest::new(name, probe(k));
    req.config = config;
    req.capabilities = caps;
    k.spawn(req)
        .await
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

pub async fn spawn_with(
    k: &Kernel,
    name: &str,
    config: Value,
    caps: Capabilities,
    restart: RestartPolicy,
    limits: Option<AgentLimits>,
) -> Pid {
    let mut req = SpawnRequest::new(name, probe(k));
    req.config = config;
    req.capabilities = caps;
    req.restart = restart;
    req.limits = limits;
    k.spawn(req)
        .await
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

/// Ask an echo probe to run `op` and return its `{"ok"|"err": ..}` reply.
pub async fn op(k: &Kernel, name: &str, op: Value) -> Value {
    match k
        .request(
            MessageTarget::Named(name.into()),
            Payload::Json(op),
            Duration::from_secs(10),
        )
        .await
        .expect("request")
    {
        Payload::Json(v) => v,
        other => panic!("expected json, got {other:?}"),
    }
}

pub fn chain_kinds(k: &Kernel) -> Vec<(String, Value)> {
    k.chain()
        .range(..)
        .iter()
        .map(|e| (e.kind.clone(), e.payload_json().unwrap_or(json!(null))))
        .collect()
}

pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
