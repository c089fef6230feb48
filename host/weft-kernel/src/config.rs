//! `weft.toml`: the kernel's configuration. Every key has a documented
//! default (see `docs/weft-toml.md`); unknown keys are errors that name the
//! key and its line. The kernel owns `[kernel]`, `[runtime]`, `[chain]`,
//! `[ipc]`, `[agent_limits]` and `[operator]`; every other section belongs
//! to the subsystem of that name, which parses it itself
//! ([`KernelConfig::section`]), and a section no subsystem claims is an
//! error at boot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::capability::AgentLimits;
use crate::error::{KernelError, KernelResult};

/// Sections the kernel itself owns.
pub const KERNEL_SECTIONS: &[&str] = &[
    "kernel",
    "runtime",
    "chain",
    "ipc",
    "agent_limits",
    "operator",
    "escalation",
    "environments",
];

/// The whole kernel configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct KernelConfig {
    /// `[kernel]`: state and cache dirs, process limit, environment.
    pub kernel: KernelSection,
    /// `[runtime]`: the wasmtime engine and its pool.
    pub runtime: RuntimeSection,
    /// `[chain]`: the event log.
    pub chain: ChainSection,
    /// `[ipc]`: inboxes and timeouts.
    pub ipc: IpcSection,
    /// Limits given to agents whose spawn request does not set its own.
    pub agent_limits: AgentLimits,
    /// `[operator]`: what the control socket's operator may do.
    pub operator: OperatorSection,
    /// `[escalation]`: how long actions governance defers wait for a person.
    pub escalation: EscalationSection,
    /// `[environments.NAME]`: environments beyond (or overriding) the
    /// built-in `dev`, `staging` and `prod`.
    pub environments: std::collections::BTreeMap<String, crate::environment::EnvSection>,
    /// The file's text and path, for subsystems' own sections.
    #[serde(skip)]
    source: Option<(PathBuf, String)>,
}

/// What the operator (a person at the control socket) may do: gate action
/// patterns, deny winning over allow. Default: everything.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorSection {
    /// Action patterns allowed (`**` for everything).
    pub allow: Vec<String>,
    /// Action patterns refused even if allowed.
    pub deny: Vec<String>,
}

impl Default for OperatorSection {
    fn default() -> Self {
        OperatorSection {
            allow: vec!["**".into()],
            deny: Vec::new(),
        }
    }
}

/// `[escalation]`: actions governance sends to a person (see
/// `weft_kernel::escalation`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationSection {
    /// How long the asking call waits for a decision, in ms, before it gets
    /// a `pending` error (asking again joins the same escalation). An
    /// agent's wait counts against its per-message `timeout_ms`: keep it
    /// below that.
    pub wait_ms: u64,
    /// How long an escalation waits for a person before it expires (a
    /// denial), in seconds. `0` turns the queue off: a deferral is a denial.
    pub ttl_s: u64,
}

impl Default for EscalationSection {
    fn default() -> Self {
        EscalationSection {
            wait_ms: 2_000,
            ttl_s: 86_400,
        }
    }
}

/// `[kernel]`.
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
    /// `dev`, `staging` or `prod` (the strictest, the default): governance
    /// judges in it, and unsigned bundles install only in `dev`.
    pub environment: String,
}

/// `[runtime]`: settings of the one wasmtime engine.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Where a running guest's deadline is checked: at its fuel yields
    /// (`yields`, the default) or also by epoch checks compiled into every
    /// loop (`epochs`: finer, slower on loop-heavy code).
    pub preemption: PreemptionMode,
    /// Epoch tick in milliseconds, under `preemption = "epochs"`: the
    /// resolution of every deadline.
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

/// `[chain]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainSection {
    /// The chain's id; an existing chain with another id is refused.
    pub chain_id: u32,
    /// Longest time a buffered event waits before reaching the OS (with a
    /// signed tree head), in ms.
    pub flush_interval_ms: u64,
    /// A segment file is sealed and a new one begun past this size, in MiB.
    pub segment_mib: u64,
    /// Retention: `"30d"` (an age) or `"50GB"` (a size) of sealed segments
    /// to keep; none keeps everything.
    #[serde(deserialize_with = "de_keep")]
    pub keep: Option<weft_chain::Keep>,
    /// Where retention moves removed segments (relative to this file);
    /// none deletes them.
    pub archive: Option<PathBuf>,
    /// Format 1 only (a checkpoint every N events); ignored, with a
    /// warning: format 2 signs a tree head at every commit.
    pub checkpoint_every: Option<u64>,
    /// Format 1 only (sign each gate decision); ignored, with a warning:
    /// format 2 proves every decision with its tree head.
    pub sign_every_decision: Option<bool>,
}

