//! A hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
//!
//! A timestamp is `(wall_ns, logical)`: `wall_ns` is the largest physical time (ns since the
//! Unix epoch) seen so far, `logical` counts events that share it. Timestamps compare
//! lexicographically. Rules, with `pt` the physical clock reading and `l, c` the last
//! timestamp:
//!
//! * local event: `l' = max(l, pt)`; `c' = c + 1` if `l' == l`, else `0`;
//! * receive `(lm, cm)`: refused if `lm > pt + max_drift`; else `l' = max(l, lm, pt)` and
//!   `c' = max(c, cm) + 1` if `l' == l == lm`, `c + 1` if `l' == l`, `cm + 1` if `l' == lm`,
//!   else `0`.
//!
//! If `c` would overflow `u32` the clock moves `wall_ns` on by 1 ns and resets `c`, which
//! keeps it strictly monotonic at the cost of 1 ns of skew per 2^32 same-tick events.
//!
//! Written here rather than taken from `uhlc`: `uhlc` 0.9 takes its physical clock as a
//! plain `fn() -> NTP64`, so a test clock would have to be a global, and it has no way to
//! preload a saved last timestamp other than feeding it through the drift check. Here the
//! physical clock is any [`PhysicalClock`] and [`Hlc::restore`] starts from a saved
//! [`ClockState`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};

/// A hybrid logical clock timestamp. Orders by `wall_ns`, then `logical`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HlcTimestamp {
    /// Physical component: nanoseconds since the Unix epoch.
    pub wall_ns: u64,
    /// Logical component: orders events that share `wall_ns`.
    pub logical: u32,
}

impl HlcTimestamp {
    /// A timestamp from its parts.
    pub const fn new(wall_ns: u64, logical: u32) -> Self {
        HlcTimestamp { wall_ns, logical }
    }

    /// The smallest timestamp greater than `self`.
    pub fn successor(self) -> Self {
        match self.logical.checked_add(1) {
            Some(logical) => HlcTimestamp::new(self.wall_ns, logical),
            None => HlcTimestamp::new(self.wall_ns.saturating_add(1), 0),
        }
    }
}

impl fmt::Display for HlcTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ns, self.logical)
    }
}

/// A source of physical time in nanoseconds since the Unix epoch. Injectable so tests (and
/// the kernel's deterministic runs) can drive time by hand.
pub trait PhysicalClock: Send + Sync {
    /// The current physical time.
    fn now_ns(&self) -> u64;
}

/// The system wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    fn now_ns(&self) -> u64 {
        // Before 1970 (a broken RTC) reads as 0; the HLC then runs on its logical part.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock set by hand; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `ns`.
    pub fn new(ns: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ns)))
    }
    /// Sets the time (may go backwards).
    pub fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
    /// Moves the time forward by `ns`.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl PhysicalClock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// HLC settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlcConfig {
    /// A received timestamp more than this far ahead of the local physical clock is
    /// refused, so one bad peer cannot drag our clock into the future.
    pub max_drift_ns: u64,
}

impl Default for HlcConfig {
    fn default() -> Self {
        HlcConfig {
            max_drift_ns: 500_000_000,
        }
    }
}

/// What must be saved for the clock to stay monotonic across a restart: the last
/// timestamp it issued or merged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// The last timestamp.
    pub last: HlcTimestamp,
}

impl ClockState {
    /// Encoded length of [`ClockState::to_bytes`].
    pub const ENCODED_LEN: usize = 12;

    /// Fixed 12-byte encoding: `wall_ns` u64 big-endian, then `logical` u32 big-endian.
    pub fn to_bytes(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.last.wall_ns.to_be_bytes());
        out[8..].copy_from_slice(&self.last.logical.to_be_bytes());
        out
    }

    /// Decodes [`ClockState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; 12] = bytes.try_into().map_err(|_| EccError::InvalidParameter {
            what: "clock state",
            reason: format!("expected 12 bytes, got {}", bytes.len()),
        })?;
        let mut wall = [0u8; 8];
        wall.copy_from_slice(&bytes[..8]);
        let mut logical = [0u8; 4];
        logical.copy_from_slice(&bytes[8..]);
        Ok(ClockState {
            last: HlcTimestamp::new(u64::from_be_bytes(wall), u32::from_be_bytes(logical)),
        })
    }
}

