//! The boot log: timestamped, levelled phase events kept as data, so
//! `weaver kernel logs` can show and filter them.

use std::sync::Mutex;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootPhase {
    Init,
    Services,
    Network,
    Ready,
    /// Events after boot (agent crashes, shutdown, ...).
    Runtime,
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, Serialize)]
pub struct BootEvent {
    pub timestamp_ns: u64,
    pub phase: BootPhase,
    pub level: LogLevel,
    pub message: String,
}

/// Append-only, bounded (oldest runtime events are dropped past `cap`;
/// boot events are always kept).
pub struct BootLog {
    events: Mutex<Vec<BootEvent>>,
    cap: usize,
}

impl BootLog {
    pub fn new(cap: usize) -> Self {
        BootLog {
            events: Mutex::new(Vec::new()),
            cap,
        }
    }

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

    pub fn events(&self) -> Vec<BootEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
