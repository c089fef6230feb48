//! The official WebAssembly/wasi-testsuite, its prebuilt `wasm32-wasip1`
//! tests (vendored under `tests/wasi-testsuite/`, see its README), run as
//! the core modules they are by `weaver tool run --file`, with the
//! reference runner's semantics for each test's JSON: `args` after the
//! program name, `env`, `root` preopened as `/` (a fresh copy per test),
//! `exit_code` (default 0) compared exactly, `stdout`/`stderr` as
//! prefixes of what the program wrote. Every test must pass.
//!
//! `just test-wasi` runs only this.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;
use weft_e2e::{shared_cache_dir, weaver_bin};

/// What one test's JSON asks for (the keys the reference runner knows
/// for `wasm32-wasip1` command tests).
#[derive(Debug, Default)]
struct Spec {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    root: Option<PathBuf>,
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wasi-testsuite")
}

fn spec(wasm: &Path) -> Spec {
    let json = wasm.with_extension("json");
    let Ok(text) = std::fs::read_to_string(&json) else {
        return Spec::default();
    };
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", json.display()));
    let obj = v.as_object().expect("a test's JSON is an object");
    for k in obj.keys() {
        // A key this runner does not implement must fail loudly, never be
        // skipped (the suite grows).
        assert!(
            ["args", "env", "root", "exit_code", "stdout", "stderr"].contains(&k.as_str()),
            "{}: unknown key `{k}`",
            json.display()
        );
    }
    Spec {
        args: obj
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("args are strings").to_string())
                    .collect()
            })
            .unwrap_or_default(),
        env: obj
            .get("env")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().expect("env values are strings").into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        root: obj
            .get("root")
            .and_then(Value::as_str)
            .map(|r| json.parent().expect("in a dir").join(r)),
        exit_code: obj
            .get("exit_code")
            .and_then(Value::as_i64)
            .map_or(0, |c| c as i32),
        stdout: obj.get("stdout").and_then(Value::as_str).map(String::from),
        stderr: obj.get("stderr").and_then(Value::as_str).map(String::from),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        let dest = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dest);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Run one test; `Err` says how it failed.
fn run_one(wasm: &Path) -> Result<(), String> {
    let s = spec(wasm);
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(weaver_bin());
    cmd.args(["tool", "run", "--file"])
        .arg(wasm)
        .env("WEFT_CACHE_DIR", shared_cache_dir())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(root) = &s.root {
        let copy = tmp.path().join("root");
        copy_dir(root, &copy);
        cmd.arg("--dir").arg(format!("{}::/", copy.display()));
    }
    for (k, v) in &s.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg("--").args(&s.args);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run weaver: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    let show = || format!("\n  stdout: {stdout:?}\n  stderr: {stderr:?}");
    if code != s.exit_code {
        return Err(format!(
            "exit code {code}, expected {}{}",
            s.exit_code,
            show()
        ));
    }
    for (name, want, got) in [
        ("stdout", &s.stdout, &stdout),
        ("stderr", &s.stderr, &stderr),
    ] {
        if let Some(w) = want {
            if !got.starts_with(w.as_str()) {
                return Err(format!("{name} does not start with {w:?}{}", show()));
            }
        }
    }
    Ok(())
}

#[test]
fn wasi_testsuite_wasm32_wasip1_passes_in_full() {
    let mut tests: Vec<PathBuf> = ["assemblyscript", "c", "rust"]
        .iter()
        .flat_map(|suite| {
            std::fs::read_dir(suite_dir().join(suite))
                .unwrap_or_else(|e| panic!("tests/wasi-testsuite/{suite}: {e}"))
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect::<Vec<_>>()
        })
        .collect();
    tests.sort();
    assert_eq!(
        tests.len(),
        72,
        "the vendored suite has 72 wasm32-wasip1 tests"
    );
    let next = Mutex::new(tests.iter());
    let failures = Mutex::new(Vec::new());
    // Two workers: the machine has two cores, and each run is one process.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some(t) = next.lock().unwrap().next() else {
                    break;
                };
                let name = t.strip_prefix(suite_dir()).unwrap().display().to_string();
                match run_one(t) {
                    Ok(()) => eprintln!("pass  {name}"),
                    Err(why) => {
                        eprintln!("FAIL  {name}: {why}");
                        failures.lock().unwrap().push(format!("{name}: {why}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "wasi-testsuite: {} passed, {} failed",
        tests.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}
