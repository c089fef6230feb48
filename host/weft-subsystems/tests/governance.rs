//! The governance component behind the gate: decisions, policies, hot swap
//! under load, failures (all with the real components).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weft_gate::{
    DecisionKind, GateBackend, GovernanceBackend, GovernanceDecision, GovernanceGate,
    GovernanceRequest,
};
use weft_kernel::Principal;
use weft_runtime::Runtime;
use weft_subsystems::governance::{default_limits, GovernanceUnit, Reload, Swap};
use weft_subsystems::{ComponentError, ComponentGovernance};

fn governance(rt: &Runtime, name: &str, policy: Option<&str>) -> Arc<ComponentGovernance> {
    Arc::new(
        ComponentGovernance::new(
            rt,
            common::component_in(rt, name),
            policy,
            default_limits(),
            2,
        )
        .unwrap_or_else(|e| panic!("governance: {e}")),
    )
}

fn req(action: &str, effect: &[(&str, f64)], env: &str) -> GovernanceRequest {
    GovernanceRequest {
        agent: "a".into(),
        action: action.into(),
        effect: effect
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
        context: json!({}),
        environment: env.into(),
    }
}

#[tokio::test]
async fn decisions_per_severity_and_environment() {
    let rt = common::runtime();
    let g = governance(&rt, "governance", None);
    let d = |a: &str, e: &[(&str, f64)], env: &str| g.evaluate(&req(a, e, env)).unwrap();
    use GovernanceDecision::*;
    // Nothing fires for a zero effect.
    assert_eq!(d("ipc.send", &[], "prod").decision, Permit);
    // Critical: denied everywhere, whatever the effect.
    for env in ["dev", "staging", "prod"] {
        let v = d("chain.rewrite", &[], env);
        assert_eq!(v.decision, Deny, "{env}");
        assert_eq!(v.fired_rules[0].id, "chain-integrity");
    }
    // Warning: permitted with a warning.
    let v = d("ipc.send", &[("privacy", 0.55)], "dev");
    assert_eq!(v.decision, PermitWithWarning);
    assert!(v.reason.contains("privacy-exposure"), "{}", v.reason);
    // Advisory: reported, still a plain permit.
    let v = d("agent.spawn", &[("novelty", 0.75)], "dev");
    assert_eq!(v.decision, Permit);
    assert_eq!(v.fired_rules[0].id, "novel-behaviour");
    // Blocking with a per-dimension breach: the environment decides; over
    // the magnitude threshold (prod 0.6) it is a deny.
    let risky = [("risk", 0.85)];
    assert_eq!(
        d("tool.exec.calc", &risky, "dev").decision,
        PermitWithWarning
    );
    assert_eq!(
        d("tool.exec.calc", &risky, "staging").decision,
        EscalateToHuman
    );
    assert_eq!(d("tool.exec.calc", &risky, "prod").decision, Deny);
    // Blocking on magnitude alone: the same vector passes dev, not prod.
    let broad = [("risk", 0.5), ("privacy", 0.4), ("fairness", 0.4)];
    assert_eq!(d("ipc.send", &broad, "dev").decision, Permit);
    assert_eq!(d("ipc.send", &broad, "prod").decision, Deny);
    // Aliases and unknown environments.
    assert_eq!(d("ipc.send", &[], "production").decision, Permit);
    let v = d("ipc.send", &[], "moon");
    assert_eq!(v.decision, Deny);
    assert!(v.reason.contains("unknown environment"), "{}", v.reason);

    // Through the gate: escalate is a defer, warnings ride on the permit.
    let gate = GovernanceGate::new(g.clone(), "staging");
    let ctx = json!({ "effect": { "risk": 0.85 } });
    assert_eq!(
        gate.check("a", "tool.exec.calc", &ctx).kind(),
        DecisionKind::Defer
    );
    let w = gate.check("a", "ipc.send", &json!({ "effect": { "privacy": 0.6 } }));
    assert!(
        w.is_permit() && w.reason().contains("privacy"),
        "{}",
        w.reason()
    );

    let rules = g.rules().unwrap();
    assert!(rules.iter().any(|r| r.id == "risky-execution" && r.active));
}

