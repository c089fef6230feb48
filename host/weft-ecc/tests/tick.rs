//! The cognitive tick, driven by a hand-controlled clock.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use weft_ecc::{CognitiveTick, EccError, IntervalChange, TickConfig};

const MS: u64 = 1_000_000;

fn config() -> TickConfig {
    TickConfig {
        interval_ns: 100 * MS,
        min_interval_ns: 50 * MS,
        max_interval_ns: 800 * MS,
        budget_ns: 10 * MS,
        backoff_factor: 2,
        recover_after: 3,
        cheap_percent: 50,
        drift_threshold_ns: 5 * MS,
    }
}

/// Runs one tick starting exactly when due and costing `cost`; returns the end report.
fn tick(t: &mut CognitiveTick, cost: u64) -> weft_ecc::TickEnd {
    let now = t.next_due();
    let start = t.begin(now).unwrap().expect("due");
    assert_eq!(start.drift_ns, 0);
    t.end(now + cost).unwrap()
}

#[test]
fn backs_off_on_overrun_and_recovers_when_cheap() {
    let mut t = CognitiveTick::new(config(), 0).unwrap();
    assert_eq!(t.next_due(), 100 * MS);
    // Within budget but not cheap: nothing changes.
    let e = tick(&mut t, 8 * MS);
    assert_eq!(
        (e.change, e.interval_ns, e.overran),
        (IntervalChange::Unchanged, 100 * MS, false)
    );
    // Overruns double the interval up to the maximum.
    let mut intervals = Vec::new();
    for _ in 0..4 {
        let e = tick(&mut t, 30 * MS);
        assert!(e.overran);
        intervals.push(e.interval_ns);
    }
    assert_eq!(intervals, [200 * MS, 400 * MS, 800 * MS, 800 * MS]);
    // The next tick is planned one (new) interval after the planned start.
    let planned = t.next_due();
    t.begin(planned).unwrap().unwrap();
    let e = t.end(planned + MS).unwrap();
    assert_eq!(e.next_due_ns, planned + 800 * MS);
    // Cheap ticks: every third one halves the interval, down to the minimum.
    let mut changes = Vec::new();
    for _ in 0..14 {
        let e = tick(&mut t, MS);
        changes.push((e.change, e.interval_ns));
    }
    // One cheap tick already happened above, so the first halving comes after two more.
    assert_eq!(changes[1], (IntervalChange::Recovered, 400 * MS));
    assert_eq!(changes[4], (IntervalChange::Recovered, 200 * MS));
    assert_eq!(changes[7], (IntervalChange::Recovered, 100 * MS));
    assert_eq!(changes[10], (IntervalChange::Recovered, 50 * MS));
    assert_eq!(
        changes[13],
        (IntervalChange::Unchanged, 50 * MS),
        "already at the minimum"
    );
    // A non-cheap tick resets the streak.
    tick(&mut t, 30 * MS); // back to 100 ms
    tick(&mut t, MS);
    tick(&mut t, 7 * MS);
    let e = tick(&mut t, MS);
    assert_eq!(e.change, IntervalChange::Unchanged);
    let s = t.stats();
    assert_eq!((s.backoffs, s.recoveries, s.overruns), (4, 4, 5));
    assert_eq!(s.ticks, 1 + 4 + 1 + 14 + 4);
    assert_eq!(s.max_cost_ns, 30 * MS);
}

#[test]
fn detects_drift_over_the_threshold() {
    let mut t = CognitiveTick::new(config(), 0).unwrap();
    // Not due yet: nothing starts.
    assert_eq!(t.begin(99 * MS).unwrap(), None);
    // 3 ms late: under the threshold.
    let s = t.begin(103 * MS).unwrap().unwrap();
    assert_eq!((s.drift_ns, s.drift_event), (3 * MS, None));
    t.end(104 * MS).unwrap();
    // Planned at 200 ms, started at 212 ms: a drift event.
    let s = t.begin(212 * MS).unwrap().unwrap();
    let ev = s.drift_event.expect("drift event");
    assert_eq!(
        (ev.seq, ev.planned_ns, ev.actual_ns, ev.drift_ns),
        (1, 200 * MS, 212 * MS, 12 * MS)
    );
    t.end(213 * MS).unwrap();
    // The plan keeps its phase: next at 300 ms, not 312 ms.
    assert_eq!(t.next_due(), 300 * MS);
    let st = t.stats();
    assert_eq!((st.drift_events, st.max_drift_ns), (1, 12 * MS));
    assert_eq!(t.drift_events().count(), 1);
}

#[test]
fn a_long_tick_skips_slots_instead_of_bursting() {
    let mut t = CognitiveTick::new(config(), 0).unwrap();
    t.begin(100 * MS).unwrap().unwrap();
    // Runs 350 ms (overrun: the interval doubles to 200 ms). The planned slot at 300 ms
    // passed while it ran, so the next tick is due at once and is not late.
    let e = t.end(450 * MS).unwrap();
    assert_eq!(
        (e.interval_ns, e.skipped, e.next_due_ns),
        (200 * MS, 1, 450 * MS)
    );
    let s = t.begin(450 * MS).unwrap().unwrap();
    assert_eq!((s.drift_ns, s.drift_event), (0, None));
}

#[test]
fn subscribers_pause_and_misuse() {
    let mut t = CognitiveTick::new(config(), 0).unwrap();
    assert!(t.subscribe("planner").unwrap());
    assert!(t.subscribe("critic").unwrap());
    assert!(!t.subscribe("critic").unwrap());
    assert!(t.subscribe("bad name").is_err());
    let s = t.begin(100 * MS).unwrap().unwrap();
    assert_eq!(s.subscribers, ["critic", "planner"]);
    assert!(matches!(
        t.begin(100 * MS),
        Err(EccError::TickInProgress { seq: 0 })
    ));
    t.end(101 * MS).unwrap();
    assert!(matches!(t.end(102 * MS), Err(EccError::NoTickInProgress)));
    assert!(t.unsubscribe("critic"));
    assert!(!t.unsubscribe("critic"));
    // Paused for a second: no tick, and resuming is not reported as drift.
    t.set_running(false, 150 * MS);
    assert!(!t.is_running());
    assert_eq!(t.begin(1_000 * MS).unwrap(), None);
    t.set_running(true, 1_150 * MS);
    assert_eq!(t.next_due(), 1_250 * MS);
    let s = t.begin(1_250 * MS).unwrap().unwrap();
    assert_eq!((s.drift_ns, s.subscribers.len()), (0, 1));
}

#[test]
fn config_is_validated() {
    let mut c = config();
    c.interval_ns = 10 * MS; // below the minimum
    assert!(CognitiveTick::new(c, 0).is_err());
    let mut c = config();
    c.backoff_factor = 1;
    assert!(CognitiveTick::new(c, 0).is_err());
    let c = TickConfig::from_budget(3 * MS);
    assert!(c.validate().is_ok());
    assert_eq!(
        (c.budget_ns, c.min_interval_ns, c.interval_ns),
        (3 * MS, 6 * MS, 50 * MS)
    );
}
