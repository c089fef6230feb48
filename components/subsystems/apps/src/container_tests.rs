//! Container services: every refusal at its position with its message, a
//! full round trip, the defaults, and the plan of an image archive.

use weft_model::plan::{
    ContainerSpec, HealthCheck, HttpProbe, OnFailure, PortMap, Probe, ProbeKind, PullPolicy,
    RestartPolicy, ServiceCall, ServiceSource, Step, VolumeMount,
};

use weft_model::policy::{CheckPolicy, ContainerEngine, ContainerPolicy};

use crate::check::{check, check_with};
use crate::containers::{image_ref_problem, memory_bytes};

const APP: &str = "[app]\nname = \"hello\"\nversion = \"1.0.0\"\n";

/// An image service on lines 4 to 6; `extra` starts on line 7.
fn image(extra: &str) -> String {
    format!("{APP}[[services]]\nname = \"web\"\nimage = \"weft-test/busybox:latest\"\n{extra}\n")
}

/// An image-archive service on lines 4 to 6; `extra` starts on line 7.
fn archive(extra: &str) -> String {
    format!("{APP}[[services]]\nname = \"web\"\nimage_archive = \"images/web.tar\"\n{extra}\n")
}

/// A component service on lines 4 to 6; `extra` starts on line 7.
fn component(extra: &str) -> String {
    format!("{APP}[[services]]\nname = \"api\"\ncomponent = \"c/api.wasm\"\n{extra}\n")
}

/// Every diagnostic, rendered `line:col: key: message`.
fn errs(src: &str) -> Vec<String> {
    match check(src, "weftapp.toml") {
        Ok(p) => panic!("expected errors, got {p:?}\n{src}"),
        Err(d) => d.iter().map(|d| d.to_string()).collect(),
    }
}

/// Exactly one diagnostic, equal to `want`.
#[track_caller]
fn refused(src: &str, want: &str) {
    assert_eq!(errs(src), [want], "{src}");
}

fn spec(src: &str) -> (weft_model::plan::ServiceSpec, ContainerSpec) {
    let plan = check(src, "weftapp.toml").unwrap_or_else(|d| panic!("{d:?}\n{src}"));
    let s = plan.manifest.services[0].clone();
    let c = s.container.clone().expect("a container spec");
    (s, c)
}

#[test]
fn never_allowed_keys_are_refused_at_the_key_whatever_their_value() {
    refused(
        &image("privileged = false"),
        "7:1: services[0].privileged: never allowed: Weft never runs privileged containers",
    );
    refused(
        &image("privileged = true"),
        "7:1: services[0].privileged: never allowed: Weft never runs privileged containers",
    );
    for key in ["network", "network_mode", "pid", "pid_mode"] {
        refused(
            &image(&format!("{key} = \"host\"")),
            &format!(
                "7:1: services[0].{key}: never allowed: containers get their own network and \
                 PID namespace"
            ),
        );
    }
    // On any kind of service.
    refused(
        &component("privileged = true"),
        "7:1: services[0].privileged: never allowed: Weft never runs privileged containers",
    );
}

#[test]
fn volume_host_paths_stay_in_the_data_dir() {
    refused(
        &image("volumes = [\"/etc:/etc\"]"),
        "7:12: services[0].volumes[0]: expected HOST to be a relative path inside the app's \
         data dir, found \"/etc\" (an absolute path escapes the data dir)",
    );
    refused(
        &image("volumes = [\"www:/www\", \"a/../../x:/x:ro\"]"),
        "7:24: services[0].volumes[1]: expected HOST to be a relative path inside the app's \
         data dir, found \"a/../../x\" (`..` escapes the data dir)",
    );
    refused(
        &image("volumes = [\"www:www\"]"),
        "7:12: services[0].volumes[0]: expected CONTAINER to be an absolute path other than \
         \"/\", without `..`, found \"www\"",
    );
    refused(
        &image("volumes = [\"www:/\"]"),
        "7:12: services[0].volumes[0]: expected CONTAINER to be an absolute path other than \
         \"/\", without `..`, found \"/\"",
    );
    refused(
        &image("volumes = [\"www:/www:rx\"]"),
        "7:12: services[0].volumes[0]: expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\", \
         found \"www:/www:rx\"",
    );
    refused(
        &image("volumes = [\"a:/www\", \"b:/www/\"]"),
        "7:22: services[0].volumes[1]: duplicate container path \"/www/\"; expected each \
         mount point once",
    );
}

