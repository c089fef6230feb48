//! What a service's container may be, checked against the caller's policy.
//!
//! [`ContainerSpec::validate`] reports every refusal (not just the first),
//! each naming the field (`volumes[0].host`, `ports[1].host_port`, ...) and
//! the offending value, so the caller can map it to `file:line:col` in the
//! manifest. Only a [`ValidSpec`] can be created.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};

/// Where the container's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A reference such as `nginx:1.27` or `registry/x@sha256:...`.
    Reference(String),
    /// An image loaded from an archive at install, by its id
    /// (`sha256:<64 hex>`), as returned by [`crate::Engine::load_archive`].
    Loaded {
        /// The image id.
        id: String,
    },
}

impl ImageSource {
    /// The string handed to the engine.
    pub fn as_str(&self) -> &str {
        match self {
            ImageSource::Reference(r) => r,
            ImageSource::Loaded { id } => id,
        }
    }
}

/// A transport protocol for a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `"tcp"` or `"udp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A published port: `host_ip:host_port` on the host to `container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address; `None` means the policy's default (127.0.0.1).
    pub host_ip: Option<IpAddr>,
}

impl PortMapping {
    /// A TCP port on the policy's default address.
    pub fn tcp(host_port: u16, container_port: u16) -> Self {
        PortMapping {
            host_port,
            container_port,
            protocol: Protocol::Tcp,
            host_ip: None,
        }
    }

    /// Parses the manifest form `"HOST:CONTAINER"`, optionally prefixed by an
    /// address (`"127.0.0.1:8080:80"`, `"[::1]:8080:80"`) and suffixed by
    /// `/tcp` or `/udp`. `field` names the manifest key in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, SpecError> {
        let bad = |why: &'static str| SpecError::new(field, s, Refusal::PortSyntax(why));
        let (rest, protocol) = match s.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some(_) => return Err(bad("protocol must be /tcp or /udp")),
            None => (s, Protocol::Tcp),
        };
        let (ip_part, ports) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, after) = r.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let after = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected `:` after `]`"))?;
            (Some(ip), after)
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.len() {
                2 => (None, rest),
                3 => (Some(parts[0]), &rest[parts[0].len() + 1..]),
                _ => return Err(bad("expected HOST:CONTAINER or IP:HOST:CONTAINER")),
            }
        };
        let host_ip = match ip_part {
            Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| bad("not an IP address"))?),
            None => None,
        };
        let (h, c) = ports
            .split_once(':')
            .ok_or_else(|| bad("expected HOST:CONTAINER"))?;
        let port = |p: &str| p.parse::<u16>().map_err(|_| bad("ports are 1 to 65535"));
        Ok(PortMapping {
            host_port: port(h)?,
            container_port: port(c)?,
            protocol,
            host_ip,
        })
    }
}

/// A bind mount of a host directory or file under the policy's base dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Host path: relative to the policy's base dir, or absolute inside it.
    pub host: PathBuf,
    /// Absolute path in the container.
    pub container: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A service's container, as the manifest asks for it. Build one with
/// [`ContainerSpec::new`] and fill the fields; then [`validate`](Self::validate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The image.
    pub image: ImageSource,
    /// The command (argv); `None` runs the image's default.
    pub command: Option<Vec<String>>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// Bind mounts.
    pub volumes: Vec<VolumeMount>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in units of 10⁻⁹ CPUs (`1.5` CPUs = `1_500_000_000`).
    pub nano_cpus: Option<u64>,
    /// Capabilities to keep (all others are dropped), `NET_BIND_SERVICE` or
    /// `CAP_NET_BIND_SERVICE`.
    pub cap_add: Vec<String>,
    /// Mount the root filesystem read-only.
    pub read_only_rootfs: bool,
    /// Extra labels (keys starting with `weft.` are reserved).
    pub labels: BTreeMap<String, String>,
    /// Asked for a privileged container: always refused.
    pub privileged: bool,
    /// Asked for the host's network namespace: always refused.
    pub host_network: bool,
    /// Asked for the host's PID namespace: always refused.
    pub host_pid: bool,
}

