//! `control`: request lines to a running kernel's control socket, as any
//! local process with access to `<state>/control.sock` can send them.
//!
//! The kernel has every registered subsystem, an `echo` agent, the `calc`
//! tool and a small app bundle to install. The input is split into lines
//! and written to one connection; the server must answer every non-blank
//! line exactly once (after any progress lines), in order, echoing its
//! `id`, with `ok` and, on failure, a known error kind. It must not hang.
//!
//! Two guards keep a long run meaningful: paths in requests (`bundle`,
//! `component`) are pointed at the harness's bundle, so the kernel reads
//! nothing else on this machine; and the operator may not stop the kernel,
//! change governance or add cron jobs (those requests are still parsed and
//! refused by the gate, which records the refusal).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use weft_kernel::control::protocol::kind;
use weft_kernel::control::server::Server;
use weft_kernel::tools::{RegisterTool, ToolEntry};
use weft_kernel::{Capabilities, Kernel, KernelConfig, Principal, Spawn, SpawnRequest};

use crate::support::{block_on, scratch};

/// How long one input may take before the server counts as hung.
const DEADLINE: Duration = Duration::from_secs(60);
/// A fresh kernel once the chain holds this many events.
const MAX_CHAIN_EVENTS: u64 = 100_000;

struct Rig {
    kernel: Kernel,
    // Removes the socket when dropped.
    _server: Server,
    serving: tokio::task::JoinHandle<()>,
    state: PathBuf,
    bundle: PathBuf,
    generation: u32,
}

fn rig() -> &'static Mutex<Option<Rig>> {
    static R: OnceLock<Mutex<Option<Rig>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(None))
}

/// `apps/hello`, packed here without a signature (it installs in `dev`).
/// Its lock is written by packing: the repository holds only the manifest.
async fn bundle() -> PathBuf {
    let dir = scratch().join("bundle");
    if dir.join("weftapp.lock").exists() {
        return dir;
    }
    let src = weft_testkit::repo_root().join("apps/hello");
    std::fs::create_dir_all(dir.join("components")).expect("bundle dir");
    std::fs::copy(src.join("weftapp.toml"), dir.join("weftapp.toml")).expect("copy the manifest");
    for c in ["probe", "calc"] {
        let to = dir.join(format!("components/{c}.wasm"));
        std::fs::copy(weft_testkit::guest(c), to).expect("copy a component");
    }
    weft_apps::pack(crate::manifest::checker(), &dir, None, None)
        .await
        .expect("pack apps/hello");
    dir
}

async fn boot(generation: u32) -> Rig {
    let state = scratch().join(format!("control-{generation}"));
    let _fresh = std::fs::remove_dir_all(&state);
    let mut config = KernelConfig::default();
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    config.kernel.environment = "dev".into();
    config.runtime.pool_instances = 256;
    config.operator.deny = [
        "kernel.stop",
        "governance.reload",
        "governance.swap",
        "cron.add",
    ]
    .map(String::from)
    .to_vec();
    let mut units = weft_subsystems::units();
    units.push(Arc::new(weft_apps::AppsUnit::default()));
    let kernel = Kernel::boot_with(config, &state, units)
        .await
        .expect("boot");
    let op = Principal::Operator;
    let calc = kernel
        .load_component(&weft_testkit::guest("calc"))
        .expect("calc");
    kernel
        .act(&op, RegisterTool(ToolEntry::new("calc", calc)))
        .await
        .expect("register calc");
    let probe = kernel
        .load_component(&weft_testkit::guest("probe"))
        .expect("probe");
    let mut echo = SpawnRequest::new("echo", probe);
    echo.capabilities = Capabilities::trusted();
    kernel.act(&op, Spawn::new(echo)).await.expect("echo");
    let mut server = Server::bind(&state).expect("bind the control socket");
    let serving = server.serve(kernel.clone());
    Rig {
        kernel,
        _server: server,
        serving,
        state,
        bundle: bundle().await,
        generation,
    }
}

/// The target.
pub fn fuzz(data: &[u8]) {
    let mut slot = rig().lock().unwrap_or_else(|p| p.into_inner());
    block_on(async {
        let next = match slot.as_ref() {
            None => Some(0),
            Some(r) if r.kernel.chain().len() > MAX_CHAIN_EVENTS => Some(r.generation + 1),
            Some(_) => None,
        };
        if let Some(g) = next {
            if let Some(old) = slot.take() {
                old.serving.abort();
                old.kernel.shutdown().await.expect("shutdown");
                let _gone = std::fs::remove_dir_all(&old.state);
            }
            *slot = Some(boot(g).await);
        }
    });
    let Some(rig) = slot.as_ref() else { return };
    exchange(rig, data);
}

/// A line the server will answer, and the id it must echo.
fn expected(line: &[u8]) -> Option<u64> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(
        serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_u64))
            .unwrap_or(0),
    )
}

/// Point any path in a request at the harness bundle.
fn confine(line: &[u8], bundle: &Path) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(line) else {
        return line.to_vec();
    };
    let Some(req) = v.get_mut("request").and_then(Value::as_object_mut) else {
        return line.to_vec();
    };
    let mut changed = false;
    for key in ["bundle", "component"] {
        if let Some(p) = req.get_mut(key) {
            *p = Value::String(bundle.display().to_string());
            changed = true;
        }
    }
    if changed {
        v.to_string().into_bytes()
    } else {
        line.to_vec()
    }
}

fn exchange(rig: &Rig, data: &[u8]) {
    let mut sent = Vec::new();
    let mut ids = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let line = confine(line, &rig.bundle);
        ids.extend(expected(&line));
        sent.extend_from_slice(&line);
        sent.push(b'\n');
    }
    let sock = weft_kernel::control::protocol::socket_path(&rig.state);
    let mut s = UnixStream::connect(&sock).expect("connect to the control socket");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s.write_all(&sent).expect("write the requests");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut answers = Vec::new();
    let mut reader = BufReader::new(s);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.by_ref().read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "the server hung or failed after {} answers: {e}",
                answers.len()
            ),
        }
        let v: Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
            panic!(
                "an answer that is not JSON ({e}): {}",
                String::from_utf8_lossy(&line)
            )
        });
        if v.get("progress").is_some() {
            continue;
        }
        answers.push(v);
    }
    assert_eq!(
        answers.len(),
        ids.len(),
        "{} request lines, {} answers: {answers:?}",
        ids.len(),
        answers.len()
    );
    let kinds = [
        kind::FAILED,
        kind::DENIED,
        kind::NOT_FOUND,
        kind::TOOL,
        kind::GUEST,
        kind::KERNEL,
        kind::BAD_REQUEST,
        kind::UNKNOWN_COMMAND,
    ];
    for (a, id) in answers.iter().zip(ids) {
        assert_eq!(a.get("id").and_then(Value::as_u64), Some(id), "{a}");
        match a.get("ok").and_then(Value::as_bool) {
            Some(true) => assert!(a.get("result").is_some(), "{a}"),
            Some(false) => {
                let k = a["error"]["kind"].as_str().unwrap_or_default();
                assert!(kinds.contains(&k), "unknown error kind: {a}");
                // The kernel's own failures are bugs, not answers to bad input.
                assert_ne!(k, kind::KERNEL, "the kernel failed: {a}");
            }
            None => panic!("an answer without `ok`: {a}"),
        }
    }
}