/// The hybrid logical clock. Not internally synchronised: the owner serialises calls.
#[derive(Clone)]
pub struct Hlc {
    last: HlcTimestamp,
    clock: Arc<dyn PhysicalClock>,
    config: HlcConfig,
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hlc")
            .field("last", &self.last)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Hlc {
    /// A fresh clock.
    pub fn new(clock: Arc<dyn PhysicalClock>, config: HlcConfig) -> Self {
        Hlc::restore(ClockState::default(), clock, config)
    }

    /// A clock that continues from a saved state: every timestamp it issues is greater
    /// than `state.last`, whatever the physical clock says.
    pub fn restore(state: ClockState, clock: Arc<dyn PhysicalClock>, config: HlcConfig) -> Self {
        Hlc {
            last: state.last,
            clock,
            config,
        }
    }

    /// The state to save.
    pub fn state(&self) -> ClockState {
        ClockState { last: self.last }
    }

    /// The last timestamp issued or merged.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// The settings.
    pub fn config(&self) -> HlcConfig {
        self.config
    }

    /// The physical clock reading.
    pub fn physical_now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// The timestamp [`Hlc::now`] would return, without advancing.
    pub fn peek_now(&self) -> HlcTimestamp {
        let pt = self.clock.now_ns();
        if pt > self.last.wall_ns {
            HlcTimestamp::new(pt, 0)
        } else {
            self.last.successor()
        }
    }

    /// A local event: advances the clock and returns its new value.
    pub fn now(&mut self) -> HlcTimestamp {
        let ts = self.peek_now();
        self.last = ts;
        ts
    }

    /// The timestamp [`Hlc::receive`] would return for `remote`, without advancing.
    pub fn peek_receive(&self, remote: HlcTimestamp) -> Result<HlcTimestamp> {
        let pt = self.clock.now_ns();
        let limit = pt.saturating_add(self.config.max_drift_ns);
        if remote.wall_ns > limit {
            return Err(EccError::ClockDrift {
                remote,
                ahead_ns: remote.wall_ns - pt,
                max_drift_ns: self.config.max_drift_ns,
            });
        }
        let last = self.last;
        let l = last.wall_ns.max(remote.wall_ns).max(pt);
        let next = |c: u32| match c.checked_add(1) {
            Some(c) => HlcTimestamp::new(l, c),
            None => HlcTimestamp::new(l.saturating_add(1), 0),
        };
        Ok(if l == last.wall_ns && l == remote.wall_ns {
            next(last.logical.max(remote.logical))
        } else if l == last.wall_ns {
            next(last.logical)
        } else if l == remote.wall_ns {
            next(remote.logical)
        } else {
            HlcTimestamp::new(l, 0)
        })
    }

    /// Merges a received timestamp (refusing one beyond the drift bound) and returns the
    /// clock's new value, which is greater than both `remote` and the previous value.
    pub fn receive(&mut self, remote: HlcTimestamp) -> Result<HlcTimestamp> {
        let ts = self.peek_receive(remote)?;
        self.last = ts;
        Ok(ts)
    }

    /// Raises the clock to at least `ts` without a drift check: used when re-applying a
    /// recorded operation whose timestamp this clock (or its predecessor) already issued.
    pub fn observe(&mut self, ts: HlcTimestamp) {
        self.last = self.last.max(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hlc(at: u64) -> (Hlc, ManualClock) {
        let clock = ManualClock::new(at);
        (
            Hlc::new(Arc::new(clock.clone()), HlcConfig::default()),
            clock,
        )
    }

    #[test]
    fn local_events_follow_physical_time_then_count() {
        let (mut h, clock) = hlc(1000);
        assert_eq!(h.now(), HlcTimestamp::new(1000, 0));
        assert_eq!(h.now(), HlcTimestamp::new(1000, 1));
        clock.set(900);
        assert_eq!(h.now(), HlcTimestamp::new(1000, 2));
        clock.set(2000);
        assert_eq!(h.now(), HlcTimestamp::new(2000, 0));
    }

    #[test]
    fn receive_cases() {
        let (mut h, clock) = hlc(1000);
        h.now();
        // remote ahead within drift: take its wall time, its counter + 1
        assert_eq!(
            h.receive(HlcTimestamp::new(1500, 7)).unwrap(),
            HlcTimestamp::new(1500, 8)
        );
        // equal wall times: max counter + 1
        assert_eq!(
            h.receive(HlcTimestamp::new(1500, 3)).unwrap(),
            HlcTimestamp::new(1500, 9)
        );
        // remote behind: our counter + 1
        assert_eq!(
            h.receive(HlcTimestamp::new(10, 99)).unwrap(),
            HlcTimestamp::new(1500, 10)
        );
        // physical time ahead of both: counter resets
        clock.set(5000);
        assert_eq!(
            h.receive(HlcTimestamp::new(10, 0)).unwrap(),
            HlcTimestamp::new(5000, 0)
        );
    }

    #[test]
    fn receive_refuses_far_future() {
        let (mut h, _clock) = hlc(1_000_000_000);
        let before = h.last();
        let err = h
            .receive(HlcTimestamp::new(1_000_000_000 + 600_000_000, 0))
            .unwrap_err();
        assert!(
            matches!(
                err,
                EccError::ClockDrift {
                    ahead_ns: 600_000_000,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(h.last(), before, "a refused timestamp changes nothing");
        assert!(h
            .receive(HlcTimestamp::new(1_000_000_000 + 500_000_000, 0))
            .is_ok());
    }

    #[test]
    fn counter_overflow_moves_wall_time() {
        let clock = ManualClock::new(10);
        let state = ClockState {
            last: HlcTimestamp::new(10, u32::MAX),
        };
        let mut h = Hlc::restore(state, Arc::new(clock), HlcConfig::default());
        assert_eq!(h.now(), HlcTimestamp::new(11, 0));
    }

    #[test]
    fn clock_state_bytes_round_trip() {
        let s = ClockState {
            last: HlcTimestamp::new(0x0102_0304_0506_0708, 0x0a0b_0c0d),
        };
        let b = s.to_bytes();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(ClockState::from_bytes(&b).unwrap(), s);
        assert!(ClockState::from_bytes(&b[..11]).is_err());
    }
}
