//! Calibration: bounded, serialisable, and the budget follows the measurements.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use weft_ecc::{
    run_calibration, tick_budget, tick_config, CalibrationConfig, CalibrationReport, CognitiveTick,
    TickWorkload, MAX_TICK_BUDGET_NS, MIN_TICK_BUDGET_NS,
};

#[test]
fn calibration_is_bounded_and_measures_every_phase() {
    let config = CalibrationConfig::default();
    let t = Instant::now();
    let r = run_calibration(&config).unwrap();
    let wall = t.elapsed();
    eprintln!("{r:?} (wall {wall:?})");
    // Each phase stops at its share of the 50 ms budget; allow one slow operation past
    // each share (unoptimised test builds) and data generation.
    assert!(wall.as_millis() < 150, "calibration took {wall:?}");
    assert!(r.total_ns <= wall.as_nanos() as u64);
    for (name, n, ns) in [
        ("insert", r.inserts, r.insert_ns),
        ("search", r.searches, r.search_ns),
        ("edge", r.edges, r.edge_ns),
        ("hash", r.hashes, r.hash_ns),
    ] {
        assert!(n >= 1, "{name}: nothing measured");
        assert!(ns > 0, "{name}: zero cost");
    }
    assert!(r.inserts <= config.vectors && r.searches <= config.queries);
    assert_eq!(
        r.truncated,
        r.inserts < config.vectors
            || r.searches < config.queries
            || r.edges < config.edges
            || r.hashes < config.hashes
    );
    let json = serde_json::to_string(&r).unwrap();
    let back: CalibrationReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    // The derived tick configuration is valid.
    let cfg = tick_config(&r, &TickWorkload::default());
    assert!(CognitiveTick::new(cfg, 0).is_ok());
}

fn report(search_ns: u64) -> CalibrationReport {
    CalibrationReport {
        dimension: 64,
        inserts: 10,
        insert_ns: 20_000,
        searches: 10,
        search_ns,
        edges: 10,
        edge_ns: 500,
        hashes: 10,
        hash_bytes: 256,
        hash_ns: 300,
        total_ns: 1,
        truncated: false,
    }
}

#[test]
fn budget_follows_the_measured_costs() {
    let w = TickWorkload {
        searches: 10,
        inserts: 10,
        edges: 100,
        hashes: 100,
        headroom: 2.0,
    };
    // 10*50us + 10*20us + 100*0.5us + 100*0.3us = 780 us, times 2.
    assert_eq!(tick_budget(&report(50_000), &w), 1_560_000);
    // Slower searches, larger budget.
    assert_eq!(tick_budget(&report(100_000), &w), 2_560_000);
    // Clamped at both ends.
    let idle = TickWorkload {
        searches: 0,
        inserts: 0,
        edges: 0,
        hashes: 1,
        headroom: 1.0,
    };
    assert_eq!(tick_budget(&report(50_000), &idle), MIN_TICK_BUDGET_NS);
    assert_eq!(tick_budget(&report(u64::MAX / 4), &w), MAX_TICK_BUDGET_NS);
    let c = tick_config(&report(50_000), &w);
    assert_eq!((c.budget_ns, c.min_interval_ns), (1_560_000, 3_120_000));
}

#[test]
fn bad_calibration_config_is_refused() {
    let c = CalibrationConfig {
        vectors: 1,
        ..CalibrationConfig::default()
    };
    assert!(run_calibration(&c).is_err());
}
