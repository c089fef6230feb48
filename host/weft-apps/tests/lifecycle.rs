//! The app lifecycle through a real kernel: install, start, stop, upgrade
//! (and a failed upgrade's rollback), remove, refusals, and a restart of
//! the kernel on the same state dir.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::apps::{quiet, Apps};
use serde_json::json;
use weft_apps::{pack, AppState, Progress, SigningKey, TrustStore};
use weft_kernel::ipc::SendMessage;
use weft_kernel::tools::InvokeTool;
use weft_kernel::{Kernel, MessageTarget, Payload, Principal, SendOutcome};

async fn boot(state: &Path) -> Kernel {
    common::apps::boot(state, "dev").await
}

fn manager(k: &Kernel) -> Apps {
    Apps::new(k)
}

/// A packed copy of `apps/hello` at `version`; `edit` changes the manifest.
async fn bundle(
    root: &Path,
    version: &str,
    edit: impl Fn(String) -> String,
    key: Option<&SigningKey>,
) -> PathBuf {
    let dir = root.join(format!("hello-{version}"));
    std::fs::create_dir_all(dir.join("components")).unwrap();
    let manifest =
        std::fs::read_to_string(weft_testkit::repo_root().join("apps/hello/weftapp.toml"))
            .unwrap()
            .replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
    std::fs::write(dir.join("weftapp.toml"), edit(manifest)).unwrap();
    for c in ["probe", "calc", "wc"] {
        std::fs::copy(
            weft_testkit::guest(c),
            dir.join(format!("components/{c}.wasm")),
        )
        .unwrap();
    }
    let out = root.join(format!("hello-{version}.weftapp"));
    pack(&common::checker(), &dir, Some(&out), key)
        .await
        .expect("pack");
    out
}

fn same(s: String) -> String {
    s
}

/// The manifest without its `[environment]` (it goes into the kernel's).
fn kernels_env(s: String) -> String {
    s.replace("[environment]\nname = \"dev\"\n", "")
}

async fn request(
    k: &Kernel,
    to: MessageTarget,
    payload: Payload,
) -> Result<Payload, weft_kernel::KernelError> {
    let send = SendMessage::new(to, payload).wait(Duration::from_secs(5));
    match k.act(&Principal::Operator, send).await? {
        SendOutcome::Replied(p) => Ok(p),
        other => panic!("expected a reply, got {other:?}"),
    }
}

async fn greet(k: &Kernel) -> Result<Payload, weft_kernel::KernelError> {
    request(
        k,
        MessageTarget::Named("hello.greeter".into()),
        Payload::Text("hi".into()),
    )
    .await
}

async fn invoke(
    k: &Kernel,
    tool: &str,
    input: &str,
) -> Result<serde_json::Value, weft_kernel::KernelError> {
    k.act(&Principal::Operator, InvokeTool::new(tool, input))
        .await
}

