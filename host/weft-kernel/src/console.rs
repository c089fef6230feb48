//! The kernel log: timestamped, levelled phase events kept as data, so
//! `weaver kernel logs` can show and filter them. Agents write to it too:
//! their `log` syscall and whatever they print on stdout and stderr, each
//! line with the agent's name as its `source`.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Which part of the kernel's life a log entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BootEvent {
    /// When, nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// The phase it belongs to.
    pub phase: BootPhase,
    /// How severe.
    pub level: LogLevel,
    /// Who said it: an agent's name for its `log` calls and output; none
    /// for the kernel's own lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What happened.
    pub message: String,
}

/// Longest line kept from a guest; the rest is cut (with a mark).
pub const MAX_GUEST_LINE: usize = 4096;

impl BootEvent {
    /// One line for a person: `LEVEL phase [source] message`.
    pub fn render(&self) -> String {
        let level = format!("{:?}", self.level).to_uppercase();
        let phase = format!("{:?}", self.phase).to_lowercase();
        match &self.source {
            Some(s) => format!("{level:<5} {phase:<8} [{s}] {}", self.message),
            None => format!("{level:<5} {phase:<8} {}", self.message),
        }
    }
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
        self.push_from(phase, level, None, message.into());
    }

    /// What a guest printed, one entry per line (stdout at `Info`, stderr
    /// at `Warn`), each cut to [`MAX_GUEST_LINE`] bytes.
    pub fn guest_output(&self, source: &str, stdout: &[u8], stderr: &[u8]) {
        for (bytes, level) in [(stdout, LogLevel::Info), (stderr, LogLevel::Warn)] {
            if bytes.is_empty() {
                continue;
            }
            for line in String::from_utf8_lossy(bytes).lines() {
                self.push_from(
                    BootPhase::Runtime,
                    level,
                    Some(source.to_string()),
                    cut(line),
                );
            }
        }
    }

    /// Adds an entry said by `source` (an agent's name) and mirrors it to
    /// `tracing`.
    pub fn push_from(
        &self,
        phase: BootPhase,
        level: LogLevel,
        source: Option<String>,
        message: String,
    ) {
        let message = match &source {
            Some(_) => cut(&message),
            None => message,
        };
        let from = source.as_deref().unwrap_or("kernel");
        match level {
            LogLevel::Error => tracing::error!(?phase, source = from, "{message}"),
            LogLevel::Warn => tracing::warn!(?phase, source = from, "{message}"),
            LogLevel::Info => tracing::info!(?phase, source = from, "{message}"),
            LogLevel::Debug => tracing::debug!(?phase, source = from, "{message}"),
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
            source,
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

/// `s`, cut to [`MAX_GUEST_LINE`] bytes at a character boundary.
fn cut(s: &str) -> String {
    if s.len() <= MAX_GUEST_LINE {
        return s.to_string();
    }
    let mut end = MAX_GUEST_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_output_is_one_entry_per_line_with_its_source() {
        let log = BootLog::new(100);
        log.guest_output("app.agent", b"one\ntwo\n", b"oops\n");
        let ev = log.events();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].source.as_deref(), Some("app.agent"));
        assert_eq!(
            (ev[1].level, ev[1].message.as_str()),
            (LogLevel::Info, "two")
        );
        assert_eq!(
            (ev[2].level, ev[2].message.as_str()),
            (LogLevel::Warn, "oops")
        );
        assert_eq!(ev[2].render(), "WARN  runtime  [app.agent] oops");
    }

    #[test]
    fn long_guest_lines_are_cut() {
        let log = BootLog::new(10);
        log.guest_output("a", "é".repeat(5000).as_bytes(), b"");
        let m = &log.events()[0].message;
        assert!(m.len() < MAX_GUEST_LINE + 40, "{}", m.len());
        assert!(m.ends_with("bytes cut)"), "{m}");
    }
}
