//! The runtime against real guests: good ones, and hostile ones that must
//! each fail with the right error kind, within their limit, leaving the
//! runtime able to serve the next call.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use weft_runtime::{
    ComponentKind, DirGrant, Extensions, Grants, Limits, LoadSource, Preemption, RunError, Runtime,
    RuntimeConfig,
};
use weft_testkit::{guest, shared_cache_dir};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        timeout: Duration::from_secs(5),
        max_memory_bytes: 32 << 20,
        max_output_bytes: 64 << 10,
        ..Limits::default()
    }
}

async fn misbehave(rt: &Runtime, mode: &str, limits: &Limits) -> RunError {
    let c = rt.load_file(&guest("misbehave")).unwrap();
    let input = format!(r#"{{"mode":"{mode}"}}"#);
    match rt.run_tool(&c, &input, limits, &Grants::default()).await {
        Ok(o) => panic!("mode {mode} should have failed, got {:?}", o.result),
        Err(e) => e.error,
    }
}

/// After any failure, the same runtime still runs a good guest correctly.
async fn still_serves(rt: &Runtime) {
    let calc = rt.load_file(&guest("calc")).unwrap();
    let out = rt
        .run_tool(&calc, r#"{"expr":"6*7"}"#, &limits(), &Grants::default())
        .await
        .expect("good guest after a failure");
    assert_eq!(out.result.unwrap(), serde_json::json!({"value": 42.0}));
}

#[tokio::test]
async fn tool_describe_and_invoke() {
    let rt = runtime();
    let calc = rt.load_file(&guest("calc")).unwrap();
    assert_eq!(calc.kind, ComponentKind::Tool);
    let info = rt.describe_tool(&calc, &limits()).await.unwrap();
    assert_eq!(info.name, "calc");
    let schema: serde_json::Value = serde_json::from_str(&info.params_schema).unwrap();
    assert_eq!(schema["required"][0], "expr");

    let out = rt
        .run_tool(
            &calc,
            r#"{"expr":"2*(x+1)","vars":{"x":3}}"#,
            &limits(),
            &Grants::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.result.unwrap()["value"], 8.0);
    assert!(out.usage.fuel_used > 0 && out.usage.fuel_used < limits().fuel);

    let bad = rt
        .run_tool(&calc, r#"{"expr":"1+"}"#, &limits(), &Grants::default())
        .await
        .unwrap();
    assert!(
        matches!(bad.result, Err(weft_runtime::ToolFailure::InvalidInput(ref m)) if m.contains("end of expression"))
    );

    let not_json = rt
        .run_tool(&calc, "{nope", &limits(), &Grants::default())
        .await
        .unwrap();
    assert!(matches!(
        not_json.result,
        Err(weft_runtime::ToolFailure::InvalidInput(_))
    ));
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel() {
    let rt = runtime();
    let l = Limits {
        fuel: 10_000_000,
        ..limits()
    };
    let start = Instant::now();
    let e = misbehave(&rt, "loop", &l).await;
    assert!(
        matches!(
            e,
            RunError::OutOfFuel {
                budget: 10_000_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), "out of fuel");
    assert!(start.elapsed() < Duration::from_secs(2));
    still_serves(&rt).await;
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    loop_hits_the_deadline(runtime()).await;
}

/// The finer, costlier mode stops the same guest.
#[tokio::test]
async fn infinite_loop_hits_the_deadline_with_epochs() {
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        preemption: Preemption::Epochs {
            tick: Duration::from_millis(1),
        },
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    loop_hits_the_deadline(rt).await;
}

async fn loop_hits_the_deadline(rt: Runtime) {
    let l = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(200),
        ..limits()
    };
    let start = Instant::now();
    let e = misbehave(&rt, "loop", &l).await;
    let took = start.elapsed();
    assert!(matches!(e, RunError::Timeout { .. }), "{e:?}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let rt = runtime();
    let e = misbehave(&rt, "alloc", &limits()).await;
    match &e {
        RunError::MemoryLimit {
            what,
            requested,
            limit,
            ..
        } => {
            assert_eq!(*what, "memory");
            assert_eq!(*limit, 32 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected memory limit, got {other:?}"),
    }
    still_serves(&rt).await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let rt = runtime();
    let e = misbehave(&rt, "recurse", &limits()).await;
    assert!(matches!(e, RunError::StackOverflow { .. }), "{e:?}");
    still_serves(&rt).await;
}

#[tokio::test]
async fn panic_is_a_trap_with_the_guest_message() {
    let rt = runtime();
    let e = misbehave(&rt, "panic", &limits()).await;
    match &e {
        RunError::Trap { guest, .. } => {
            let said = guest.stderr_tail.as_deref().unwrap_or_default();
            assert!(said.contains("misbehave was asked to panic"), "{said}");
            assert!(guest.backtrace.is_some());
        }
        other => panic!("expected trap, got {other:?}"),
    }
    assert!(e.to_string().contains("misbehave was asked to panic"));
    still_serves(&rt).await;
}

#[tokio::test]
async fn output_flood_hits_the_output_limit() {
    let rt = runtime();
    let e = misbehave(&rt, "flood", &limits()).await;
    assert!(
        matches!(e, RunError::OutputLimit { stream: "stdout", limit } if limit == 64 << 10),
        "{e:?}"
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn every_failure_in_a_row_on_one_runtime() {
    let rt = runtime();
    let l = Limits {
        fuel: 200_000_000,
        timeout: Duration::from_secs(2),
        ..limits()
    };
    for (mode, kind) in [
        ("loop", "out of fuel"),
        ("alloc", "memory limit"),
        ("recurse", "stack overflow"),
        ("panic", "trap"),
        ("flood", "output limit"),
    ] {
        assert_eq!(misbehave(&rt, mode, &l).await.kind(), kind, "mode {mode}");
        still_serves(&rt).await;
    }
}

#[tokio::test]
async fn invalid_components_are_named() {
    let rt = runtime();
    let e = rt.load(b"definitely not wasm").unwrap_err();
    assert_eq!(e.kind(), "invalid component");
    assert!(e.to_string().contains("bad magic"));

    // A core module (version 1, layer 0) loads, but one without `_start`
    // is no program: running it says what it is.
    let core = rt.load(b"\0asm\x01\0\0\0").unwrap();
    assert_eq!(core.kind, ComponentKind::Other);
    let e = rt
        .run_command(&core, &limits(), &Grants::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("core wasm module"), "{e}");
    assert!(e.to_string().contains("`_start`"), "{e}");

    // A truncated component.
    let bytes = std::fs::read(guest("calc")).unwrap();
    let e = rt.load(&bytes[..bytes.len() / 2]).unwrap_err();
    assert_eq!(e.kind(), "invalid component");

    // A command is not a tool: the error names what it does export.
    let wc = rt.load_file(&guest("wc")).unwrap();
    let e = rt
        .run_tool(&wc, "{}", &limits(), &Grants::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "invalid component");
    assert!(e.to_string().contains("wasi:cli/run"), "{e}");
    still_serves(&rt).await;
}

#[tokio::test]
async fn command_runs_unchanged_with_stdin_and_args() {
    let rt = runtime();
    let wc = rt.load_file(&guest("wc")).unwrap();
    assert_eq!(wc.kind, ComponentKind::Command);
    let g = Grants {
        args: vec!["wc".into()],
        stdin: b"one two\nthree\n".to_vec(),
        ..Grants::default()
    };
    let out = rt.run_command(&wc, &limits(), &g).await.unwrap();
    assert_eq!(out.exit_code, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let nums: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(nums, ["2", "3", "14"]);
}

#[tokio::test]
async fn wasi_is_deny_by_default_and_grants_work() {
    let rt = runtime();
    let wc = rt.load_file(&guest("wc")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "a b c\n").unwrap();
    let host_path = dir.path().join("f.txt").display().to_string();

    // No grant: the host path does not exist for the guest.
    let g = Grants {
        args: vec!["wc".into(), host_path.clone()],
        ..Grants::default()
    };
    let out = rt.run_command(&wc, &limits(), &g).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wc:"));

    // Read-only grant of the directory.
    let g = Grants {
        args: vec!["wc".into(), "/data/f.txt".into()],
        dirs: vec![DirGrant {
            host: dir.path().to_path_buf(),
            guest: "/data".into(),
            read_only: true,
        }],
        ..Grants::default()
    };
    let out = rt.run_command(&wc, &limits(), &g).await.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/data/f.txt"));
}

#[tokio::test]
async fn compiled_artifacts_come_back_from_the_disk_cache() {
    let tmp = tempfile::tempdir().unwrap();
    // A subdir: the runtime creates it 0700 (a tempdir is 0755, refused).
    let dir = tmp.path().join("components");
    let config = RuntimeConfig {
        cache_dir: Some(dir.clone()),
        ..RuntimeConfig::default()
    };
    let bytes = std::fs::read(guest("calc")).unwrap();
    let first = Runtime::new(config.clone()).unwrap();
    assert_eq!(first.load(&bytes).unwrap().source, LoadSource::Compiled);
    assert_eq!(first.load(&bytes).unwrap().source, LoadSource::Memory);
    let second = Runtime::new(config.clone()).unwrap();
    let c = second.load(&bytes).unwrap();
    assert_eq!(c.source, LoadSource::DiskCache);
    let out = second
        .run_tool(&c, r#"{"expr":"1+1"}"#, &limits(), &Grants::default())
        .await
        .unwrap();
    assert_eq!(out.result.unwrap()["value"], 2.0);

    // A damaged cache entry is dropped and rebuilt, not trusted. (Release
    // the mappings first: the cache itself never rewrites a file in place.)
    drop((first, second, c));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::write(&p, b"garbage").unwrap();
    }
    let third = Runtime::new(config).unwrap();
    assert_eq!(third.load(&bytes).unwrap().source, LoadSource::Compiled);
}

/// A guest stuck in a loop must not hold the only worker thread: fuel
/// yields let another guest finish first.
#[tokio::test(flavor = "current_thread")]
async fn busy_guest_yields_to_others() {
    let rt = runtime();
    let hog_limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(3),
        ..limits()
    };
    let rt2 = rt.clone();
    let hog = tokio::spawn(async move {
        let c = rt2.load_file(&guest("misbehave")).unwrap();
        let start = Instant::now();
        let r = rt2
            .run_tool(&c, r#"{"mode":"loop"}"#, &hog_limits, &Grants::default())
            .await;
        (r.map(|_| ()).map_err(|f| f.error), start.elapsed())
    });
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    still_serves(&rt).await;
    let quick = start.elapsed();
    let (r, hog_took) = hog.await.unwrap();
    assert_eq!(r.unwrap_err().kind(), "timeout");
    assert!(
        quick < Duration::from_secs(1),
        "good guest waited {quick:?} behind the hog"
    );
    assert!(hog_took >= Duration::from_secs(3));
}

/// Synchronous callers (the gate calling the governance component) get the
/// same deadline from `guard_blocking`, on a thread with no async runtime
/// driving it, and the runtime serves afterwards.
#[test]
fn a_blocking_call_is_dropped_at_its_deadline() {
    let rt = runtime();
    let c = rt.load_file(&guest("misbehave")).unwrap();
    let pre = rt.tool_pre(&c).unwrap();
    let l = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(200),
        ..limits()
    };
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let _enter = tokio.enter();
    let mut store = rt
        .new_store(&l, &Grants::default(), Extensions::default())
        .unwrap();
    let start = Instant::now();
    let e = rt
        .guard_blocking(&mut store, &l, async |s| {
            let tool = pre.instantiate_async(&mut *s).await?;
            tool.call_invoke(&mut *s, &r#"{"mode":"loop"}"#.to_string())
                .await
        })
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, RunError::Timeout { .. }), "{e:?}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    tokio.block_on(still_serves(&rt));
}
