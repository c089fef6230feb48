//! What the kernel allows a manifest, handed to the checker with it.
//!
//! Some rules are the manifest's own (syntax, ranges, the security rules no
//! environment relaxes); others depend on the kernel it installs into: is
//! there a container engine, which host ports may it publish, which Linux
//! capabilities does the environment grant. The checker applies both, so
//! a manifest asking for more than the kernel allows is refused with the
//! `file:line:col` of the key that asks.

use serde::{Deserialize, Serialize};

/// The kernel's side of a manifest check. The default checks nothing that
/// depends on the kernel (`weaver app check` without a kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckPolicy {
    /// What container services may ask for.
    pub containers: ContainerEngine,
    /// The kernel's default environment (where an app that names none
    /// goes); `None` when checking without a kernel.
    #[serde(default)]
    pub default_environment: Option<String>,
    /// The environments with an outbound allow-list (`[environments.NAME]
    /// outbound`): every agent's and tool's `network.outbound` grant must
    /// be within the list of the app's environment.
    #[serde(default)]
    pub outbound: Vec<EnvOutbound>,
}

/// One environment's outbound allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvOutbound {
    /// The environment.
    pub environment: String,
    /// Its `scheme://host[:port]` grants.
    pub outbound: Vec<String>,
}

impl CheckPolicy {
    /// The allow-list of the environment an app naming `named` (or none)
    /// goes into, with that environment's name.
    pub fn outbound_of(&self, named: Option<&str>) -> Option<&EnvOutbound> {
        let env = named.or(self.default_environment.as_deref())?;
        self.outbound.iter().find(|e| e.environment == env)
    }
}

/// Whether the kernel runs container services, and within what.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerEngine {
    /// Not known (checking a manifest without a kernel): only the
    /// manifest's own rules apply.
    #[default]
    Unchecked,
    /// No engine is configured: `image` and `image_archive` services are
    /// refused.
    Absent,
    /// An engine is configured with this policy.
    Policy(ContainerPolicy),
}

/// What a container service may ask for in this kernel's environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPolicy {
    /// Lowest host port a service may publish.
    pub host_port_min: u16,
    /// Highest host port a service may publish.
    pub host_port_max: u16,
    /// Linux capabilities (`NET_BIND_SERVICE`, no `CAP_`) a service may keep.
    pub allowed_caps: Vec<String>,
    /// Most memory a container may ask for, in bytes; `None`: no ceiling.
    pub max_memory_bytes: Option<u64>,
    /// Most CPU a container may ask for, in 10⁻⁹ CPUs; `None`: no ceiling.
    pub max_nano_cpus: Option<u64>,
}

impl Default for ContainerPolicy {
    /// Host ports 1024 to 65535, no capabilities, no ceilings.
    fn default() -> Self {
        ContainerPolicy {
            host_port_min: 1024,
            host_port_max: 65535,
            allowed_caps: Vec::new(),
            max_memory_bytes: None,
            max_nano_cpus: None,
        }
    }
}

impl ContainerPolicy {
    /// Why publishing `port` on the host is refused, if it is.
    pub fn port_problem(&self, port: u16) -> Option<String> {
        (port < self.host_port_min || port > self.host_port_max).then(|| {
            format!(
                "host port {port} is outside the range this kernel allows ({}-{}; \
                 `[containers] host_ports` in weft.toml)",
                self.host_port_min, self.host_port_max
            )
        })
    }

    /// Why keeping capability `cap` is refused, if it is.
    pub fn cap_problem(&self, cap: &str) -> Option<String> {
        (!self.allowed_caps.iter().any(|c| c == cap)).then(|| {
            let allowed = if self.allowed_caps.is_empty() {
                "none".to_string()
            } else {
                self.allowed_caps.join(", ")
            };
            format!(
                "capability \"{cap}\" is not allowed in this kernel's environment \
                 (allowed: {allowed}; `[containers] allowed_caps` in weft.toml)"
            )
        })
    }

    /// Why a memory limit of `bytes` is refused, if it is.
    pub fn memory_problem(&self, bytes: u64) -> Option<String> {
        self.max_memory_bytes.filter(|max| bytes > *max).map(|max| {
            format!(
                "{bytes} bytes is more than this kernel allows a container ({max} bytes; \
                 `[containers] max_memory` in weft.toml)"
            )
        })
    }

    /// Why a CPU limit of `nano` 10⁻⁹ CPUs is refused, if it is.
    pub fn cpus_problem(&self, nano: u64) -> Option<String> {
        self.max_nano_cpus.filter(|max| nano > *max).map(|max| {
            format!(
                "{} CPUs is more than this kernel allows a container ({} CPUs; \
                 `[containers] max_cpus` in weft.toml)",
                nano as f64 / 1e9,
                max as f64 / 1e9
            )
        })
    }
}

/// The message for a container service in a kernel without an engine.
pub const NO_CONTAINER_ENGINE: &str = "this kernel has no container engine configured; \
     add `[containers]` to weft.toml (see docs/containers.md)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_it_refuses() {
        let p = ContainerPolicy {
            host_port_min: 20000,
            host_port_max: 20999,
            allowed_caps: vec!["NET_BIND_SERVICE".into()],
            max_memory_bytes: Some(64 << 20),
            max_nano_cpus: Some(1_000_000_000),
        };
        assert!(p.port_problem(20000).is_none());
        assert!(p.port_problem(20999).is_none());
        assert!(p.port_problem(8080).unwrap().contains("20000-20999"));
        assert!(p.cap_problem("NET_BIND_SERVICE").is_none());
        assert!(p
            .cap_problem("NET_RAW")
            .unwrap()
            .contains("NET_BIND_SERVICE"));
        assert!(p.memory_problem(64 << 20).is_none());
        assert!(p.memory_problem((64 << 20) + 1).is_some());
        assert!(p.cpus_problem(1_000_000_000).is_none());
        assert!(p.cpus_problem(1_500_000_000).unwrap().contains("1.5 CPUs"));
        let text = serde_json::to_string(&CheckPolicy::default()).unwrap();
        assert_eq!(
            text,
            r#"{"containers":"unchecked","default_environment":null,"outbound":[]}"#
        );
        // What an older kernel wrote still reads.
        let old: CheckPolicy = serde_json::from_str(r#"{"containers":"unchecked"}"#).unwrap();
        assert_eq!(old, CheckPolicy::default());
    }
}
