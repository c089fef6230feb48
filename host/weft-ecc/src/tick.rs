//! The cognitive tick: scheduling logic for the periodic loop that delivers impulses and
//! runs agents' background cognition. It owns no thread and reads no clock: the caller
//! passes the time to every call, so tests (and a deterministic kernel) drive it by hand.
//!
//! The caller's loop is: sleep until [`CognitiveTick::next_due`], [`CognitiveTick::begin`]
//! with the current time, do the work (deliver to [`TickStart::subscribers`]),
//! [`CognitiveTick::end`] with the current time.
//!
//! * **Adaptive interval.** A tick that costs more than `budget_ns` overran: the interval
//!   is multiplied by `backoff_factor` (up to `max_interval_ns`). After `recover_after`
//!   consecutive cheap ticks (cost at most `cheap_percent` % of the budget) it is divided by
//!   the factor (down to `min_interval_ns`).
//! * **Drift.** Each tick has a planned start (the previous planned start plus the
//!   interval). `begin` reports how late it was called; lateness above
//!   `drift_threshold_ns` is a [`DriftEvent`]. If a tick ends after the next planned start,
//!   the missed slots are counted as skipped and the plan restarts from the end time,
//!   rather than firing a burst of catch-up ticks.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};
use crate::names::validate_label;

/// How many recent drift events are kept.
pub const DRIFT_HISTORY: usize = 64;

/// Tick settings (all times in nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickConfig {
    /// Starting interval, within `[min_interval_ns, max_interval_ns]`.
    pub interval_ns: u64,
    /// Shortest interval recovery may reach.
    pub min_interval_ns: u64,
    /// Longest interval backoff may reach.
    pub max_interval_ns: u64,
    /// A tick costing more than this overran.
    pub budget_ns: u64,
    /// Interval multiplier on overrun and divisor on recovery, at least 2.
    pub backoff_factor: u32,
    /// Consecutive cheap ticks needed to shrink the interval, at least 1.
    pub recover_after: u32,
    /// A tick is cheap if it costs at most this percentage of the budget (1 to 100).
    pub cheap_percent: u8,
    /// Lateness above this is reported as drift.
    pub drift_threshold_ns: u64,
}

impl Default for TickConfig {
    fn default() -> Self {
        TickConfig {
            interval_ns: 50_000_000,
            min_interval_ns: 10_000_000,
            max_interval_ns: 1_000_000_000,
            budget_ns: 5_000_000,
            backoff_factor: 2,
            recover_after: 4,
            cheap_percent: 50,
            drift_threshold_ns: 5_000_000,
        }
    }
}

impl TickConfig {
    /// A configuration around a tick budget (e.g. from calibration): the interval never
    /// drops below twice the budget, so the loop uses at most half a core; it starts at
    /// `max(min, 50 ms)` and backs off up to 16 times that. Drift is reported past half
    /// the minimum interval.
    pub fn from_budget(budget_ns: u64) -> Self {
        let budget_ns = budget_ns.max(1);
        let min = budget_ns.saturating_mul(2);
        let start = min.max(50_000_000);
        TickConfig {
            interval_ns: start,
            min_interval_ns: min,
            max_interval_ns: start.saturating_mul(16),
            budget_ns,
            drift_threshold_ns: (min / 2).max(1),
            ..TickConfig::default()
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(EccError::InvalidParameter {
                what: "tick config",
                reason: reason.to_string(),
            })
        };
        if self.min_interval_ns == 0 {
            return bad("min_interval_ns must be positive");
        }
        if !(self.min_interval_ns <= self.interval_ns && self.interval_ns <= self.max_interval_ns) {
            return bad("need min_interval_ns <= interval_ns <= max_interval_ns");
        }
        if self.budget_ns == 0 {
            return bad("budget_ns must be positive");
        }
        if self.backoff_factor < 2 {
            return bad("backoff_factor must be at least 2");
        }
        if self.recover_after == 0 {
            return bad("recover_after must be at least 1");
        }
        if !(1..=100).contains(&self.cheap_percent) {
            return bad("cheap_percent must be 1 to 100");
        }
        Ok(())
    }
}