#[test]
fn the_docker_socket_is_never_mounted() {
    for v in [
        "/var/run/docker.sock:/var/run/docker.sock",
        "run/docker.sock:/sock",
        "sock:/var/run/docker.sock:ro",
    ] {
        refused(
            &image(&format!("volumes = [\"{v}\"]")),
            &format!(
                "7:12: services[0].volumes[0]: never allowed: the Docker socket is never \
                 mounted into a container (found \"{v}\")"
            ),
        );
    }
}

#[test]
fn ports_are_host_colon_container_each_1_to_65535() {
    let syntax = |col: u32, i: usize, found: &str| {
        format!(
            "7:{col}: services[0].ports[{i}]: expected \"HOST:CONTAINER\" with each port from \
             1 to 65535, e.g. \"18080:8080\", found \"{found}\""
        )
    };
    for bad in [
        "8080", "70000:80", "0:80", "80:0", "a:80", "-1:80", "80:80:80", " 80:80",
    ] {
        refused(&image(&format!("ports = [\"{bad}\"]")), &syntax(10, 0, bad));
    }
    refused(
        &image("ports = [\"18080:80\", \"18080:81\"]"),
        "7:22: services[0].ports[1]: duplicate host port 18080; expected each host port once",
    );
    refused(
        &image("ports = [8080]"),
        "7:10: services[0].ports[0]: expected a string \"HOST:CONTAINER\" with each port from \
         1 to 65535, e.g. \"18080:8080\", found integer",
    );
}

#[test]
fn call_and_probe_ports_must_be_published_container_ports() {
    refused(
        &image("ports = [\"18080:8080\"]\ncall = { port = 18080 }"),
        "8:17: services[0].call.port: expected a container port published in `ports` (8080), \
         found 18080",
    );
    refused(
        &image("call = { port = 8080 }"),
        "7:17: services[0].call.port: expected a container port published in `ports`, but \
         `ports` publishes none; found 8080",
    );
    refused(
        &image("ports = [\"18080:8080\"]\ncall = { port = 8080, path = \"cgi\" }"),
        "8:30: services[0].call.path: expected an absolute path like \"/\" without \
         whitespace, found \"cgi\"",
    );
    refused(
        &image("ports = [\"18080:8080\"]\nhealth = { tcp = 9000 }"),
        "8:18: services[0].health.tcp: expected a container port published in `ports` \
         (8080), found 9000",
    );
    refused(
        &image("ports = [\"18080:8080\"]\nhealth = { http = { port = 9000 } }"),
        "8:28: services[0].health.http.port: expected a container port published in `ports` \
         (8080), found 9000",
    );
    // A wrong `ports` is reported once, not again at every port using it.
    refused(
        &image("ports = [\"x\"]\ncall = { port = 8080 }"),
        "7:10: services[0].ports[0]: expected \"HOST:CONTAINER\" with each port from 1 to \
         65535, e.g. \"18080:8080\", found \"x\"",
    );
}

#[test]
fn container_keys_only_on_image_services() {
    let msg = |col: u32, key: &str, kind: &str| {
        format!(
            "{col}: services[0].{key}: only for image services (`image` or `image_archive`), \
             not for a `{kind}` service"
        )
    };
    refused(
        &component("ports = [\"18080:8080\"]"),
        &format!("7:{}", msg(1, "ports", "component")),
    );
    let url = format!(
        "{APP}[[services]]\nname = \"db\"\nurl = \"https://x\"\nread_only = true\ncap_add = []\n"
    );
    assert_eq!(
        errs(&url),
        [
            format!("7:{}", msg(1, "read_only", "url")),
            format!("8:{}", msg(1, "cap_add", "url")),
        ]
    );
    for key in [
        "pull = \"never\"",
        "command = [\"x\"]",
        "volumes = []",
        "resources = {}",
        "restart = \"never\"",
        "call = { port = 1 }",
    ] {
        let name = key.split(' ').next().unwrap_or_default();
        refused(&component(key), &format!("7:{}", msg(1, name, "component")));
    }
    // Probe keys in a component service's health table.
    refused(
        &component("health = { tcp = 80 }"),
        &format!("7:{}", msg(12, "health.tcp", "component")),
    );
}