impl ContainerSpec {
    /// A spec running `image` with nothing else.
    pub fn new(image: ImageSource) -> Self {
        ContainerSpec {
            image,
            command: None,
            env: BTreeMap::new(),
            ports: Vec::new(),
            volumes: Vec::new(),
            memory_bytes: None,
            nano_cpus: None,
            cap_add: Vec::new(),
            read_only_rootfs: false,
            labels: BTreeMap::new(),
            privileged: false,
            host_network: false,
            host_pid: false,
        }
    }

    /// Checks the spec against `policy`; every problem is reported.
    pub fn validate(&self, policy: &Policy) -> Result<ValidSpec, SpecErrors> {
        let mut errs = Vec::new();
        let mut e = |field: String, value: String, why: Refusal| {
            errs.push(SpecError {
                field,
                value,
                refusal: why,
            })
        };

        if self.privileged {
            e("privileged".into(), "true".into(), Refusal::Privileged);
        }
        if self.host_network {
            e("network".into(), "host".into(), Refusal::HostNetwork);
        }
        if self.host_pid {
            e("pid".into(), "host".into(), Refusal::HostPid);
        }

        match &self.image {
            ImageSource::Reference(r) => {
                if r.is_empty()
                    || r.len() > 512
                    || r.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    e("image".into(), r.clone(), Refusal::ImageReference);
                }
            }
            ImageSource::Loaded { id } => {
                let ok = id
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    e("image".into(), id.clone(), Refusal::ImageId);
                }
            }
        }

        if let Some(cmd) = &self.command {
            if cmd.is_empty() {
                e("command".into(), "[]".into(), Refusal::EmptyCommand);
            }
            for (i, a) in cmd.iter().enumerate() {
                if a.contains('\0') {
                    e(
                        format!("command[{i}]"),
                        a.escape_debug().to_string(),
                        Refusal::Nul,
                    );
                }
            }
        }

        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                e(
                    format!("env.{k}"),
                    k.escape_debug().to_string(),
                    Refusal::EnvKey,
                );
            }
            if v.contains('\0') {
                e(
                    format!("env.{k}"),
                    v.escape_debug().to_string(),
                    Refusal::Nul,
                );
            }
        }

        let mut ports = Vec::new();
        let mut seen_ports = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let ip = p.host_ip.unwrap_or(policy.default_host_ip);
            if !ip.is_loopback() && !policy.allow_non_loopback {
                e(
                    format!("ports[{i}].host_ip"),
                    ip.to_string(),
                    Refusal::NonLoopback,
                );
            }
            if p.host_port == 0 || !policy.host_ports.contains(&p.host_port) {
                e(
                    format!("ports[{i}].host_port"),
                    p.host_port.to_string(),
                    Refusal::PortRange {
                        start: *policy.host_ports.start(),
                        end: *policy.host_ports.end(),
                    },
                );
            }
            if p.container_port == 0 {
                e(
                    format!("ports[{i}].container_port"),
                    "0".into(),
                    Refusal::PortZero,
                );
            }
            if !seen_ports.insert((ip, p.host_port, p.protocol)) {
                e(
                    format!("ports[{i}].host_port"),
                    p.host_port.to_string(),
                    Refusal::DuplicatePort,
                );
            }
            ports.push(BoundPort {
                host_ip: ip,
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol,
            });
        }

        let base = match policy.volume_base.canonicalize() {
            Ok(b) => Some(b),
            Err(err) => {
                if !self.volumes.is_empty() {
                    e(
                        "volumes".into(),
                        policy.volume_base.display().to_string(),
                        Refusal::BaseMissing(err.to_string()),
                    );
                }
                None
            }
        };
        let mut mounts = Vec::new();
        let mut seen_targets = HashSet::new();
        for (i, v) in self.volumes.iter().enumerate() {
            let field = format!("volumes[{i}].host");
            match base
                .as_deref()
                .map(|b| resolve_host_path(b, &policy.volume_base, &v.host))
            {
                Some(Ok(source)) => mounts.push(BoundMount {
                    source,
                    target: v.container.clone(),
                    read_only: v.read_only,
                }),
                Some(Err(why)) => e(field, v.host.display().to_string(), why),
                None => {}
            }
            if let Err(why) = check_container_path(&v.container) {
                e(format!("volumes[{i}].container"), v.container.clone(), why);
            } else if !seen_targets.insert(v.container.trim_end_matches('/').to_string()) {
                e(
                    format!("volumes[{i}].container"),
                    v.container.clone(),
                    Refusal::DuplicateMount,
                );
            }
        }

        if let Some(m) = self.memory_bytes {
            if m < MIN_MEMORY {
                e(
                    "resources.memory".into(),
                    m.to_string(),
                    Refusal::MemoryTooSmall,
                );
            } else if policy.max_memory_bytes.is_some_and(|max| m > max) {
                e(
                    "resources.memory".into(),
                    m.to_string(),
                    Refusal::AbovePolicy(policy.max_memory_bytes.unwrap_or(0)),
                );
            }
        }
        if let Some(c) = self.nano_cpus {
            if c == 0 {
                e("resources.cpus".into(), "0".into(), Refusal::ZeroCpus);
            } else if policy.max_nano_cpus.is_some_and(|max| c > max) {
                e(
                    "resources.cpus".into(),
                    c.to_string(),
                    Refusal::AbovePolicy(policy.max_nano_cpus.unwrap_or(0)),
                );
            }
        }

        let allowed: BTreeSet<String> = policy
            .allowed_caps
            .iter()
            .map(|c| normalize_cap(c))
            .collect();
        let mut caps = BTreeSet::new();
        for (i, c) in self.cap_add.iter().enumerate() {
            let n = normalize_cap(c);
            let field = format!("cap_add[{i}]");
            if n == "ALL" {
                e(field, c.clone(), Refusal::AllCapabilities);
            } else if !LINUX_CAPS.contains(&n.as_str()) {
                e(field, c.clone(), Refusal::UnknownCapability);
            } else if NEVER_CAPS.contains(&n.as_str()) {
                e(field, c.clone(), Refusal::PrivilegedCapability);
            } else if !allowed.contains(&n) {
                e(field, c.clone(), Refusal::CapabilityNotAllowed);
            } else {
                caps.insert(n);
            }
        }

        for k in self.labels.keys() {
            if k.starts_with("weft.") {
                e(format!("labels.{k}"), k.clone(), Refusal::ReservedLabel);
            } else if k.is_empty() || k.chars().any(|c| c.is_control()) {
                e(
                    format!("labels.{k}"),
                    k.escape_debug().to_string(),
                    Refusal::LabelKey,
                );
            }
        }

        if !errs.is_empty() {
            return Err(SpecErrors(errs));
        }
        Ok(ValidSpec {
            spec: self.clone(),
            ports,
            mounts,
            caps: caps.into_iter().collect(),
        })
    }
}

