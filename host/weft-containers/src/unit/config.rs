//! `[containers]` in `weft.toml`: where the engine is and what this
//! kernel's environment allows container services.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use weft_model::plan::{LINUX_CAPABILITIES, MIN_CONTAINER_MEMORY, NEVER_CAPABILITIES};
use weft_model::policy::ContainerPolicy;

use crate::{EngineConfig, Policy};

/// `[containers]` as written. Its presence turns container services on.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainersSection {
    /// The engine's unix socket; default `DOCKER_HOST`, then
    /// `/var/run/docker.sock`. Podman's Docker-compatible socket works too.
    pub socket: Option<PathBuf>,
    /// Host ports services may publish, `"LOW-HIGH"`; default `"1024-65535"`.
    pub host_ports: Option<String>,
    /// The address ports are published on; default `127.0.0.1`. Anything
    /// else is this environment allowing services to be reached from
    /// outside the machine.
    pub host_ip: Option<IpAddr>,
    /// Linux capabilities a service may keep (`cap_add`); default none.
    pub allowed_caps: Vec<String>,
    /// Most memory one container may ask for (`"512m"`, bytes as an integer).
    pub max_memory: Option<toml::Value>,
    /// Most CPUs one container may ask for.
    pub max_cpus: Option<f64>,
    /// How long a stopping container gets before SIGKILL, in ms (default 5000).
    pub stop_timeout_ms: Option<u64>,
    /// How long an app start waits for a service's first healthy probe, in
    /// ms (default 60000).
    pub ready_timeout_ms: Option<u64>,
    /// Limit on each engine request, in ms (default 120000).
    pub request_timeout_ms: Option<u64>,
    /// Limit on pulling an image, in ms (default 120000).
    pub pull_timeout_ms: Option<u64>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct ContainersConfig {
    /// How to reach the engine.
    pub engine: EngineConfig,
    /// Allowed host ports, inclusive.
    pub host_ports: (u16, u16),
    /// Where ports are published.
    pub host_ip: IpAddr,
    /// Capabilities a service may keep.
    pub allowed_caps: Vec<String>,
    /// Memory ceiling per container.
    pub max_memory_bytes: Option<u64>,
    /// CPU ceiling per container, in 10⁻⁹ CPUs.
    pub max_nano_cpus: Option<u64>,
    /// SIGTERM to SIGKILL.
    pub stop_timeout: Duration,
    /// Wait for a service's first healthy probe at start.
    pub ready_timeout: Duration,
}

/// A `[containers]` value that is wrong, named by its key.
#[derive(Debug, thiserror::Error)]
#[error("[containers] {key}: {message}")]
pub struct ConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
    }
}

impl ContainersSection {
    /// Check every value. Relative socket paths are relative to `base`
    /// (the directory of `weft.toml`).
    pub fn check(self, base: Option<&Path>) -> Result<ContainersConfig, ConfigError> {
        let host_ports = match &self.host_ports {
            None => (1024, 65535),
            Some(s) => parse_range(s).ok_or_else(|| {
                bad(
                    "host_ports",
                    format!("expected \"LOW-HIGH\" with 1 <= LOW <= HIGH <= 65535, found \"{s}\""),
                )
            })?,
        };
        let mut caps = Vec::new();
        for c in &self.allowed_caps {
            if NEVER_CAPABILITIES.contains(&c.as_str()) || c == "ALL" {
                return Err(bad(
                    "allowed_caps",
                    format!("\"{c}\" amounts to root on the host and is never granted"),
                ));
            }
            if !LINUX_CAPABILITIES.contains(&c.as_str()) {
                return Err(bad(
                    "allowed_caps",
                    format!("\"{c}\" is not a Linux capability name (upper case, no \"CAP_\")"),
                ));
            }
            if !caps.contains(c) {
                caps.push(c.clone());
            }
        }
        let max_memory_bytes = match &self.max_memory {
            None => None,
            Some(v) => Some(memory(v).ok_or_else(|| {
                bad(
                    "max_memory",
                    format!("expected bytes (an integer) or a size like \"512m\" of at least 6 MiB, found {v}"),
                )
            })?),
        };
        let max_nano_cpus = match self.max_cpus {
            None => None,
            Some(c) if c.is_finite() && c > 0.0 && c <= 1024.0 => Some((c * 1e9).round() as u64),
            Some(c) => {
                return Err(bad(
                    "max_cpus",
                    format!("expected 0 < CPUs <= 1024, found {c}"),
                ))
            }
        };
        let socket = self.socket.map(|s| match (s.is_relative(), base) {
            (true, Some(b)) if !s.to_string_lossy().starts_with("unix://") => b.join(s),
            _ => s,
        });
        let ms = Duration::from_millis;
        let defaults = EngineConfig::default();
        Ok(ContainersConfig {
            engine: EngineConfig {
                socket,
                request_timeout: self.request_timeout_ms.map_or(defaults.request_timeout, ms),
                pull_timeout: self.pull_timeout_ms.map_or(defaults.pull_timeout, ms),
                ..defaults
            },
            host_ports,
            host_ip: self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            allowed_caps: caps,
            max_memory_bytes,
            max_nano_cpus,
            stop_timeout: ms(self.stop_timeout_ms.unwrap_or(5_000)),
            ready_timeout: ms(self.ready_timeout_ms.unwrap_or(60_000)),
        })
    }
}

