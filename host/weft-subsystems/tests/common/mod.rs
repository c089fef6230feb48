//! Shared setup: a kernel on a temp dir with the shared compile cache, the
//! built subsystem components, and chain helpers.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use weft_kernel::{Capabilities, IpcScope, Kernel, KernelConfig, Pid, SpawnRequest};
use weft_runtime::LoadedComponent;

pub fn config() -> KernelConfig {
    let mut c = KernelConfig::default();
    c.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    c.runtime.pool_instances = 500;
    c
}

pub async fn boot_on(dir: &Path) -> Kernel {
    Kernel::boot(config(), dir).await.expect("boot")
}

pub async fn boot() -> (Kernel, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    (boot_on(dir.path()).await, dir)
}

pub fn component(k: &Kernel, name: &str) -> LoadedComponent {
    k.load_component(&weft_testkit::guest(name))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// The `[subsystems]` config pointing at the built guests.
pub fn subsystems(env: &str) -> weft_subsystems::SubsystemsConfig {
    let dir = weft_testkit::guest("governance")
        .parent()
        .expect("guest dir")
        .to_path_buf();
    weft_subsystems::SubsystemsConfig {
        components_dir: Some(dir),
        environment: Some(env.into()),
        ..Default::default()
    }
}

/// Spawn an echo probe that may append to the chain.
pub async fn spawn_probe(k: &Kernel, name: &str) -> Pid {
    let mut req = SpawnRequest::new(name, component(k, "probe"));
    req.config = json!({ "mode": "echo" });
    req.capabilities = Capabilities {
        ipc: IpcScope::All,
        chain_append: true,
        ..Capabilities::default()
    };
    k.spawn(req)
        .await
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
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