// Docker refuses less than 6 MiB; say so before it does.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// What the caller allows this app's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Host paths must lie under this directory (the app's data dir).
    pub volume_base: PathBuf,
    /// Host ports that may be published.
    pub host_ports: RangeInclusive<u16>,
    /// The host address ports are published on when a port names none.
    pub default_host_ip: IpAddr,
    /// Whether ports may be published on non-loopback addresses.
    pub allow_non_loopback: bool,
    /// Capabilities a spec may keep. Never honoured for `ALL` or the
    /// capabilities that amount to host root (see [`NEVER_CAPS`]).
    pub allowed_caps: BTreeSet<String>,
    /// Upper bound on `memory_bytes`.
    pub max_memory_bytes: Option<u64>,
    /// Upper bound on `nano_cpus`.
    pub max_nano_cpus: Option<u64>,
}

impl Policy {
    /// Volumes under `volume_base`, ports 1024 to 65535 on 127.0.0.1 only,
    /// no capabilities, no resource ceilings.
    pub fn new(volume_base: impl Into<PathBuf>) -> Self {
        Policy {
            volume_base: volume_base.into(),
            host_ports: 1024..=65535,
            default_host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            allow_non_loopback: false,
            allowed_caps: BTreeSet::new(),
            max_memory_bytes: None,
            max_nano_cpus: None,
        }
    }
}

