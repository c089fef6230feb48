//! The control socket and the `weaver` commands that talk to a running
//! kernel, driven as a user would: one background `weaver run`, then the CLI.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use weft_e2e::{guest, start_kernel, weaver, weaver_at as w, KernelProc as Kernel, Run};

fn start(state: &Path) -> Kernel {
    let calc = format!("calc={}", guest("calc").display());
    start_with(state, &["--tool", &calc])
}

/// `weaver run` with the echo agent and `extra` arguments, in the background.
fn start_with(state: &Path, extra: &[&str]) -> Kernel {
    let probe = format!("echo={}", guest("probe").display());
    let mut args = vec!["--spawn", probe.as_str()];
    args.extend(extra);
    start_kernel(state, &args)
}

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

fn assert_no_kernel(r: &Run, state: &Path) {
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Commands may add a hint after the state dir (e.g. how to read the chain offline).
    let want = format!(
        "no kernel is running on {} (start one with: weaver run --state {}",
        state.display(),
        state.display()
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
}

#[test]
fn commands_drive_a_running_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut kernel = start(s);

    // kernel status, human and JSON.
    let r = ok(s, &["kernel", "status"]);
    assert!(r.stdout.contains("Running"), "{}", r.stdout);
    let status = ok(s, &["kernel", "status", "--json"]).json();
    assert_eq!(status["processes"], 1);
    let key = status["chain"]["public_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    assert!(
        status["subsystems"]["cron"]
            .as_str()
            .is_some_and(|c| c.ends_with("jobs")),
        "{status}"
    );

    let logs = ok(s, &["kernel", "logs", "--json"]).json();
    assert!(!logs.as_array().unwrap().is_empty());
    ok(s, &["kernel", "logs", "--level", "warn"]);
    assert_eq!(w(s, &["kernel", "logs", "--level", "loud"]).code, 64);

    // ps and tools.
    let r = ok(s, &["ps"]);
    assert!(r.stdout.starts_with("PID"), "{}", r.stdout);
    assert!(r.stdout.contains("echo"), "{}", r.stdout);
    assert_eq!(ok(s, &["ps", "--json"]).json()[0]["name"], "echo");
    assert!(ok(s, &["tool", "ls"]).stdout.contains("calc"));
    let r = ok(
        s,
        &[
            "tool",
            "run",
            "calc",
            "--",
            r#"{"expr": "2 * (x + 1)", "vars": {"x": 3}}"#,
        ],
    );
    assert_eq!(r.stdout.trim(), r#"{"value":8.0}"#);
    let r = w(s, &["tool", "run", "calc", "--", r#"{"expr": "1 +"}"#]);
    assert_eq!(r.code, 1, "a tool error: {}", r.stderr);
    assert_eq!(w(s, &["tool", "run", "nosuch"]).code, 1);
    // A file still runs with no kernel involved.
    let calc = guest("calc");
    let r = weaver(
        &[
            "tool",
            "run",
            calc.to_str().unwrap(),
            "--",
            r#"{"expr": "1+1"}"#,
        ],
        b"",
    );
    assert_eq!(r.stdout.trim(), r#"{"value":2.0}"#, "{}", r.stderr);

    // Request/reply with the echo agent.
    assert_eq!(
        ok(s, &["agent", "send", "echo", "hello"]).stdout.trim(),
        "hello"
    );
    let r = ok(s, &["agent", "send", "echo", r#"{"n": 1}"#, "--json"]);
    assert_eq!(r.stdout.trim(), r#"{"n":1}"#);
    assert_eq!(w(s, &["agent", "send", "nobody", "hi"]).code, 1);

    // The live chain, and the offline forms still work.
    let r = ok(s, &["chain", "tail", "-n", "3"]);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    assert!(r.stdout.contains("ipc.send"), "{}", r.stdout);
    assert!(ok(s, &["chain", "verify"]).stdout.starts_with("ok:"));
    // The live verify checks gate records too; each decision, repeated or
    // not, is its own leaf with its own receipt.
    for _ in 0..2 {
        ok(s, &["tool", "run", "calc", "--", r#"{"expr": "7"}"#]);
    }
    let v = ok(s, &["chain", "verify", "--json"]).json();
    assert_eq!(v["receipts"]["ok"], true, "{v}");
    assert!(v["receipts"]["receipts"].as_u64().unwrap() >= 2, "{v}");
    let key = v["public_key"].as_str().unwrap().to_string();
    let permit = ok(s, &["chain", "tail", "-n", "40"])
        .stdout
        .lines()
        .rfind(|l| l.contains("gate.permit"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .expect("a gate.permit among the last events");
    let receipt = s.join("receipt.json");
    ok(
        s,
        &["chain", "prove", &permit, "-o", receipt.to_str().unwrap()],
    );
    let r = ok(
        s,
        &[
            "chain",
            "verify-receipt",
            receipt.to_str().unwrap(),
            "--key",
            &key,
        ],
    );
    assert!(r.stdout.starts_with("ok: event"), "{}", r.stdout);
    assert!(r.stdout.contains("gate decision: permit"), "{}", r.stdout);
    let mut bytes = std::fs::read(&receipt).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&receipt, &bytes).unwrap();
    let r = w(
        s,
        &[
            "chain",
            "verify-receipt",
            receipt.to_str().unwrap(),
            "--key",
            &key,
        ],
    );
    assert_eq!(r.code, 2, "a flipped receipt passed: {}", r.stdout);
    let c = ok(s, &["chain", "consistency", "1", "5"]);
    assert!(c.stderr.starts_with("ok:"), "{}", c.stderr);
    let export = ok(s, &["chain", "export"]);
    assert!(export.stdout.lines().count() > 10);
    let r = weaver(
        &["chain", "verify", s.to_str().unwrap(), "--key", &key],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = w(s, &["chain", "verify", s.to_str().unwrap()]);
    assert_eq!(r.code, 64, "a FILE needs --key: {}", r.stderr);

    let r = ok(s, &["tree", "ls"]);
    assert!(r.stdout.contains("/kernel/agents/echo"), "{}", r.stdout);
    assert_eq!(w(s, &["tree", "ls", "/nope"]).code, 1);

    // Governance: the rules in force, then the gate both ways.
    let r = ok(s, &["gov", "rules"]);
    assert!(r.stdout.contains("risky-execution"), "{}", r.stdout);
    let r = ok(
        s,
        &[
            "gov",
            "check",
            "echo",
            "tool.exec.calc",
            "--effect",
            "risk=0.1",
        ],
    );
    assert_eq!(r.stdout.trim(), "permit");
    let r = w(
        s,
        &[
            "gov",
            "check",
            "echo",
            "tool.exec.calc",
            "--effect",
            "risk=3,security=2",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.starts_with("deny:"), "{}", r.stdout);
    assert_eq!(
        w(s, &["gov", "check", "echo", "x", "--effect", "risk=high"]).code,
        64
    );

    // Cron.
    let job = ok(
        s,
        &[
            "cron",
            "add",
            "every 1h",
            "echo",
            "--payload",
            r#"{"tick":1}"#,
            "--json",
        ],
    )
    .json();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(ok(s, &["cron", "ls"]).stdout.contains(&id));
    ok(s, &["cron", "rm", &id]);
    assert!(ok(s, &["cron", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(w(s, &["cron", "rm", &id]).code, 1);
    assert_eq!(w(s, &["cron", "add", "not a schedule", "echo"]).code, 1);

    assert!(ok(s, &["health"]).stdout.contains("overall: healthy"));
    assert_eq!(ok(s, &["health", "--json"]).json()["overall"], "healthy");

    // Trust store: works beside the kernel (and without one, below).
    ok(s, &["trust", "add", "ops", &key]);
    assert!(ok(s, &["trust", "ls"]).stdout.contains(&key));
    assert_eq!(w(s, &["trust", "add", "bad", "abcd"]).code, 1);

    // Owner-only socket; the kernel holds the state lock.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.join("control.sock")), 0o600);
    assert!(s.join("kernel.lock").exists());

    // A second kernel on the same state refuses to start.
    let r = w(s, &["run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("already running"), "{}", r.stderr);

    // Stop through the socket; the process exits cleanly and the socket goes.
    ok(s, &["kernel", "stop"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = kernel.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "kernel did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!s.join("control.sock").exists());

    // With no kernel: the how-to-start message and exit 2.
    for args in [
        &["ps"][..],
        &["kernel", "status"],
        &["tool", "run", "calc"],
        &["chain", "verify"],
    ] {
        assert_no_kernel(&w(s, args), s);
    }
    assert!(ok(s, &["trust", "ls", "--json"]).stdout.contains("ops"));
    // With no kernel, changes are queued for its next boot, checked now.
    assert!(ok(s, &["trust", "rm", "ops"]).stdout.contains("queued"));
    assert_eq!(w(s, &["trust", "rm", "ops"]).code, 1);
    let listed = ok(s, &["trust", "ls", "--json"]).json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["queued"] == "remove"),
        "{listed}"
    );
}

#[test]
fn a_stale_socket_is_replaced_and_bad_requests_get_errors() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    // A socket file nobody answers on, as a killed kernel leaves behind.
    drop(UnixListener::bind(s.join("control.sock")).unwrap());
    assert_no_kernel(&w(s, &["ps"]), s);
    let _kernel = start(s);
    // `start` saw the old file; wait for the new kernel to answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while w(s, &["ps"]).code != 0 {
        assert!(Instant::now() < deadline, "kernel never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut conn = UnixStream::connect(s.join("control.sock")).unwrap();
    conn.write_all(
        b"not json\n{\"id\": 3, \"unit\": \"nope\", \"request\": {\"op\": \"x\"}}\n\
          {\"id\": 4, \"unit\": \"agents\", \"request\": {\"op\": \"ps\"}}\n",
    )
    .unwrap();
    let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let a = next();
    assert_eq!(
        (a["ok"].as_bool(), a["error"]["kind"].as_str()),
        (Some(false), Some("bad request"))
    );
    let b = next();
    assert_eq!(
        (b["id"].as_u64(), b["error"]["kind"].as_str()),
        (Some(3), Some("unknown command"))
    );
    let c = next();
    assert_eq!((c["id"].as_u64(), c["ok"].as_bool()), (Some(4), Some(true)));
    assert_eq!(c["result"][0]["name"], "echo");

    // An oversized line is refused, and the kernel keeps serving.
    let mut big = UnixStream::connect(s.join("control.sock")).unwrap();
    let _ = big.write_all(&vec![b'x'; 2 * 1024 * 1024]);
    let mut line = String::new();
    BufReader::new(big).read_line(&mut line).unwrap();
    assert!(line.contains("longer than"), "{line}");
    assert_eq!(
        ok(s, &["kernel", "status", "--json"]).json()["state"],
        "Running"
    );
}

#[test]
fn apps_are_packed_trusted_installed_and_run_through_the_kernel() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;

    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let s = s.as_path();
    // A copy of the example app with its components, signed with a test key.
    let app = dir.path().join("hello");
    std::fs::create_dir_all(app.join("components")).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/hello/weftapp.toml");
    std::fs::copy(example, app.join("weftapp.toml")).unwrap();
    for g in ["probe", "calc"] {
        std::fs::copy(guest(g), app.join(format!("components/{g}.wasm"))).unwrap();
    }
    let key = dir.path().join("key.hex");
    std::fs::write(&key, format!("{:064x}", 7)).unwrap();
    let archive = dir.path().join("hello.weftapp");
    let r = weaver(
        &[
            "app",
            "pack",
            app.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-o",
            archive.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let signer = r
        .stdout
        .split("signed by ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    // With no kernel the change is queued, and made (gated, recorded) at boot.
    let r = ok(s, &["trust", "add", "dev", &signer]);
    assert!(r.stdout.contains("queued"), "{}", r.stdout);

    assert_no_kernel(&w(s, &["app", "ls"]), s);
    let _kernel = start_with(s, &[]);
    // Install over the raw protocol to see the progress lines come first.
    let mut conn = UnixStream::connect(s.join("control.sock")).unwrap();
    let req = serde_json::json!({"id": 9, "unit": "apps", "request": {"op": "install", "bundle": archive}});
    conn.write_all(format!("{req}\n").as_bytes()).unwrap();
    let mut progress = 0;
    let last = BufReader::new(conn)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .find(|v| {
            progress += usize::from(v.get("progress").is_some());
            v.get("ok").is_some()
        })
        .unwrap();
    assert_eq!(last["ok"], true, "{last}");
    assert_eq!(
        (last["id"].as_u64(), last["result"]["state"].as_str()),
        (Some(9), Some("Installed"))
    );
    assert!(progress > 0, "no progress lines");

    let apps = ok(s, &["app", "ls", "--json"]).json();
    assert_eq!(apps[0]["signer"], "dev");
    assert!(ok(s, &["app", "start", "hello"]).stdout.contains("running"));
    assert!(ok(s, &["ps"]).stdout.contains("hello.greeter"));
    let r = ok(s, &["tool", "run", "calc", "--", r#"{"expr": "6*7"}"#]);
    assert_eq!(r.stdout.trim(), r#"{"value":42.0}"#);
    let r = w(s, &["app", "upgrade", "hello", archive.to_str().unwrap()]);
    assert_eq!(r.code, 1, "same version: {}", r.stderr);
    assert!(ok(s, &["app", "stop", "hello"]).stdout.contains("stopped"));
    ok(s, &["app", "rm", "hello"]);
    assert_eq!(w(s, &["app", "start", "hello"]).code, 1);
    assert!(ok(s, &["app", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}
