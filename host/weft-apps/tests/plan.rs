//! A good manifest gives the expected plan; a failing checker is an error.

mod common;

use std::time::Duration;

use weft_apps::types::{
    AgentRole, Environment, IpcScope, OnFailure, RestartPolicy, ServiceSource, Step,
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
    assert_eq!(m.environment, Some(Environment::Dev));
    let a = &m.agents[0];
    assert_eq!(
        (a.id.as_str(), a.component.as_str()),
        ("greeter", "components/probe.wasm")
    );
    assert_eq!(a.role, AgentRole::Worker);
    assert!(a.auto_start);
    assert_eq!(a.capabilities.tools.allow, vec!["calc".to_string()]);
    assert_eq!(a.capabilities.ipc, IpcScope::All);
    let l = a.limits.unwrap();
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
        plan.steps,
        vec![
            Step::VerifyDigests(vec![
                "components/calc.wasm".into(),
                "components/probe.wasm".into()
            ]),
            Step::GateCheck("app.install".into()),
            Step::CopyBundle,
            Step::Precompile("components/probe.wasm".into()),
            Step::Precompile("components/calc.wasm".into()),
            Step::RegisterTool("calc".into()),
            Step::SpawnAgent("greeter".into()),
        ]
    );
    // Into the kernel's own types.
    let caps = convert::capabilities(&a.capabilities);
    assert!(caps.tools.allows("calc") && !caps.tools.allows("shell"));
    assert_eq!(convert::agent_limits(&l).timeout_ms, 2_000);
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
role = "coordinator"
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
ports = [5432]
health = { kind = "readiness" }

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
    let h = m.services[0].health.unwrap();
    assert_eq!(
        (h.interval_ms, h.failure_threshold, h.success_threshold),
        (10_000, 3, 1)
    );
    let grants = convert::tool_grants(&m.tools[0], std::path::Path::new("/data/full"));
    assert_eq!(
        grants.dirs[0].host,
        std::path::Path::new("/data/full/notes")
    );
    let names: Vec<String> = plan.steps.iter().map(|s| format!("{s:?}")).collect();
    let want = [
        "Step::VerifyDigests([\"c/api.wasm\", \"c/boss.wasm\", \"c/setup.wasm\", \"c/wc.wasm\"])",
        "Step::GateCheck(\"app.install\")",
        "Step::CopyBundle",
        "Step::Precompile(\"c/boss.wasm\")",
        "Step::Precompile(\"c/wc.wasm\")",
        "Step::Precompile(\"c/api.wasm\")",
        "Step::Precompile(\"c/setup.wasm\")",
        "Step::RunHook(HookRun { hook: \"on-install\", component: \"c/setup.wasm\" })",
        "Step::RegisterTool(\"wc\")",
        "Step::RegisterService(\"db\")",
        "Step::RegisterService(\"api\")",
        "Step::RunHook(HookRun { hook: \"on-start\", component: \"c/boss.wasm\" })",
        "Step::SpawnAgent(\"boss\")",
    ];
    assert_eq!(names, want);
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