/// Every Linux capability name, without the `CAP_` prefix (the model's
/// list: the manifest checker and the engine layer agree on it).
pub const LINUX_CAPS: &[&str] = weft_model::plan::LINUX_CAPABILITIES;

/// Capabilities refused whatever the policy says: each is enough to escape
/// the container or take over the host (see the model's list).
pub const NEVER_CAPS: &[&str] = weft_model::plan::NEVER_CAPABILITIES;

fn normalize_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

fn resolve_host_path(base: &Path, given_base: &Path, host: &Path) -> Result<PathBuf, Refusal> {
    // Refuse `..` before touching the file system: it is an escape attempt
    // even when it happens to land inside the base.
    if host.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Refusal::ParentDir);
    }
    let joined = if host.is_absolute() {
        if !(host.starts_with(base) || host.starts_with(given_base)) {
            return Err(Refusal::OutsideBase {
                base: base.to_path_buf(),
            });
        }
        host.to_path_buf()
    } else {
        base.join(host)
    };
    let real = joined
        .canonicalize()
        .map_err(|e| Refusal::HostPathMissing(e.to_string()))?;
    if !real.starts_with(base) {
        return Err(Refusal::SymlinkEscape {
            resolved: real,
            base: base.to_path_buf(),
        });
    }
    let meta = std::fs::metadata(&real).map_err(|e| Refusal::HostPathMissing(e.to_string()))?;
    if !(meta.is_dir() || meta.is_file()) {
        // Sockets (a docker.sock above all), fifos and devices.
        return Err(Refusal::SpecialFile);
    }
    Ok(real)
}

fn check_container_path(p: &str) -> Result<(), Refusal> {
    if !p.starts_with('/') {
        return Err(Refusal::ContainerPath("must be absolute"));
    }
    if p.trim_end_matches('/').is_empty() {
        return Err(Refusal::ContainerPath("cannot mount over `/`"));
    }
    if p.contains('\0') || p.chars().any(|c| c.is_control()) {
        return Err(Refusal::ContainerPath("control characters"));
    }
    if p.split('/').any(|s| s == "..") {
        return Err(Refusal::ContainerPath("`..` is not allowed"));
    }
    Ok(())
}

/// One refusal: the field, the value found, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {refusal} (found `{value}`)")]
pub struct SpecError {
    /// The spec field, e.g. `volumes[0].host`.
    pub field: String,
    /// The offending value.
    pub value: String,
    /// Why it is refused.
    pub refusal: Refusal,
}

impl SpecError {
    fn new(field: &str, value: &str, refusal: Refusal) -> Self {
        SpecError {
            field: field.to_string(),
            value: value.to_string(),
            refusal,
        }
    }
}

