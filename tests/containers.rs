//! Container services end to end: the real `weaver`, a real kernel and a
//! private Docker engine started by the harness (`weft_testkit::docker`;
//! it fails saying what to install when Docker or busybox is missing).
//!
//! The service is busybox `httpd` from an image archive inside a signed
//! bundle, serving a CGI script from the app's data dir; an agent reaches
//! it with `ServiceMethod` messages.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_e2e::{guest, start_kernel, weaver, weaver_at as w, KernelProc, Run};
use weft_testkit::docker::{TestDocker, TEST_IMAGE};

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A `docker save` of the test image, made once per test process.
fn image_archive(docker: &TestDocker) -> PathBuf {
    static ARCHIVE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("weft-e2e-image-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join("busybox.tar");
            docker.docker_ok(&["save", "-o", out.to_str().unwrap(), TEST_IMAGE]);
            out
        })
        .clone()
}

/// `weft.toml` pointing the kernel at the test engine, allowing host ports
/// `low..=low+99`.
fn kernel_config(dir: &Path, docker: &TestDocker, low: u16) -> PathBuf {
    let path = dir.join("weft.toml");
    std::fs::write(
        &path,
        format!(
            "[containers]\nsocket = \"{}\"\nhost_ports = \"{low}-{}\"\n\
             stop_timeout_ms = 1000\nready_timeout_ms = 30000\n",
            docker.socket().display(),
            low + 99
        ),
    )
    .unwrap();
    path
}

const SERVICE: &str = r#"
[[services]]
name = "SVC"
image_archive = "images/web.tar"
command = ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
ports = ["PORT:8080"]
volumes = ["www:/www:ro"]
resources = { memory = "64m", cpus = 0.5 }
read_only = true
restart = { on_failure = { max_retries = 2, backoff_ms = 100 } }
health = { kind = "readiness", interval_ms = 300, http = { port = 8080, path = "/" } }
call = { port = 8080, path = "/cgi-bin/svc" }
"#;

/// An app `name` with a caller agent and one container service `svc` on
/// host port `port` (`extra` lines appended to the service table).
fn app(dir: &Path, docker: &TestDocker, name: &str, svc: &str, port: u16, extra: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("components")).unwrap();
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::copy(guest("probe"), root.join("components/probe.wasm")).unwrap();
    std::fs::copy(image_archive(docker), root.join("images/web.tar")).unwrap();
    let manifest = format!(
        "[app]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"an agent and its web service\"\n\n\
         [capabilities]\nipc = \"all\"\n\n\
         [[agents]]\nid = \"caller\"\ncomponent = \"components/probe.wasm\"\n\
         capabilities = {{ ipc = \"all\" }}\nlimits = {{ fuel_per_message = 50_000_000, timeout_ms = 20_000 }}\n\
         {}{extra}\n",
        SERVICE.replace("SVC", svc).replace("PORT", &port.to_string())
    );
    std::fs::write(root.join("weftapp.toml"), manifest).unwrap();
    root
}

