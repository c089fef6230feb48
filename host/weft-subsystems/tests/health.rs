//! The health component: thresholds, degraded and down, probes run by the
//! host when due.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use weft_subsystems::health::{default_limits, Overall, ProbeFn, ProbeKind, ProbeSpec};
use weft_subsystems::ComponentHealth;

fn spec(name: &str, kind: ProbeKind, fail: u32, ok: u32) -> ProbeSpec {
    ProbeSpec {
        name: name.into(),
        kind,
        failure_threshold: fail,
        success_threshold: ok,
        interval_ms: 0,
    }
}

fn switch(flag: Arc<AtomicBool>) -> ProbeFn {
    Arc::new(move || {
        let up = flag.load(Ordering::Relaxed);
        Box::pin(async move {
            if up {
                Ok("up".to_string())
            } else {
                Err("connection refused".to_string())
            }
        })
    })
}

#[tokio::test]
async fn thresholds_degraded_and_down() {
    let rt = common::runtime();
    let h =
        ComponentHealth::new(&rt, common::component_in(&rt, "health"), default_limits()).unwrap();
    let db = Arc::new(AtomicBool::new(true));
    let cache = Arc::new(AtomicBool::new(true));
    h.configure(vec![
        (spec("db", ProbeKind::Liveness, 2, 1), switch(db.clone())),
        (
            spec("cache", ProbeKind::Readiness, 1, 2),
            switch(cache.clone()),
        ),
    ])
    .unwrap();

    // Readiness starts not ready.
    match h.status().unwrap().overall {
        Overall::Degraded(items) => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].which, "cache");
            assert!(items[0].why.contains("not run"), "{}", items[0].why);
        }
        other => panic!("{other:?}"),
    }
    // Two passing runs (success threshold 2) make it healthy.
    assert_eq!(h.run_due().await.unwrap().len(), 2);
    assert!(matches!(h.status().unwrap().overall, Overall::Degraded(_)));
    h.run_due().await.unwrap();
    assert!(matches!(h.status().unwrap().overall, Overall::Healthy));

    // One liveness failure is under the threshold of 2; two is down.
    db.store(false, Ordering::Relaxed);
    h.run_due().await.unwrap();
    assert!(matches!(h.status().unwrap().overall, Overall::Healthy));
    h.run_due().await.unwrap();
    match h.status().unwrap().overall {
        Overall::Down(why) => assert!(
            why.contains("db") && why.contains("connection refused"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // Recovery after one success; a readiness failure degrades at once.
    db.store(true, Ordering::Relaxed);
    cache.store(false, Ordering::Relaxed);
    h.run_due().await.unwrap();
    match h.status().unwrap().overall {
        Overall::Degraded(items) => {
            assert_eq!(items[0].which, "cache");
            assert!(
                items[0].why.contains("connection refused"),
                "{}",
                items[0].why
            );
        }
        other => panic!("{other:?}"),
    }
    let st = h.status().unwrap();
    let c = st.probes.iter().find(|p| p.name == "cache").unwrap();
    assert_eq!((c.passing, c.consecutive_failures), (false, 1));

    // Bad configurations are refused.
    assert!(h
        .configure(vec![(
            spec("x", ProbeKind::Liveness, 0, 1),
            switch(db.clone())
        )])
        .is_err());
    let dup = vec![
        (spec("x", ProbeKind::Liveness, 1, 1), switch(db.clone())),
        (spec("x", ProbeKind::Readiness, 1, 1), switch(db)),
    ];
    assert!(h.configure(dup).is_err());
}

#[tokio::test]
async fn intervals_decide_what_is_due() {
    let rt = common::runtime();
    let h =
        ComponentHealth::new(&rt, common::component_in(&rt, "health"), default_limits()).unwrap();
    let up = Arc::new(AtomicBool::new(true));
    let mut slow = spec("slow", ProbeKind::Liveness, 1, 1);
    slow.interval_ms = 60_000;
    h.configure(vec![
        (slow, switch(up.clone())),
        (spec("fast", ProbeKind::Liveness, 1, 1), switch(up)),
    ])
    .unwrap();
    assert_eq!(h.run_due().await.unwrap().len(), 2);
    assert_eq!(h.run_due().await.unwrap(), vec!["fast".to_string()]);
}

#[tokio::test]
async fn the_unit_runs_the_kernel_probes() {
    let (k, _d) = common::boot().await;
    let h = k
        .subsystem::<weft_subsystems::health::HealthUnit>()
        .and_then(|u| u.health().cloned())
        .expect("health installed");
    common::eventually("healthy", std::time::Duration::from_secs(5), || {
        matches!(h.status().map(|s| s.overall), Ok(Overall::Healthy))
    })
    .await;
    k.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_ping_probe() {
    let (k, _d) = common::boot().await;
    common::spawn_probe(&k, "p").await;
    let rt = common::runtime();
    let h =
        ComponentHealth::new(&rt, common::component_in(&rt, "health"), default_limits()).unwrap();
    let ping = |name: &str| {
        weft_subsystems::health::agent_probe(k.clone(), name, std::time::Duration::from_secs(1))
    };
    h.configure(vec![
        (spec("p", ProbeKind::Readiness, 1, 1), ping("p")),
        (spec("ghost", ProbeKind::Readiness, 1, 1), ping("ghost")),
    ])
    .unwrap();
    h.run_due().await.unwrap();
    match h.status().unwrap().overall {
        Overall::Degraded(items) => {
            assert_eq!(items.len(), 1, "{items:?}");
            assert_eq!(items[0].which, "ghost");
        }
        other => panic!("{other:?}"),
    }
    k.shutdown().await.unwrap();
}