/// Why a spec field is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `privileged = true`.
    #[error("privileged containers are never allowed")]
    Privileged,
    /// Host network namespace.
    #[error("the host network is never allowed")]
    HostNetwork,
    /// Host PID namespace.
    #[error("the host PID namespace is never allowed")]
    HostPid,
    /// Malformed image reference.
    #[error(
        "expected an image reference (no whitespace or control characters, at most 512 bytes)"
    )]
    ImageReference,
    /// Malformed image id.
    #[error("expected an image id `sha256:<64 hex>`")]
    ImageId,
    /// `command = []`.
    #[error("the command is empty")]
    EmptyCommand,
    /// A NUL byte.
    #[error("NUL bytes are not allowed")]
    Nul,
    /// A bad environment variable name.
    #[error("expected a variable name without `=` or NUL")]
    EnvKey,
    /// A malformed port string.
    #[error("bad port mapping: {0}")]
    PortSyntax(&'static str),
    /// A host port outside the allowed range.
    #[error("host port outside the allowed range {start} to {end}")]
    PortRange {
        /// Lowest allowed.
        start: u16,
        /// Highest allowed.
        end: u16,
    },
    /// Container port 0.
    #[error("container port must be 1 to 65535")]
    PortZero,
    /// Non-loopback address not allowed.
    #[error("ports may only be published on a loopback address here")]
    NonLoopback,
    /// The same host address, port and protocol twice.
    #[error("host port published twice")]
    DuplicatePort,
    /// The policy's base dir does not exist.
    #[error("the app data dir cannot be used: {0}")]
    BaseMissing(String),
    /// `..` in a host path.
    #[error("`..` is not allowed in host paths")]
    ParentDir,
    /// An absolute host path outside the base.
    #[error("host path is outside the app data dir {}", base.display())]
    OutsideBase {
        /// The base dir.
        base: PathBuf,
    },
    /// A host path that resolves (through symlinks) outside the base.
    #[error("host path resolves to {} outside the app data dir {}", resolved.display(), base.display())]
    SymlinkEscape {
        /// Where it resolves to.
        resolved: PathBuf,
        /// The base dir.
        base: PathBuf,
    },
    /// The host path does not exist.
    #[error("host path cannot be resolved: {0}")]
    HostPathMissing(String),
    /// A socket, fifo or device.
    #[error(
        "only directories and regular files may be mounted (sockets such as docker.sock never)"
    )]
    SpecialFile,
    /// A bad container path.
    #[error("bad container path: {0}")]
    ContainerPath(&'static str),
    /// Two mounts on one container path.
    #[error("container path mounted twice")]
    DuplicateMount,
    /// Less memory than Docker accepts.
    #[error("memory limit below 6 MiB")]
    MemoryTooSmall,
    /// `cpus = 0`.
    #[error("cpus must be above 0")]
    ZeroCpus,
    /// Above the policy's ceiling.
    #[error("above the allowed maximum {0}")]
    AbovePolicy(u64),
    /// `cap_add = ["ALL"]`.
    #[error("all capabilities amount to a privileged container")]
    AllCapabilities,
    /// Not a Linux capability.
    #[error("not a Linux capability")]
    UnknownCapability,
    /// One of [`NEVER_CAPS`].
    #[error("this capability amounts to host root and is never allowed")]
    PrivilegedCapability,
    /// Not in the policy's allow list.
    #[error("capability not allowed by policy")]
    CapabilityNotAllowed,
    /// A `weft.` label.
    #[error("labels starting with `weft.` are reserved")]
    ReservedLabel,
    /// An empty or control-character label key.
    #[error("bad label key")]
    LabelKey,
}

/// All refusals of one spec, in field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// A published port with its address settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPort {
    /// Host address.
    pub host_ip: IpAddr,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A bind mount with its source canonicalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundMount {
    /// Canonical host path, inside the base dir.
    pub source: PathBuf,
    /// Container path.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// A spec that passed [`ContainerSpec::validate`]; the only thing
/// [`crate::Engine::create`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSpec {
    spec: ContainerSpec,
    ports: Vec<BoundPort>,
    mounts: Vec<BoundMount>,
    caps: Vec<String>,
}

impl ValidSpec {
    /// The spec as given.
    pub fn spec(&self) -> &ContainerSpec {
        &self.spec
    }

    /// Ports with their host address settled.
    pub fn ports(&self) -> &[BoundPort] {
        &self.ports
    }

    /// Mounts with canonical sources.
    pub fn mounts(&self) -> &[BoundMount] {
        &self.mounts
    }

    /// Capabilities kept, normalized (`NET_BIND_SERVICE`), sorted.
    pub fn cap_add(&self) -> &[String] {
        &self.caps
    }