#[test]
fn one_image_source_only() {
    refused(
        &image("image_archive = \"images/web.tar\""),
        "7:17: services[0].image_archive: expected exactly one of `component`, `image`, \
         `image_archive` or `url`, found both `image` and `image_archive`",
    );
    refused(
        &format!("{APP}[[services]]\nname = \"db\"\n"),
        "4:1: services[0]: missing service source; expected exactly one of `component`, \
         `image`, `image_archive` or `url`",
    );
}

#[test]
fn image_references_and_archive_paths() {
    for ok in [
        "busybox",
        "weft-test/busybox:latest",
        "registry.example.org:5000/team/app:1.2.3",
        "localhost/x",
        "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "a:b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(image_ref_problem(ok), None, "{ok}");
    }
    for bad in [
        "",
        "Busybox",
        "busybox:",
        "busybox:-x",
        "a b",
        "busybox@sha256:abc",
        "busybox@md5:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "-x/y",
        "a//b",
        "bad host:1/x",
    ] {
        assert!(image_ref_problem(bad).is_some(), "{bad:?}");
    }
    let src = format!("{APP}[[services]]\nname = \"web\"\nimage = \"Busybox\"\n");
    refused(
        &src,
        "6:9: services[0].image: expected a container image reference \
         [registry/]name[:tag][@sha256:<64 hex>], found \"Busybox\" (a name is `/`-separated \
         parts of lower-case letters, digits and `.`, `_`, `-`, each starting and ending with \
         a letter or digit)",
    );
    let src = format!("{APP}[[services]]\nname = \"web\"\nimage_archive = \"../web.tar\"\n");
    refused(
        &src,
        "6:17: services[0].image_archive: expected a relative path to a `docker save` tarball \
         inside the bundle, found \"../web.tar\" (`..` escapes the bundle)",
    );
    let src = format!("{APP}[[services]]\nname = \"web\"\nimage_archive = \"weftapp.lock\"\n");
    assert!(errs(&src)[0].contains("the manifest, lock and signature are not payloads"));
}

#[test]
fn capabilities() {
    refused(
        &image("cap_add = [\"NET_BIND_SERVICE\", \"ALL\"]"),
        "7:32: services[0].cap_add[1]: never allowed: \"ALL\" would give the container every \
         capability",
    );
    for cap in [
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "BPF",
        "DAC_READ_SEARCH",
        "CAP_SYS_ADMIN",
    ] {
        refused(
            &image(&format!("cap_add = [\"{cap}\"]")),
            &format!(
                "7:12: services[0].cap_add[0]: never allowed: \"{cap}\" amounts to root on \
                 the host"
            ),
        );
    }
    refused(
        &image("cap_add = [\"CAP_NET_RAW\"]"),
        "7:12: services[0].cap_add[0]: expected the name without \"CAP_\", e.g. \"NET_RAW\", \
         found \"CAP_NET_RAW\"",
    );
    refused(
        &image("cap_add = [\"net_raw\"]"),
        "7:12: services[0].cap_add[0]: expected a Linux capability name like \
         \"NET_BIND_SERVICE\" (upper case, without \"CAP_\"), found \"net_raw\"",
    );
    refused(
        &image("cap_add = [\"NET_RAW\", \"NET_RAW\"]"),
        "7:23: services[0].cap_add[1]: duplicate capability \"NET_RAW\"; expected each \
         capability once",
    );
}

#[test]
fn health_probes_for_image_services() {
    refused(
        &image("health = { kind = \"readiness\" }"),
        "7:10: services[0].health: missing probe; expected exactly one of `tcp`, `http` or \
         `exec` for an image service",
    );
    refused(
        &image("ports = [\"1:80\"]\nhealth = { tcp = 80, exec = [\"true\"] }"),
        "8:29: services[0].health.exec: expected exactly one of `tcp`, `http` or `exec`, found \
         both `tcp` and `exec`",
    );
    refused(
        &image("health = { exec = [] }"),
        "7:19: services[0].health.exec: expected a non-empty array of strings (argv), found an \
         empty array",
    );
    refused(
        &image("ports = [\"1:80\"]\nhealth = { http = { port = 80, status = 99 } }"),
        "8:41: services[0].health.http.status: expected an integer from 100 to 599, found 99",
    );
}

