//! `health`: Weft's health aggregation as a component. The host runs the
//! probes when `due` says so and reports each result; this component keeps
//! the counters and decides what they add up to:
//!
//! - a probe becomes failing after `failure-threshold` consecutive failures
//!   and passes again after `success-threshold` consecutive successes;
//! - liveness probes start passing, readiness probes start not ready;
//! - any failing liveness probe: `down`; else any failing readiness probe:
//!   `degraded` (naming each one and why); else `healthy`.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "health", additional_derives: [PartialEq] });
}
use bindings::*;

use std::cell::RefCell;

use weft::kernel::health_types::{DegradedItem, Overall, ProbeKind, ProbeStatus};

struct Probe {
    spec: ProbeSpec,
    passing: bool,
    failures: u32,
    successes: u32,
    detail: String,
    last_ns: Option<u64>,
    started_ns: Option<u64>,
}

thread_local! {
    static PROBES: RefCell<Vec<Probe>> = const { RefCell::new(Vec::new()) };
}

fn kind_name(k: ProbeKind) -> &'static str {
    match k {
        ProbeKind::Liveness => "liveness",
        ProbeKind::Readiness => "readiness",
    }
}

struct HealthComponent;

impl Guest for HealthComponent {
    fn configure(probes: Vec<ProbeSpec>) -> Result<(), String> {
        for (i, p) in probes.iter().enumerate() {
            if p.name.is_empty() || probes[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("probe name `{}` is empty or repeated", p.name));
            }
            if p.failure_threshold == 0 || p.success_threshold == 0 {
                return Err(format!("probe `{}`: thresholds must be at least 1", p.name));
            }
        }
        // A probe kept with the same spec keeps its counters and verdict:
        // adding one probe must not make every other one start over.
        PROBES.with_borrow_mut(|old| {
            let fresh = probes
                .into_iter()
                .map(|spec| match old.iter().position(|p| p.spec == spec) {
                    Some(i) => old.swap_remove(i),
                    None => Probe {
                        passing: spec.kind == ProbeKind::Liveness,
                        spec,
                        failures: 0,
                        successes: 0,
                        detail: String::new(),
                        last_ns: None,
                        started_ns: None,
                    },
                })
                .collect();
            *old = fresh;
        });
        Ok(())
    }

    fn report(name: String, ok: bool, detail: String, now_ns: u64) {
        PROBES.with_borrow_mut(|ps| {
            let Some(p) = ps.iter_mut().find(|p| p.spec.name == name) else {
                return;
            };
            if ok {
                p.successes = p.successes.saturating_add(1);
                p.failures = 0;
                if p.successes >= p.spec.success_threshold {
                    p.passing = true;
                }
            } else {
                p.failures = p.failures.saturating_add(1);
                p.successes = 0;
                if p.failures >= p.spec.failure_threshold {
                    p.passing = false;
                }
            }
            p.detail = detail;
            p.last_ns = Some(now_ns);
        })
    }

    fn status() -> HealthReport {
        PROBES.with_borrow(|ps| {
            let why = |p: &Probe| {
                if p.last_ns.is_none() {
                    "not run yet".to_string()
                } else if p.passing {
                    format!("passing ({})", p.detail)
                } else {
                    format!(
                        "{} failed {} time(s) in a row: {}",
                        kind_name(p.spec.kind),
                        p.failures,
                        p.detail
                    )
                }
            };
            let dead: Vec<String> = ps
                .iter()
                .filter(|p| p.spec.kind == ProbeKind::Liveness && !p.passing)
                .map(|p| format!("{}: {}", p.spec.name, why(p)))
                .collect();
            let degraded: Vec<DegradedItem> = ps
                .iter()
                .filter(|p| p.spec.kind == ProbeKind::Readiness && !p.passing)
                .map(|p| DegradedItem {
                    which: p.spec.name.clone(),
                    why: why(p),
                })
                .collect();
            let overall = if !dead.is_empty() {
                Overall::Down(dead.join("; "))
            } else if !degraded.is_empty() {
                Overall::Degraded(degraded)
            } else {
                Overall::Healthy
            };
            HealthReport {
                overall,
                probes: ps
                    .iter()
                    .map(|p| ProbeStatus {
                        name: p.spec.name.clone(),
                        kind: p.spec.kind,
                        passing: p.passing,
                        consecutive_failures: p.failures,
                        consecutive_successes: p.successes,
                        last_detail: p.detail.clone(),
                        last_ns: p.last_ns,
                    })
                    .collect(),
            }
        })
    }

    fn due(now_ns: u64) -> Vec<String> {
        PROBES.with_borrow_mut(|ps| {
            let mut due = Vec::new();
            for p in ps.iter_mut() {
                let interval = u64::from(p.spec.interval_ms) * 1_000_000;
                let ready = match p.started_ns {
                    None => true,
                    Some(s) => now_ns.saturating_sub(s) >= interval,
                };
                if ready {
                    p.started_ns = Some(now_ns);
                    due.push(p.spec.name.clone());
                }
            }
            due
        })
    }
}

export!(HealthComponent);
