//! Environments through `weaver`: three apps in `dev`, `staging` and
//! `prod` under different policies, full audit in `dev`, learning mode in
//! `staging`, an unsigned `dev` app on a `prod` kernel, an environment the
//! kernel does not define, `/apps` and `/environments` in the tree, and a
//! policy given to an environment while the kernel runs.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use weft_e2e::{guest, start_kernel, weaver, weaver_at, Run};

const DEFAULT_POLICY: &str =
    include_str!("../components/subsystems/governance/default-policy.toml");

/// The default policy plus a rule that refuses publishing.
fn no_publish() -> String {
    format!(
        "{DEFAULT_POLICY}\n[[rules]]\nid = \"quiet\"\ndescription = \"no publishing\"\n\
         branch = \"executive\"\nseverity = \"blocking\"\nactions = [\"ipc.publish\"]\n\
         verdict = \"deny\"\n"
    )
}

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = weaver_at(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

/// A copy of apps/hello named `name`, in environment `env` (none: the
/// kernel's), packed and signed with `key` if given.
fn app(dir: &Path, name: &str, env: Option<&str>, key: Option<&Path>) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("components")).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/hello/weftapp.toml");
    let mut text = std::fs::read_to_string(example)
        .unwrap()
        .replace("name = \"hello\"", &format!("name = \"{name}\""))
        .replace("[environment]\nname = \"dev\"\n", "")
        // Tool names are kernel-wide: one per app.
        .replace("\"calc\"", &format!("\"{name}-calc\""));
    if let Some(env) = env {
        text.push_str(&format!("\n[environment]\nname = \"{env}\"\n"));
    }
    std::fs::write(root.join("weftapp.toml"), text).unwrap();
    for g in ["probe", "calc"] {
        std::fs::copy(guest(g), root.join(format!("components/{g}.wasm"))).unwrap();
    }
    let out = dir.join(format!("{name}.weftapp"));
    let mut args = vec![
        "app",
        "pack",
        root.to_str().unwrap(),
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

fn publish(state: &Path, agent: &str) -> String {
    ok(
        state,
        &[
            "agent",
            "send",
            agent,
            r#"{"op":"send","to":"topic:news","body":"hi"}"#,
            "--json",
        ],
    )
    .stdout
}

/// Gate records of `ipc.publish` by `agent` in the chain export.
fn publishes(state: &Path, agent: &str) -> Vec<Value> {
    ok(state, &["chain", "export"])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            let p = &e["payload"];
            e["kind"].as_str().unwrap_or("").starts_with("gate.")
                && p["action"] == "ipc.publish"
                && p["agent"] == agent
        })
        .map(|e| e["payload"].clone())
        .collect()
}

