//! `weaver new` templates, end to end through the real `weaver`: each one is
//! generated into an empty directory, built by its own `build.sh` (which
//! installs a missing toolchain at Weft's pinned versions, or fails saying
//! which is missing), installed unsigned into a fresh kernel's `dev`
//! environment, started and talked to the way its README says.
//!
//! By default the three Rust templates and the C agent (toolchains that
//! `just build` already installed); `WEFT_TEMPLATES=all` (`just
//! test-templates`) builds all twelve, or name some:
//! `WEFT_TEMPLATES=python-tool,js-service`. Nothing is skipped: a template
//! that cannot be built fails the test with its build's output.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use weft_e2e::{start_kernel, weaver, weaver_at, weaver_bin, Run};

const LANGS: [&str; 4] = ["rust", "c", "python", "js"];
const KINDS: [&str; 3] = ["agent", "tool", "service"];
const DEFAULT: [&str; 4] = ["rust-agent", "rust-tool", "rust-service", "c-agent"];

/// The templates to test, as `LANG-KIND`.
fn selected() -> Vec<String> {
    let all: Vec<String> = LANGS
        .iter()
        .flat_map(|l| KINDS.iter().map(move |k| format!("{l}-{k}")))
        .collect();
    match std::env::var("WEFT_TEMPLATES") {
        Ok(v) if v == "all" => all,
        Ok(v) if !v.trim().is_empty() => {
            let picked: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
            for p in &picked {
                assert!(
                    all.contains(p),
                    "WEFT_TEMPLATES: unknown template {p:?} (want LANG-KIND, e.g. c-tool, or all)"
                );
            }
            picked
        }
        _ => DEFAULT.iter().map(|s| s.to_string()).collect(),
    }
}

/// `weaver ARGS` on `state`, which must succeed.
fn ok(state: &Path, args: &[&str]) -> Result<Run, String> {
    let r = weaver_at(state, args);
    if r.code != 0 {
        return Err(format!(
            "weaver {args:?} exited {}: {}{}",
            r.code, r.stdout, r.stderr
        ));
    }
    Ok(r)
}

fn json_of(r: &Run) -> Result<Value, String> {
    serde_json::from_str(r.stdout.trim()).map_err(|e| format!("not JSON ({e}): {}", r.stdout))
}

fn expect(what: &str, got: &Value, want: &Value) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {got}"))
    }
}

/// Builds the project in `dir` with its build.sh; Rust projects share one
/// target dir so wit-bindgen compiles once. Returns the seconds it took.
fn build(dir: &Path, lang: &str, cargo_target: &Path) -> Result<u64, String> {
    let start = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join("build.sh"))
        .current_dir(dir)
        .env("WEAVER", weaver_bin());
    if lang == "rust" {
        cmd.env("CARGO_TARGET_DIR", cargo_target);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running bash build.sh: {e}"))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!(
            "build.sh failed ({}); a missing toolchain is named in its output:\n{log}",
            out.status
        ));
    }
    print!("{log}");
    Ok(start.elapsed().as_secs())
}

/// Talks to the started app `name` of `kind` as its README says.
fn talk(state: &Path, kind: &str, name: &str) -> Result<(), String> {
    match kind {
        "agent" => {
            let agent = format!("{name}.{name}");
            let r = ok(state, &["agent", "send", &agent, "hello"])?;
            expect(
                "first reply",
                &json_of(&r)?,
                &json!({"agent": agent, "n": 1, "echo": "hello"}),
            )?;
            let r = ok(state, &["agent", "send", &agent, "--json", r#"{"x": 1}"#])?;
            expect(
                "second reply",
                &json_of(&r)?,
                &json!({"agent": agent, "n": 2, "echo": {"x": 1}}),
            )?;
            // Its `log` syscalls land in the kernel's log under its name.
            let logs = ok(state, &["kernel", "logs", "--source", name])?.stdout;
            if !(logs.contains("is ready") && logs.contains("message 2 from operator")) {
                return Err(format!(
                    "the agent's log lines are not in `kernel logs`:\n{logs}"
                ));
            }
        }
        "tool" => {
            let r = ok(
                state,
                &["tool", "run", name, "--", r#"{"text": "one two  three"}"#],
            )?;
            expect(
                "tool result",
                &json_of(&r)?,
                &json!({"words": 3, "chars": 14}),
            )?;
            let ls = ok(state, &["tool", "ls"])?.stdout;
            if !ls.contains("Counts the words and characters of a text.") {
                return Err(format!("`tool ls` does not show describe()'s text:\n{ls}"));
            }
            let r = weaver_at(state, &["tool", "run", name, "--", r#"{"txt": 1}"#]);
            if r.code != 1 || !r.stderr.contains("expected {\"text\"") {
                return Err(format!(
                    "bad input: expected exit 1 naming the input, got {}: {}{}",
                    r.code, r.stdout, r.stderr
                ));
            }
        }
        "service" => {
            let r = ok(
                state,
                &["agent", "send", name, "--method", "hello", "world"],
            )?;
            expect(
                "hello",
                &json_of(&r)?,
                &json!({"hello": "world", "calls": 1}),
            )?;
            let r = ok(state, &["agent", "send", name, "--method", "count", ""])?;
            expect("count", &json_of(&r)?, &json!({"calls": 1}))?;
            let r = weaver_at(state, &["agent", "send", name, "--method", "nope", "x"]);
            if r.code == 0 || !r.stderr.contains("unknown method `nope`") {
                return Err(format!(
                    "unknown method: expected an error naming it, got {}: {}{}",
                    r.code, r.stdout, r.stderr
                ));
            }
        }
        other => return Err(format!("unknown kind {other}")),
    }
    Ok(())
}

/// Generate, build, install, start and talk to one template.
fn one(work: &Path, state: &Path, lang: &str, kind: &str) -> Result<u64, String> {
    let name = format!("{lang}-{kind}");
    let dir = work.join(&name);
    let r = weaver(
        &[
            "new",
            kind,
            &name,
            "--lang",
            lang,
            "--dir",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    if r.code != 0 {
        return Err(format!("weaver new failed: {}{}", r.stdout, r.stderr));
    }
    let secs = build(&dir, lang, &work.join("cargo-target"))?;
    let bundle = dir.join(format!("{name}.weftapp"));
    ok(state, &["app", "install", bundle.to_str().unwrap()])?;
    ok(state, &["app", "start", &name])?;
    talk(state, kind, &name)?;
    ok(state, &["app", "stop", &name])?;
    Ok(secs)
}

#[test]
fn weaver_new_templates_build_install_and_answer() {
    let picked = selected();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let _kernel = start_kernel(&state, &[]);
    let mut failures = Vec::new();
    let mut times = Vec::new();
    for t in &picked {
        let (lang, kind) = t.split_once('-').unwrap();
        println!("== {t}");
        match one(tmp.path(), &state, lang, kind) {
            Ok(secs) => times.push(format!("{t}: built in {secs} s, answered")),
            Err(e) => failures.push(format!("{t}: {e}")),
        }
    }
    println!("\n{}", times.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} templates failed:\n\n{}",
        failures.len(),
        picked.len(),
        failures.join("\n\n")
    );
    // Everything the templates did went through the gate onto the chain.
    let r = ok(&state, &["chain", "verify"]).unwrap();
    assert!(r.stdout.starts_with("ok"), "{}", r.stdout);
}