    /// Checks again that every mount source still resolves to where it did
    /// at validation: the app may have replaced a directory by a symlink
    /// since.
    pub(crate) fn recheck_mounts(&self) -> Result<(), SpecErrors> {
        let mut errs = Vec::new();
        for (i, m) in self.mounts.iter().enumerate() {
            match m.source.canonicalize() {
                Ok(real) if real == m.source => {}
                Ok(real) => errs.push(SpecError {
                    field: format!("volumes[{i}].host"),
                    value: m.source.display().to_string(),
                    refusal: Refusal::SymlinkEscape {
                        resolved: real,
                        base: m.source.clone(),
                    },
                }),
                Err(e) => errs.push(SpecError {
                    field: format!("volumes[{i}].host"),
                    value: m.source.display().to_string(),
                    refusal: Refusal::HostPathMissing(e.to_string()),
                }),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ports() {
        let p = PortMapping::parse("ports[0]", "8080:80").unwrap();
        assert_eq!(p, PortMapping::tcp(8080, 80));
        let p = PortMapping::parse("ports[0]", "127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(p.protocol, Protocol::Udp);
        let p = PortMapping::parse("ports[0]", "[::1]:8080:80").unwrap();
        assert!(p.host_ip.unwrap().is_loopback());
        for bad in [
            "80",
            "a:80",
            "8080:80/sctp",
            "1:2:3:4",
            "70000:80",
            "[::1:80:80",
        ] {
            let e = PortMapping::parse("ports[2]", bad).unwrap_err();
            assert_eq!(e.field, "ports[2]");
            assert_eq!(e.value, bad);
        }
    }

    #[test]
    fn refusals_name_field_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ContainerSpec::new(ImageSource::Reference("busybox".into()));
        s.privileged = true;
        s.host_network = true;
        s.cap_add = vec![
            "cap_net_admin".into(),
            "ALL".into(),
            "SYS_ADMIN".into(),
            "NOPE".into(),
        ];
        s.ports = vec![
            PortMapping::tcp(80, 80),
            PortMapping {
                host_ip: Some("0.0.0.0".parse().unwrap()),
                ..PortMapping::tcp(8080, 80)
            },
        ];
        s.memory_bytes = Some(1024);
        s.labels.insert("weft.app".into(), "x".into());
        s.volumes.push(VolumeMount {
            host: "../x".into(),
            container: "rel".into(),
            read_only: true,
        });
        let errs = s.validate(&Policy::new(dir.path())).unwrap_err().0;
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.value.as_str()))
            .collect();
        for want in [
            ("privileged", "true"),
            ("network", "host"),
            ("cap_add[0]", "cap_net_admin"),
            ("cap_add[1]", "ALL"),
            ("cap_add[2]", "SYS_ADMIN"),
            ("cap_add[3]", "NOPE"),
            ("ports[0].host_port", "80"),
            ("ports[1].host_ip", "0.0.0.0"),
            ("resources.memory", "1024"),
            ("labels.weft.app", "weft.app"),
            ("volumes[0].host", "../x"),
            ("volumes[0].container", "rel"),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:?}");
        }
        assert_eq!(errs.len(), 12, "{errs:?}");
    }

    #[test]
    fn allowed_spec_passes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let mut policy = Policy::new(dir.path());
        policy.allowed_caps.insert("NET_BIND_SERVICE".into());
        let mut s = ContainerSpec::new(ImageSource::Reference("busybox".into()));
        s.cap_add = vec!["cap_net_bind_service".into()];
        s.ports = vec![PortMapping::tcp(18080, 80)];
        s.volumes.push(VolumeMount {
            host: "www".into(),
            container: "/www".into(),
            read_only: true,
        });
        let v = s.validate(&policy).unwrap();
        assert_eq!(v.cap_add(), ["NET_BIND_SERVICE".to_string()]);
        assert_eq!(v.ports()[0].host_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            v.mounts()[0].source,
            dir.path().canonicalize().unwrap().join("www")
        );
    }
}