#[test]
fn pull_resources_restart_command() {
    refused(
        &archive("pull = \"if-not-present\""),
        "7:8: services[0].pull: an `image_archive` is loaded at install, never pulled; \
         expected \"never\", found \"if-not-present\"",
    );
    refused(
        &image("pull = \"always\""),
        "7:8: services[0].pull: expected \"never\" or \"if-not-present\", found \"always\"",
    );
    let mem = "expected a memory size of at least 6 MiB: bytes as an integer, or a string like \
               \"64m\" (k, m or g)";
    refused(
        &image("resources = { memory = \"4m\" }"),
        &format!("7:24: services[0].resources.memory: {mem}, found \"4m\""),
    );
    refused(
        &image("resources = { memory = \"64x\" }"),
        &format!("7:24: services[0].resources.memory: {mem}, found \"64x\""),
    );
    refused(
        &image("resources = { memory = 1024 }"),
        &format!("7:24: services[0].resources.memory: {mem}, found 1024"),
    );
    refused(
        &image("resources = { cpus = 0 }"),
        "7:22: services[0].resources.cpus: expected a number of CPUs from 0.01 to 64, found 0",
    );
    refused(
        &image("resources = { cpus = 64.5 }"),
        "7:22: services[0].resources.cpus: expected a number of CPUs from 0.01 to 64, found \
         64.5",
    );
    refused(
        &image("resources = { disk = 1 }"),
        "7:15: services[0].resources.disk: unknown key; expected one of `memory`, `cpus`",
    );
    refused(
        &image("restart = \"sometimes\""),
        "7:11: services[0].restart: expected \"never\", \"always\" or { on_failure = { \
         max_retries, backoff_ms } }, found \"sometimes\"",
    );
    refused(
        &image("command = []"),
        "7:11: services[0].command: expected a non-empty array of strings (argv), found an \
         empty array",
    );
    refused(
        &image("env = { \"A=B\" = \"x\" }"),
        "7:9: services[0].env.A=B: expected a variable name without `=` or NUL, found \"A=B\"",
    );
}

#[test]
fn memory_sizes() {
    assert_eq!(memory_bytes("64m"), Some(64 << 20));
    assert_eq!(memory_bytes("64M"), Some(64 << 20));
    assert_eq!(memory_bytes("1g"), Some(1 << 30));
    assert_eq!(memory_bytes("8192k"), Some(8 << 20));
    assert_eq!(memory_bytes("7000000"), Some(7_000_000));
    for bad in ["", "m", "1.5g", "-1m", "64mb", "99999999999999999999g"] {
        assert_eq!(memory_bytes(bad), None, "{bad}");
    }
}

#[test]
fn a_full_container_service_round_trips() {
    let src = image(
        "pull = \"never\"\n\
         command = [\"httpd\", \"-f\", \"-p\", \"8080\"]\n\
         ports = [\"18080:8080\", \"18443:8443\"]\n\
         env = { MODE = \"x\" }\n\
         volumes = [\"www:/www:ro\", \".:/data\", \"logs:/var/log:rw\"]\n\
         resources = { memory = \"64m\", cpus = 0.5 }\n\
         restart = { on_failure = { max_retries = 5, backoff_ms = 250 } }\n\
         cap_add = [\"NET_BIND_SERVICE\", \"CHOWN\"]\n\
         read_only = true\n\
         call = { port = 8080, path = \"/cgi-bin/svc\" }\n\
         health = { kind = \"readiness\", interval_ms = 5000, failure_threshold = 4, success_threshold = 2, http = { port = 8443, path = \"/healthz\", status = 204 } }",
    );
    let (s, c) = spec(&src);
    assert_eq!(
        s.source,
        ServiceSource::Image("weft-test/busybox:latest".into())
    );
    assert_eq!(
        (s.env[0].key.as_str(), s.env[0].value.as_str()),
        ("MODE", "x")
    );
    assert_eq!(
        s.health,
        Some(HealthCheck {
            kind: ProbeKind::Readiness,
            interval_ms: 5000,
            failure_threshold: 4,
            success_threshold: 2,
            probe: Probe::Http(HttpProbe {
                port: 8443,
                path: "/healthz".into(),
                status: 204
            }),
        })
    );
    let vol = |host: &str, container: &str, read_only| VolumeMount {
        host: host.into(),
        container: container.into(),
        read_only,
    };
    assert_eq!(
        c,
        ContainerSpec {
            pull: PullPolicy::Never,
            command: ["httpd", "-f", "-p", "8080"].map(String::from).to_vec(),
            ports: vec![
                PortMap {
                    host: 18080,
                    container: 8080
                },
                PortMap {
                    host: 18443,
                    container: 8443
                }
            ],
            volumes: vec![
                vol("www", "/www", true),
                vol(".", "/data", false),
                vol("logs", "/var/log", false)
            ],
            memory_bytes: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            restart: RestartPolicy::OnFailure(OnFailure {
                max_retries: 5,
                backoff_ms: 250
            }),
            cap_add: vec!["NET_BIND_SERVICE".into(), "CHOWN".into()],
            read_only: true,
            call: Some(ServiceCall {
                port: 8080,
                path: "/cgi-bin/svc".into()
            }),
        }
    );
    // tcp and exec probes.
    let (s, _) = spec(&image("ports = [\"1:80\"]\nhealth = { tcp = 80 }"));
    assert_eq!(s.health.map(|h| h.probe), Some(Probe::Tcp(80)));
    let (s, _) = spec(&image("health = { exec = [\"test\", \"-f\", \"/ok\"] }"));
    assert_eq!(
        s.health.map(|h| h.probe),
        Some(Probe::Exec(
            ["test", "-f", "/ok"].map(String::from).to_vec()
        ))
    );
}

