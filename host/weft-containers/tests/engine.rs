//! Against a real engine: a private dockerd started by `weft_testkit::docker`
//! (as root; the harness fails, never skips, when dockerd or busybox is
//! missing).

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use weft_containers::*;
use weft_testkit::docker::{TestDocker, TEST_IMAGE};

async fn engine(d: &TestDocker) -> Engine {
    Engine::connect(EngineConfig::with_socket(d.socket()))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn labels(kernel: &str, app: &str, service: &str) -> ServiceLabels {
    ServiceLabels::new(kernel, app, service, "1.0.0").unwrap()
}

fn image() -> ImageSource {
    ImageSource::Reference(TEST_IMAGE.into())
}

fn cmd(args: &[&str]) -> Option<Vec<String>> {
    Some(args.iter().map(|s| s.to_string()).collect())
}

/// Creates and starts `args` in the test image with no ports or volumes.
async fn run(e: &Engine, l: &ServiceLabels, args: &[&str]) -> ContainerId {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ContainerSpec::new(image());
    s.command = cmd(args);
    let v = s.validate(&Policy::new(dir.path())).unwrap();
    let c = e.create(&v, l).await.unwrap();
    e.start(&c.id).await.unwrap();
    c.id
}

async fn until_healthy(addr: SocketAddr, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        match probe_tcp(addr, Duration::from_secs(1)).await {
            Ok(_) => return t0.elapsed(),
            Err(e) if t0.elapsed() > within => panic!("{addr} never became healthy: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_reports_engine() {
    let d = TestDocker::start();
    let e = engine(d).await;
    let info = e.info();
    assert_eq!(info.socket, d.socket());
    assert!(!info.version.is_empty());
    assert!(!info.podman);
    e.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn httpd_service_round_trip() {
    let d = TestDocker::start();
    let e = engine(d).await;
    let base = tempfile::tempdir().unwrap();
    let www = base.path().join("www");
    std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
    std::fs::write(www.join("index.html"), "hello\n").unwrap();
    // busybox httpd runs CGI scripts with the request body on stdin.
    write_exec(
        &www.join("cgi-bin/echo"),
        "#!/bin/sh\necho 'Content-Type: application/json'\necho\nhead -c \"$CONTENT_LENGTH\"\n",
    );

    let port = free_port();
    let mut s = ContainerSpec::new(image());
    s.command = cmd(&["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]);
    s.ports = vec![PortMapping::tcp(port, 8080)];
    s.volumes = vec![VolumeMount {
        host: "www".into(),
        container: "/www".into(),
        read_only: true,
    }];
    s.memory_bytes = Some(64 * 1024 * 1024);
    s.nano_cpus = Some(500_000_000);
    s.read_only_rootfs = true;
    s.env.insert("GREETING".into(), "hi".into());
    let v = s.validate(&Policy::new(base.path())).unwrap();

    let img = e.ensure_image(TEST_IMAGE, PullPolicy::Never).await.unwrap();
    let l = labels("k-http", "web-app", "web");
    let c = e.create(&v, &l).await.unwrap();
    assert_eq!(c.name, "weft_k-http_web-app_web");
    assert_eq!(c.image_id, img.id);
    assert_eq!(
        e.inspect(&c.id).await.unwrap().state,
        ContainerState::Created
    );
    e.start(&c.id).await.unwrap();

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    until_healthy(addr, Duration::from_secs(10)).await;
    let page = probe_http_get(
        &format!("http://127.0.0.1:{port}/index.html"),
        200,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(&page.body[..], b"hello\n");
    assert!(matches!(
        probe_http_get(
            &format!("http://127.0.0.1:{port}/nope"),
            200,
            Duration::from_secs(5)
        )
        .await,
        Err(ProbeError::Status {
            expected: 200,
            got: 404
        })
    ));
    let body = br#"{"method":"echo","params":{"n":42}}"#;
    let r = post_json(addr, "/cgi-bin/echo", body, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], &body[..]);

    let st = e.inspect(&c.id).await.unwrap();
    assert_eq!(st.state, ContainerState::Running);
    assert_eq!(st.name, c.name);
    assert_eq!(st.image_id, img.id);
    assert!(st.started_at.is_some() && st.exit_code.is_none());
    assert_eq!(
        st.labels.get(LABEL_KERNEL).map(String::as_str),
        Some("k-http")
    );
    assert_eq!(
        st.labels.get(LABEL_APP).map(String::as_str),
        Some("web-app")
    );
    assert_eq!(
        st.labels.get(LABEL_SERVICE).map(String::as_str),
        Some("web")
    );
    assert_eq!(
        st.labels.get(LABEL_VERSION).map(String::as_str),
        Some("1.0.0")
    );
    let sec = &st.security;
    assert!(!sec.privileged);
    assert_eq!(sec.cap_drop, ["ALL"]);
    assert!(sec.cap_add.is_empty());
    assert!(
        sec.security_opt
            .iter()
            .any(|o| o.starts_with("no-new-privileges")),
        "{sec:?}"
    );
    assert!(sec.readonly_rootfs && sec.init);
    assert_eq!(sec.network_mode, "bridge");
    assert_ne!(sec.pid_mode, "host");
    assert_eq!(
        sec.mount_sources,
        [www.canonicalize().unwrap().display().to_string()]
    );
    assert_eq!(
        st.ports,
        [PublishedPort {
            container: "8080/tcp".into(),
            host_ip: "127.0.0.1".into(),
            host_port: port
        }]
    );

    // What the process really has: no capabilities, no new privileges,
    // read-only root, the env.
    let status = e
        .exec(
            &c.id,
            &[
                "sh",
                "-c",
                "grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status",
            ],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    assert!(text.contains("CapPrm:\t0000000000000000"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    let touch = e
        .exec(&c.id, &["touch", "/x"], Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(touch.exit_code, 0);
    assert!(
        String::from_utf8_lossy(&touch.stderr).contains("Read-only"),
        "{touch:?}"
    );
    let env = e
        .exec(
            &c.id,
            &["sh", "-c", "echo $GREETING"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!((env.exit_code, &env.stdout[..]), (0, &b"hi\n"[..]));

    probe_exec(
        &e,
        &c.id,
        &["test", "-f", "/www/index.html"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    match probe_exec(
        &e,
        &c.id,
        &["sh", "-c", "echo bad; exit 3"],
        Duration::from_secs(10),
    )
    .await
    {
        Err(ProbeError::ExitCode { code: 3, output }) => assert_eq!(output, "bad"),
        other => panic!("{other:?}"),
    }

    let stopped = e.stop(&c.id, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(
        stopped.state,
        ContainerState::Stopped | ContainerState::Failed
    ));
    assert!(stopped.exit_code.is_some() && stopped.finished_at.is_some());
    assert!(probe_tcp(addr, Duration::from_millis(500)).await.is_err());
    e.remove(&c.id, false).await.unwrap();
    assert!(e.inspect(&c.id).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_probe_not_fooled_by_docker_proxy() {
    // Published port, nothing listening inside: docker-proxy still accepts.
    let d = TestDocker::start();
    let e = engine(d).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut s = ContainerSpec::new(image());
    s.command = cmd(&["sleep", "300"]);
    s.ports = vec![PortMapping::tcp(port, 8080)];
    let v = s.validate(&Policy::new(dir.path())).unwrap();
    let c = e
        .create(&v, &labels("k-proxy", "app", "idle"))
        .await
        .unwrap();
    e.start(&c.id).await.unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let r = probe_tcp(addr, Duration::from_secs(2)).await;
    assert!(matches!(r, Err(ProbeError::ClosedAtOnce { .. })), "{r:?}");
    e.remove(&c.id, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_resolves_wait_exit() {
    let d = TestDocker::start();
    let e = engine(d).await;

    let id = run(&e, &labels("k-wait", "app", "sleeper"), &["sleep", "300"]).await;
    let waiter = tokio::spawn({
        let e = e.clone();
        let id = id.clone();
        async move { e.wait_exit(&id).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    e.kill(&id, "SIGKILL").await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(code, 137);
    let st = e.inspect(&id).await.unwrap();
    assert_eq!(
        (st.state, st.exit_code),
        (ContainerState::Failed, Some(137))
    );
    e.remove(&id, false).await.unwrap();

    let id = run(&e, &labels("k-wait", "app", "ok"), &["sh", "-c", "exit 0"]).await;
    assert_eq!(e.wait_exit(&id).await.unwrap(), 0);
    let st = e.inspect(&id).await.unwrap();
    assert_eq!((st.state, st.exit_code), (ContainerState::Stopped, Some(0)));
    e.remove(&id, false).await.unwrap();

    let id = run(
        &e,
        &labels("k-wait", "app", "three"),
        &["sh", "-c", "exit 3"],
    )
    .await;
    assert_eq!(e.wait_exit(&id).await.unwrap(), 3);
    assert_eq!(e.inspect(&id).await.unwrap().state, ContainerState::Failed);
    e.remove(&id, false).await.unwrap();

    // The command cannot start at all: a Weft restart loop must see it fail.
    let dir = tempfile::tempdir().unwrap();
    let mut s = ContainerSpec::new(image());
    s.command = cmd(&["/no/such/binary"]);
    let v = s.validate(&Policy::new(dir.path())).unwrap();
    let c = e
        .create(&v, &labels("k-wait", "app", "broken"))
        .await
        .unwrap();
    // With an init process the engine starts it and it reports the failed
    // exec with its exit code; without one, start itself fails.
    match e.start(&c.id).await {
        Ok(()) => assert_ne!(e.wait_exit(&c.id).await.unwrap(), 0),
        Err(err) => assert!(err.to_string().contains("no/such/binary"), "{err}"),
    }
    assert_eq!(
        e.inspect(&c.id).await.unwrap().state,
        ContainerState::Failed
    );
    e.remove(&c.id, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn adoption_by_labels_and_sweep() {
    let d = TestDocker::start();
    let e = engine(d).await;
    let k = "k-adopt";
    let a_web = run(&e, &labels(k, "a", "web"), &["sleep", "300"]).await;
    let a_db = run(&e, &labels(k, "a", "db"), &["sleep", "300"]).await;
    let b_web = run(&e, &labels(k, "b", "web"), &["sleep", "300"]).await;
    let other = run(&e, &labels("k-other", "a", "web"), &["sleep", "300"]).await;

    // No duplicate: the same service again is refused by name.
    let dir = tempfile::tempdir().unwrap();
    let mut s = ContainerSpec::new(image());
    s.command = cmd(&["sleep", "300"]);
    let v = s.validate(&Policy::new(dir.path())).unwrap();
    match e.create(&v, &labels(k, "a", "web")).await {
        Err(EngineError::NameInUse { name, .. }) => assert_eq!(name, "weft_k-adopt_a_web"),
        other => panic!("{other:?}"),
    }

    // A kernel restarted (new connection) finds exactly its containers.
    let e2 = engine(d).await;
    let ids = |v: Vec<ContainerSummary>| v.into_iter().map(|c| c.id).collect::<BTreeSet<_>>();
    let all = e2.list_by_labels(&LabelFilter::kernel(k)).await.unwrap();
    assert!(all.iter().all(|c| c.state == ContainerState::Running));
    assert!(all
        .iter()
        .all(|c| c.service.as_ref().is_some_and(|s| s.kernel() == k)));
    assert_eq!(
        ids(all),
        BTreeSet::from([a_web.clone(), a_db.clone(), b_web.clone()])
    );
    let a = e2
        .list_by_labels(&LabelFilter::kernel(k).app("a"))
        .await
        .unwrap();
    assert_eq!(ids(a), BTreeSet::from([a_web.clone(), a_db.clone()]));
    let one = e2
        .list_by_labels(&labels(k, "a", "web").filter())
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, a_web);
    assert_eq!(one[0].names, ["weft_k-adopt_a_web"]);
    assert_eq!(one[0].service, Some(labels(k, "a", "web")));

    // App b is gone: the sweep removes its container only.
    let swept = e2
        .sweep(k, &BTreeSet::from(["a".to_string()]))
        .await
        .unwrap();
    assert_eq!(ids(swept), BTreeSet::from([b_web.clone()]));
    assert!(e2.inspect(&b_web).await.unwrap_err().is_not_found());
    let left = e2.list_by_labels(&LabelFilter::kernel(k)).await.unwrap();
    assert_eq!(ids(left), BTreeSet::from([a_web.clone(), a_db.clone()]));

    let removed = e2.remove_by_labels(&LabelFilter::kernel(k)).await.unwrap();
    assert_eq!(removed.len(), 2);
    assert!(e2
        .list_by_labels(&LabelFilter::kernel(k))
        .await
        .unwrap()
        .is_empty());
    // Another kernel's container was never touched.
    assert_eq!(
        e2.inspect(&other).await.unwrap().state,
        ContainerState::Running
    );
    e2.remove(&other, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_stream_lines() {
    let d = TestDocker::start();
    let e = engine(d).await;
    let id = run(
        &e,
        &labels("k-logs", "app", "talker"),
        &[
            "sh",
            "-c",
            "echo one; echo two >&2; printf thr; sleep 0.3; echo ee; sleep 300",
        ],
    )
    .await;
    let mut s = e.logs(&id, true, None);
    let mut got = Vec::new();
    while got.len() < 3 {
        let l = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("log line in time")
            .expect("stream open")
            .unwrap();
        got.push((l.stream, l.line));
    }
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        got,
        [
            (OutputStream::Stdout, "one".to_string()),
            (OutputStream::Stdout, "three".to_string()),
            (OutputStream::Stderr, "two".to_string()),
        ]
    );
    // Following ends when the container stops.
    e.kill(&id, "SIGKILL").await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), s.collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(rest.iter().all(|r| r.is_ok()));
    let past: Vec<_> = e.logs(&id, false, Some(1)).collect().await;
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].as_ref().unwrap().line, "three");
    e.remove(&id, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn image_pull_policies() {
    let d = TestDocker::start();
    let mut cfg = EngineConfig::with_socket(d.socket());
    cfg.pull_timeout = Duration::from_secs(5);
    let e = Engine::connect(cfg).await.unwrap();
    let present = e
        .ensure_image(TEST_IMAGE, PullPolicy::IfNotPresent)
        .await
        .unwrap();
    assert_eq!(present, e.image_info(TEST_IMAGE).await.unwrap());
    assert!(present.id.starts_with("sha256:"));
    assert!(present.repo_tags.contains(&TEST_IMAGE.to_string()));

    let missing = "weft-test/absent:1";
    assert!(matches!(
        e.ensure_image(missing, PullPolicy::Never).await,
        Err(EngineError::ImageNotPresent { image }) if image == missing
    ));
    // No registry is reachable: a pull must fail quickly and clearly.
    let t0 = Instant::now();
    let r = e.ensure_image(missing, PullPolicy::IfNotPresent).await;
    assert!(
        matches!(
            r,
            Err(EngineError::PullFailed { .. } | EngineError::PullTimeout { .. })
        ),
        "{r:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    eprintln!(
        "pull of a missing image: {} after {:?}",
        r.unwrap_err(),
        t0.elapsed()
    );

    // A registry that accepts and never answers: the pull timeout ends it.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reg = hang.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hang.accept().await {
            conns.push(c);
        }
    });
    let mut cfg = EngineConfig::with_socket(d.socket());
    cfg.pull_timeout = Duration::from_secs(2);
    let quick = Engine::connect(cfg).await.unwrap();
    let t0 = Instant::now();
    let r = quick
        .ensure_image(&format!("{reg}/weft/hang:1"), PullPolicy::IfNotPresent)
        .await;
    assert!(matches!(r, Err(EngineError::PullTimeout { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    held.abort();

    // Creating from an image that is not there names it.
    let dir = tempfile::tempdir().unwrap();
    let v = ContainerSpec::new(ImageSource::Reference(missing.into()))
        .validate(&Policy::new(dir.path()))
        .unwrap();
    let err = e
        .create(&v, &labels("k-img", "app", "svc"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::NotFound { kind: "image", .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn load_archive_round_trip() {
    // A daemon of its own: the test image is deleted here.
    let d = TestDocker::start_private();
    let e = engine(&d).await;
    let before = e.image_info(TEST_IMAGE).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    let n = e.save_image(TEST_IMAGE, &tar).await.unwrap();
    assert!(n > 500_000, "{n}");
    e.remove_image(TEST_IMAGE, true).await.unwrap();
    assert!(e.image_info(TEST_IMAGE).await.unwrap_err().is_not_found());

    let loaded = e.load_archive(&tar).await.unwrap();
    assert_eq!(loaded.id, before.id);
    assert_eq!(loaded.repo_tags, before.repo_tags);
    let again = e
        .load_archive_bytes(std::fs::read(&tar).unwrap().into())
        .await
        .unwrap();
    assert_eq!(again.id, before.id);

    // A loaded image runs by id.
    let mut s = ContainerSpec::new(ImageSource::Loaded {
        id: loaded.id.clone(),
    });
    s.command = cmd(&["sh", "-c", "exit 0"]);
    let v = s.validate(&Policy::new(dir.path())).unwrap();
    let c = e.create(&v, &labels("k-load", "app", "svc")).await.unwrap();
    assert_eq!(c.image_id, loaded.id);
    e.start(&c.id).await.unwrap();
    assert_eq!(e.wait_exit(&c.id).await.unwrap(), 0);
    e.remove(&c.id, false).await.unwrap();

    let junk = e
        .load_archive_bytes(bytes_of("not a tar"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            junk,
            EngineError::Load { .. } | EngineError::ArchiveImageCount { .. }
        ),
        "{junk}"
    );
    let missing = e
        .load_archive(&dir.path().join("nope.tar"))
        .await
        .unwrap_err();
    assert!(matches!(missing, EngineError::Io { .. }), "{missing}");
}

fn bytes_of(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn validate_refuses_escapes_and_privilege() {
    let base = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(base.path().join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), base.path().join("escape")).unwrap();
    std::os::unix::fs::symlink("data", base.path().join("inside")).unwrap();
    let sock = base.path().join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut policy = Policy::new(base.path());
    policy.allowed_caps.insert("NET_BIND_SERVICE".into());
    policy.allowed_caps.insert("SYS_ADMIN".into()); // never honoured
    policy.host_ports = 20000..=20999;

    let refusal = |s: &ContainerSpec| -> Vec<(String, String, Refusal)> {
        s.validate(&policy)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.field, e.value, e.refusal))
            .collect()
    };
    let vol = |host: &str| VolumeMount {
        host: host.into(),
        container: "/data".into(),
        read_only: false,
    };
    let with = |f: &dyn Fn(&mut ContainerSpec)| {
        let mut s = ContainerSpec::new(image());
        f(&mut s);
        s
    };

    let r = refusal(&with(&|s| {
        s.volumes = vec![vol(outside.path().to_str().unwrap())]
    }));
    assert!(
        matches!(&r[..], [(f, _, Refusal::OutsideBase { .. })] if f == "volumes[0].host"),
        "{r:?}"
    );
    let r = refusal(&with(&|s| s.volumes = vec![vol("/etc")]));
    assert!(
        matches!(&r[..], [(_, v, Refusal::OutsideBase { .. })] if v == "/etc"),
        "{r:?}"
    );
    let r = refusal(&with(&|s| s.volumes = vec![vol("escape")]));
    assert!(
        matches!(&r[..], [(f, v, Refusal::SymlinkEscape { .. })] if f == "volumes[0].host" && v == "escape"),
        "{r:?}"
    );
    let r = refusal(&with(&|s| s.volumes = vec![vol("data/../../x")]));
    assert!(matches!(&r[..], [(_, _, Refusal::ParentDir)]), "{r:?}");
    let r = refusal(&with(&|s| s.volumes = vec![vol("docker.sock")]));
    assert!(matches!(&r[..], [(_, _, Refusal::SpecialFile)]), "{r:?}");
    let r = refusal(&with(&|s| s.volumes = vec![vol("absent")]));
    assert!(
        matches!(&r[..], [(_, _, Refusal::HostPathMissing(_))]),
        "{r:?}"
    );
    // A symlink that stays inside is fine.
    with(&|s| s.volumes = vec![vol("inside")])
        .validate(&policy)
        .unwrap();

    let r = refusal(&with(&|s| s.privileged = true));
    assert!(
        matches!(&r[..], [(f, v, Refusal::Privileged)] if f == "privileged" && v == "true"),
        "{r:?}"
    );
    let r = refusal(&with(&|s| s.host_network = true));
    assert!(matches!(&r[..], [(_, _, Refusal::HostNetwork)]), "{r:?}");
    let r = refusal(&with(&|s| s.host_pid = true));
    assert!(matches!(&r[..], [(_, _, Refusal::HostPid)]), "{r:?}");
    let r = refusal(&with(&|s| s.cap_add = vec!["NET_ADMIN".into()]));
    assert!(
        matches!(&r[..], [(f, v, Refusal::CapabilityNotAllowed)] if f == "cap_add[0]" && v == "NET_ADMIN"),
        "{r:?}"
    );
    let r = refusal(&with(&|s| s.cap_add = vec!["CAP_SYS_ADMIN".into()]));
    assert!(
        matches!(&r[..], [(_, _, Refusal::PrivilegedCapability)]),
        "{r:?}"
    );
    let r = refusal(&with(&|s| s.cap_add = vec!["all".into()]));
    assert!(
        matches!(&r[..], [(_, _, Refusal::AllCapabilities)]),
        "{r:?}"
    );
    with(&|s| s.cap_add = vec!["net_bind_service".into()])
        .validate(&policy)
        .unwrap();

    let r = refusal(&with(&|s| s.ports = vec![PortMapping::tcp(8080, 80)]));
    assert!(
        matches!(&r[..], [(f, v, Refusal::PortRange { start: 20000, end: 20999 })] if f == "ports[0].host_port" && v == "8080"),
        "{r:?}"
    );
    let r = refusal(&with(&|s| {
        s.ports = vec![PortMapping::parse("ports[0]", "0.0.0.0:20001:80").unwrap()]
    }));
    assert!(
        matches!(&r[..], [(f, v, Refusal::NonLoopback)] if f == "ports[0].host_ip" && v == "0.0.0.0"),
        "{r:?}"
    );
    let mut open = policy.clone();
    open.allow_non_loopback = true;
    with(&|s| s.ports = vec![PortMapping::parse("p", "0.0.0.0:20001:80").unwrap()])
        .validate(&open)
        .unwrap();

    // Several problems at once: all reported, and the text names each.
    let all = with(&|s| {
        s.privileged = true;
        s.volumes = vec![vol("escape")];
        s.ports = vec![PortMapping::tcp(1, 80)];
    })
    .validate(&policy)
    .unwrap_err();
    assert_eq!(all.0.len(), 3);
    let text = all.to_string();
    assert!(
        text.contains("privileged: privileged containers are never allowed"),
        "{text}"
    );
    assert!(text.contains("volumes[0].host:"), "{text}");
    assert!(text.contains("ports[0].host_port:"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_swapped_for_symlink_after_validate_is_refused() {
    let d = TestDocker::start();
    let e = engine(d).await;
    let base = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(base.path().join("data")).unwrap();
    let mut s = ContainerSpec::new(image());
    s.volumes = vec![VolumeMount {
        host: "data".into(),
        container: "/data".into(),
        read_only: false,
    }];
    let v = s.validate(&Policy::new(base.path())).unwrap();
    std::fs::remove_dir(base.path().join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), base.path().join("data")).unwrap();
    let err = e
        .create(&v, &labels("k-swap", "app", "svc"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Spec(_)), "{err}");
    assert!(e
        .list_by_labels(&LabelFilter::kernel("k-swap"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn long_waits_outlive_the_request_timeout() {
    // Following a quiet container and waiting for a late exit must not be
    // cut by the per-request timeout.
    let d = TestDocker::start();
    let mut cfg = EngineConfig::with_socket(d.socket());
    cfg.request_timeout = Duration::from_secs(1);
    let e = Engine::connect(cfg).await.unwrap();
    let id = run(
        &e,
        &labels("k-long", "app", "quiet"),
        &["sh", "-c", "sleep 2.5; echo late; sleep 2; exit 4"],
    )
    .await;
    let mut s = e.logs(&id, true, None);
    let first = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("a line in time")
        .expect("stream open");
    assert_eq!(first.unwrap().line, "late");
    assert_eq!(e.wait_exit(&id).await.unwrap(), 4);
    e.remove(&id, true).await.unwrap();
}