fn de_keep<'de, D: Deserializer<'de>>(d: D) -> Result<Option<weft_chain::Keep>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// `[ipc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpcSection {
    /// Messages an agent's inbox holds before senders wait.
    pub inbox_capacity: usize,
    /// How long a sender waits on a full inbox before `timeout`, in ms.
    pub send_timeout_ms: u64,
    /// Cap on `request` timeouts, in ms.
    pub max_request_timeout_ms: u64,
    /// Largest message body (and reply) anyone may send, in bytes; a larger
    /// one fails with `invalid` before it is queued.
    pub max_payload_bytes: usize,
}

impl Default for KernelSection {
    fn default() -> Self {
        KernelSection {
            state_dir: None,
            cache_dir: None,
            max_processes: 16_384,
            log_capacity: 10_000,
            environment: "prod".into(),
        }
    }
}

/// `[runtime] preemption`: see `weft_runtime::Preemption`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreemptionMode {
    /// At fuel yields only.
    #[default]
    Yields,
    /// Epoch checks in the compiled code as well.
    Epochs,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            preemption: PreemptionMode::Yields,
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
            flush_interval_ms: 10,
            segment_mib: 64,
            keep: None,
            archive: None,
            checkpoint_every: None,
            sign_every_decision: None,
        }
    }
}

impl Default for IpcSection {
    fn default() -> Self {
        IpcSection {
            inbox_capacity: 1024,
            send_timeout_ms: 5_000,
            max_request_timeout_ms: 60_000,
            max_payload_bytes: 4 << 20,
        }
    }
}

impl IpcSection {
    /// `send_timeout_ms` as a [`Duration`].
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

impl KernelConfig {
    /// Parse `text` (the contents of `path`, used in messages).
    pub fn parse(text: &str, path: &Path) -> KernelResult<Self> {
        let mut config: KernelConfig =
            toml::from_str(text).map_err(|e| config_error(text, path, &e))?;
        if let Some(base) = path.parent() {
            for p in [
                &mut config.kernel.state_dir,
                &mut config.kernel.cache_dir,
                &mut config.chain.archive,
            ]
            .into_iter()
            .chain(config.environments.values_mut().map(|e| &mut e.policy))
            {
                if let Some(dir) = p.as_mut().filter(|d| d.is_relative()) {
                    *dir = base.join(&*dir);
                }
            }
        }
        config.source = Some((path.to_path_buf(), text.to_string()));
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

    /// The file this configuration was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.source.as_ref().map(|(p, _)| p.as_path())
    }

    /// Section `[name]` parsed into `T` (its default when absent or when
    /// the configuration was not read from a file). Errors name the file,
    /// line and column. Relative paths in it are the subsystem's to resolve
    /// against [`KernelConfig::path`].
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> KernelResult<T> {
        match &self.source {
            None => Ok(T::default()),
            Some((path, text)) => Ok(section_of::<T>(text, path, name)?.unwrap_or_default()),
        }
    }