#[test]
fn defaults() {
    let (_, c) = spec(&image(""));
    assert_eq!(
        c,
        ContainerSpec {
            pull: PullPolicy::IfNotPresent,
            command: vec![],
            ports: vec![],
            volumes: vec![],
            memory_bytes: None,
            nano_cpus: None,
            restart: RestartPolicy::OnFailure(OnFailure {
                max_retries: 3,
                backoff_ms: 500
            }),
            cap_add: vec![],
            read_only: false,
            call: None,
        }
    );
    let (s, c) = spec(&archive(""));
    assert_eq!(
        s.source,
        ServiceSource::ImageArchive("images/web.tar".into())
    );
    assert_eq!(c.pull, PullPolicy::Never);
    // Integer CPUs and byte counts; the call path and HTTP probe defaults.
    let (s, c) = spec(&image(
        "ports = [\"18080:8080\"]\nresources = { memory = 8388608, cpus = 2 }\n\
         call = { port = 8080 }\nhealth = { http = { port = 8080 } }",
    ));
    assert_eq!(
        (c.memory_bytes, c.nano_cpus),
        (Some(8 << 20), Some(2_000_000_000))
    );
    assert_eq!(
        c.call,
        Some(ServiceCall {
            port: 8080,
            path: "/".into()
        })
    );
    let h = s.health.expect("health");
    assert_eq!(
        (
            h.kind,
            h.interval_ms,
            h.failure_threshold,
            h.success_threshold
        ),
        (ProbeKind::Liveness, 10_000, 3, 1)
    );
    assert_eq!(
        h.probe,
        Probe::Http(HttpProbe {
            port: 8080,
            path: "/".into(),
            status: 200
        })
    );
    // Component and URL services: no container, no probe.
    let plan = check(&component("health = { kind = \"readiness\" }"), "m").expect("valid");
    let s = &plan.manifest.services[0];
    assert_eq!(s.container, None);
    assert_eq!(s.health.as_ref().map(|h| &h.probe), Some(&Probe::None));
}

#[test]
fn an_image_archive_is_locked_but_not_compiled() {
    let src = format!(
        "{APP}[[agents]]\nid = \"a\"\ncomponent = \"c/a.wasm\"\n\
         [[services]]\nname = \"web\"\nimage_archive = \"images/web.tar\"\n\
         [[services]]\nname = \"db\"\nimage = \"postgres:16\"\n\
         [[services]]\nname = \"api\"\ncomponent = \"c/api.wasm\"\n"
    );
    let plan = check(&src, "m").expect("valid");
    let m = &plan.manifest;
    assert_eq!(
        plan.install,
        vec![
            Step::VerifyDigests(
                ["c/a.wasm", "c/api.wasm", "images/web.tar"]
                    .map(String::from)
                    .to_vec()
            ),
            Step::CopyBundle,
            Step::Precompile("c/a.wasm".into()),
            Step::Precompile("c/api.wasm".into()),
            Step::PrepareImage(m.services[0].clone()),
            Step::PrepareImage(m.services[1].clone()),
        ]
    );
    assert_eq!(
        plan.start,
        vec![
            Step::RegisterService(m.services[0].clone()),
            Step::RegisterService(m.services[1].clone()),
            Step::RegisterService(m.services[2].clone()),
            Step::SpawnAgent(m.agents[0].clone()),
        ]
    );
    assert!(m.services[0].container.is_some() && m.services[1].container.is_some());
    assert!(m.services[2].container.is_none());
}

