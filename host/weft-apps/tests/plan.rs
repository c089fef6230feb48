//! A good manifest gives the expected plan; a failing checker is an error.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use weft_apps::types::{
    AgentRole, ContainerSpec, HealthCheck, HookRun, HttpProbe, IpcScope, OnFailure, PortMap, Probe,
    ProbeKind, PullPolicy, RestartPolicy, ServiceCall, ServiceSource, Step, VolumeMount,
};
use weft_apps::{convert, AppsChecker, CheckError};
use weft_runtime::{Limits, RunError};

#[tokio::test]
async fn hello_app_gives_the_expected_plan() {
    let path = weft_testkit::repo_root().join("apps/hello/weftapp.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let plan = common::checker()
        .check(&text, "weftapp.toml")
        .await
        .unwrap();
    let m = &plan.manifest;
    assert_eq!(
        (m.app.name.as_str(), m.app.version.as_str()),
        ("hello", "0.1.0")
    );
    assert_eq!(m.environment.as_deref(), Some("dev"));
    let a = &m.agents[0];
    assert_eq!(
        (a.id.as_str(), a.component.as_str()),
        ("greeter", "components/probe.wasm")
    );
    assert_eq!(a.role, AgentRole::Coordinator);
    assert!(a.auto_start);
    assert_eq!(a.capabilities.tools.allow, vec!["calc".to_string()]);
    assert_eq!(a.capabilities.ipc, IpcScope::All);
    let l = a.limits.clone().unwrap();
    assert_eq!(
        (l.fuel_per_message, l.timeout_ms, l.max_memory_bytes),
        (50_000_000, 2_000, 64 << 20)
    );
    assert_eq!(
        a.restart,
        RestartPolicy::OnFailure(OnFailure {
            max_retries: 3,
            backoff_ms: 100
        })
    );
    assert_eq!(convert::config(a), serde_json::json!({"greeting": "hello"}));
    assert_eq!(m.tools[0].limits.fuel, Some(10_000_000));
    assert_eq!(
        plan.install,
        vec![
            Step::VerifyDigests(vec![
                "components/calc.wasm".into(),
                "components/probe.wasm".into()
            ]),
            Step::CopyBundle,
            Step::Precompile("components/probe.wasm".into()),
            Step::Precompile("components/calc.wasm".into()),
        ]
    );
    assert_eq!(
        plan.start,
        vec![
            Step::RegisterTool(m.tools[0].clone()),
            Step::SpawnAgent(a.clone()),
        ]
    );
    assert!(plan.stop.is_empty() && plan.remove.is_empty());
    // The kernel's own types: capabilities and limits are shared, the
    // restart policy is converted.
    let caps: &weft_kernel::Capabilities = &a.capabilities;
    assert!(caps.tools.allows("calc") && !caps.tools.allows("shell"));
    let limits: weft_kernel::AgentLimits = l;
    assert_eq!(limits.timeout_ms, 2_000);
    assert_eq!(
        convert::restart(&a.restart),
        weft_kernel::RestartPolicy::OnFailure {
            max_retries: 3,
            backoff: Duration::from_millis(100)
        }
    );
}

#[tokio::test]
async fn full_manifest_defaults_hooks_services_and_ceiling() {
    let text = r#"
[app]
name = "full"
version = "2.0.0-rc.1+b5"

[capabilities]
tools = { allow = ["*"], deny = ["shell*"] }
ipc = { named = ["db", "w*"] }
sandbox = "granted"
spawn = true

[[agents]]
id = "boss"
component = "c/boss.wasm"
role = "supervisor"
capabilities = { tools = { allow = ["calc"] }, ipc = { named = ["worker-1"] }, spawn = true }
restart = "always"

[[agents]]
id = "idle"
component = "c/boss.wasm"
auto_start = false

[[tools]]
name = "wc"
component = "c/wc.wasm"
grants = { dirs = [{ host = "notes", guest = "/notes" }], env = { LANG = "C" } }

[[services]]
name = "db"
image = "postgres:16"
ports = ["15432:5432"]
health = { kind = "readiness", tcp = 5432 }

[[services]]
name = "api"
component = "c/api.wasm"

[hooks]
on_install = "c/setup.wasm"
on_start = "c/boss.wasm"
"#;
    let plan = common::checker().check(text, "weftapp.toml").await.unwrap();
    let m = &plan.manifest;
    assert_eq!(
        m.agents[0].capabilities.tools.deny,
        vec!["shell*".to_string()]
    );
    assert_eq!(m.agents[0].restart, RestartPolicy::Always);
    assert_eq!(m.agents[1].capabilities, strict_caps_with_ceiling_deny());
    assert!(m.tools[0].dirs[0].read_only);
    assert_eq!(m.tools[0].env[0].key, "LANG");
    assert_eq!(
        m.services[0].source,
        ServiceSource::Image("postgres:16".into())
    );
    let h = m.services[0].health.clone().unwrap();
    assert_eq!(
        (h.interval_ms, h.failure_threshold, h.success_threshold),
        (10_000, 3, 1)
    );
    assert_eq!(h.probe, Probe::Tcp(5432));
    assert_eq!(
        m.services[0].container.as_ref().map(|c| c.ports.clone()),
        Some(vec![PortMap {
            host: 15432,
            container: 5432
        }])
    );
    // A component service has no container and no probe of its own.
    assert_eq!(m.services[1].container, None);
    let grants = convert::tool_grants(&m.tools[0], std::path::Path::new("/data/full"));
    assert_eq!(
        grants.dirs[0].host,
        std::path::Path::new("/data/full/notes")
    );
    let hook = |hook: &str, component: &str| {
        Step::RunHook(HookRun {
            hook: hook.into(),
            component: component.into(),
        })
    };
    assert_eq!(
        plan.install,
        vec![
            Step::VerifyDigests(vec![
                "c/api.wasm".into(),
                "c/boss.wasm".into(),
                "c/setup.wasm".into(),
                "c/wc.wasm".into()
            ]),
            Step::CopyBundle,
            Step::Precompile("c/boss.wasm".into()),
            Step::Precompile("c/wc.wasm".into()),
            Step::Precompile("c/api.wasm".into()),
            Step::Precompile("c/setup.wasm".into()),
            // Images are loaded or pulled at install, before any hook runs.
            Step::PrepareImage(m.services[0].clone()),
            hook("on-install", "c/setup.wasm"),
        ]
    );
    // `idle` is not auto-started.
    assert_eq!(
        plan.start,
        vec![
            hook("on-start", "c/boss.wasm"),
            Step::RegisterTool(m.tools[0].clone()),
            Step::RegisterService(m.services[0].clone()),
            Step::RegisterService(m.services[1].clone()),
            Step::SpawnAgent(m.agents[0].clone()),
        ]
    );
    assert!(plan.stop.is_empty() && plan.remove.is_empty());
}

#[tokio::test]
async fn container_services_plan_their_whole_spec_and_lock_the_archive() {
    let text = r#"
[app]
name = "web"
version = "1.0.0"

[[services]]
name = "web"
image_archive = "images/web.tar"
command = ["httpd", "-f", "-p", "8080"]
ports = ["18080:8080"]
env = { MODE = "x" }
volumes = ["www:/www:ro"]
resources = { memory = "64m", cpus = 0.5 }
restart = { on_failure = { max_retries = 3, backoff_ms = 500 } }
cap_add = ["NET_BIND_SERVICE"]
read_only = true
call = { port = 8080, path = "/cgi-bin/svc" }
health = { kind = "readiness", interval_ms = 5000, failure_threshold = 3, success_threshold = 1, http = { port = 8080, path = "/ok", status = 204 } }

[[services]]
name = "cache"
image = "weft-test/busybox:latest"
health = { exec = ["true"] }

[[services]]
name = "api"
component = "c/api.wasm"
"#;
    let plan = common::checker().check(text, "weftapp.toml").await.unwrap();
    let m = &plan.manifest;
    let web = &m.services[0];
    assert_eq!(
        web.source,
        ServiceSource::ImageArchive("images/web.tar".into())
    );
    assert_eq!(
        web.health,
        Some(HealthCheck {
            kind: ProbeKind::Readiness,
            interval_ms: 5000,
            failure_threshold: 3,
            success_threshold: 1,
            probe: Probe::Http(HttpProbe {
                port: 8080,
                path: "/ok".into(),
                status: 204,
            }),
        })
    );
    assert_eq!(
        web.container,
        Some(ContainerSpec {
            pull: PullPolicy::Never,
            command: ["httpd", "-f", "-p", "8080"].map(String::from).to_vec(),
            ports: vec![PortMap {
                host: 18080,
                container: 8080,
            }],
            volumes: vec![VolumeMount {
                host: "www".into(),
                container: "/www".into(),
                read_only: true,
            }],
            memory_bytes: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            restart: RestartPolicy::OnFailure(OnFailure {
                max_retries: 3,
                backoff_ms: 500,
            }),
            cap_add: vec!["NET_BIND_SERVICE".into()],
            read_only: true,
            call: Some(ServiceCall {
                port: 8080,
                path: "/cgi-bin/svc".into(),
            }),
        })
    );
    // Defaults of a plain image service.
    let cache = m.services[1].container.clone().unwrap();
    assert_eq!(cache.pull, PullPolicy::IfNotPresent);
    assert_eq!(
        cache.restart,
        RestartPolicy::OnFailure(OnFailure {
            max_retries: 3,
            backoff_ms: 500,
        })
    );
    assert!(cache.ports.is_empty() && cache.call.is_none() && cache.command.is_empty());
    assert_eq!(
        m.services[1].health.as_ref().map(|h| &h.probe),
        Some(&Probe::Exec(vec!["true".into()]))
    );
    // The archive is locked (verify-digests) but never compiled; each image is prepared once.
    assert_eq!(
        plan.install,
        vec![
            Step::VerifyDigests(vec!["c/api.wasm".into(), "images/web.tar".into()]),
            Step::CopyBundle,
            Step::Precompile("c/api.wasm".into()),
            Step::PrepareImage(m.services[0].clone()),
            Step::PrepareImage(m.services[1].clone()),
        ]
    );
    assert_eq!(
        weft_apps::plan_components(&plan),
        vec!["c/api.wasm".to_string(), "images/web.tar".to_string()]
    );
    // Each service registers with its whole spec.
    assert_eq!(
        plan.start,
        m.services
            .iter()
            .cloned()
            .map(Step::RegisterService)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_glob_wider_than_the_ceiling_is_refused_where_it_is_written() {
    // `c?` allows two-letter names only; `c*` reaches `c`, `calc`, ...
    let text = format!(
        "{}[capabilities]\ntools = {{ allow = [\"c?\"] }}\n[[agents]]\nid = \"a\"\n\
         component = \"a.wasm\"\ncapabilities = {{ tools = {{ allow = [\"cd\", \"c*\"] }} }}\n",
        common::APP
    );
    let err = common::checker()
        .check(&text, "weftapp.toml")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "weftapp.toml:9:43: agents[0].capabilities.tools.allow[1]: \"c*\" exceeds the app \
         ceiling: it matches tool \"c\", which capabilities.tools.allow ([\"c?\"]) does not"
    );
    // A cron capability needs the ceiling's.
    let text = text.replace("[\"cd\", \"c*\"] }", "[\"cd\"] }, cron = true");
    let err = common::checker()
        .check(&text, "weftapp.toml")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("weftapp.toml:9:53: agents[0].capabilities.cron: exceeds the app ceiling"),
        "{err}"
    );
}

#[tokio::test]
async fn a_pattern_too_complex_to_decide_is_refused_within_the_checker_limits() {
    // Deciding `*a` + 20 `?` needs about 2^20 subset states: the checker
    // gives up at its bound and refuses, with a diagnostic, well inside
    // its fuel, memory and time.
    let q = "?".repeat(20);
    let ceiling: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|c| format!("\"*{c}{q}\""))
        .collect();
    let text = format!(
        "{}[capabilities]\ntools = {{ allow = [{}] }}\n[[agents]]\nid = \"a\"\n\
         component = \"a.wasm\"\ncapabilities = {{ tools = {{ allow = [\"*a{q}\"] }} }}\n",
        common::APP,
        ceiling.join(", ")
    );
    let err = common::checker()
        .check(&text, "weftapp.toml")
        .await
        .unwrap_err();
    let CheckError::Invalid { diagnostics, .. } = &err else {
        panic!("the checker itself failed: {err}");
    };
    assert_eq!(diagnostics.len(), 1, "{err}");
    assert_eq!((diagnostics[0].line, diagnostics[0].col), (9, 37), "{err}");
    assert!(
        diagnostics[0]
            .message
            .contains("exceeds the app ceiling: pattern too complex to prove within the ceiling"),
        "{err}"
    );
}

