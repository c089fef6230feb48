//! `weft.toml`: the kernel's configuration. Every key has a documented
//! default (see `docs/weft-toml.md`); unknown keys are errors that name the
//! key and its line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::capability::AgentLimits;
use crate::error::{KernelError, KernelResult};

/// The whole kernel configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KernelConfig {
    pub kernel: KernelSection,
    pub runtime: RuntimeSection,
    pub chain: ChainSection,
    pub ipc: IpcSection,
    /// Limits given to agents whose spawn request does not set its own.
    pub agent_limits: AgentLimits,
    /// The governance, cron and health components (installed by
    /// `weft_subsystems::install`).
    pub subsystems: SubsystemsSection,
}

/// Which subsystem components to run. Paths default to the built-in
/// components in `components_dir`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubsystemsSection {
    /// Where the built-in components (`governance.wasm`, `cron.wasm`,
    /// `health.wasm`) are. Default: `$WEFT_COMPONENTS_DIR`, else the
    /// repository's `components/target/wasm32-wasip2/release`.
    pub components_dir: Option<PathBuf>,
    /// Replacement components.
    pub governance: Option<PathBuf>,
    pub cron: Option<PathBuf>,
    pub health: Option<PathBuf>,
    /// Policy file handed to the governance component; default its
    /// built-in policy.
    pub governance_policy: Option<PathBuf>,
    /// `dev`, `staging` or `prod` (default `prod`, the strictest).
    pub environment: Option<String>,
    /// Subsystems not to install: `governance`, `cron`, `health`.
    pub disabled: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KernelSection {
    /// Where the chain, keys and compile cache live. Relative paths are
    /// relative to the config file. Set by `weaver run --state` when absent.
    pub state_dir: Option<PathBuf>,
    /// Compiled-component cache; default `<state_dir>/cache`. Several
    /// kernels may share one.
    pub cache_dir: Option<PathBuf>,
    /// Most processes alive at once.
    pub max_processes: u32,
    /// Entries kept in the boot/kernel log.
    pub log_capacity: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Epoch tick in milliseconds: the resolution of every deadline.
    pub epoch_tick_ms: u64,
    /// Fuel between cooperative yields of a busy guest.
    pub fuel_yield_interval: u64,
    /// Live component instances the pooling allocator reserves room for.
    pub pool_instances: u32,
    /// Largest linear memory of any instance, in MiB.
    pub pool_max_memory_mib: u64,
    /// KiB of each freed instance's memory reset in place rather than
    /// returned to the OS (faster re-instantiation, more resident memory).
    pub keep_resident_kib: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainSection {
    pub chain_id: u32,
    /// A signed checkpoint after this many events (and at shutdown).
    pub checkpoint_every: u64,
    /// Longest time a buffered event waits before reaching the OS, in ms.
    pub flush_interval_ms: u64,
    /// Sign every gate decision, even one identical (verdict, agent,
    /// action, context) to an earlier signed one; by default such a
    /// decision's record cites the earlier receipt instead.
    pub sign_every_decision: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpcSection {
    /// Messages an agent's inbox holds before senders wait.
    pub inbox_capacity: usize,
    /// How long a sender waits on a full inbox before `timeout`, in ms.
    pub send_timeout_ms: u64,
    /// Cap on `request` timeouts, in ms.
    pub max_request_timeout_ms: u64,
}

impl Default for KernelSection {
    fn default() -> Self {
        KernelSection {
            state_dir: None,
            cache_dir: None,
            max_processes: 16_384,
            log_capacity: 10_000,
        }
    }
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            epoch_tick_ms: 1,
            fuel_yield_interval: 100_000,
            pool_instances: 12_000,
            pool_max_memory_mib: 1024,
            keep_resident_kib: 1024,
        }
    }
}

impl Default for ChainSection {
    fn default() -> Self {
        ChainSection {
            chain_id: 0,
            checkpoint_every: 1000,
            flush_interval_ms: 10,
            sign_every_decision: false,
        }
    }
}

impl Default for IpcSection {
    fn default() -> Self {
        IpcSection {
            inbox_capacity: 1024,
            send_timeout_ms: 5_000,
            max_request_timeout_ms: 60_000,
        }
    }
}

