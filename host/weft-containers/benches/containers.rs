//! Container service start through this crate vs the `docker` CLI, and the
//! cost of health probes. Needs root, dockerd and busybox-static (the test
//! harness starts a private daemon). Prints a markdown table.
//!
//! `cargo bench -p weft-containers --bench containers [-- ITERATIONS]`

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use weft_containers::*;
use weft_testkit::docker::{TestDocker, TEST_IMAGE};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn until_healthy(addr: SocketAddr) -> Duration {
    let t0 = Instant::now();
    loop {
        if probe_tcp(addr, Duration::from_secs(1)).await.is_ok() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{addr} never healthy"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Sample {
    total: Duration,
    create: Duration,
    start: Duration,
    healthy: Duration,
}

async fn via_library(e: &Engine, base: &std::path::Path, i: usize) -> Sample {
    let port = free_port();
    let mut s = ContainerSpec::new(ImageSource::Reference(TEST_IMAGE.into()));
    s.command = Some(
        ["httpd", "-f", "-p", "8080", "-h", "/www"]
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
    let v = s.validate(&Policy::new(base)).expect("valid spec");
    let l = ServiceLabels::new("bench", "app", &format!("s{i}"), "1.0.0").expect("labels");
    let t0 = Instant::now();
    let c = e.create(&v, &l).await.expect("create");
    let create = t0.elapsed();
    e.start(&c.id).await.expect("start");
    let start = t0.elapsed() - create;
    let healthy = until_healthy(([127, 0, 0, 1], port).into()).await;
    let total = t0.elapsed();
    e.remove(&c.id, true).await.expect("remove");
    Sample {
        total,
        create,
        start,
        healthy,
    }
}

/// The same start through the kernel: `container.create` and
/// `container.start` as the app, each gated and recorded on the chain.
async fn via_kernel(
    k: &weft_kernel::Kernel,
    e: &Engine,
    base: &std::path::Path,
    i: usize,
) -> Duration {
    use weft_containers::unit::actions::{CreateContainer, StartContainer};
    let port = free_port();
    let mut s = ContainerSpec::new(ImageSource::Reference(TEST_IMAGE.into()));
    s.command = Some(
        ["httpd", "-f", "-p", "8080", "-h", "/www"]
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
    let v = s.validate(&Policy::new(base)).expect("valid spec");
    let l = ServiceLabels::new("bench", "app", &format!("k{i}"), "1.0.0").expect("labels");
    let app = weft_kernel::Principal::app("app", None);
    let t0 = Instant::now();
    let c = k
        .act(
            &app,
            CreateContainer {
                engine: e.clone(),
                spec: v,
                labels: l,
            },
        )
        .await
        .expect("create");
    k.act(
        &app,
        StartContainer {
            engine: e.clone(),
            app: "app".into(),
            service: format!("k{i}"),
            id: c.id.clone(),
            restart: 0,
        },
    )
    .await
    .expect("start");
    until_healthy(([127, 0, 0, 1], port).into()).await;
    let total = t0.elapsed();
    e.remove(&c.id, true).await.expect("remove");
    total
}

async fn via_cli(d: &TestDocker, base: &std::path::Path) -> Duration {
    let port = free_port();
    let www = base.join("www");
    let t0 = Instant::now();
    let out = d
        .docker()
        .args([
            "run",
            "-d",
            "--init",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ])
        .args(["--read-only", "--restart", "no", "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg("--mount")
        .arg(format!(
            "type=bind,source={},target=/www,readonly",
            www.display()
        ))
        .args([TEST_IMAGE, "httpd", "-f", "-p", "8080", "-h", "/www"])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until_healthy(([127, 0, 0, 1], port).into()).await;
    let total = t0.elapsed();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rm = Command::new("docker")
        .args(["-H", &d.host(), "rm", "-f", &id])
        .output()
        .expect("docker rm");
    assert!(rm.status.success());
    total
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

async fn probe_costs(
    e: &Engine,
    base: &std::path::Path,
    n: usize,
) -> Vec<(&'static str, f64, f64)> {
    let port = free_port();
    let mut s = ContainerSpec::new(ImageSource::Reference(TEST_IMAGE.into()));
    s.command = Some(
        ["httpd", "-f", "-p", "8080", "-h", "/www"]
            .map(String::from)
            .to_vec(),
    );
    s.ports = vec![PortMapping::tcp(port, 8080)];
    s.volumes = vec![VolumeMount {
        host: "www".into(),
        container: "/www".into(),
        read_only: true,
    }];
    let v = s.validate(&Policy::new(base)).expect("valid spec");
    let l = ServiceLabels::new("bench", "app", "probes", "1.0.0").expect("labels");
    let c = e.create(&v, &l).await.expect("create");
    e.start(&c.id).await.expect("start");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    until_healthy(addr).await;
    let url = format!("http://{addr}/index.html");
    let t = Duration::from_secs(5);
    let mut out = Vec::new();
    let mut tcp = Vec::new();
    let mut http = Vec::new();
    let mut exec = Vec::new();
    let mut post = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        probe_tcp(addr, t).await.expect("tcp");
        tcp.push(ms(t0.elapsed()));
        let t0 = Instant::now();
        probe_http_get(&url, 200, t).await.expect("http");
        http.push(ms(t0.elapsed()));
        let t0 = Instant::now();
        probe_exec(e, &c.id, &["true"], t).await.expect("exec");
        exec.push(ms(t0.elapsed()));
        let t0 = Instant::now();
        let r = post_json(addr, "/cgi-bin/echo", br#"{"ping":1}"#, t)
            .await
            .expect("post");
        assert_eq!(r.status, 200);
        post.push(ms(t0.elapsed()));
    }
    out.push((
        "probe_tcp (incl. 15 ms settle window)",
        median(&mut tcp),
        mean(&tcp),
    ));
    out.push(("probe_http_get", median(&mut http), mean(&http)));
    out.push(("probe_exec (`true`)", median(&mut exec), mean(&exec)));
    out.push((
        "post_json (busybox CGI echo)",
        median(&mut post),
        mean(&post),
    ));
    e.remove(&c.id, true).await.expect("remove");
    out
}

fn main() {
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let d = TestDocker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = tempfile::tempdir().expect("tempdir");
    let www = base.path().join("www");
    std::fs::create_dir_all(www.join("cgi-bin")).expect("www");
    std::fs::write(www.join("index.html"), "hello\n").expect("index");
    let cgi = www.join("cgi-bin/echo");
    std::fs::write(
        &cgi,
        "#!/bin/sh\necho 'Content-Type: application/json'\necho\nhead -c \"$CONTENT_LENGTH\"\n",
    )
    .expect("cgi");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    rt.block_on(async {
        let e = Engine::connect(EngineConfig::with_socket(d.socket()))
            .await
            .expect("engine");
        let state = tempfile::tempdir().expect("state");
        let cfg_path = state.path().join("weft.toml");
        let text = format!("[containers]\nsocket = \"{}\"\n", d.socket().display());
        let config = weft_kernel::KernelConfig::parse(&text, &cfg_path).expect("config");
        let k = weft_kernel::Kernel::boot_with(
            config,
            &state.path().join("s"),
            vec![std::sync::Arc::new(weft_containers::unit::ContainersUnit::new())],
        )
        .await
        .expect("kernel");
        // Warm up every path (page cache, first container on the bridge).
        for i in 0..2 {
            via_library(&e, base.path(), 1000 + i).await;
            via_kernel(&k, &e, base.path(), 1000 + i).await;
            via_cli(d, base.path()).await;
        }
        let (mut lib, mut cli, mut kern) = (Vec::new(), Vec::new(), Vec::new());
        let (mut create, mut start, mut healthy) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iterations {
            // Interleaved, so drift in the daemon hits both alike.
            let s = via_library(&e, base.path(), i).await;
            lib.push(ms(s.total));
            create.push(ms(s.create));
            start.push(ms(s.start));
            healthy.push(ms(s.healthy));
            cli.push(ms(via_cli(d, base.path()).await));
            kern.push(ms(via_kernel(&k, &e, base.path(), i).await));
        }
        k.shutdown().await.expect("shutdown");
        let probes = probe_costs(&e, base.path(), 50).await;

        println!(
            "engine: {} (API {}), {} iterations, median / mean in ms\n",
            e.info().version,
            e.info().api_version,
            iterations
        );
        println!("| measure | median ms | mean ms |");
        println!("|---|---:|---:|");
        let (lm, la) = (median(&mut lib), mean(&lib));
        let (cm, ca) = (median(&mut cli), mean(&cli));
        println!("| service start, weft-containers: create + start + first healthy TCP probe | {lm:.1} | {la:.1} |");
        println!("| &nbsp;&nbsp;of which create | {:.1} | {:.1} |", median(&mut create), mean(&create));
        println!("| &nbsp;&nbsp;of which start | {:.1} | {:.1} |", median(&mut start), mean(&start));
        println!("| &nbsp;&nbsp;of which start to healthy | {:.1} | {:.1} |", median(&mut healthy), mean(&healthy));
        let (km, ka) = (median(&mut kern), mean(&kern));
        println!("| service start through the kernel (gated, on the chain): create + start + first healthy TCP probe | {km:.1} | {ka:.1} |");
        println!("| service start, `docker run -d` (CLI) + same TCP probe | {cm:.1} | {ca:.1} |");
        println!("| **ratio through the kernel / CLI** (goal ≤ 1.2) | **{:.2}** | **{:.2}** |", km / cm, ka / ca);
        println!("| ratio engine layer alone / CLI | {:.2} | {:.2} |", lm / cm, la / ca);
        for (name, m, a) in probes {
            println!("| health probe: {name}, per container per probe | {m:.2} | {a:.2} |");
        }
    });
}