#[test]
fn the_documented_example_checks() {
    // docs/weftapp.md, `[[services]]`.
    let src = format!(
        "{APP}[[services]]\n\
         name = \"web\"\n\
         image = \"weft-test/busybox:latest\"\n\
         command = [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n\
         ports = [\"18080:8080\"]\n\
         env = {{ MODE = \"x\" }}\n\
         volumes = [\"www:/www:ro\"]\n\
         resources = {{ memory = \"64m\", cpus = 0.5 }}\n\
         cap_add = [\"NET_BIND_SERVICE\"]\n\
         read_only = true\n\
         call = {{ port = 8080, path = \"/cgi-bin/svc\" }}\n\
         health = {{ kind = \"readiness\", interval_ms = 5000, http = {{ port = 8080, path = \"/\" }} }}\n"
    );
    let (s, c) = spec(&src);
    assert_eq!(c.pull, PullPolicy::IfNotPresent);
    assert_eq!(c.restart, crate::containers::DEFAULT_RESTART);
    assert!(matches!(s.health.map(|h| h.probe), Some(Probe::Http(_))));
}

fn with_policy(src: &str, containers: ContainerEngine) -> Vec<String> {
    match check_with(
        src,
        "weftapp.toml",
        CheckPolicy {
            containers,
            ..Default::default()
        },
    ) {
        Ok(p) => panic!("expected errors, got {p:?}\n{src}"),
        Err(d) => d.iter().map(|d| d.to_string()).collect(),
    }
}

fn kernel_policy() -> ContainerEngine {
    ContainerEngine::Policy(ContainerPolicy {
        host_port_min: 20000,
        host_port_max: 20999,
        allowed_caps: vec!["NET_BIND_SERVICE".into()],
        max_memory_bytes: Some(256 << 20),
        max_nano_cpus: Some(1_000_000_000),
    })
}

#[test]
fn a_kernel_without_an_engine_refuses_container_services_at_their_source() {
    let want = |col: u32, key: &str| {
        format!(
            "6:{col}: services[0].{key}: this kernel has no container engine configured; \
             add `[containers]` to weft.toml (see docs/containers.md)"
        )
    };
    assert_eq!(
        with_policy(&image(""), ContainerEngine::Absent),
        [want(9, "image")]
    );
    assert_eq!(
        with_policy(&archive(""), ContainerEngine::Absent),
        [want(17, "image_archive")]
    );
    // Component services need no engine.
    check_with(
        &component(""),
        "weftapp.toml",
        CheckPolicy {
            containers: ContainerEngine::Absent,
            ..Default::default()
        },
    )
    .expect("a component service installs without an engine");
}

#[test]
fn asking_for_more_than_the_kernel_allows_is_refused_at_the_key() {
    assert_eq!(
        with_policy(
            &image("ports = [\"20000:80\", \"8080:80\"]"),
            kernel_policy()
        ),
        [
            "7:22: services[0].ports[1]: host port 8080 is outside the range this kernel allows \
          (20000-20999; `[containers] host_ports` in weft.toml)"
        ]
    );
    assert_eq!(
        with_policy(
            &image("cap_add = [\"NET_BIND_SERVICE\", \"NET_RAW\"]"),
            kernel_policy()
        ),
        [
            "7:32: services[0].cap_add[1]: capability \"NET_RAW\" is not allowed in this kernel's \
          environment (allowed: NET_BIND_SERVICE; `[containers] allowed_caps` in weft.toml)"
        ]
    );
    assert_eq!(
        with_policy(
            &image("resources = { memory = \"1g\", cpus = 2 }"),
            kernel_policy()
        ),
        [
            "7:24: services[0].resources.memory: 1073741824 bytes is more than this kernel \
             allows a container (268435456 bytes; `[containers] max_memory` in weft.toml)",
            "7:37: services[0].resources.cpus: 2 CPUs is more than this kernel allows a \
             container (1 CPUs; `[containers] max_cpus` in weft.toml)"
        ]
    );
    // Within the policy: accepted.
    check_with(
        &image("ports = [\"20080:80\"]\ncap_add = [\"NET_BIND_SERVICE\"]\nresources = { memory = \"64m\" }"),
        "weftapp.toml",
        CheckPolicy { containers: kernel_policy(), ..Default::default() },
    )
    .expect("within the kernel's policy");
}