    /// Refuse top-level sections neither the kernel nor a subsystem in
    /// `units` claims, naming the section and its line.
    pub fn check_sections(&self, units: &[&str]) -> KernelResult<()> {
        let Some((path, text)) = &self.source else {
            return Ok(());
        };
        let doc: toml::Table = toml::from_str(text).map_err(|e| config_error(text, path, &e))?;
        for key in doc.keys() {
            if KERNEL_SECTIONS.contains(&key.as_str()) || units.contains(&key.as_str()) {
                continue;
            }
            let line = text
                .lines()
                .position(|l| {
                    let t = l.trim_start();
                    t.starts_with(&format!("[{key}]"))
                        || t.starts_with(&format!("[{key}."))
                        || t.starts_with(&format!("{key} "))
                        || t.starts_with(&format!("{key}="))
                })
                .map_or(String::new(), |i| format!(":{}:1", i + 1));
            return Err(KernelError::Config {
                path: format!("{}{line}", path.display()),
                message: format!(
                    "unknown section `{key}`; expected one of: {}",
                    KERNEL_SECTIONS
                        .iter()
                        .chain(units)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(())
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
        if !(1..=2048).contains(&self.chain.segment_mib) {
            return bad("chain.segment_mib", "must be between 1 and 2048");
        }
        if self.ipc.inbox_capacity == 0 {
            return bad("ipc.inbox_capacity", "must be at least 1");
        }
        if self.ipc.max_payload_bytes == 0 {
            return bad("ipc.max_payload_bytes", "must be at least 1");
        }
        if self.runtime.pool_instances < 16 {
            return bad("runtime.pool_instances", "must be at least 16");
        }
        for (name, env) in &self.environments {
            if !weft_model::env::valid_env_name(name) {
                return bad(
                    &format!("environments.{name}"),
                    "is not a valid environment name (1 to 32 of a-z, 0-9 and -, starting with a letter)",
                );
            }
            for (i, g) in env.outbound.iter().flatten().enumerate() {
                if let Err(e) = weft_model::net::Grant::parse(g) {
                    return bad(
                        &format!("environments.{name}.outbound[{i}]"),
                        &format!("is not a grant: {e}"),
                    );
                }
            }
        }
        let env = self.kernel.environment.as_str();
        if !crate::environment::BUILT_IN.contains(&env) && !self.environments.contains_key(env) {
            return bad(
                "kernel.environment",
                "must be dev, staging, prod or an environment defined under [environments.NAME]",
            );
        }
        for p in self.operator.allow.iter().chain(&self.operator.deny) {
            if let Err(e) = weft_model::glob::ActionPattern::compile(p) {
                return bad("operator", &e.to_string());
            }
        }
        Ok(())
    }
}

fn config_error(text: &str, path: &Path, e: &toml::de::Error) -> KernelError {
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
}

/// Deserialize only the table `name` of the document `text`, so the
/// section's own errors keep their positions in the whole file.
fn section_of<T: DeserializeOwned>(text: &str, path: &Path, name: &str) -> KernelResult<Option<T>> {
    struct Pick<'n, T> {
        name: &'n str,
        _t: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Pick<'_, T> {
        type Value = Option<T>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Pick<'_, T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a TOML document")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == self.name {
                    found = Some(map.next_value::<T>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let de = toml::Deserializer::parse(text).map_err(|e| config_error(text, path, &e))?;
    Pick {
        name,
        _t: std::marker::PhantomData,
    }
    .deserialize(de)
    .map_err(|e| config_error(text, path, &e))
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
    fn subsystem_sections_keep_positions_and_unknown_ones_are_refused() {
        #[derive(Deserialize, Default, Debug)]
        #[serde(default, deny_unknown_fields)]
        struct Cron {
            disabled: bool,
        }
        let text = "[kernel]\nenvironment = \"dev\"\n\n[cron]\ndisabled = true\n";
        let c = KernelConfig::parse(text, Path::new("/etc/weft/weft.toml")).unwrap();
        assert_eq!(c.kernel.environment, "dev");
        assert!(c.section::<Cron>("cron").unwrap().disabled);
        assert!(!c.section::<Cron>("health").unwrap().disabled);
        c.check_sections(&["cron"]).unwrap();
        let e = c.check_sections(&[]).unwrap_err().to_string();
        assert!(
            e.contains("weft.toml:4:1") && e.contains("unknown section `cron`"),
            "{e}"
        );
        let bad = KernelConfig::parse("[cron]\ndisabled = true\nbogus = 1\n", Path::new("w.toml"))
            .unwrap();
        let e = bad.section::<Cron>("cron").unwrap_err().to_string();
        assert!(e.contains("w.toml:3:1") && e.contains("bogus"), "{e}");
        let e = KernelConfig::parse("[kernel]\nenvironment = \"moon\"\n", Path::new("w.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("kernel.environment"), "{e}");
        let c = KernelConfig::parse(
            "[kernel]\nenvironment = \"moon\"\n[environments.moon]\nlearning = true\npolicy = \"p.toml\"\n",
            Path::new("/etc/w.toml"),
        )
        .unwrap();
        assert!(c.environments["moon"].learning);
        assert_eq!(
            c.environments["moon"].policy.as_deref(),
            Some(Path::new("/etc/p.toml"))
        );
        let e = KernelConfig::parse("[environments.Moon]\n", Path::new("w.toml")).unwrap_err();
        assert!(e.to_string().contains("environments.Moon"), "{e}");
        let e = KernelConfig::parse("[environments.qa]\naudit = \"most\"\n", Path::new("w.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("w.toml:2:9"), "{e}");
        let e = KernelConfig::parse("[operator]\nallow = [\"a..b\"]\n", Path::new("w.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("operator"), "{e}");
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
