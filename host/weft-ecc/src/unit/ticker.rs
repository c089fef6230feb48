//! The cognitive tick as a running system service: a task that ticks at
//! the adaptive interval of [`CognitiveTick`] (its budget from the boot
//! calibration unless `[ecc.tick]` sets the interval), publishes each tick
//! to a topic as the kernel (recorded like any publish) when some agent is
//! subscribed, logs drift, and keeps the stats `weaver ecc tick` shows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::console::LogLevel;
use weft_kernel::ipc::SendMessage;
use weft_kernel::{Kernel, KernelError, MessageTarget, Payload, Principal};

use crate::{
    tick_config, CalibrationReport, CognitiveTick, PhysicalClock, SystemClock, TickConfig,
    TickWorkload,
};

/// `[ecc.tick]` in `weft.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TickSection {
    /// Run the tick service.
    pub enabled: bool,
    /// The topic ticks are published on.
    pub topic: String,
    /// Starting interval in ms (default: from the calibrated budget).
    pub interval_ms: Option<u64>,
    /// Shortest interval in ms.
    pub min_ms: Option<u64>,
    /// Longest interval in ms.
    pub max_ms: Option<u64>,
}

impl Default for TickSection {
    fn default() -> Self {
        TickSection {
            enabled: true,
            topic: "ecc.tick".into(),
            interval_ms: None,
            min_ms: None,
            max_ms: None,
        }
    }
}

impl TickSection {
    /// The tick's configuration: calibrated (or the library default), with
    /// what the section sets on top. Errors name the key.
    pub fn config(&self, calibration: Option<&CalibrationReport>) -> Result<TickConfig, String> {
        let mut c = match calibration {
            Some(r) => tick_config(r, &TickWorkload::default()),
            None => TickConfig::default(),
        };
        let ms = |v: u64| v.saturating_mul(1_000_000);
        if let Some(v) = self.min_ms {
            c.min_interval_ns = ms(v);
        }
        if let Some(v) = self.max_ms {
            c.max_interval_ns = ms(v);
        }
        if let Some(v) = self.interval_ms {
            c.interval_ns = ms(v);
            c.min_interval_ns = c.min_interval_ns.min(c.interval_ns);
            c.max_interval_ns = c.max_interval_ns.max(c.interval_ns);
        } else {
            c.interval_ns = c.interval_ns.clamp(c.min_interval_ns, c.max_interval_ns);
        }
        c.validate().map_err(|e| format!("ecc.tick: {e}"))?;
        if self.topic.is_empty() || self.topic.len() > 256 {
            return Err("ecc.tick.topic: must be 1 to 256 bytes".into());
        }
        Ok(c)
    }
}

/// What the running service shares with `weaver ecc tick`.
pub(crate) struct Ticker {
    tick: Mutex<CognitiveTick>,
    topic: String,
    published: Mutex<u64>,
}

use super::lock;

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

impl Ticker {
    pub(crate) fn new(config: TickConfig, topic: String) -> Result<Self, String> {
        let tick = CognitiveTick::new(config, now_ns()).map_err(|e| e.to_string())?;
        Ok(Ticker {
            tick: Mutex::new(tick),
            topic,
            published: Mutex::new(0),
        })
    }

    /// Stats, configuration and recent drift, for `weaver ecc tick`.
    pub(crate) fn report(&self) -> Value {
        let t = lock(&self.tick);
        json!({
            "topic": self.topic,
            "running": t.is_running(),
            "config": t.config(),
            "stats": t.stats(),
            "published": *lock(&self.published),
            "drift": t.drift_events().collect::<Vec<_>>(),
        })
    }

    /// Tick until the kernel stops.
    pub(crate) async fn run(self: Arc<Self>, kernel: Kernel) {
        {
            // Planned at init; boot (calibration, apps resuming) is not drift.
            let mut t = lock(&self.tick);
            t.set_running(false, now_ns());
            t.set_running(true, now_ns());
        }
        loop {
            let due = lock(&self.tick).next_due();
            let now = now_ns();
            if due > now {
                tokio::time::sleep(Duration::from_nanos(due - now)).await;
            }
            let start = match lock(&self.tick).begin(now_ns()) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    kernel.log(LogLevel::Error, format!("ecc: tick stopped: {e}"));
                    return;
                }
            };
            if let Some(d) = start.drift_event {
                kernel.log(
                    LogLevel::Warn,
                    format!(
                        "ecc: tick {} started {:.1} ms late",
                        d.seq,
                        d.drift_ns as f64 / 1e6
                    ),
                );
            }
            // Publishing to nobody would only fill the chain.
            if kernel.topics().iter().any(|t| *t == self.topic) {
                let interval_ms = lock(&self.tick).interval_ns() / 1_000_000;
                let body = json!({ "tick": start.seq, "planned_ns": start.planned_ns,
                                   "late_ns": start.drift_ns, "interval_ms": interval_ms });
                let send = SendMessage::new(
                    MessageTarget::Topic(self.topic.clone()),
                    Payload::Json(body),
                );
                match kernel.act(&Principal::Kernel, send).await {
                    Ok(_) => *lock(&self.published) += 1,
                    Err(KernelError::NotRunning(_)) => return,
                    Err(e) => kernel.log(LogLevel::Warn, format!("ecc: tick {}: {e}", start.seq)),
                }
            }
            if let Err(e) = lock(&self.tick).end(now_ns()) {
                kernel.log(LogLevel::Error, format!("ecc: tick stopped: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_overrides_and_errors_name_the_key() {
        let s = TickSection {
            interval_ms: Some(20),
            min_ms: Some(10),
            max_ms: Some(1000),
            ..Default::default()
        };
        let c = s.config(None).unwrap();
        assert_eq!(c.interval_ns, 20_000_000);
        assert_eq!(c.min_interval_ns, 10_000_000);
        let bad = TickSection {
            min_ms: Some(0),
            ..Default::default()
        };
        assert!(bad.config(None).unwrap_err().starts_with("ecc.tick"));
        let bad = TickSection {
            topic: String::new(),
            ..Default::default()
        };
        assert!(bad.config(None).unwrap_err().contains("topic"));
    }
}
