//! The cron component as the kernel's cron service: schedules, delivery to
//! a real agent, the `cron.add` built-in, persistence, failures.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::json;
use weft_kernel::{Capabilities, IpcScope, KernelState, Payload, Principal};
use weft_subsystems::cron::{default_limits, CronAdd, CronJobSpec, CronUnit};
use weft_subsystems::ComponentCron;

const S: u64 = 1_000_000_000;

fn spec(schedule: &str, target: &str) -> CronJobSpec {
    CronJobSpec {
        schedule: schedule.into(),
        target: target.into(),
        payload: json!({ "op": "chain", "kind": "cron-hit", "body": { "schedule": schedule } }),
    }
}

fn standalone(rt: &weft_runtime::Runtime) -> ComponentCron {
    ComponentCron::new(rt, common::component_in(rt, "cron"), None, default_limits()).expect("cron")
}

fn cron(k: &weft_kernel::Kernel) -> ComponentCron {
    k.subsystem::<CronUnit>()
        .and_then(|u| u.cron().cloned())
        .expect("cron installed")
}

async fn add_as_operator(k: &weft_kernel::Kernel, spec: CronJobSpec) -> String {
    k.act(&Principal::Operator, CronAdd::new(spec))
        .await
        .expect("cron.add")
        .id
}

