//! Hybrid logical clock properties and impulse ordering.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use proptest::prelude::*;
use weft_ecc::{
    ClockState, Ecc, EccConfig, EccError, EccOp, Hlc, HlcConfig, HlcTimestamp, Key, ManualClock,
    Namespace, NodeRef,
};

const DRIFT: u64 = 1_000_000; // 1 ms, small so that refusals happen often

#[derive(Clone, Debug)]
enum Step {
    /// A local event.
    Local,
    /// Receive a timestamp at `pt + offset` (may be beyond the drift bound) with a counter.
    Receive(i64, u32),
    /// Set the wall clock to `now + delta` (negative: it jumps back).
    Jump(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Local),
        3 => ((-5_000_000i64..3_000_000), any::<u32>()).prop_map(|(o, c)| Step::Receive(o, c)),
        2 => (-10_000_000i64..10_000_000).prop_map(Step::Jump),
    ]
}

fn shifted(base: u64, delta: i64) -> u64 {
    base.saturating_add_signed(delta)
}

/// Runs steps on `hlc`, checking each one; returns nothing, panics through prop_assert.
fn run(hlc: &mut Hlc, clock: &ManualClock, steps: &[Step]) -> Result<(), TestCaseError> {
    for s in steps {
        let before = hlc.last();
        let pt = hlc.physical_now();
        match s {
            Step::Local => {
                let ts = hlc.now();
                prop_assert!(ts > before, "local event went from {before} to {ts}");
                prop_assert!(ts.wall_ns >= pt, "HLC below physical time");
            }
            Step::Receive(offset, c) => {
                let remote = HlcTimestamp::new(shifted(pt, *offset), *c);
                match hlc.receive(remote) {
                    Ok(ts) => {
                        prop_assert!(remote.wall_ns <= pt + DRIFT);
                        prop_assert!(
                            ts > before && ts > remote,
                            "merge went back: {before} {remote} -> {ts}"
                        );
                        prop_assert!(ts.wall_ns >= pt);
                    }
                    Err(EccError::ClockDrift { .. }) => {
                        prop_assert!(remote.wall_ns > pt + DRIFT);
                        prop_assert_eq!(hlc.last(), before, "a refused receive changed the clock");
                    }
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
            }
            Step::Jump(d) => clock.set(shifted(pt, *d)),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn monotonic_under_events_receives_and_backward_jumps(
        start in 1_000_000_000u64..2_000_000_000,
        steps in prop::collection::vec(step(), 1..200),
    ) {
        let clock = ManualClock::new(start);
        let mut hlc = Hlc::new(Arc::new(clock.clone()), HlcConfig { max_drift_ns: DRIFT });
        run(&mut hlc, &clock, &steps)?;
    }

    #[test]
    fn survives_save_and_load_with_an_earlier_wall_clock(
        start in 1_000_000_000u64..2_000_000_000,
        steps in prop::collection::vec(step(), 1..100),
        back in 0u64..1_000_000_000,
        after in prop::collection::vec(step(), 1..50),
    ) {
        let clock = ManualClock::new(start);
        let mut hlc = Hlc::new(Arc::new(clock.clone()), HlcConfig { max_drift_ns: DRIFT });
        run(&mut hlc, &clock, &steps)?;
        let saved = hlc.state();
        // Through both encodings the caller might use.
        let from_bytes = ClockState::from_bytes(&saved.to_bytes()).unwrap();
        let from_json: ClockState = serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
        prop_assert_eq!(from_bytes, saved);
        prop_assert_eq!(from_json, saved);
        // Restart with the wall clock well before the saved time.
        let clock2 = ManualClock::new(saved.last.wall_ns.saturating_sub(back));
        let mut hlc2 = Hlc::restore(from_bytes, Arc::new(clock2.clone()), HlcConfig { max_drift_ns: DRIFT });
        let first = hlc2.now();
        prop_assert!(first > saved.last, "after restart {first} <= saved {}", saved.last);
        run(&mut hlc2, &clock2, &after)?;
        prop_assert!(hlc2.last() > saved.last);
    }
}

fn ns() -> Namespace {
    Namespace::new("impulses").unwrap()
}

fn node(at: u64) -> (Ecc, ManualClock) {
    let clock = ManualClock::new(at);
    (
        Ecc::new(Arc::new(clock.clone()), EccConfig::default()),
        clock,
    )
}

#[test]
fn impulses_drain_in_causal_order_despite_a_slow_wall_clock() {
    // x's wall clock is 100 ms ahead of y's (within the 500 ms default drift bound).
    let (mut x, _xc) = node(1_000_000_000);
    let (mut y, yc) = node(900_000_000);
    let (_, a_ts) = x
        .emit(
            &ns(),
            "fact.learned",
            Some(NodeRef::Causal(Key::Num(1))),
            b"a".to_vec(),
        )
        .unwrap();
    // y hears about a, then reacts with b: b must come after a although y's wall clock is behind.
    y.receive(
        &ns(),
        a_ts,
        "fact.learned",
        Some(NodeRef::Causal(Key::Num(1))),
        b"a".to_vec(),
    )
    .unwrap();
    let (_, b_ts) = y.emit(&ns(), "fact.reacted", None, b"b".to_vec()).unwrap();
    assert!(b_ts > a_ts, "{b_ts} <= {a_ts}");
    // An impulse stamped earlier on a third node but received last is ordered by its stamp.
    let (mut z, _) = node(900_000_000);
    let (_, early) = z.emit(&ns(), "early", None, vec![]).unwrap();
    y.receive(&ns(), early, "early", None, vec![]).unwrap();
    yc.advance(1_000);
    let drained: Vec<(String, Vec<u8>)> = y
        .drain_ready(&ns(), y.clock().peek_now())
        .unwrap()
        .into_iter()
        .map(|i| (i.topic, i.payload))
        .collect();
    assert_eq!(
        drained,
        [
            ("early".to_string(), vec![]),
            ("fact.learned".to_string(), b"a".to_vec()),
            ("fact.reacted".to_string(), b"b".to_vec()),
        ]
    );
    assert_eq!(y.pending(&ns()), 0);
}

#[test]
fn drain_ready_stops_at_now_and_pending_counts() {
    let (mut e, clock) = node(5_000);
    let mut stamps = Vec::new();
    for i in 0..5u8 {
        clock.advance(10);
        stamps.push(e.emit(&ns(), "t", None, vec![i]).unwrap().1);
    }
    assert_eq!(e.pending(&ns()), 5);
    let first = e.drain_ready(&ns(), stamps[1]).unwrap();
    assert_eq!(
        first.iter().map(|i| i.payload[0]).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(e.pending(&ns()), 3);
    assert!(e
        .drain_ready(&ns(), HlcTimestamp::new(0, 0))
        .unwrap()
        .is_empty());
    let rest = e.drain_ready(&ns(), stamps[4]).unwrap();
    assert_eq!(rest.iter().map(|i| i.id).collect::<Vec<_>>(), [2, 3, 4]);
}

#[test]
fn prepared_ops_carry_their_timestamps_and_queue_only_when_applied() {
    let (mut e, clock) = node(1_000);
    let op = e.prepare_emit(&ns(), "later", None, vec![]).unwrap();
    let EccOp::Emit { ts, .. } = op.clone() else {
        panic!("{op:?}")
    };
    assert_eq!(e.pending(&ns()), 0, "prepare queues nothing");
    // The prepared timestamp was issued: the next one is larger even if time stands still.
    let op2 = e.prepare_emit(&ns(), "later", None, vec![]).unwrap();
    let EccOp::Emit { ts: ts2, .. } = op2.clone() else {
        panic!()
    };
    assert!(ts2 > ts);
    // Applying (even much later, with the wall clock moved back) uses the recorded stamps.
    clock.set(10);
    e.apply(&op2).unwrap();
    e.apply(&op).unwrap();
    let d = e.drain_ready(&ns(), ts2).unwrap();
    assert_eq!(d.iter().map(|i| i.ts).collect::<Vec<_>>(), [ts, ts2]);
    // A receive beyond the drift bound is refused before anything is recorded.
    let far = HlcTimestamp::new(10 + 600_000_000, 0);
    assert!(matches!(
        e.prepare_receive(&ns(), far, "x", None, vec![]),
        Err(EccError::ClockDrift { .. })
    ));
    assert!(matches!(
        e.prepare_merge(far),
        Err(EccError::ClockDrift { .. })
    ));
    // Ticks and merges persist as Clock ops.
    let before = e.clock().last();
    let t = e.tick().unwrap();
    assert!(t > before);
    let m = e.merge(HlcTimestamp::new(100, 7)).unwrap();
    assert!(m > t);
}