/// A tick that started late by more than the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftEvent {
    /// The tick.
    pub seq: u64,
    /// When it should have started.
    pub planned_ns: u64,
    /// When it started.
    pub actual_ns: u64,
    /// `actual_ns - planned_ns`.
    pub drift_ns: u64,
}

/// What [`CognitiveTick::begin`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickStart {
    /// Tick number, from 0.
    pub seq: u64,
    /// Planned start.
    pub planned_ns: u64,
    /// Actual start.
    pub actual_ns: u64,
    /// Lateness.
    pub drift_ns: u64,
    /// Set when the lateness is over the threshold.
    pub drift_event: Option<DriftEvent>,
    /// Who to deliver to, in name order.
    pub subscribers: Vec<String>,
}

/// How the interval changed at the end of a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalChange {
    /// No change.
    Unchanged,
    /// Grew after an overrun.
    BackedOff,
    /// Shrank after enough cheap ticks.
    Recovered,
}

/// What [`CognitiveTick::end`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickEnd {
    /// Tick number.
    pub seq: u64,
    /// Time between begin and end.
    pub cost_ns: u64,
    /// Whether the cost exceeded the budget.
    pub overran: bool,
    /// What happened to the interval.
    pub change: IntervalChange,
    /// The interval from now on.
    pub interval_ns: u64,
    /// When the next tick is planned.
    pub next_due_ns: u64,
    /// Planned slots that passed while this tick ran.
    pub skipped: u64,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickStats {
    /// Completed ticks.
    pub ticks: u64,
    /// Ticks over budget.
    pub overruns: u64,
    /// Interval increases.
    pub backoffs: u64,
    /// Interval decreases.
    pub recoveries: u64,
    /// Ticks that started later than the drift threshold.
    pub drift_events: u64,
    /// Planned slots skipped because a tick ran past them.
    pub skipped: u64,
    /// Largest lateness seen.
    pub max_drift_ns: u64,
    /// Sum of tick costs.
    pub total_cost_ns: u64,
    /// Largest tick cost.
    pub max_cost_ns: u64,
    /// Cost of the last tick.
    pub last_cost_ns: u64,
    /// Current interval.
    pub interval_ns: u64,
}

impl TickStats {
    /// Mean tick cost (0 before the first tick).
    pub fn mean_cost_ns(&self) -> u64 {
        self.total_cost_ns.checked_div(self.ticks).unwrap_or(0)
    }
}

/// The scheduler logic.
#[derive(Clone, Debug)]
pub struct CognitiveTick {
    config: TickConfig,
    interval_ns: u64,
    next_due_ns: u64,
    next_seq: u64,
    /// (seq, planned, actual) of the running tick.
    current: Option<(u64, u64, u64)>,
    cheap_streak: u32,
    running: bool,
    subscribers: BTreeSet<String>,
    stats: TickStats,
    drift: VecDeque<DriftEvent>,
}