impl ContainersConfig {
    /// What the manifest checker applies at install.
    pub fn check_policy(&self) -> ContainerPolicy {
        ContainerPolicy {
            host_port_min: self.host_ports.0,
            host_port_max: self.host_ports.1,
            allowed_caps: self.allowed_caps.clone(),
            max_memory_bytes: self.max_memory_bytes,
            max_nano_cpus: self.max_nano_cpus,
        }
    }

    /// What the engine layer enforces again when it creates a container
    /// (the manifest was checked at install; the policy may have changed).
    pub fn engine_policy(&self, data_dir: &Path) -> Policy {
        Policy {
            volume_base: data_dir.to_path_buf(),
            host_ports: self.host_ports.0..=self.host_ports.1,
            default_host_ip: self.host_ip,
            allow_non_loopback: !self.host_ip.is_loopback(),
            allowed_caps: self.allowed_caps.iter().cloned().collect::<BTreeSet<_>>(),
            max_memory_bytes: self.max_memory_bytes,
            max_nano_cpus: self.max_nano_cpus,
        }
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-')?;
    let lo: u16 = lo.trim().parse().ok()?;
    let hi: u16 = hi.trim().parse().ok()?;
    (lo >= 1 && lo <= hi).then_some((lo, hi))
}

fn memory(v: &toml::Value) -> Option<u64> {
    let bytes = match v {
        toml::Value::Integer(i) => u64::try_from(*i).ok()?,
        toml::Value::String(s) => {
            let (digits, shift) = match s.char_indices().last() {
                Some((i, c)) if c.is_ascii_alphabetic() => (
                    &s[..i],
                    match c.to_ascii_lowercase() {
                        'k' => 10,
                        'm' => 20,
                        'g' => 30,
                        _ => return None,
                    },
                ),
                _ => (s.as_str(), 0),
            };
            digits.parse::<u64>().ok()?.checked_mul(1 << shift)?
        }
        _ => return None,
    };
    (bytes >= MIN_CONTAINER_MEMORY).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ContainersConfig, ConfigError> {
        let s: ContainersSection = toml::from_str(text).expect("toml");
        s.check(Some(Path::new("/etc/weft")))
    }

    #[test]
    fn defaults_are_loopback_no_caps_unprivileged_ports() {
        let c = parse("").unwrap();
        assert_eq!(c.host_ports, (1024, 65535));
        assert!(c.host_ip.is_loopback());
        assert!(c.allowed_caps.is_empty());
        assert_eq!(c.engine.socket, None);
        let p = c.check_policy();
        assert_eq!((p.host_port_min, p.host_port_max), (1024, 65535));
    }

    #[test]
    fn every_value_is_checked_and_named() {
        let c = parse(
            "socket = \"run/docker.sock\"\nhost_ports = \"20000-20999\"\n\
             allowed_caps = [\"NET_BIND_SERVICE\"]\nmax_memory = \"256m\"\nmax_cpus = 1.5\n",
        )
        .unwrap();
        assert_eq!(
            c.engine.socket,
            Some(PathBuf::from("/etc/weft/run/docker.sock"))
        );
        assert_eq!(c.host_ports, (20000, 20999));
        assert_eq!(c.max_memory_bytes, Some(256 << 20));
        assert_eq!(c.max_nano_cpus, Some(1_500_000_000));
        for (text, key) in [
            ("host_ports = \"2000-1000\"", "host_ports"),
            ("host_ports = \"0-10\"", "host_ports"),
            ("allowed_caps = [\"SYS_ADMIN\"]", "allowed_caps"),
            ("allowed_caps = [\"CAP_NET_RAW\"]", "allowed_caps"),
            ("max_memory = \"1k\"", "max_memory"),
            ("max_memory = \"lots\"", "max_memory"),
            ("max_cpus = -1.0", "max_cpus"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.to_string().starts_with(&format!("[containers] {key}: ")));
        }
    }
}