#[tokio::test]
async fn schedules_fire_when_the_host_says_it_is_time() {
    let rt = common::runtime();
    let c = standalone(&rt);
    let now = weft_chain::now_ns();

    // 5 fields: every 5 minutes, on a minute boundary.
    let five = c.add("me", spec("*/5 * * * *", "t")).unwrap();
    // 6 fields: every 10 seconds.
    let six = c.add("me", spec("*/10 * * * * *", "t")).unwrap();
    let jobs = c.jobs().unwrap();
    let next = |id: &str| {
        jobs.iter()
            .find(|j| j.id == id)
            .and_then(|j| j.next_ns)
            .unwrap()
    };
    let (n5, n6) = (next(&five.id), next(&six.id));
    assert_eq!((n5 / S) % 300, 0);
    assert!(n5 > now && n5 <= now + 300 * S);
    assert_eq!((n6 / S) % 10, 0);
    assert!(n6 > now && n6 <= now + 10 * S);
    assert_eq!(c.next_wake(now).unwrap(), Some(n5.min(n6)));

    assert!(c.tick(n6 - 1).unwrap().is_empty());
    let mut fired = c.tick(n6).unwrap();
    assert!(fired.iter().any(|f| f.job_id == six.id), "{fired:?}");
    // Within 10 s of a 5-minute boundary n5 == n6 and both fire on the
    // first tick; the job must fire exactly once either way.
    fired.extend(c.tick(n5).unwrap());
    assert_eq!(
        fired.iter().filter(|f| f.job_id == five.id).count(),
        1,
        "{fired:?}"
    );

    // every: keeps its phase, does not replay missed runs.
    let every = c.add("me", spec("every 1s", "t")).unwrap();
    let e0 = c
        .jobs()
        .unwrap()
        .into_iter()
        .find(|j| j.id == every.id)
        .unwrap()
        .next_ns
        .unwrap();
    let fired = c.tick(e0 + 5 * S + 1).unwrap();
    assert_eq!(fired.iter().filter(|f| f.job_id == every.id).count(), 1);
    let e1 = c
        .jobs()
        .unwrap()
        .into_iter()
        .find(|j| j.id == every.id)
        .unwrap()
        .next_ns
        .unwrap();
    assert_eq!(e1, e0 + 6 * S);

    // at: fires once, then is gone.
    let at = c.add("me", spec("at 2099-01-01T00:00:00Z", "t")).unwrap();
    let t = 4_070_908_800 * S;
    assert_eq!(
        c.tick(t)
            .unwrap()
            .iter()
            .filter(|f| f.job_id == at.id)
            .count(),
        1
    );
    assert!(!c.list().unwrap().iter().any(|j| j.id == at.id));

    // Errors name the problem; only the owner removes.
    for bad in ["* * *", "every 3 parsecs", "at yesterday", "70 * * * *"] {
        assert!(c.add("me", spec(bad, "t")).is_err(), "{bad}");
    }
    assert!(c.add("me", spec("at 2001-01-01T00:00:00Z", "t")).is_err());
    assert!(c
        .remove("other", &five.id)
        .unwrap_err()
        .to_string()
        .contains("belongs to"));
    c.remove("me", &five.id).unwrap();
    assert!(c.remove("me", &five.id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_fires_a_message_to_a_real_agent() {
    let (k, _d) = common::boot().await;
    common::spawn_probe(&k, "p").await;
    add_as_operator(&k, spec("every 1s", "p")).await;
    common::eventually("two cron hits", Duration::from_secs(6), || {
        common::events(&k, "agent.cron-hit").len() >= 2
    })
    .await;
    let fires = common::events(&k, "cron.fire");
    assert!(fires.len() >= 2);
    assert_eq!(fires[0]["target"], "p");
    assert_eq!(fires[0]["delivered"], true);
    // The job fires as its owner: the operator's sends carry its name.
    assert_eq!(fires[0]["owner"], "operator");
    let adds = common::events(&k, "cron.add");
    assert_eq!(adds[0]["owner"], "operator");
    k.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_add_builtin_reaches_the_component() {
    let (k, _d) = common::boot().await;
    common::spawn_probe(&k, "p").await;
    let reply = common::request(
        &k,
        "p",
        Payload::Json(json!({
            "cmd": "cron.add",
            "schedule": "every 1s",
            "payload": { "op": "chain", "kind": "cron-hit", "body": {} }
        })),
    )
    .await
    .unwrap();
    let Payload::Json(job) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(job["owner"], "p");
    assert_eq!(job["target"], "p");
    let jobs = cron(&k).list().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, job["id"].as_str().unwrap());
    common::eventually("a cron hit", Duration::from_secs(5), || {
        !common::events(&k, "agent.cron-hit").is_empty()
    })
    .await;
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_job_table_survives_a_kernel_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let k = common::boot_on(dir.path()).await;
        let id = add_as_operator(&k, spec("*/5 * * * *", "p")).await;
        k.shutdown().await.unwrap();
        id
    };
    assert!(dir.path().join("cron.json").exists());
    let k = common::boot_on(dir.path()).await;
    let jobs = cron(&k).list().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (jobs[0].id.as_str(), jobs[0].owner.as_str()),
        (id.as_str(), "operator")
    );
    // Ids keep counting after a restart.
    let next = add_as_operator(&k, spec("every 1m", "p")).await;
    assert_ne!(next, id);
    k.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_component_skips_the_tick_and_the_kernel_goes_on() {
    let (k, _d) = common::boot().await;
    common::spawn_probe(&k, "p").await;
    add_as_operator(&k, spec("every 1s", "p")).await;
    let cron = cron(&k);
    let mut tiny = default_limits();
    tiny.fuel = 1_000;
    cron.set_limits(tiny);
    common::eventually("a cron failure", Duration::from_secs(5), || {
        !common::events(&k, "cron.failure").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(common::events(&k, "cron.fire").is_empty());
    assert_eq!(k.state(), KernelState::Running);
    let f = &common::events(&k, "cron.failure")[0];
    assert_eq!(f["kind"], "out of fuel", "{f}");
    // Once the component behaves, the job (restored from the last good
    // table) fires again.
    cron.set_limits(default_limits());
    common::eventually("a cron fire after recovery", Duration::from_secs(5), || {
        !common::events(&k, "agent.cron-hit").is_empty()
    })
    .await;
    k.shutdown().await.unwrap();
}

#[tokio::test]
async fn scheduling_needs_the_cron_capability_of_sender_and_receiver() {
    // No implicit grants: an agent without `cron` cannot schedule, and
    // asking one that can does not lend its right to a sender that cannot.
    let (k, _d) = common::boot().await;
    common::spawn_probe(&k, "scheduler").await;
    let plain = Capabilities {
        ipc: IpcScope::All,
        ..Capabilities::default()
    };
    common::spawn_probe_with(&k, "plain", plain).await;
    let add = json!({ "cmd": "cron.add", "schedule": "every 1h", "payload": {} });
    // The operator asks `plain`, which lacks the capability.
    let e = common::request(&k, "plain", Payload::Json(add.clone()))
        .await
        .unwrap_err();
    assert!(e.contains("`plain` may not schedule"), "{e}");
    // `plain` asks `scheduler`, which has it: still refused, for plain.
    let r = common::op(
        &k,
        "plain",
        json!({ "op": "request", "to": "scheduler", "body": add, "timeout_ms": 5000 }),
    )
    .await;
    assert!(
        r["err"]
            .as_str()
            .unwrap_or_default()
            .contains("`plain` may not schedule"),
        "{r}"
    );
    assert!(cron(&k).list().unwrap().is_empty());
    // Both refusals are on the chain.
    let denies = common::events(&k, "gate.deny");
    assert_eq!(
        denies.iter().filter(|d| d["action"] == "cron.add").count(),
        2,
        "{denies:?}"
    );
    k.shutdown().await.unwrap();
}
