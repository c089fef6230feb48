//! Shared setup: kernels on temp dirs with the shared compile cache and the
//! three subsystems registered, a standalone runtime for adapter tests, and
//! chain helpers.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use weft_kernel::ipc::SendMessage;
use weft_kernel::{
    Capabilities, IpcScope, Kernel, KernelConfig, MessageTarget, Payload, Pid, Principal,
    SendOutcome, Spawn, SpawnRequest,
};
use weft_runtime::{LoadedComponent, Runtime, RuntimeConfig};

pub fn config() -> KernelConfig {
    let mut c = KernelConfig::default();
    c.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    c.runtime.pool_instances = 500;
    c
}

/// A kernel on `dir` with governance, cron and health; `toml` is written
/// to `dir/weft.toml` and used as the configuration.
pub async fn boot_on_with(dir: &Path, toml: &str) -> Kernel {
    let path = dir.join("weft.toml");
    std::fs::write(&path, toml).expect("write weft.toml");
    let mut c = KernelConfig::parse(toml, &path).expect("weft.toml");
    c.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    c.runtime.pool_instances = 500;
    Kernel::boot_with(c, dir, weft_subsystems::units())
        .await
        .expect("boot")
}

pub async fn boot_on(dir: &Path) -> Kernel {
    boot_on_with(dir, "").await
}

/// A kernel with the three subsystems, in `prod`.
pub async fn boot() -> (Kernel, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    (boot_on(dir.path()).await, dir)
}

/// A kernel with the three subsystems in `environment`.
pub async fn boot_in(environment: &str) -> (Kernel, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = boot_on_with(
        dir.path(),
        &format!("[kernel]\nenvironment = \"{environment}\"\n"),
    )
    .await;
    (k, dir)
}

/// A runtime of its own, for the adapter tests (components load into the
/// engine that runs them).
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(weft_testkit::shared_cache_dir()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub fn component_in(rt: &Runtime, name: &str) -> LoadedComponent {
    rt.load_file(&weft_testkit::guest(name))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

pub fn component(k: &Kernel, name: &str) -> LoadedComponent {
    k.load_component(&weft_testkit::guest(name))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// Spawn (as the operator) an echo probe that may append to the chain and
/// schedule cron jobs.
pub async fn spawn_probe(k: &Kernel, name: &str) -> Pid {
    spawn_probe_with(
        k,
        name,
        Capabilities {
            ipc: IpcScope::All,
            chain_append: true,
            cron: true,
            ..Capabilities::default()
        },
    )
    .await
}

pub async fn spawn_probe_with(k: &Kernel, name: &str, caps: Capabilities) -> Pid {
    let mut req = SpawnRequest::new(name, component(k, "probe"));
    req.config = json!({ "mode": "echo" });
    req.capabilities = caps;
    k.act(&Principal::Operator, Spawn::new(req))
        .await
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

/// Send `payload` to agent `name` as the operator and wait for the reply.
pub async fn request(k: &Kernel, name: &str, payload: Payload) -> Result<Payload, String> {
    let send =
        SendMessage::new(MessageTarget::Named(name.into()), payload).wait(Duration::from_secs(5));
    match k.act(&Principal::Operator, send).await {
        Ok(SendOutcome::Replied(p)) => Ok(p),
        Ok(other) => panic!("expected a reply, got {other:?}"),
        Err(e) => Err(e.to_string()),
    }
}

/// The JSON reply of an echo probe to `op`.
pub async fn op(k: &Kernel, name: &str, op: Value) -> Value {
    match request(k, name, Payload::Json(op)).await.expect("request") {
        Payload::Json(v) => v,
        Payload::Text(t) => serde_json::from_str(&t).expect("json reply"),
        other => panic!("{other:?}"),
    }
}

pub fn events(k: &Kernel, kind: &str) -> Vec<Value> {
    k.chain()
        .range(..)
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload_json().unwrap_or(Value::Null))
        .collect()
}

pub async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