async fn calc(k: &Kernel) -> serde_json::Value {
    invoke(k, "calc", r#"{"expr": "2 * (x + 1)", "vars": {"x": 3}}"#)
        .await
        .expect("calc")
}

#[tokio::test]
async fn install_start_stop_upgrade_rollback_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);

    let v1 = bundle(tmp.path(), "1.0.0", same, None).await;
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = steps.clone();
    let info = apps
        .install(
            &v1,
            Arc::new(move |p: Progress| seen.lock().unwrap().push(p)),
        )
        .await
        .expect("install");
    assert_eq!(info.state, AppState::Installed);
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("hello", "1.0.0")
    );
    assert_eq!(info.components.len(), 2);
    assert!(state
        .join("apps/hello/1.0.0/components/probe.wasm")
        .is_file());
    assert!(state.join("apps/hello/1.0.0/weftapp.lock").is_file());
    let steps = steps.lock().unwrap().clone();
    assert!(steps
        .iter()
        .any(|p| p.step.contains("precompiled components/calc.wasm")));
    assert_eq!(steps.last().map(|p| p.done), steps.last().map(|p| p.total));
    let again = apps.install(&v1, quiet()).await.unwrap_err();
    assert_eq!(again.kind(), "already-installed", "{again}");

    let info = apps.start("hello").await.expect("start");
    assert_eq!(info.state, AppState::Running);
    assert!(info.agents[0].pid.is_some());
    assert_eq!(info.tools, vec!["calc".to_string()]);
    assert_eq!(
        greet(&k).await.expect("greeter answers"),
        Payload::Text("hi".into())
    );
    assert_eq!(calc(&k).await, json!({ "value": 8.0 }));

    let info = apps.stop("hello").await.expect("stop");
    assert_eq!(info.state, AppState::Stopped);
    assert!(greet(&k).await.is_err(), "stopped agent still answers");
    assert!(
        invoke(&k, "calc", "{}").await.is_err(),
        "tool still registered"
    );
    apps.start("hello").await.expect("start again");
    assert!(greet(&k).await.is_ok());

    let v11 = bundle(tmp.path(), "1.1.0", same, None).await;
    let info = apps.upgrade("hello", &v11, quiet()).await.expect("upgrade");
    assert_eq!(
        (info.version.as_str(), info.state),
        ("1.1.0", AppState::Running)
    );
    assert!(greet(&k).await.is_ok());
    assert!(
        !state.join("apps/hello/1.0.0").exists(),
        "old version left behind"
    );
    let same_version = apps.upgrade("hello", &v11, quiet()).await.unwrap_err();
    assert_eq!(same_version.kind(), "same-version");

    let broken = |s: String| {
        s.replace(
            "config = { greeting = \"hello\" }",
            "config = { fail_init = true }",
        )
    };
    let v12 = bundle(tmp.path(), "1.2.0", broken, None).await;
    let err = apps.upgrade("hello", &v12, quiet()).await.unwrap_err();
    assert!(err.to_string().contains("greeter"), "{err}");
    let info = apps.get("hello").unwrap();
    assert_eq!(
        (info.version.as_str(), info.state),
        ("1.1.0", AppState::Running)
    );
    assert!(
        greet(&k).await.is_ok(),
        "1.1.0 keeps running after the rollback"
    );
    assert_eq!(calc(&k).await, json!({ "value": 8.0 }));
    assert!(!state.join("apps/hello/1.2.0").exists());

    let lineage = k
        .chain()
        .verify_lineage("agent:hello.greeter")
        .expect("lineage");
    assert_eq!(lineage[0].parent, "app:hello@1.1.0");
    assert!(
        lineage.last().unwrap().parent.starts_with("bundle:"),
        "{lineage:?}"
    );

    apps.remove("hello").await.expect("remove");
    assert!(apps.get("hello").is_none());
    assert!(!state.join("apps/hello").exists());
    assert!(greet(&k).await.is_err());

    let kinds: Vec<String> = k.chain().range(..).iter().map(|e| e.kind.clone()).collect();
    for kind in [
        "app.install",
        "app.start",
        "app.stop",
        "app.upgrade",
        "app.rollback",
        "app.failed",
        "app.remove",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} on the chain");
    }
    assert!(k.chain().verify_integrity().ok);
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn tampered_component_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);
    bundle(tmp.path(), "1.0.0", same, None).await;
    let dir = tmp.path().join("hello-1.0.0");
    let calc = dir.join("components/calc.wasm");
    let mut bytes = std::fs::read(&calc).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&calc, bytes).unwrap();
    let err = apps.install(&dir, quiet()).await.unwrap_err();
    assert_eq!(err.kind(), "bundle");
    assert!(err.to_string().contains("components/calc.wasm"), "{err}");
    assert!(apps.list().is_empty());
    assert!(!state.join("apps/hello").exists());
    assert!(k.tools().iter().all(|t| t.name != "calc"));
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn prod_needs_a_trusted_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = common::apps::boot(&state, "prod").await;
    let apps = manager(&k);
    let unsigned = bundle(tmp.path(), "1.0.0", kernels_env, None).await;
    let err = apps.install(&unsigned, quiet()).await.unwrap_err();
    assert!(err.to_string().contains("unsigned"), "{err}");
    // The manifest's environment wins over the kernel's: dev takes it.
    let dev = bundle(&tmp.path().join("dev"), "1.0.0", same, None).await;
    let info = apps
        .install(&dev, quiet())
        .await
        .expect("unsigned into dev");
    assert_eq!(info.environment, "dev");
    apps.remove("hello").await.expect("remove");
    assert!(!state.join("apps/hello").exists());

    let key = SigningKey::from_bytes(&[9; 32]);
    let signed = bundle(tmp.path(), "1.0.1", kernels_env, Some(&key)).await;
    let err = apps.install(&signed, quiet()).await.unwrap_err();
    assert!(err.to_string().contains("untrusted"), "{err}");
    k.act(
        &Principal::Operator,
        weft_apps::actions::Trust::add("alice", &weft_chain::public_key_hex(&key.verifying_key())),
    )
    .await
    .expect("trust.add");
    assert!(TrustStore::open(&state).unwrap().list().len() == 1);
    assert_eq!(apps.trust_store().unwrap().list().len(), 1);
    let info = apps
        .install(&signed, quiet())
        .await
        .expect("signed install");
    assert_eq!(info.signer.as_deref(), Some("alice"));
    assert_eq!(info.environment, "prod");
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn manifest_errors_and_containers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);
    let image = |s: String| format!("{s}\n[[services]]\nname = \"db\"\nimage = \"postgres:16\"\n");
    let b = bundle(tmp.path(), "1.0.0", image, None).await;
    // Refused by the checker, with the position of the `image` key.
    let err = apps.install(&b, quiet()).await.unwrap_err();
    assert_eq!(err.kind(), "manifest");
    assert!(err.to_string().contains("no container engine"), "{err}");
    assert!(err.to_string().contains("weftapp.toml:"), "{err}");
    assert!(!state.join("apps/hello").exists());

    let dir = tmp.path().join("hello-1.0.0");
    std::fs::write(
        dir.join("weftapp.toml"),
        "[app]\nname = \"hello\"\nversion = 1\n",
    )
    .unwrap();
    let err = apps.install(&dir, quiet()).await.unwrap_err();
    assert_eq!(err.kind(), "manifest");
    assert!(err.to_string().contains("weftapp.toml:3:"), "{err}");
    assert!(apps.list().is_empty());
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn running_apps_come_back_after_a_kernel_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let b = bundle(tmp.path(), "1.0.0", same, None).await;
    {
        let k = boot(&state).await;
        let apps = manager(&k);
        apps.install(&b, quiet()).await.expect("install");
        apps.start("hello").await.expect("start");
        k.shutdown().await.unwrap();
    }
    let k = boot(&state).await;
    let apps = manager(&k);
    let info = apps.get("hello").expect("still installed");
    assert_eq!(info.state, AppState::Running, "{:?}", info.error);
    assert!(greet(&k).await.is_ok());
    assert_eq!(calc(&k).await, json!({ "value": 8.0 }));
    assert!(k.chain().verify_integrity().ok);
    let lineage = k
        .chain()
        .verify_lineage("agent:hello.greeter")
        .expect("lineage");
    assert!(lineage.last().unwrap().parent.starts_with("bundle:"));
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_start_is_recorded_and_undone() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);
    let broken = |s: String| {
        s.replace(
            "config = { greeting = \"hello\" }",
            "config = { fail_init = true }",
        )
    };
    let b = bundle(tmp.path(), "1.0.0", broken, None).await;
    apps.install(&b, quiet()).await.expect("install");
    let err = apps.start("hello").await.unwrap_err();
    assert_eq!(err.kind(), "kernel", "{err}");
    let info = apps.get("hello").unwrap();
    assert_eq!(info.state, AppState::Failed);
    assert!(
        info.error.as_deref().unwrap_or("").contains("greeter"),
        "{:?}",
        info.error
    );
    assert!(
        k.tools().iter().all(|t| t.name != "calc"),
        "tool left registered"
    );
    assert!(k.chain().range(..).iter().any(|e| e.kind == "app.failed"));
    let err = apps.stop("hello").await.unwrap_err();
    assert_eq!(err.kind(), "bad-state");
    apps.remove("hello").await.expect("remove a failed app");
    assert!(!state.join("apps/hello").exists());
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn hooks_run_and_a_failing_install_hook_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);
    let hooked = |s: String| {
        format!("{s}\n[hooks]\non_install = \"components/wc.wasm\"\non_start = \"components/wc.wasm\"\non_stop = \"components/wc.wasm\"\non_remove = \"components/wc.wasm\"\n")
    };
    let b = bundle(tmp.path(), "1.0.0", hooked, None).await;
    apps.install(&b, quiet()).await.expect("install with hooks");
    apps.start("hello").await.expect("start with hook");
    apps.stop("hello").await.expect("stop with hook");
    apps.remove("hello").await.expect("remove with hook");

    // calc as a hook: a tool given {"event": ..} without `expr` reports an error.
    let failing = |s: String| format!("{s}\n[hooks]\non_install = \"components/calc.wasm\"\n");
    let b = bundle(tmp.path(), "2.0.0", failing, None).await;
    let err = apps.install(&b, quiet()).await.unwrap_err();
    assert_eq!(err.kind(), "hook", "{err}");
    assert!(err.to_string().contains("on_install"), "{err}");
    assert!(apps.list().is_empty());
    assert!(!state.join("apps/hello").exists());
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_app_that_cannot_come_back_is_marked_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let b = bundle(tmp.path(), "1.0.0", same, None).await;
    {
        let k = boot(&state).await;
        let apps = manager(&k);
        apps.install(&b, quiet()).await.expect("install");
        apps.start("hello").await.expect("start");
        k.shutdown().await.unwrap();
    }
    // One changed byte in an installed component, while the kernel is down.
    let probe = state.join("apps/hello/1.0.0/components/probe.wasm");
    let mut bytes = std::fs::read(&probe).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&probe, bytes).unwrap();
    let k = boot(&state).await;
    let apps = manager(&k);
    let info = apps.get("hello").expect("still installed");
    assert_eq!(info.state, AppState::Failed);
    let error = info.error.unwrap_or_default();
    assert!(
        error.contains("components/probe.wasm") && error.contains("changed on disk"),
        "{error}"
    );
    assert!(greet(&k).await.is_err());
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn component_services_run_as_agents_and_route_service_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);
    let with_service = |s: String| {
        format!("{s}\n[[services]]\nname = \"echo-svc\"\ncomponent = \"components/probe.wasm\"\nenv = {{ MODE = \"loud\" }}\n")
    };
    let b = bundle(tmp.path(), "1.0.0", with_service, None).await;
    apps.install(&b, quiet()).await.expect("install");
    let info = apps.start("hello").await.expect("start");
    assert_eq!(info.services, vec!["echo-svc".to_string()]);
    let reply = request(
        &k,
        MessageTarget::ServiceMethod {
            service: "echo-svc".into(),
            method: "shout".into(),
        },
        Payload::Text("hey".into()),
    )
    .await
    .expect("service call");
    assert_eq!(
        reply,
        Payload::Json(json!({"method": "shout", "body": "hey"}))
    );
    assert!(k.pid_of("hello.service.echo-svc").is_some());
    apps.stop("hello").await.expect("stop");
    assert!(k.services().is_empty());
    assert!(k.pid_of("hello.service.echo-svc").is_none());
    // And back again on start.
    apps.start("hello").await.expect("restart");
    assert_eq!(k.services().len(), 1);
    apps.remove("hello").await.expect("remove");
    assert!(k.services().is_empty());
    k.shutdown().await.unwrap();
}