/// No capabilities, but the ceiling's deny list merged in.
fn strict_caps_with_ceiling_deny() -> weft_apps::types::Capabilities {
    weft_apps::types::Capabilities {
        tools: weft_apps::types::ToolPermissions {
            allow: vec![],
            deny: vec!["shell*".into()],
        },
        ipc: IpcScope::None,
        sandbox: weft_apps::types::SandboxPolicy::Strict,
        chain_append: false,
        spawn: false,
        cron: false,
        ecc: Default::default(),
        network: Default::default(),
    }
}

#[tokio::test]
async fn a_starved_checker_is_an_error_not_a_panic() {
    let checker = common::checker().with_limits(Limits {
        fuel: 1_000,
        ..AppsChecker::default_limits()
    });
    let err = checker
        .check(common::APP, "weftapp.toml")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::Checker {
                error: RunError::OutOfFuel { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("the manifest checker failed on weftapp.toml: out of fuel"),
        "{err}"
    );
}

#[test]
fn a_component_of_another_world_is_refused() {
    let Err(err) = AppsChecker::from_file(&common::runtime(), &weft_testkit::guest("calc")) else {
        panic!("calc accepted as the checker");
    };
    assert!(matches!(err, CheckError::Load(_)), "{err}");
    assert!(
        err.to_string().contains("cannot load the manifest checker"),
        "{err}"
    );
}
