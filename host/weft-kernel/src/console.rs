//! The boot log: timestamped, levelled phase events kept as data, so
//! `weaver kernel logs` can show and filter them.

use std::sync::Mutex;

use serde::Serialize;

/// Which part of the kernel's life a log entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootPhase {
    /// Opening the state directory, the chain and the runtime.
    Init,
    /// Starting the gate and the subsystems.
    Services,
    /// Bringing up the network (none yet).
    Network,
    /// The kernel is running.
    Ready,
    /// Events after boot (agent crashes, shutdown, ...).
    Runtime,
    /// Stopping agents and subsystems, closing the chain.
    Shutdown,
}

/// Severity of a log entry, least severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for developers.
    Debug,
    /// Normal progress.
    Info,
    /// Something was wrong and was dealt with (e.g. a torn chain tail truncated).
    Warn,
    /// Something failed.
    Error,
}

/// One entry of the [`BootLog`].
#[derive(Clone, Debug, Serialize)]
pub struct BootEvent {
    /// When, nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// The phase it belongs to.
    pub phase: BootPhase,
    /// How severe.
    pub level: LogLevel,
    /// What happened.
    pub message: String,
}

/// Append-only, bounded (oldest runtime events are dropped past `cap`;
/// boot events are always kept).
pub struct BootLog {
    events: Mutex<Vec<BootEvent>>,
    cap: usize,
}

impl BootLog {
    /// An empty log that keeps about `cap` entries.
    pub fn new(cap: usize) -> Self {
        BootLog {
            events: Mutex::new(Vec::new()),
            cap,
        }
    }

    /// Adds an entry and mirrors it to `tracing`.
    pub fn push(&self, phase: BootPhase, level: LogLevel, message: impl Into<String>) {
        let message = message.into();
        match level {
            LogLevel::Error => tracing::error!(?phase, "{message}"),
            LogLevel::Warn => tracing::warn!(?phase, "{message}"),
            LogLevel::Info => tracing::info!(?phase, "{message}"),
            LogLevel::Debug => tracing::debug!(?phase, "{message}"),
        }
        let mut ev = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if ev.len() >= self.cap {
            if let Some(i) = ev.iter().position(|e| e.phase == BootPhase::Runtime) {
                ev.remove(i);
            }
        }
        ev.push(BootEvent {
            timestamp_ns: weft_chain::now_ns(),
            phase,
            level,
            message,
        });
    }

    /// Every entry kept, oldest first.
    pub fn events(&self) -> Vec<BootEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