#[tokio::test]
async fn policy_files_load_and_bad_ones_are_rejected_with_position() {
    let rt = common::runtime();
    let custom = r#"
name = "tight"
[environments.prod]
magnitude_threshold = 0.1
[[rules]]
id = "no-exec"
branch = "executive"
severity = "critical"
actions = ["tool.exec.*"]
[[rules]]
id = "off"
branch = "judicial"
severity = "critical"
active = false
actions = ["**"]
"#;
    let g = governance(&rt, "governance", Some(custom));
    assert_eq!(g.policy_summary().name, "tight");
    assert_eq!(g.policy_summary().active_rules, 1);
    let v = g.evaluate(&req("tool.exec.calc", &[], "prod")).unwrap();
    assert_eq!(v.decision, GovernanceDecision::Deny);
    assert_eq!(
        g.evaluate(&req("ipc.send", &[], "prod")).unwrap().decision,
        GovernanceDecision::Permit
    );

    let bad = "name = \"x\"\n[environments.prod]\nmagnitude_threshold = = 1\n";
    match g.reload_policy(bad) {
        Err(ComponentError::Policy(m)) => assert!(m.contains("line 3, column"), "{m}"),
        other => panic!("expected a policy error, got {other:?}"),
    }
    let unknown = "[environments.prod]\nmagnitude_threshold = 1\n[[rules]]\nid = \"r\"\nbranch = \"x\"\nseverity = \"warning\"\nactions = [\"**\"]\n";
    match g.reload_policy(unknown) {
        Err(ComponentError::Policy(m)) => assert!(m.contains("line 5"), "{m}"),
        other => panic!("expected a policy error, got {other:?}"),
    }
    // The good policy is still in force.
    assert_eq!(g.policy_summary().name, "tight");
    let rec = g
        .reload_policy(include_str!(
            "../../../components/subsystems/governance/default-policy.toml"
        ))
        .unwrap();
    assert_ne!(rec.old_policy, rec.new_policy);
    assert_eq!(
        g.evaluate(&req("tool.exec.calc", &[], "prod"))
            .unwrap()
            .decision,
        GovernanceDecision::Permit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_concurrent_checks_drops_nothing() {
    // Checks run through the kernel's gate (as the operator, whom
    // governance judges) while the operator swaps the component twice.
    let (k, _d) = common::boot().await;
    let real = common::component(&k, "governance");
    let other = common::component(&k, "gov_misbehave");
    let stop = AtomicBool::new(false);
    let (ok, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let ctx = json!({ "effect": { "risk": 0.1 } });
    let handle = tokio::runtime::Handle::current();
    let records = std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if k.ask_gate("operator", "ipc.send", &ctx).is_permit() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Swapped from a plain thread: block_on may not run on the test's.
        let swapper = s.spawn(|| {
            let swap = |c: &weft_runtime::LoadedComponent| {
                handle
                    .block_on(k.act(&Principal::Operator, Swap::new(c.clone())))
                    .expect("swap")
            };
            std::thread::sleep(Duration::from_millis(100));
            let a = swap(&other);
            std::thread::sleep(Duration::from_millis(100));
            let b = swap(&real);
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::Relaxed);
            (a, b)
        });
        swapper.join().expect("swapper")
    });
    let (ok, failed) = (ok.into_inner(), failed.into_inner());
    assert_eq!(failed, 0, "failed checks during swaps ({ok} ok)");
    assert!(ok > 50, "only {ok} checks ran");
    assert_eq!(records.0.old_component, real.digest.to_hex());
    assert_eq!(records.0.new_component, other.digest.to_hex());
    assert_eq!(records.1.new_component, real.digest.to_hex());
    let swaps = common::events(&k, "governance.swap");
    assert_eq!(swaps.len(), 2, "{swaps:?}");
    assert_eq!(swaps[0]["old_component"], real.digest.to_hex());
    assert_eq!(swaps[0]["new_component"], other.digest.to_hex());
    assert_eq!(swaps[1]["old_component"], other.digest.to_hex());
    let unit = k.subsystem::<GovernanceUnit>().expect("governance unit");
    assert_eq!(
        unit.governance().expect("installed").component_digest(),
        real.digest.to_hex()
    );
    // Each swap passed the gate as the operator.
    assert_eq!(
        common::events(&k, "gate.permit")
            .iter()
            .filter(|p| p["action"] == "governance.swap" && p["agent"] == "operator")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_trapping_or_spinning_component_fails_closed_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let misbehave = weft_testkit::guest("gov_misbehave");
    let k = common::boot_on_with(
        dir.path(),
        &format!("[governance]\ncomponent = \"{}\"\n", misbehave.display()),
    )
    .await;
    let d = k.ask_gate("operator", "test.trap", &json!({}));
    assert_eq!(d.kind(), DecisionKind::Deny);
    assert!(d.reason().contains("fail closed"), "{}", d.reason());
    let g = k
        .subsystem::<GovernanceUnit>()
        .and_then(|u| u.governance())
        .expect("installed");
    let mut limits = default_limits();
    limits.fuel = 5_000_000;
    g.set_limits(limits);
    let d = k.ask_gate("operator", "test.spin", &json!({}));
    assert_eq!(d.kind(), DecisionKind::Deny);
    assert!(d.reason().contains("fuel"), "{}", d.reason());
    // The broken instance was replaced: the next check works.
    assert!(k.ask_gate("operator", "ipc.send", &json!({})).is_permit());
    // Both failures are on the chain as denials naming what went wrong.
    let denies: Vec<_> = common::events(&k, "gate.deny")
        .into_iter()
        .filter(|p| p["agent"] == "operator")
        .collect();
    assert_eq!(denies.len(), 2, "{denies:?}");
    assert_eq!(denies[0]["action"], "test.trap");
    assert!(
        denies[0]["reason"].as_str().unwrap().contains("trap"),
        "{}",
        denies[0]
    );
    assert!(
        denies[1]["reason"].as_str().unwrap().contains("fuel"),
        "{}",
        denies[1]
    );
    // A component of the wrong world is refused up front.
    let rt = common::runtime();
    let wrong = ComponentGovernance::new(
        &rt,
        common::component_in(&rt, "calc"),
        None,
        default_limits(),
        1,
    );
    assert!(matches!(wrong, Err(ComponentError::Run(_))));
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_unit_wires_governance_into_the_kernel_and_fails_closed_without_it() {
    let (k, _d) = common::boot().await;
    assert!(k.ask_gate("operator", "ipc.send", &json!({})).is_permit());
    let d = k.ask_gate("operator", "chain.rewrite", &json!({}));
    assert_eq!(d.kind(), DecisionKind::Deny);
    assert_eq!(common::events(&k, "governance.install").len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let k2 = common::boot_on_with(
        dir.path(),
        "[governance]\ncomponent = \"/nonexistent/g.wasm\"\n\
         [cron]\ncomponent = \"/nonexistent/c.wasm\"\n\
         [health]\ncomponent = \"/nonexistent/h.wasm\"\n",
    )
    .await;
    let d = k2.ask_gate("operator", "ipc.send", &json!({}));
    assert_eq!(d.kind(), DecisionKind::Deny);
    assert!(d.reason().contains("unavailable"), "{}", d.reason());
    for unit in ["governance", "cron", "health"] {
        assert_eq!(
            common::events(&k2, &format!("{unit}.failure")).len(),
            1,
            "{unit}"
        );
        let status = k2.unit(unit).unwrap().status();
        assert!(
            status.to_string().contains("UNAVAILABLE"),
            "{unit}: {status}"
        );
    }
    // The kernel's own bookkeeping is not judged by governance.
    assert!(k2.ask_gate("kernel", "ipc.send", &json!({})).is_permit());
    k.shutdown().await.unwrap();
    k2.shutdown().await.unwrap();
}

/// An agent's remembered IPC permits do not outlive the policy that gave
/// them: reloading the policy (or swapping the component) applies to the
/// very next message.
#[tokio::test]
async fn a_policy_reload_reaches_permits_agents_already_hold() {
    let (k, _d) = common::boot_in("dev").await;
    common::spawn_probe(&k, "talker").await;
    let publish = || async {
        common::op(
            &k,
            "talker",
            json!({ "op": "send", "to": "topic:news", "body": "hi" }),
        )
        .await
    };
    // Twice: the second publish rides on the remembered permit.
    for _ in 0..2 {
        let r = publish().await;
        assert!(r.get("ok").is_some(), "{r}");
    }
    let default = include_str!("../../../components/subsystems/governance/default-policy.toml");
    let strict = format!(
        "{default}\n[[rules]]\nid = \"quiet\"\ndescription = \"no publishing\"\n\
         branch = \"executive\"\nseverity = \"critical\"\nactions = [\"ipc.publish\"]\n"
    );
    let reload = |p: &str| k.act(&Principal::Operator, Reload::new(p.to_string()));
    reload(&strict).await.expect("reload");
    let r = publish().await;
    let err = r.get("err").and_then(|e| e.as_str()).unwrap_or_default();
    assert!(err.contains("ipc.publish"), "{r}");
    reload(default).await.expect("reload back");
    // Each reload is on the chain; a policy the component rejects is
    // refused and changes nothing.
    assert_eq!(common::events(&k, "governance.swap").len(), 2);
    let e = reload("not = [valid").await.unwrap_err();
    assert!(e.to_string().contains("policy rejected"), "{e}");
    let r = publish().await;
    assert!(r.get("ok").is_some(), "{r}");
    k.shutdown().await.unwrap();
}