/// An app whose agent gives up after its restarts is not shown as Running:
/// it is Degraded, naming the agent and its failure, until stopped and
/// started again.
#[tokio::test]
async fn an_agent_that_gives_up_degrades_its_app() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let k = boot(&state).await;
    let apps = manager(&k);
    let trapping = |m: String| {
        m.replace(
            "config = { greeting = \"hello\" }",
            "config = { mode = \"trap\" }",
        )
        .replace(
            "max_retries = 3, backoff_ms = 100",
            "max_retries = 1, backoff_ms = 10",
        )
    };
    let b = bundle(tmp.path(), "1.0.0", trapping, None).await;
    apps.install(&b, quiet()).await.expect("install");
    apps.start("hello").await.expect("start");
    assert_eq!(apps.get("hello").unwrap().state, AppState::Running);

    // Each message traps the agent: one restart, then it gives up.
    for _ in 0..2 {
        assert!(greet(&k).await.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = std::time::Instant::now() + Duration::from_secs(5);
    let info = loop {
        let info = apps.get("hello").unwrap();
        if info.state == AppState::Degraded || std::time::Instant::now() > end {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.state, AppState::Degraded, "{info:?}");
    let why = info.error.unwrap_or_default();
    assert!(why.contains("greeter") && why.contains("trap"), "{why}");
    assert_eq!(apps.list()[0].state, AppState::Degraded);
    let e = apps.start("hello").await.unwrap_err().to_string();
    assert!(e.contains("Degraded"), "{e}");

    apps.stop("hello").await.expect("stop");
    apps.start("hello").await.expect("start again");
    assert_eq!(apps.get("hello").unwrap().state, AppState::Running);
    k.shutdown().await.unwrap();
}

/// The `app.recovered` records on the chain, as JSON.
fn recovered(k: &Kernel) -> Vec<serde_json::Value> {
    k.chain()
        .range(0..k.chain().len())
        .into_iter()
        .filter(|e| e.kind == "app.recovered")
        .map(|e| e.payload_json().unwrap())
        .collect()
}

fn registry(state: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state.join("apps/registry.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// What a kernel killed in mid-upgrade leaves: the journal, the staged
/// version; with the record not yet on the chain, boot undoes the upgrade
/// (and starts the app it had stopped); with it, boot finishes it.
#[tokio::test]
async fn an_upgrade_cut_off_by_a_crash_is_undone_or_finished_at_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let v1 = bundle(tmp.path(), "1.0.0", same, None).await;
    let v2 = bundle(tmp.path(), "2.0.0", same, None).await;
    let apps_dir = state.join("apps");

    // Not committed: staged 2.0.0, app stopped for the upgrade, no record.
    let from_seq = {
        let k = boot(&state).await;
        let apps = manager(&k);
        apps.install(&v1, quiet()).await.expect("install");
        apps.start("hello").await.expect("start");
        apps.stop("hello").await.expect("stop");
        let n = k.chain().len();
        k.shutdown().await.unwrap();
        n
    };
    copy_dir(&apps_dir.join("hello/1.0.0"), &apps_dir.join("hello/2.0.0"));
    let mut after = registry(&state)["apps"]["hello"].clone();
    after["version"] = json!("2.0.0");
    after["state"] = json!("Running");
    let intent = json!({
        "kind": "app.upgrade", "name": "hello", "version": "2.0.0", "from_seq": from_seq,
        "after": after, "drop_on_commit": [apps_dir.join("hello/1.0.0")],
        "drop_on_abort": [apps_dir.join("hello/2.0.0")], "restore_state": "Running",
    });
    std::fs::write(apps_dir.join(weft_apps::INTENT_FILE), intent.to_string()).unwrap();
    {
        let k = boot(&state).await;
        let apps = manager(&k);
        let info = apps.get("hello").unwrap();
        assert_eq!(
            (info.version.as_str(), info.state),
            ("1.0.0", AppState::Running),
            "{:?}",
            info.error
        );
        assert!(greet(&k).await.is_ok());
        assert!(
            !apps_dir.join("hello/2.0.0").exists(),
            "the staged version is left"
        );
        assert!(!apps_dir.join(weft_apps::INTENT_FILE).exists());
        let r = recovered(&k);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (&r[0]["outcome"], &r[0]["record"]),
            (&json!("undone"), &json!(null))
        );

        // Committed: a real upgrade, then the registry and the old version
        // put back as a kill right after the record would have left them.
        let before = std::fs::read(apps_dir.join("registry.json")).unwrap();
        copy_dir(&apps_dir.join("hello/1.0.0"), &tmp.path().join("old"));
        let from_seq = k.chain().len();
        apps.upgrade("hello", &v2, quiet()).await.expect("upgrade");
        let mut after = registry(&state)["apps"]["hello"].clone();
        let seq = after["install_seq"].as_u64().unwrap();
        after["install_seq"] = json!(0);
        k.shutdown().await.unwrap();
        std::fs::write(apps_dir.join("registry.json"), before).unwrap();
        copy_dir(&tmp.path().join("old"), &apps_dir.join("hello/1.0.0"));
        let intent = json!({
            "kind": "app.upgrade", "name": "hello", "version": "2.0.0", "from_seq": from_seq,
            "after": after, "drop_on_commit": [apps_dir.join("hello/1.0.0")],
            "drop_on_abort": [apps_dir.join("hello/2.0.0")], "restore_state": "Running",
        });
        std::fs::write(apps_dir.join(weft_apps::INTENT_FILE), intent.to_string()).unwrap();
        let k = boot(&state).await;
        let apps = manager(&k);
        let info = apps.get("hello").unwrap();
        assert_eq!(
            (info.version.as_str(), info.state, info.install_seq),
            ("2.0.0", AppState::Running, seq),
            "{:?}",
            info.error
        );
        assert!(greet(&k).await.is_ok());
        assert!(
            !apps_dir.join("hello/1.0.0").exists(),
            "the replaced version is left"
        );
        let r = recovered(&k);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (&r[1]["outcome"], &r[1]["record"]),
            (&json!("finished"), &json!(seq))
        );
        assert!(k.chain().verify_integrity().ok);
        k.shutdown().await.unwrap();
    }
}
