//! `wit_boundary`: arbitrary values across the WIT boundary, both ways.
//!
//! A real kernel runs the `hostile` agent (`components/testing/hostile`),
//! which treats the input as a [program](crate::program) of syscalls with
//! arbitrary arguments: targets, payloads, JSON that is not JSON, huge or
//! deeply nested strings, lengths up to `u32::MAX`, loops; and it returns
//! arbitrary payloads from `handle`. Beside it runs an `echo` agent and the
//! `calc` and `misbehave` tools.
//!
//! A bug is: a panic in the host, the operator's request outliving the
//! agent's deadline (the kernel failed to stop the guest), the kernel no
//! longer answering `echo`, or the agent dying of anything but its own
//! fault (out of fuel, timeout, memory limit, stack overflow, a guest
//! panic): a host function must answer bad arguments with a typed error.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use weft_kernel::ipc::SendMessage;
use weft_kernel::tools::{RegisterTool, ToolEntry};
use weft_kernel::{
    AgentLimits, Capabilities, Kernel, KernelConfig, KernelError, MessageTarget, Payload,
    Principal, ProcessState, SendOutcome, Spawn, SpawnRequest, Stop,
};
use weft_runtime::{Limits, LoadedComponent};

use crate::support::{block_on, scratch};

/// The agent's per-message deadline.
pub const AGENT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long the operator waits: well past the deadline, so a reply that
/// takes longer means the deadline did not hold.
const OPERATOR_WAIT: Duration = Duration::from_secs(20);
/// A fresh kernel once the chain holds this many events (it keeps them in
/// memory, so a long run would otherwise only measure that).
const MAX_CHAIN_EVENTS: u64 = 200_000;

struct Rig {
    kernel: Kernel,
    hostile: LoadedComponent,
    generation: u32,
}

fn rig() -> &'static Mutex<Option<Rig>> {
    static R: OnceLock<Mutex<Option<Rig>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(None))
}

/// A kernel with `echo`, `hostile`, `calc` and `misbehave`.
async fn boot(generation: u32) -> Rig {
    let state = scratch().join(format!("wit-{generation}"));
    let _fresh = std::fs::remove_dir_all(&state);
    let mut config = KernelConfig::default();
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    config.runtime.pool_instances = 64;
    config.ipc.send_timeout_ms = 50;
    config.agent_limits = AgentLimits {
        timeout_ms: AGENT_TIMEOUT.as_millis() as u64,
        ..AgentLimits::default()
    };
    let kernel = Kernel::boot(config, &state).await.expect("boot");
    let op = Principal::Operator;
    let load = |name: &str| {
        kernel
            .load_component(&weft_testkit::guest(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    for tool in ["calc", "misbehave"] {
        let mut t = ToolEntry::new(tool, load(tool));
        t.limits = Limits {
            timeout: Duration::from_millis(200),
            fuel: 50_000_000,
            ..Limits::default()
        };
        kernel
            .act(&op, RegisterTool(t))
            .await
            .expect("register a tool");
    }
    let mut echo = SpawnRequest::new("echo", load("probe"));
    echo.capabilities = Capabilities::trusted();
    kernel.act(&op, Spawn::new(echo)).await.expect("echo");
    let hostile = load("hostile");
    let rig = Rig {
        kernel,
        hostile,
        generation,
    };
    spawn_hostile(&rig).await;
    rig
}

async fn spawn_hostile(rig: &Rig) {
    let mut req = SpawnRequest::new("hostile", rig.hostile.clone());
    req.capabilities = Capabilities {
        spawn: false,
        ..Capabilities::trusted()
    };
    rig.kernel
        .act(&Principal::Operator, Spawn::new(req))
        .await
        .expect("spawn hostile");
}

/// The agent's failure, if it died of something that is not its own fault.
fn host_fault(failure: &str) -> bool {
    let guest = ["out of fuel", "timeout", "memory limit", "stack overflow"];
    if guest.iter().any(|k| failure.starts_with(k)) {
        return false;
    }
    // A Rust guest that panics or aborts (an allocation the limit refused)
    // executes `unreachable`.
    !(failure.starts_with("trap") && failure.contains("unreachable"))
}

/// The target.
pub fn fuzz(data: &[u8]) {
    let mut slot = rig().lock().unwrap_or_else(|p| p.into_inner());
    block_on(async {
        let needs_boot = match slot.as_ref() {
            None => Some(0),
            Some(r) if r.kernel.chain().len() > MAX_CHAIN_EVENTS => Some(r.generation + 1),
            Some(_) => None,
        };
        if let Some(generation) = needs_boot {
            if let Some(old) = slot.take() {
                old.kernel.shutdown().await.expect("shutdown");
                let _gone =
                    std::fs::remove_dir_all(scratch().join(format!("wit-{}", old.generation)));
            }
            *slot = Some(boot(generation).await);
        }
        let Some(rig) = slot.as_ref() else { return };
        run(rig, data).await;
    });
}

async fn run(rig: &Rig, data: &[u8]) {
    let k = &rig.kernel;
    let op = Principal::Operator;
    let send = SendMessage::new(
        MessageTarget::Named("hostile".into()),
        Payload::Binary(data.to_vec()),
    )
    .wait(OPERATOR_WAIT);
    match k.act(&op, send).await {
        Ok(SendOutcome::Replied(Payload::Json(v))) => {
            // Guests' JSON is checked before anyone sees it.
            let _ = serde_json::to_string(&v).expect("a reply's JSON serializes");
        }
        Ok(_) => {}
        Err(KernelError::Timeout(why)) => {
            panic!("the request outlived the agent's {AGENT_TIMEOUT:?} deadline: {why}")
        }
        Err(_) => {}
    }
    let ping = SendMessage::new(
        MessageTarget::Named("echo".into()),
        Payload::Text("ping".into()),
    )
    .wait(Duration::from_secs(10));
    match k.act(&op, ping).await {
        Ok(SendOutcome::Replied(Payload::Text(t))) if t == "ping" => {}
        other => panic!("the kernel stopped answering after the program: {other:?}"),
    }
    // The newest row: a crashed agent's row stays until it is stopped.
    let hostile = k
        .processes()
        .into_iter()
        .filter(|p| p.name == "hostile")
        .max_by_key(|p| p.pid);
    if let Some(p) = &hostile {
        if let Some(f) = p.last_failure.as_deref().filter(|f| host_fault(f)) {
            panic!("the agent died of a host fault: {f}");
        }
    }
    // Start from a live agent next time.
    match hostile {
        Some(p) if p.state == ProcessState::Running => {}
        Some(p) => {
            let _already = k.act(&op, Stop::new(p.pid)).await;
            spawn_hostile(rig).await;
        }
        None => spawn_hostile(rig).await,
    }
}