impl IpcSection {
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

impl KernelConfig {
    /// Parse `text` (the contents of `path`, used in messages).
    pub fn parse(text: &str, path: &Path) -> KernelResult<Self> {
        let mut config: KernelConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let (line, col) = line_col(text, s.start);
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            KernelError::Config {
                path: format!("{}{at}", path.display()),
                message: e.message().to_string(),
            }
        })?;
        if let Some(base) = path.parent() {
            let sub = &mut config.subsystems;
            for p in [
                &mut config.kernel.state_dir,
                &mut sub.components_dir,
                &mut sub.governance,
                &mut sub.cron,
                &mut sub.health,
                &mut sub.governance_policy,
            ] {
                if let Some(dir) = p.as_mut().filter(|d| d.is_relative()) {
                    *dir = base.join(&*dir);
                }
            }
        }
        config.validate(path)?;
        Ok(config)
    }

    /// Read and parse a `weft.toml`.
    pub fn load(path: &Path) -> KernelResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| KernelError::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn validate(&self, path: &Path) -> KernelResult<()> {
        let bad = |key: &str, why: &str| {
            Err(KernelError::Config {
                path: path.display().to_string(),
                message: format!("`{key}` {why}"),
            })
        };
        if self.kernel.max_processes == 0 {
            return bad("kernel.max_processes", "must be at least 1");
        }
        if self.runtime.epoch_tick_ms == 0 {
            return bad("runtime.epoch_tick_ms", "must be at least 1");
        }
        if self.ipc.inbox_capacity == 0 {
            return bad("ipc.inbox_capacity", "must be at least 1");
        }
        if self.runtime.pool_instances < 16 {
            return bad("runtime.pool_instances", "must be at least 16");
        }
        let sub = &self.subsystems;
        if let Some(e) = &sub.environment {
            if !["dev", "staging", "prod"].contains(&e.as_str()) {
                return bad("subsystems.environment", "must be dev, staging or prod");
            }
        }
        if let Some(d) = sub
            .disabled
            .iter()
            .find(|d| !["governance", "cron", "health"].contains(&d.as_str()))
        {
            return bad(
                "subsystems.disabled",
                &format!("names an unknown subsystem `{d}`"),
            );
        }
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = KernelConfig::parse("[ipc]\ninbox_capacity = 8\n", Path::new("weft.toml")).unwrap();
        assert_eq!(c.ipc.inbox_capacity, 8);
        assert_eq!(c.kernel.max_processes, 16_384);
    }

    #[test]
    fn unknown_key_is_named_with_position() {
        let e =
            KernelConfig::parse("[kernel]\nmax_procs = 3\n", Path::new("weft.toml")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("weft.toml:2:1"), "{s}");
        assert!(s.contains("max_procs"), "{s}");
    }

    #[test]
    fn subsystems_section() {
        let c = KernelConfig::parse(
            "[subsystems]\ngovernance_policy = \"p.toml\"\nenvironment = \"dev\"\ndisabled = [\"cron\"]\n",
            Path::new("/etc/weft/weft.toml"),
        )
        .unwrap();
        let s = &c.subsystems;
        assert_eq!(
            s.governance_policy.as_deref(),
            Some(Path::new("/etc/weft/p.toml"))
        );
        assert_eq!(
            (s.environment.as_deref(), s.disabled.len()),
            (Some("dev"), 1)
        );
        for bad in ["environment = \"moon\"", "disabled = [\"dns\"]"] {
            let e = KernelConfig::parse(&format!("[subsystems]\n{bad}\n"), Path::new("w.toml"))
                .unwrap_err();
            assert!(e.to_string().contains("subsystems."), "{e}");
        }
    }

    #[test]
    fn bad_value_is_named() {
        let e =
            KernelConfig::parse("[kernel]\nmax_processes = 0\n", Path::new("w.toml")).unwrap_err();
        assert!(e.to_string().contains("kernel.max_processes"), "{e}");
        let e = KernelConfig::parse("[ipc]\ninbox_capacity = \"x\"\n", Path::new("w.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("w.toml:2:"), "{e}");
    }
}