/// A signing key, and its public half (as `app pack` prints it).
fn signer(dir: &Path, app_dir: &Path) -> (PathBuf, String) {
    let key = dir.join("signer.hex");
    std::fs::write(&key, format!("{:064x}", 7)).unwrap();
    let r = weaver(
        &[
            "app",
            "pack",
            app_dir.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = r
        .stdout
        .split("signed by ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    (key, public.trim().to_string())
}

/// The CGI script the service runs, in the app's data dir: it answers a
/// POST with the JSON body it got.
fn serve_files(state: &Path, app: &str) {
    let www = state.join("apps").join(app).join("data/www");
    std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
    std::fs::write(www.join("index.html"), "up\n").unwrap();
    let cgi = www.join("cgi-bin/svc");
    std::fs::write(
        &cgi,
        "#!/bin/sh\necho 'Content-Type: application/json'\necho ''\n\
         body=$(head -c \"$CONTENT_LENGTH\")\necho \"{\\\"echo\\\":$body}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Containers of `app` the engine has (running or not): `ID STATE` lines.
fn containers(docker: &TestDocker, app: &str) -> Vec<String> {
    let out = docker.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=weft.app={app}"),
        "--format",
        "{{.ID}} {{.State}}",
    ]);
    out.lines().map(str::to_string).collect()
}

fn ps_row(state: &Path, name: &str) -> Option<Value> {
    ok(state, &["ps", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "container" && r["name"] == name)
        .cloned()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn chain_kinds(state: &Path) -> Vec<String> {
    let r = ok(state, &["chain", "tail", "-n", "100000", "--json"]);
    // One JSON event per line.
    r.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn call(state: &Path, agent: &str, svc: &str) -> Run {
    w(
        state,
        &[
            "agent",
            "send",
            agent,
            "--json",
            "--wait-ms",
            "20000",
            &format!(
                r#"{{"op":"request","to":"service:{svc}/echo","body":{{"n":42}},"timeout_ms":10000}}"#
            ),
        ],
    )
}

fn boot(state: &Path, config: &Path) -> KernelProc {
    start_kernel(state, &["--config", config.to_str().unwrap()])
}

#[test]
fn a_container_service_answers_agents_is_adopted_after_a_kill_9_and_goes_with_its_app() {
    let docker = TestDocker::start();
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let low = free_port().saturating_sub(50).max(1024);
    let port = low + 7;
    let config = kernel_config(dir.path(), docker, low);
    let root = app(dir.path(), docker, "webapp", "web", port, "");
    let (key, public) = signer(dir.path(), &root);
    let mut k = boot(&s, &config);
    ok(&s, &["trust", "add", "ci", &public]);
    let bundle = dir.path().join("webapp.weftapp");
    let r = weaver(
        &[
            "app",
            "pack",
            root.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    serve_files(&s, "webapp");
    ok(&s, &["app", "start", "webapp"]);

    // Running, healthy, reachable.
    let row = ps_row(&s, "webapp/web").expect("a container row in ps");
    assert_eq!(row["state"], "Running", "{row}");
    assert_eq!(row["health"], "healthy", "{row}");
    assert_eq!(row["owner"], "app:webapp", "{row}");
    let human = ok(&s, &["ps"]).stdout;
    assert!(
        human.contains("webapp/web") && human.contains("healthy"),
        "{human}"
    );
    let r = call(&s, "webapp.caller", "web");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let reply: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(reply["ok"]["echo"]["n"], 42, "{reply}");
    let before = containers(docker, "webapp");
    assert_eq!(before.len(), 1, "{before:?}");
    let id = before[0].split(' ').next().unwrap().to_string();
    let kinds = chain_kinds(&s);
    for k in [
        "container.image",
        "container.create",
        "container.start",
        "ipc.service_reply",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} on the chain");
    }
    // Its output, through the kernel.
    let logs = ok(&s, &["logs", "webapp/web"]);
    // busybox httpd -v logs one line per request it answered.
    assert!(
        logs.stderr.contains("response:200") || logs.stdout.contains("response:200"),
        "{}{}",
        logs.stdout,
        logs.stderr
    );

    // kill -9 the kernel: the container keeps running, and is adopted, not
    // duplicated, by the next kernel.
    k.0.kill().unwrap();
    k.0.wait().unwrap();
    assert_eq!(containers(docker, "webapp"), before);
    let _k = boot(&s, &config);
    let after = containers(docker, "webapp");
    assert_eq!(after, before, "the same container, once");
    assert!(chain_kinds(&s).iter().any(|x| x == "container.adopt"));
    let r = call(&s, "webapp.caller", "web");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(ps_row(&s, "webapp/web").unwrap()["container_id"]
        .as_str()
        .unwrap()
        .starts_with(&id));

    // Stop: nothing left.
    ok(&s, &["app", "stop", "webapp"]);
    assert!(containers(docker, "webapp").is_empty());
    assert!(ps_row(&s, "webapp/web").is_none());
    // The chain verifies with all of it.
    ok(&s, &["chain", "verify"]);
}

#[test]
fn a_crashing_service_is_restarted_then_degraded_naming_its_exit_code() {
    let docker = TestDocker::start();
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let low = free_port().saturating_sub(50).max(1024);
    let config = kernel_config(dir.path(), docker, low);
    let root = app(dir.path(), docker, "crashy", "crashy-web", low + 3, "");
    std::fs::write(
        dir.path().join("weft-dev.toml"),
        format!(
            "{}\n[kernel]\nenvironment = \"dev\"\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    let _k = boot(&s, &dir.path().join("weft-dev.toml"));
    // Unsigned: dev installs those.
    let bundle = dir.path().join("crashy.weftapp");
    let r = weaver(
        &[
            "app",
            "pack",
            root.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    serve_files(&s, "crashy");
    ok(&s, &["app", "start", "crashy"]);
    let id = ps_row(&s, "crashy/crashy-web").unwrap()["container_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Two kills: restarted twice (max_retries = 2), same container.
    for n in 1..=2 {
        wait_for("the service running", Duration::from_secs(20), || {
            ps_row(&s, "crashy/crashy-web").unwrap()["state"] == "Running"
        });
        docker.docker_ok(&["kill", &id]);
        wait_for(&format!("restart {n}"), Duration::from_secs(20), || {
            let r = ps_row(&s, "crashy/crashy-web").unwrap();
            r["restarts"] == n && r["state"] == "Running"
        });
    }
    // The third: it gives up, and the app is Degraded naming the code.
    docker.docker_ok(&["kill", &id]);
    wait_for("Degraded", Duration::from_secs(20), || {
        ok(&s, &["app", "ls", "--json"]).json()[0]["state"] == "Degraded"
    });
    let apps = ok(&s, &["app", "ls", "--json"]).json();
    let why = apps[0]["error"].as_str().unwrap();
    assert!(why.contains("crashy-web") && why.contains("137"), "{why}");
    assert!(why.contains("after 2 restarts"), "{why}");
    assert!(chain_kinds(&s).iter().any(|x| x == "container.exit"));
    // Stop and start bring it back.
    ok(&s, &["app", "stop", "crashy"]);
    assert!(containers(docker, "crashy").is_empty());
    ok(&s, &["app", "start", "crashy"]);
    assert_eq!(ps_row(&s, "crashy/crashy-web").unwrap()["state"], "Running");
    ok(&s, &["kernel", "stop"]);
    wait_for(
        "the kernel's containers gone",
        Duration::from_secs(20),
        || containers(docker, "crashy").is_empty(),
    );
}

#[test]
fn bad_image_bundles_and_manifests_asking_too_much_are_refused() {
    let docker = TestDocker::start();
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let low = free_port().saturating_sub(50).max(1024);
    let config = kernel_config(dir.path(), docker, low);
    let _k = boot(&s, &config);

    // The image archive changed after signing: refused, naming it.
    let root = app(dir.path(), docker, "tampered", "t-web", low + 1, "");
    let (_key, public) = signer(dir.path(), &root);
    ok(&s, &["trust", "add", "ci", &public]);
    let tar = root.join("images/web.tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&tar, bytes).unwrap();
    let r = w(&s, &["app", "install", root.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("images/web.tar"), "{}", r.stderr);

    // Unsigned, in prod: refused.
    let root = app(
        &dir.path().join("u"),
        docker,
        "unsigned",
        "u-web",
        low + 2,
        "",
    );
    let r = w(&s, &["app", "install", root.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("unsigned"), "{}", r.stderr);

    // More than the kernel allows, each at its line and column.
    let cases = [
        ("privileged = true", "privileged: never allowed"),
        (
            "volumes = [\"/etc:/etc\"]",
            "a relative path inside the app's data dir",
        ),
        (
            "cap_add = [\"NET_ADMIN\"]",
            "not allowed in this kernel's environment",
        ),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let root = app(
            &dir.path().join(format!("p{i}")),
            docker,
            "greedy",
            "g-web",
            low + 4,
            "",
        );
        // Each case replaces the service's own line of that key, or adds one.
        let path = root.join("weftapp.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let key = extra.split(' ').next().unwrap();
        let text = match text.lines().find(|l| l.starts_with(&format!("{key} ="))) {
            Some(line) => text.replace(line, extra),
            None => format!("{text}{extra}\n"),
        };
        std::fs::write(&path, text).unwrap();
        let r = w(&s, &["app", "install", root.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{extra}: {}", r.stderr);
        assert!(r.stderr.contains("weftapp.toml:"), "{extra}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{extra}: {}", r.stderr);
    }
    // A port outside the allowed range: the `ports` line of the manifest.
    let root = app(&dir.path().join("port"), docker, "greedy", "g-web", 80, "");
    let r = w(&s, &["app", "install", root.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("weftapp.toml:")
            && r.stderr
                .contains("services[0].ports[0]: host port 80 is outside"),
        "{}",
        r.stderr
    );
    assert!(ok(&s, &["app", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_kernel_without_an_engine_refuses_container_services_at_install() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let docker = TestDocker::start();
    let _k = start_kernel(&s, &[]);
    let root = app(dir.path(), docker, "noengine", "n-web", 20080, "");
    let r = w(&s, &["app", "install", root.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("weftapp.toml:") && r.stderr.contains("no container engine configured"),
        "{}",
        r.stderr
    );
}
