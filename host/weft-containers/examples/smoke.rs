//! Runs the whole API once against whatever engine `DOCKER_HOST` (or
//! /var/run/docker.sock) names, e.g. Podman's compatible socket:
//!
//! `DOCKER_HOST=unix:///run/podman/podman.sock cargo run -p weft-containers --example smoke -- IMAGE`
//!
//! IMAGE must hold busybox (`httpd`, `sh`, `sleep`, `head`), like the test
//! image `weft-test/busybox:latest`. Prints one line per step; exits 1 on
//! the first failure.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use weft_containers::*;

fn step<T, E: std::fmt::Display>(name: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => {
            println!("ok    {name}");
            v
        }
        Err(e) => {
            println!("FAIL  {name}: {e}");
            std::process::exit(1);
        }
    }
}

fn check(name: &str, ok: bool, detail: impl std::fmt::Debug) {
    if ok {
        println!("ok    {name}");
    } else {
        println!("FAIL  {name}: {detail:?}");
        std::process::exit(1);
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let image = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "weft-test/busybox:latest".into());
    let e = step("connect", Engine::connect(EngineConfig::default()).await);
    println!("      {:?}", e.info());
    let img = step(
        "ensure_image (never pull)",
        e.ensure_image(&image, PullPolicy::Never).await,
    );

    let base = step("tempdir", tempfile::tempdir());
    let www = base.path().join("www");
    step("www", std::fs::create_dir_all(www.join("cgi-bin")));
    step("index", std::fs::write(www.join("index.html"), "hello\n"));
    let cgi = www.join("cgi-bin/echo");
    step(
        "cgi",
        std::fs::write(
            &cgi,
            "#!/bin/sh\necho 'Content-Type: application/json'\necho\nhead -c \"$CONTENT_LENGTH\"\n",
        ),
    );
    step(
        "chmod",
        std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)),
    );

    let port = step(
        "port",
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()),
    )
    .port();
    let mut s = ContainerSpec::new(ImageSource::Reference(image.clone()));
    s.command = Some(
        ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
            .map(String::from)
            .to_vec(),
    );
    s.ports = vec![PortMapping::tcp(port, 8080)];
    s.volumes = vec![VolumeMount {
        host: "www".into(),
        container: "/www".into(),
        read_only: true,
    }];
    s.read_only_rootfs = true;
    s.memory_bytes = Some(64 << 20);
    let v = step("validate", s.validate(&Policy::new(base.path())));
    let l = step("labels", ServiceLabels::new("smoke", "app", "web", "1.0.0"));
    // A leftover from an earlier run is removed first.
    step("sweep old", e.sweep("smoke", &BTreeSet::new()).await);
    let c = step("create", e.create(&v, &l).await);
    check("image pinned", c.image_id == img.id, (&c.image_id, &img.id));
    step("start", e.start(&c.id).await);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let t0 = Instant::now();
    while probe_tcp(addr, Duration::from_secs(1)).await.is_err() {
        check(
            "healthy within 10 s",
            t0.elapsed() < Duration::from_secs(10),
            t0.elapsed(),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("ok    probe_tcp after {:?}", t0.elapsed());
    step(
        "probe_http_get",
        probe_http_get(
            &format!("http://{addr}/index.html"),
            200,
            Duration::from_secs(5),
        )
        .await,
    );
    let r = step(
        "post_json",
        post_json(addr, "/cgi-bin/echo", br#"{"a":1}"#, Duration::from_secs(5)).await,
    );
    check(
        "post_json echoes",
        r.status == 200 && &r.body[..] == br#"{"a":1}"#,
        &r,
    );
    let st = step("inspect", e.inspect(&c.id).await);
    check("running", st.state == ContainerState::Running, st.state);
    let sec = &st.security;
    check(
        "security applied",
        !sec.privileged
            // Podman reports the default set it dropped instead of `ALL`;
            // the exec below checks what the process really has.
            && !sec.cap_drop.is_empty()
            && sec.security_opt.iter().any(|o| o.starts_with("no-new-privileges"))
            && sec.readonly_rootfs,
        sec,
    );
    let caps = step(
        "exec",
        e.exec(
            &c.id,
            &[
                "sh",
                "-c",
                "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
            ],
            Duration::from_secs(10),
        )
        .await,
    );
    let text = String::from_utf8_lossy(&caps.stdout);
    check(
        "no capabilities, no new privileges",
        text.contains("CapEff:\t0000000000000000") && text.contains("NoNewPrivs:\t1"),
        &text,
    );
    step(
        "probe_exec",
        probe_exec(&e, &c.id, &["true"], Duration::from_secs(10)).await,
    );
    let found = step("list_by_labels", e.list_by_labels(&l.filter()).await);
    check(
        "adopted exactly one",
        found.len() == 1 && found[0].id == c.id,
        &found,
    );
    let dup = e.create(&v, &l).await;
    check(
        "no duplicate",
        matches!(dup, Err(EngineError::NameInUse { .. })),
        dup.err(),
    );

    let waiter = tokio::spawn({
        let (e, id) = (e.clone(), c.id.clone());
        async move { e.wait_exit(&id).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    step("kill", e.kill(&c.id, "SIGKILL").await);
    let code = step(
        "wait_exit",
        waiter
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
    );
    check("exit code 137", code == 137, code);
    let st = step("inspect after kill", e.inspect(&c.id).await);
    check("failed", st.state == ContainerState::Failed, st.state);
    let lines: Vec<_> = e.logs(&c.id, false, None).collect().await;
    println!("ok    logs: {} lines", lines.len());
    let swept = step("sweep", e.sweep("smoke", &BTreeSet::new()).await);
    check("swept one", swept.len() == 1, swept.len());

    let tar = base.path().join("image.tar");
    let n = step("save_image", e.save_image(&image, &tar).await);
    println!("      {n} bytes");
    let loaded = step("load_archive", e.load_archive(&tar).await);
    check("same image id", loaded.id == img.id, (&loaded.id, &img.id));
    println!("all ok");
}