impl CognitiveTick {
    /// A scheduler whose first tick is due one interval after `now_ns`.
    pub fn new(config: TickConfig, now_ns: u64) -> Result<Self> {
        config.validate()?;
        Ok(CognitiveTick {
            config,
            interval_ns: config.interval_ns,
            next_due_ns: now_ns.saturating_add(config.interval_ns),
            next_seq: 0,
            current: None,
            cheap_streak: 0,
            running: true,
            subscribers: BTreeSet::new(),
            stats: TickStats {
                interval_ns: config.interval_ns,
                ..TickStats::default()
            },
            drift: VecDeque::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &TickConfig {
        &self.config
    }

    /// The current interval.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// When the next tick is planned.
    pub fn next_due(&self) -> u64 {
        self.next_due_ns
    }

    /// Whether ticks are enabled.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Pauses or resumes. Resuming at `now_ns` plans the next tick one interval later, so
    /// a pause is not reported as drift.
    pub fn set_running(&mut self, running: bool, now_ns: u64) {
        if running && !self.running {
            self.next_due_ns = now_ns.saturating_add(self.interval_ns);
        }
        self.running = running;
    }

    /// Whether `begin(now_ns)` would start a tick.
    pub fn is_due(&self, now_ns: u64) -> bool {
        self.running && self.current.is_none() && now_ns >= self.next_due_ns
    }

    /// Starts a tick if one is due (`Ok(None)` if not, or if paused).
    pub fn begin(&mut self, now_ns: u64) -> Result<Option<TickStart>> {
        if let Some((seq, _, _)) = self.current {
            return Err(EccError::TickInProgress { seq });
        }
        if !self.is_due(now_ns) {
            return Ok(None);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let planned = self.next_due_ns;
        let drift_ns = now_ns - planned;
        self.stats.max_drift_ns = self.stats.max_drift_ns.max(drift_ns);
        let drift_event = (drift_ns > self.config.drift_threshold_ns).then(|| {
            let ev = DriftEvent {
                seq,
                planned_ns: planned,
                actual_ns: now_ns,
                drift_ns,
            };
            self.stats.drift_events += 1;
            if self.drift.len() == DRIFT_HISTORY {
                self.drift.pop_front();
            }
            self.drift.push_back(ev);
            ev
        });
        self.current = Some((seq, planned, now_ns));
        Ok(Some(TickStart {
            seq,
            planned_ns: planned,
            actual_ns: now_ns,
            drift_ns,
            drift_event,
            subscribers: self.subscribers.iter().cloned().collect(),
        }))
    }

    /// Ends the running tick at `now_ns`: adapts the interval and plans the next tick.
    pub fn end(&mut self, now_ns: u64) -> Result<TickEnd> {
        let (seq, planned, actual) = self.current.take().ok_or(EccError::NoTickInProgress)?;
        let cost_ns = now_ns.saturating_sub(actual);
        let overran = cost_ns > self.config.budget_ns;
        let factor = u64::from(self.config.backoff_factor);
        let old = self.interval_ns;
        let cheap = u128::from(cost_ns) * 100
            <= u128::from(self.config.budget_ns) * u128::from(self.config.cheap_percent);
        if overran {
            self.cheap_streak = 0;
            self.interval_ns = old.saturating_mul(factor).min(self.config.max_interval_ns);
        } else if cheap {
            self.cheap_streak += 1;
            if self.cheap_streak >= self.config.recover_after {
                self.cheap_streak = 0;
                self.interval_ns = (old / factor).max(self.config.min_interval_ns);
            }
        } else {
            self.cheap_streak = 0;
        }
        let change = match self.interval_ns.cmp(&old) {
            std::cmp::Ordering::Greater => {
                self.stats.backoffs += 1;
                IntervalChange::BackedOff
            }
            std::cmp::Ordering::Less => {
                self.stats.recoveries += 1;
                IntervalChange::Recovered
            }
            std::cmp::Ordering::Equal => IntervalChange::Unchanged,
        };
        let mut next = planned.saturating_add(self.interval_ns);
        let mut skipped = 0;
        if next < now_ns {
            skipped = (now_ns - next).div_ceil(self.interval_ns);
            next = now_ns;
        }
        self.next_due_ns = next;
        let s = &mut self.stats;
        s.ticks += 1;
        s.overruns += u64::from(overran);
        s.skipped += skipped;
        s.total_cost_ns = s.total_cost_ns.saturating_add(cost_ns);
        s.max_cost_ns = s.max_cost_ns.max(cost_ns);
        s.last_cost_ns = cost_ns;
        s.interval_ns = self.interval_ns;
        Ok(TickEnd {
            seq,
            cost_ns,
            overran,
            change,
            interval_ns: self.interval_ns,
            next_due_ns: next,
            skipped,
        })
    }

    /// Adds a subscriber (an agent name, a label); false if already there.
    pub fn subscribe(&mut self, name: &str) -> Result<bool> {
        validate_label("subscriber", name)?;
        Ok(self.subscribers.insert(name.to_string()))
    }

    /// Removes a subscriber; false if it was not there.
    pub fn unsubscribe(&mut self, name: &str) -> bool {
        self.subscribers.remove(name)
    }

    /// Subscribers in name order.
    pub fn subscribers(&self) -> impl Iterator<Item = &str> + '_ {
        self.subscribers.iter().map(String::as_str)
    }

    /// The most recent drift events (at most [`DRIFT_HISTORY`]), oldest first.
    pub fn drift_events(&self) -> impl Iterator<Item = &DriftEvent> + '_ {
        self.drift.iter()
    }

    /// Counters.
    pub fn stats(&self) -> TickStats {
        self.stats
    }
}
