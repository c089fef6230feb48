//! weftapp bundles through the real `weaver` binary and a real kernel:
//! malformed manifests, tampered and untrusted bundles, upgrade with
//! rollback, and a kernel killed with SIGKILL coming back with its apps.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weft_e2e::{guest, start_kernel, weaver, weaver_at as w, KernelProc, Run};

fn start(state: &Path) -> KernelProc {
    start_kernel(state, &[])
}

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

/// A copy of `apps/hello` at `version`, with its components, in `dir`.
fn hello(dir: &Path, version: &str, greeter_config: &str) -> PathBuf {
    let app = dir.join(format!("hello-{version}"));
    std::fs::create_dir_all(app.join("components")).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/hello/weftapp.toml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace(
            "config = { greeting = \"hello\" }",
            &format!("config = {greeter_config}"),
        );
    std::fs::write(app.join("weftapp.toml"), text).unwrap();
    for g in ["probe", "calc"] {
        std::fs::copy(guest(g), app.join(format!("components/{g}.wasm"))).unwrap();
    }
    app
}

/// Pack `app` into an archive, signed with `key` if given; returns it.
fn pack(app: &Path, key: Option<&Path>) -> PathBuf {
    let out = app.with_extension("weftapp");
    let mut args = vec![
        "app",
        "pack",
        app.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    if let Some(k) = key {
        args.extend(["--key", k.to_str().unwrap()]);
    }
    let r = weaver(&args, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    out
}

fn signer(dir: &Path, seed: u64) -> (PathBuf, String) {
    let key = dir.join(format!("key-{seed}.hex"));
    std::fs::write(&key, format!("{seed:064x}")).unwrap();
    // Packing any app prints the public key.
    let probe_app = hello(&dir.join(format!("keyprobe-{seed}")), "0.0.1", "{}");
    let r = weaver(
        &[
            "app",
            "pack",
            probe_app.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        b"",
    );
    let public = r
        .stdout
        .split("signed by ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    (key, public)
}

const BASE: &str = "[app]\nname = \"hello\"\nversion = \"0.1.0\"\n\n[[agents]]\nid = \"greeter\"\ncomponent = \"components/probe.wasm\"\n";

#[test]
fn malformed_manifests_are_rejected_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    // (what to do to BASE, the lines the error may point at)
    let cases: Vec<(String, std::ops::RangeInclusive<usize>)> = vec![
        (format!("{BASE}bogus = 1\n"), 8..=8),
        (format!("{BASE}restart = 5\n"), 8..=8),
        (format!("{BASE}auto_start = \"yes\"\n"), 8..=8),
        (format!("{BASE}role = \"king\"\n"), 8..=8),
        (format!("{BASE}limits = {{ fuel_per_message = -1 }}\n"), 8..=8),
        (format!("{BASE}limits = {{ nope = 1 }}\n"), 8..=8),
        (format!("{BASE}capabilities = {{ ipc = \"some\" }}\n"), 8..=8),
        (format!("{BASE}capabilities = {{ tools = {{ allow = \"calc\" }} }}\n"), 8..=8),
        (format!("{BASE}config = 3\n"), 8..=8),
        (format!("{BASE}restart = {{ on_failure = {{ max_retries = \"x\", backoff_ms = 1 }} }}\n"), 8..=8),
        (format!("{BASE}broken = \n"), 8..=9),
        (BASE.replace("version = \"0.1.0\"", "version = \"one\""), 3..=3),
        (BASE.replace("name = \"hello\"", "name = \"Hello World!\""), 2..=2),
        (BASE.replace("components/probe.wasm", "../probe.wasm"), 7..=7),
        (BASE.replace("components/probe.wasm", "/etc/probe.wasm"), 7..=7),
        (BASE.replace("components/probe.wasm", "components/probe"), 7..=7),
        (format!("{BASE}\n[[agents]]\nid = \"greeter\"\ncomponent = \"components/probe.wasm\"\n"), 9..=11),
        (format!("{BASE}\n[extra]\nx = 1\n"), 9..=10),
        (format!("{BASE}\n[environment]\nname = \"Q A\"\n"), 9..=10),
        (format!("{BASE}\n[[services]]\nname = \"db\"\nurl = \"http://127.0.0.1:1\"\nimage = \"busybox\"\n"), 9..=12),
        (format!("{BASE}\n[[services]]\nname = \"db\"\nurl = \"http://127.0.0.1:1\"\nports = [70000]\n"), 12..=12),
        (format!("{BASE}\n[[tools]]\nname = \"calc\"\n"), 9..=10),
        (format!("{BASE}\n[hooks]\non_boot = \"components/probe.wasm\"\n"), 10..=10),
        (BASE.replace("[app]\n", "[app]\nlicense = 5\n"), 2..=2),
        (format!("{BASE}\n[[cron]]\nschedule = \"every 1s\"\ntarget = \"ghost\"\n"), 11..=11),
        (format!("{BASE}\n[[cron]]\nschedule = \"\"\ntarget = \"greeter\"\n"), 10..=10),
    ];
    assert!(cases.len() >= 20);
    for (i, (manifest, lines)) in cases.iter().enumerate() {
        let app = dir.path().join(format!("bad{i}"));
        std::fs::create_dir_all(app.join("components")).unwrap();
        std::fs::copy(guest("probe"), app.join("components/probe.wasm")).unwrap();
        std::fs::write(app.join("weftapp.toml"), manifest).unwrap();
        let r = weaver(&["app", "pack", app.to_str().unwrap()], b"");
        assert_eq!(
            r.code, 1,
            "case {i} should be rejected:\n{manifest}\n{}{}",
            r.stdout, r.stderr
        );
        let at = r
            .stderr
            .split("weftapp.toml:")
            .nth(1)
            .unwrap_or_else(|| panic!("case {i}: no file:line:col in {}", r.stderr));
        let mut parts = at.split(':');
        let line: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("case {i}: {}", r.stderr));
        let col: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("case {i}: {}", r.stderr));
        assert!(
            lines.contains(&line) && col >= 1,
            "case {i}: {line}:{col} not in {lines:?}: {}",
            r.stderr
        );
        assert!(
            !app.join("weftapp.lock").exists(),
            "case {i}: nothing packed"
        );
    }
}

#[test]
fn tampered_unsigned_and_untrusted_bundles_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let (key, public) = signer(dir.path(), 11);
    let (other_key, _) = signer(dir.path(), 12);
    let _k = start(&s);
    ok(&s, &["trust", "add", "dev", &public]);

    // Unsigned, for prod (the manifest names no environment: the
    // kernel's, prod): refused.
    let app = hello(dir.path(), "0.1.0", "{}");
    let manifest = app.join("weftapp.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("[environment]\nname = \"dev\"\n", ""),
    )
    .unwrap();
    let unsigned = pack(&app, None);
    let r = w(&s, &["app", "install", unsigned.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("environment `prod` installs only signed bundles"),
        "{}",
        r.stderr
    );

    // Signed by a key nobody trusts.
    let untrusted = pack(
        &hello(&dir.path().join("u"), "0.1.0", "{}"),
        Some(&other_key),
    );
    let r = w(&s, &["app", "install", untrusted.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("trust"), "{}", r.stderr);

    // One changed byte in a component after signing: named, nothing installed.
    let app = hello(&dir.path().join("t"), "0.1.0", "{}");
    pack(&app, Some(&key));
    let calc = app.join("components/calc.wasm");
    let mut bytes = std::fs::read(&calc).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&calc, bytes).unwrap();
    let r = w(&s, &["app", "install", app.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("components/calc.wasm"), "{}", r.stderr);
    assert!(ok(&s, &["app", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!s.join("apps/hello").join("0.1.0").exists());
}

#[test]
fn upgrade_rolls_back_and_apps_survive_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let (key, public) = signer(dir.path(), 21);
    let mut kernel = start(&s);
    // `weaver run` made the state dir, owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    ok(&s, &["trust", "add", "dev", &public]);
    let v1 = pack(&hello(dir.path(), "0.1.0", "{}"), Some(&key));
    ok(&s, &["app", "install", v1.to_str().unwrap()]);
    ok(&s, &["app", "start", "hello"]);
    let r = ok(&s, &["agent", "send", "hello.greeter", "ping"]);
    assert_eq!(r.stdout.trim(), "ping");

    // 0.2.0's agent fails its init: the upgrade fails and 0.1.0 keeps running.
    let broken = pack(
        &hello(dir.path(), "0.2.0", "{ fail_init = true }"),
        Some(&key),
    );
    let r = w(&s, &["app", "upgrade", "hello", broken.to_str().unwrap()]);
    // The guest failed (its init), so the kernel-failure exit code.
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("asked to fail init"), "{}", r.stderr);
    let apps = ok(&s, &["app", "ls", "--json"]).json();
    assert_eq!(
        (apps[0]["version"].as_str(), apps[0]["state"].as_str()),
        (Some("0.1.0"), Some("Running"))
    );
    assert_eq!(
        ok(&s, &["agent", "send", "hello.greeter", "still"])
            .stdout
            .trim(),
        "still"
    );

    let v3 = pack(&hello(dir.path(), "0.3.0", "{}"), Some(&key));
    ok(&s, &["app", "upgrade", "hello", v3.to_str().unwrap()]);
    let apps = ok(&s, &["app", "ls", "--json"]).json();
    assert_eq!(
        (apps[0]["version"].as_str(), apps[0]["state"].as_str()),
        (Some("0.3.0"), Some("Running"))
    );

    // kill -9, then boot again on the same state.
    kernel.0.kill().unwrap();
    kernel.0.wait().unwrap();
    let _again = start(&s);
    let apps = ok(&s, &["app", "ls", "--json"]).json();
    assert_eq!(
        (apps[0]["version"].as_str(), apps[0]["state"].as_str()),
        (Some("0.3.0"), Some("Running"))
    );
    assert_eq!(
        ok(&s, &["agent", "send", "hello.greeter", "back"])
            .stdout
            .trim(),
        "back"
    );
    let status = ok(&s, &["kernel", "status", "--json"]).json();
    let public_key = status["chain"]["public_key"].as_str().unwrap().to_string();
    let kinds = ok(&s, &["chain", "export"]).stdout;
    for k in [
        "app.install",
        "app.start",
        "app.failed",
        "app.rollback",
        "app.upgrade",
    ] {
        assert!(
            kinds.contains(&format!("\"kind\":\"{k}\"")),
            "no {k} on the chain"
        );
    }
    ok(&s, &["kernel", "stop"]);
    let file = s.join("chain");
    let r = weaver(
        &[
            "chain",
            "verify",
            file.to_str().unwrap(),
            "--key",
            &public_key,
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// `apps/polyglot`, as built by `just components`, copied to `dir`.
fn polyglot(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/polyglot");
    let app = dir.join("polyglot");
    std::fs::create_dir_all(app.join("components")).unwrap();
    std::fs::copy(src.join("weftapp.toml"), app.join("weftapp.toml")).unwrap();
    for entry in std::fs::read_dir(src.join("components")).expect("run `just components` first") {
        let p = entry.unwrap().path();
        std::fs::copy(&p, app.join("components").join(p.file_name().unwrap())).unwrap();
    }
    app
}

#[test]
fn the_polyglot_app_runs_agents_tools_a_service_and_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let (key, public) = signer(dir.path(), 31);
    let _k = start(&s);
    ok(&s, &["trust", "add", "dev", &public]);
    let bundle = pack(&polyglot(dir.path()), Some(&key));
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    ok(&s, &["app", "start", "polyglot"]);

    // The Python agent.
    assert_eq!(
        ok(&s, &["agent", "send", "polyglot.greeter", "world"])
            .stdout
            .trim(),
        "hi, world"
    );
    // The same tool in three languages.
    for lang in ["c", "py", "js"] {
        let r = ok(
            &s,
            &[
                "tool",
                "run",
                &format!("wordcount-{lang}"),
                "--",
                r#"{"text": "one two"}"#,
            ],
        );
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(v["words"], 2, "{lang}: {v}");
    }
    // The Rust agent calls a tool and the component service.
    let r = ok(
        &s,
        &[
            "agent",
            "send",
            "polyglot.router",
            "--json",
            r#"{"op": "tool", "name": "wordcount-js", "input": {"text": "a b c"}}"#,
        ],
    );
    assert!(r.stdout.contains("\"words\":3"), "{}", r.stdout);
    let r = ok(
        &s,
        &[
            "agent",
            "send",
            "polyglot.router",
            "--json",
            r#"{"op": "request", "to": "service:echo/shout", "body": "hey"}"#,
        ],
    );
    assert!(
        r.stdout.contains("shout") && r.stdout.contains("hey"),
        "{}",
        r.stdout
    );

    // The cron job fires while the app runs, and goes away when it stops.
    let jobs = ok(&s, &["cron", "ls", "--json"]).json();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(&s, &["chain", "export"])
        .stdout
        .contains("\"kind\":\"cron.fire\"")
    {
        assert!(Instant::now() < deadline, "the cron job never fired");
        std::thread::sleep(Duration::from_millis(200));
    }

    ok(&s, &["app", "stop", "polyglot"]);
    assert!(ok(&s, &["cron", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    ok(&s, &["app", "rm", "polyglot"]);
    let kinds = ok(&s, &["chain", "export"]).stdout;
    for k in [
        "app.install",
        "app.start",
        "service.register",
        "tool.exec",
        "cron.fire",
        "app.stop",
        "app.remove",
    ] {
        assert!(
            kinds.contains(&format!("\"kind\":\"{k}\"")),
            "no {k} on the chain"
        );
    }
}
