//! Connecting to the engine: which socket, and whether anything answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use crate::error::EngineError;

/// Where Docker listens when nothing else is said.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The oldest engine API this crate is written against (Docker 19.03,
/// Podman 3's compatibility API).
pub const MIN_API: &str = "1.40";

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The engine's unix socket (a path, or `unix:///path`). `None`: take
    /// `DOCKER_HOST` (unix:// only), else [`DEFAULT_SOCKET`].
    pub socket: Option<PathBuf>,
    /// Limit on each engine request until its response starts.
    pub request_timeout: Duration,
    /// Limit on connecting and the version check in [`Engine::connect`].
    pub connect_timeout: Duration,
    /// Limit on a whole image pull. With no registry reachable a pull must
    /// fail, not hang.
    pub pull_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            socket: None,
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            pull_timeout: Duration::from_secs(120),
        }
    }
}

impl EngineConfig {
    /// The default config on this socket.
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        EngineConfig {
            socket: Some(socket.into()),
            ..EngineConfig::default()
        }
    }
}

/// What the engine said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// The socket used.
    pub socket: PathBuf,
    /// Engine version, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The API version spoken (the lower of the engine's and ours).
    pub api_version: String,
    /// True when the engine is Podman's Docker-compatible service.
    pub podman: bool,
}

/// A connection to a Docker-compatible engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    pub(crate) cfg: EngineConfig,
    info: EngineInfo,
}

impl Engine {
    /// Resolves the socket, connects, negotiates the API version and checks
    /// that the engine answers. Errors name the socket.
    pub async fn connect(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let env = std::env::var("DOCKER_HOST").ok();
        let socket = resolve_socket(cfg.socket.as_deref(), env.as_deref())?;
        if !socket.exists() {
            return Err(EngineError::SocketMissing { socket });
        }
        let path = socket.to_str().ok_or_else(|| EngineError::SocketPath {
            socket: socket.clone(),
        })?;
        let secs = cfg.request_timeout.as_secs().max(1);
        let docker = Docker::connect_with_unix(path, secs, API_DEFAULT_VERSION).map_err(|e| {
            EngineError::NoAnswer {
                socket: socket.clone(),
                reason: e.to_string(),
            }
        })?;
        let no_answer = |reason: String| EngineError::NoAnswer {
            socket: socket.clone(),
            reason,
        };
        let docker = tokio::time::timeout(cfg.connect_timeout, docker.negotiate_version())
            .await
            .map_err(|_| no_answer(format!("no answer within {:?}", cfg.connect_timeout)))?
            .map_err(|e| no_answer(e.to_string()))?;
        let v = tokio::time::timeout(cfg.connect_timeout, docker.version())
            .await
            .map_err(|_| no_answer(format!("no answer within {:?}", cfg.connect_timeout)))?
            .map_err(|e| no_answer(e.to_string()))?;
        let api_version = docker.client_version().to_string();
        if !api_at_least(&api_version, MIN_API) {
            return Err(EngineError::ApiTooOld {
                socket,
                found: api_version,
                required: MIN_API,
            });
        }
        let podman = v
            .components
            .iter()
            .flatten()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"))
            || v.platform
                .as_ref()
                .is_some_and(|p| p.name.to_ascii_lowercase().contains("podman"));
        let info = EngineInfo {
            socket,
            version: v.version.unwrap_or_default(),
            api_version,
            podman,
        };
        Ok(Engine { docker, cfg, info })
    }

    /// What the engine said about itself at connect.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The config this engine was connected with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Checks that the engine still answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let no_answer = |reason: String| EngineError::NoAnswer {
            socket: self.info.socket.clone(),
            reason,
        };
        tokio::time::timeout(self.cfg.connect_timeout, self.docker.ping())
            .await
            .map_err(|_| no_answer(format!("no answer within {:?}", self.cfg.connect_timeout)))?
            .map_err(|e| no_answer(e.to_string()))?;
        Ok(())
    }
}

/// Picks the socket: the config's, else `DOCKER_HOST`'s (unix:// only; an
/// empty value counts as unset), else [`DEFAULT_SOCKET`].
pub fn resolve_socket(
    configured: Option<&Path>,
    docker_host: Option<&str>,
) -> Result<PathBuf, EngineError> {
    if let Some(p) = configured {
        let s = p.to_string_lossy();
        return unix_path(&s);
    }
    match docker_host.map(str::trim) {
        Some(h) if !h.is_empty() => unix_path(h),
        _ => Ok(PathBuf::from(DEFAULT_SOCKET)),
    }
}

fn unix_path(s: &str) -> Result<PathBuf, EngineError> {
    if let Some(rest) = s.strip_prefix("unix://") {
        if rest.starts_with('/') {
            return Ok(PathBuf::from(rest));
        }
    } else if s.starts_with('/') {
        return Ok(PathBuf::from(s));
    }
    Err(EngineError::UnsupportedHost {
        value: s.to_string(),
    })
}

fn api_at_least(v: &str, min: &str) -> bool {
    let parse = |s: &str| -> (u64, u64) {
        let mut it = s.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    parse(v) >= parse(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_resolution() {
        assert_eq!(
            resolve_socket(None, None).unwrap(),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            resolve_socket(None, Some("")).unwrap(),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            resolve_socket(None, Some("unix:///run/podman/podman.sock")).unwrap(),
            PathBuf::from("/run/podman/podman.sock")
        );
        assert_eq!(
            resolve_socket(Some(Path::new("/a.sock")), Some("tcp://x:2375")).unwrap(),
            PathBuf::from("/a.sock")
        );
        assert_eq!(
            resolve_socket(Some(Path::new("unix:///b.sock")), None).unwrap(),
            PathBuf::from("/b.sock")
        );
        for bad in [
            "tcp://127.0.0.1:2375",
            "ssh://me@host",
            "npipe:////./pipe/docker_engine",
            "fd://",
            "unix://rel.sock",
            "rel.sock",
        ] {
            let e = resolve_socket(None, Some(bad)).unwrap_err();
            assert!(
                matches!(e, EngineError::UnsupportedHost { ref value } if value == bad),
                "{e}"
            );
            assert!(e.to_string().contains("only unix://"), "{e}");
        }
    }

    #[test]
    fn api_versions() {
        assert!(api_at_least("1.41", "1.40"));
        assert!(api_at_least("1.40", "1.40"));
        assert!(!api_at_least("1.39", "1.40"));
        assert!(api_at_least("2.0", "1.40"));
    }

    #[tokio::test]
    async fn missing_socket_is_named() {
        let e = Engine::connect(EngineConfig::with_socket("/nonexistent/docker.sock"))
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::SocketMissing { .. }));
        assert!(e.to_string().contains("/nonexistent/docker.sock"), "{e}");
    }

    #[tokio::test]
    async fn silent_socket_is_named() {
        // A socket nobody accepts on: bound, never listened to.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.sock");
        let _l = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let mut cfg = EngineConfig::with_socket(&path);
        cfg.connect_timeout = Duration::from_millis(500);
        let e = Engine::connect(cfg).await.unwrap_err();
        assert!(matches!(e, EngineError::NoAnswer { .. }), "{e}");
        assert!(e.to_string().contains("dead.sock"), "{e}");
    }
}