#[test]
fn apps_act_in_their_environment_under_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    std::fs::write(d.join("shared.toml"), no_publish()).unwrap();
    std::fs::write(d.join("dev.toml"), DEFAULT_POLICY).unwrap();
    std::fs::write(
        d.join("weft.toml"),
        "[governance]\npolicy = \"shared.toml\"\n\
         [environments.dev]\npolicy = \"dev.toml\"\naudit = \"full\"\n\
         [environments.staging]\nlearning = true\n\
         [environments.qa]\n",
    )
    .unwrap();
    let cfg = d.join("weft.toml");
    let mut k = start_kernel(&state, &["--config", cfg.to_str().unwrap()]);

    let key = d.join("alice.key");
    let r = weaver(&["key", "new", "-o", key.to_str().unwrap()], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = r.stdout.split_whitespace().last().unwrap().to_string();
    ok(&state, &["trust", "add", "alice", &public]);

    // An unsigned app whose manifest says dev installs on this prod kernel,
    // into dev; one for prod must be signed.
    let dev = app(d, "devapp", Some("dev"), None);
    ok(&state, &["app", "install", dev.to_str().unwrap()]);
    let unsigned_prod = app(&d.join("u"), "prodapp", None, None);
    let r = weaver_at(&state, &["app", "install", unsigned_prod.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("environment `prod` installs only signed bundles"),
        "{}",
        r.stderr
    );
    let prod = app(d, "prodapp", None, Some(&key));
    ok(&state, &["app", "install", prod.to_str().unwrap()]);
    let staging = app(d, "stageapp", Some("staging"), Some(&key));
    ok(&state, &["app", "install", staging.to_str().unwrap()]);
    // A name the kernel does not define: refused, naming those it does.
    let moon = app(d, "moonapp", Some("moon"), Some(&key));
    let r = weaver_at(&state, &["app", "install", moon.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown environment `moon`")
            && r.stderr.contains("dev, prod, qa, staging"),
        "{}",
        r.stderr
    );

    let apps = ok(&state, &["app", "ls", "--json"]).json();
    let env_of = |name: &str| {
        apps.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["environment"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(env_of("devapp"), "dev");
    assert_eq!(env_of("prodapp"), "prod");
    assert_eq!(env_of("stageapp"), "staging");
    for a in ["devapp", "prodapp", "stageapp"] {
        ok(&state, &["app", "start", a]);
    }

    // dev's own policy permits publishing; prod's (the shared one) refuses
    // it; staging shares it but only learns.
    assert!(publish(&state, "devapp.greeter").contains("\"ok\""));
    let r = publish(&state, "prodapp.greeter");
    assert!(r.contains("Denied") && r.contains("quiet"), "{r}");
    assert!(publish(&state, "stageapp.greeter").contains("\"ok\""));
    let learned = publishes(&state, "stageapp.greeter");
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0]["decision"], "permit");
    let reason = learned[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("learning mode in `staging`: governance would deny"),
        "{reason}"
    );
    assert!(learned[0]["context"]
        .as_str()
        .unwrap()
        .contains("\"environment\":\"staging\""));

    // Full audit in dev: each publish asks the gate again, with the body's
    // digest (the same body, the same digest); gate-only staging reuses its
    // permit.
    assert!(publish(&state, "devapp.greeter").contains("\"ok\""));
    let dev_records = publishes(&state, "devapp.greeter");
    assert_eq!(dev_records.len(), 2, "{dev_records:?}");
    let digests: Vec<String> = dev_records
        .iter()
        .map(|r| {
            let c: Value = serde_json::from_str(r["context"].as_str().unwrap()).unwrap();
            c["input_digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(digests[0].len(), 64);
    assert_eq!(digests[0], digests[1]);
    assert!(publish(&state, "stageapp.greeter").contains("\"ok\""));
    assert_eq!(publishes(&state, "stageapp.greeter").len(), 1);

    // weaver env, and the tree.
    let envs = ok(&state, &["env", "ls", "--json"]).json();
    let by_name = |n: &str| {
        envs.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(envs.as_array().unwrap().len(), 4);
    assert_eq!(by_name("prod")["default"], true);
    assert_eq!(by_name("dev")["audit"], "full");
    assert_eq!(by_name("staging")["learning"], true);
    assert_eq!(by_name("dev")["apps"], serde_json::json!(["devapp"]));
    let shown = ok(&state, &["env", "show", "dev"]).stdout;
    assert!(
        shown.contains("devapp") && shown.contains("full"),
        "{shown}"
    );
    let r = weaver_at(&state, &["env", "show", "mars"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown environment `mars`"),
        "{}",
        r.stderr
    );
    let tree = ok(&state, &["tree", "ls", "/", "--json"]).stdout;
    for p in [
        "/apps/devapp",
        "/apps/prodapp",
        "/environments/dev",
        "/environments/qa",
    ] {
        assert!(tree.contains(&format!("\"{p}\"")), "{p} missing: {tree}");
    }

    // A policy for prod while the kernel runs: publishing is allowed there
    // from now on, and the change is on the chain.
    std::fs::write(d.join("open.toml"), DEFAULT_POLICY).unwrap();
    let open = d.join("open.toml");
    ok(
        &state,
        &["env", "set-policy", "prod", open.to_str().unwrap()],
    );
    assert!(publish(&state, "prodapp.greeter").contains("\"ok\""));
    let export = ok(&state, &["chain", "export"]).stdout;
    assert!(export.contains("\"env.policy\""), "no env.policy record");
    std::fs::write(d.join("broken.toml"), "rules = 3\n").unwrap();
    let broken = d.join("broken.toml");
    let r = weaver_at(
        &state,
        &["env", "set-policy", "prod", broken.to_str().unwrap()],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("policy rejected") && r.stderr.contains("line 1, column 9"),
        "{}",
        r.stderr
    );
    assert!(publish(&state, "prodapp.greeter").contains("\"ok\""));

    // Removing an app takes it out of its environment and the tree.
    ok(&state, &["app", "rm", "devapp"]);
    let tree = ok(&state, &["tree", "ls", "/apps", "--json"]).stdout;
    assert!(!tree.contains("/apps/devapp"), "{tree}");
    let dev = ok(&state, &["env", "show", "dev", "--json"]).json();
    assert_eq!(dev["apps"], serde_json::json!([]));
    let r = ok(&state, &["chain", "verify"]);
    assert!(r.stdout.contains("ok"), "{}", r.stdout);

    // kill -9: the apps come back in their environments; the policy given
    // while running is gone (weft.toml's is in force again).
    k.0.kill().unwrap();
    k.0.wait().unwrap();
    let _k = start_kernel(&state, &["--config", cfg.to_str().unwrap()]);
    let staging = ok(&state, &["env", "show", "staging", "--json"]).json();
    assert_eq!(staging["apps"], serde_json::json!(["stageapp"]));
    let r = publish(&state, "prodapp.greeter");
    assert!(r.contains("Denied") && r.contains("quiet"), "{r}");
    assert!(publish(&state, "stageapp.greeter").contains("\"ok\""));
    let tree = ok(&state, &["tree", "ls", "/apps", "--json"]).stdout;
    assert!(
        tree.contains("/apps/stageapp") && !tree.contains("/apps/devapp"),
        "{tree}"
    );
}

#[test]
fn a_bad_environment_in_weft_toml_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("weft.toml");
    for (text, want) in [
        ("[environments.Prod2]\n", "environments.Prod2"),
        ("[environments.qa]\naudit = \"most\"\n", "weft.toml:2:9"),
        ("[kernel]\nenvironment = \"qa\"\n", "kernel.environment"),
        (
            "[environments.qa]\npolicy = \"missing.toml\"\n",
            "environments.qa.policy",
        ),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let state = dir.path().join("state");
        let r = weaver(
            &[
                "run",
                "--state",
                state.to_str().unwrap(),
                "--config",
                cfg.to_str().unwrap(),
            ],
            b"",
        );
        assert_ne!(r.code, 0, "{text}");
        assert!(r.stderr.contains(want), "{text}: {}", r.stderr);
    }
}
