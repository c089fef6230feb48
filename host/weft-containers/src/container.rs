//! Container lifecycle: create with the security defaults, start, stop,
//! remove, inspect, list by label (adoption), sweep, wait, logs, exec.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerSummaryStateEnum, HostConfig, Mount,
    MountBindOptions, MountBindOptionsPropagationEnum, MountType, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::labels::{ServiceLabels, LABEL_IMAGE};
use crate::logs::{self, LogStream};
use crate::spec::ValidSpec;
use crate::LabelFilter;

/// A container id as the engine gives it (64 hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(pub String);

impl ContainerId {
    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`Engine::create`] made: everything a chain record needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The container id.
    pub id: ContainerId,
    /// Its name, `weft_<kernel>_<app>_<service>`.
    pub name: String,
    /// The image reference or id the spec named.
    pub image: String,
    /// The image id the container was created from (pinned, so a tag moved
    /// later does not change what runs).
    pub image_id: String,
    /// The engine's warnings (e.g. a limit the kernel cannot enforce).
    pub warnings: Vec<String>,
}

/// Weft's view of a container's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running (also paused or being restarted by the engine).
    Running,
    /// Exited with code 0.
    Stopped,
    /// Exited non-zero, killed by the OOM killer, dead, or failed to start.
    Failed,
}

/// The security settings the engine reports for a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppliedSecurity {
    /// `Privileged`.
    pub privileged: bool,
    /// `CapAdd`.
    pub cap_add: Vec<String>,
    /// `CapDrop`.
    pub cap_drop: Vec<String>,
    /// `SecurityOpt`.
    pub security_opt: Vec<String>,
    /// `ReadonlyRootfs`.
    pub readonly_rootfs: bool,
    /// `NetworkMode`.
    pub network_mode: String,
    /// `PidMode` (empty: the container's own).
    pub pid_mode: String,
    /// `Init`.
    pub init: bool,
    /// Bind mount sources.
    pub mount_sources: Vec<String>,
}

/// A published port as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// Container port and protocol, e.g. `80/tcp`.
    pub container: String,
    /// Host address.
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
}

/// A container's status, from one inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// The id.
    pub id: ContainerId,
    /// The name, without the engine's leading `/`.
    pub name: String,
    /// The image id.
    pub image_id: String,
    /// Weft's state.
    pub state: ContainerState,
    /// The engine's own state word (`running`, `exited`, ...).
    pub engine_state: String,
    /// Exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// When it last started (RFC 3339), if ever.
    pub started_at: Option<String>,
    /// When it last finished (RFC 3339), if ever.
    pub finished_at: Option<String>,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// The engine's error (e.g. why it could not start).
    pub error: Option<String>,
    /// An image-defined HEALTHCHECK's status, when the image has one
    /// (Weft's own probes are separate).
    pub health: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Security settings in force.
    pub security: AppliedSecurity,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
}

/// A container found by [`Engine::list_by_labels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// The id.
    pub id: ContainerId,
    /// Names, without the leading `/`.
    pub names: Vec<String>,
    /// Image as created (an id for Weft's containers).
    pub image: String,
    /// Image id.
    pub image_id: String,
    /// Its service labels, when it has all of them well formed.
    pub service: Option<ServiceLabels>,
    /// All labels.
    pub labels: BTreeMap<String, String>,
    /// Weft's state. For exited containers the code is read from the
    /// engine's status text; [`Engine::inspect`] is authoritative.
    pub state: ContainerState,
    /// The engine's status text, e.g. `Exited (137) 2 seconds ago`.
    pub status: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// What [`Engine::exec`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The command's exit code.
    pub exit_code: i64,
    /// Standard output (at most [`MAX_EXEC_OUTPUT`] bytes).
    pub stdout: Vec<u8>,
    /// Standard error (at most [`MAX_EXEC_OUTPUT`] bytes).
    pub stderr: Vec<u8>,
    /// True when output beyond the limit was dropped.
    pub truncated: bool,
}

/// Limit on requests that last as long as a container runs (wait, follow).
const LONG_REQUEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// Most output kept per stream by [`Engine::exec`].
pub const MAX_EXEC_OUTPUT: usize = 1024 * 1024;

impl Engine {
    /// Creates (does not start) the service's container from a validated
    /// spec, named `weft_<kernel>_<app>_<service>` and labelled with the
    /// service labels. Always: not privileged, default bridge network, own
    /// PID namespace, all capabilities dropped but the spec's, no new
    /// privileges, an init process, no engine restart policy (Weft
    /// restarts), bind mounts only from the spec's checked sources.
    ///
    /// A container of that name already existing is
    /// [`EngineError::NameInUse`]: adopt or remove it first.
    pub async fn create(
        &self,
        spec: &ValidSpec,
        labels: &ServiceLabels,
    ) -> Result<Created, EngineError> {
        spec.recheck_mounts()?;
        let s = spec.spec();
        let image_ref = s.image.as_str().to_string();
        let image = self.image_info(&image_ref).await?;
        let name = labels.container_name();

        let mut all_labels: HashMap<String, String> = s.labels.clone().into_iter().collect();
        all_labels.extend(labels.to_map());
        all_labels.insert(LABEL_IMAGE.to_string(), image_ref.clone());

        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in spec.ports() {
            let key = format!("{}/{}", p.container_port, p.protocol.as_str());
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.to_string()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
        exposed.sort();
        exposed.dedup();

        let mounts: Vec<Mount> = spec
            .mounts()
            .iter()
            .map(|m| Mount {
                target: Some(m.target.clone()),
                source: Some(m.source.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(m.read_only),
                bind_options: Some(MountBindOptions {
                    // Mounts made later under the host dir stay on the host.
                    propagation: Some(MountBindOptionsPropagationEnum::RPRIVATE),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();

        let memory = s.memory_bytes.map(|m| i64::try_from(m).unwrap_or(i64::MAX));
        let host = HostConfig {
            privileged: Some(false),
            network_mode: Some("bridge".into()),
            // pid_mode left unset: the container gets its own PID namespace.
            ipc_mode: Some("private".into()),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(spec.cap_add().to_vec()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            init: Some(true),
            readonly_rootfs: Some(s.read_only_rootfs),
            memory,
            // Swap counts against the same limit (where the kernel accounts swap).
            memory_swap: memory,
            nano_cpus: s.nano_cpus.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
            port_bindings: Some(bindings),
            publish_all_ports: Some(false),
            mounts: Some(mounts),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            auto_remove: Some(false),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.id.clone()),
            cmd: s.command.clone(),
            env: Some(s.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: Some(exposed),
            labels: Some(all_labels),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(host),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let r = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| match e {
                // Docker answers 409; Podman 4 answers 500 with this text.
                bollard::errors::Error::DockerResponseServerError {
                    status_code,
                    message,
                } if status_code == 409
                    || (status_code == 500 && message.contains("is already in use")) =>
                {
                    EngineError::NameInUse {
                        name: name.clone(),
                        message,
                    }
                }
                e => EngineError::api("create", "image", &image.id, e),
            })?;
        Ok(Created {
            id: ContainerId(r.id),
            name,
            image: image_ref,
            image_id: image.id,
            warnings: r.warnings,
        })
    }

    /// Starts a created or stopped container (a running one is left alone).
    pub async fn start(&self, id: &ContainerId) -> Result<(), EngineError> {
        self.docker
            .start_container(id.as_str(), None)
            .await
            .map_err(|e| EngineError::api("start", "container", id.as_str(), e))
    }

    /// SIGTERM (through the init process), then SIGKILL after `timeout`.
    /// Returns the status once stopped (exit code, times, OOM).
    pub async fn stop(
        &self,
        id: &ContainerId,
        timeout: Duration,
    ) -> Result<ContainerStatus, EngineError> {
        // The engine counts whole seconds: round up, so 500 ms is not 0.
        let t = i32::try_from(timeout.as_millis().div_ceil(1000)).unwrap_or(i32::MAX);
        let opts = StopContainerOptions {
            t: Some(t),
            ..Default::default()
        };
        // The engine answers only once the container is gone: allow for it.
        let docker = self
            .docker
            .clone()
            .with_timeout(self.cfg.request_timeout + timeout);
        docker
            .stop_container(id.as_str(), Some(opts))
            .await
            .map_err(|e| EngineError::api("stop", "container", id.as_str(), e))?;
        self.inspect(id).await
    }

    /// Sends a signal (`"SIGKILL"`, `"SIGTERM"`, ...) to the container.
    pub async fn kill(&self, id: &ContainerId, signal: &str) -> Result<(), EngineError> {
        let opts = KillContainerOptions {
            signal: signal.to_string(),
        };
        self.docker
            .kill_container(id.as_str(), Some(opts))
            .await
            .map_err(|e| EngineError::api("kill", "container", id.as_str(), e))
    }

    /// Removes the container and its anonymous volumes; `force` kills it
    /// first if it runs.
    pub async fn remove(&self, id: &ContainerId, force: bool) -> Result<(), EngineError> {
        let opts = RemoveContainerOptions {
            force,
            v: true,
            ..Default::default()
        };
        self.docker
            .remove_container(id.as_str(), Some(opts))
            .await
            .map_err(|e| EngineError::api("remove", "container", id.as_str(), e))
    }

    /// The container's status.
    pub async fn inspect(&self, id: &ContainerId) -> Result<ContainerStatus, EngineError> {
        let r = self
            .docker
            .inspect_container(id.as_str(), None)
            .await
            .map_err(|e| EngineError::api("inspect", "container", id.as_str(), e))?;
        let st = r.state.unwrap_or_default();
        let status = st.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
        let exit_code = st.exit_code;
        let oom = st.oom_killed.unwrap_or(false);
        let error = st.error.filter(|e| !e.is_empty());
        let state = match status {
            ContainerStateStatusEnum::CREATED => ContainerState::Created,
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING => ContainerState::Running,
            ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::REMOVING => {
                if exit_code == Some(0) && !oom && error.is_none() {
                    ContainerState::Stopped
                } else {
                    ContainerState::Failed
                }
            }
            ContainerStateStatusEnum::DEAD | ContainerStateStatusEnum::EMPTY => {
                ContainerState::Failed
            }
        };
        let ran = !matches!(state, ContainerState::Created | ContainerState::Running);
        let hc = r.host_config.unwrap_or_default();
        let security = AppliedSecurity {
            privileged: hc.privileged.unwrap_or(false),
            cap_add: hc.cap_add.unwrap_or_default(),
            cap_drop: hc.cap_drop.unwrap_or_default(),
            security_opt: hc.security_opt.unwrap_or_default(),
            readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
            network_mode: hc.network_mode.unwrap_or_default(),
            pid_mode: hc.pid_mode.unwrap_or_default(),
            init: hc.init.unwrap_or(false),
            mount_sources: hc
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.source)
                .chain(hc.binds.unwrap_or_default())
                .collect(),
        };
        let mut ports = Vec::new();
        for (container, binds) in r.network_settings.and_then(|n| n.ports).unwrap_or_default() {
            for b in binds.unwrap_or_default() {
                ports.push(PublishedPort {
                    container: container.clone(),
                    host_ip: b.host_ip.unwrap_or_default(),
                    host_port: b.host_port.and_then(|p| p.parse().ok()).unwrap_or(0),
                });
            }
        }
        ports.sort_by(|a, b| (&a.container, a.host_port).cmp(&(&b.container, b.host_port)));
        Ok(ContainerStatus {
            id: ContainerId(r.id.unwrap_or_else(|| id.0.clone())),
            name: r
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image_id: r.image.unwrap_or_default(),
            state,
            engine_state: status.to_string(),
            exit_code: if ran { exit_code } else { None },
            started_at: st.started_at.filter(|t| !t.starts_with("0001-")),
            finished_at: st.finished_at.filter(|t| !t.starts_with("0001-")),
            oom_killed: oom,
            error,
            health: st.health.and_then(|h| h.status).map(|s| s.to_string()),
            labels: r
                .config
                .and_then(|c| c.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            security,
            ports,
        })
    }

    /// Every container (running or not) of the filter's kernel, narrowed by
    /// app, service and version: what a restarted kernel adopts.
    pub async fn list_by_labels(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), filter.to_engine())])),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| EngineError::api("list", "container", "", e))?;
        let mut out: Vec<ContainerSummary> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let status = c.status.unwrap_or_default();
                let state = match c.state {
                    Some(ContainerSummaryStateEnum::CREATED) => ContainerState::Created,
                    Some(
                        ContainerSummaryStateEnum::RUNNING
                        | ContainerSummaryStateEnum::PAUSED
                        | ContainerSummaryStateEnum::RESTARTING
                        | ContainerSummaryStateEnum::STOPPING,
                    ) => ContainerState::Running,
                    Some(
                        ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::REMOVING,
                    ) if exit_code_in(&status) == Some(0) => ContainerState::Stopped,
                    _ => ContainerState::Failed,
                };
                ContainerSummary {
                    id: ContainerId(c.id.unwrap_or_default()),
                    names: c
                        .names
                        .unwrap_or_default()
                        .into_iter()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .collect(),
                    image: c.image.unwrap_or_default(),
                    image_id: c.image_id.unwrap_or_default(),
                    service: ServiceLabels::from_map(&labels),
                    labels: labels.into_iter().collect(),
                    state,
                    status,
                    created: c.created.unwrap_or(0),
                }
            })
            .collect();
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// Force-removes every container the filter matches; returns what was
    /// removed. A container already gone is not an error.
    pub async fn remove_by_labels(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let mut removed = Vec::new();
        for c in self.list_by_labels(filter).await? {
            match self.remove(&c.id, true).await {
                Ok(()) => removed.push(c),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Removes this kernel's containers whose app is not in `live_apps`
    /// (and any without a well-formed `weft.app` label); returns them.
    pub async fn sweep(
        &self,
        kernel: &str,
        live_apps: &BTreeSet<String>,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let mut removed = Vec::new();
        for c in self.list_by_labels(&LabelFilter::kernel(kernel)).await? {
            let live = c
                .service
                .as_ref()
                .is_some_and(|s| live_apps.contains(s.app()));
            if live {
                continue;
            }
            match self.remove(&c.id, true).await {
                Ok(()) => removed.push(c),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Resolves with the exit code once the container is not running. Call
    /// it after [`start`](Self::start): on a container that is only created
    /// it resolves at once. The engine keeps the request open for as long as
    /// the container runs, with no timeout on our side.
    pub async fn wait_exit(&self, id: &ContainerId) -> Result<i64, EngineError> {
        let opts = WaitContainerOptions {
            condition: "not-running".into(),
        };
        // The request lasts as long as the container runs: not bounded by
        // the per-request timeout (Docker sends the headers at once, an
        // engine that does not must not cut the wait short).
        let docker = self.docker.clone().with_timeout(LONG_REQUEST);
        let mut s = docker.wait_container(id.as_str(), Some(opts));
        match s.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error; it is our answer.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(EngineError::api("wait", "container", id.as_str(), e)),
            None => Err(EngineError::Api {
                op: "wait",
                status: None,
                message: "the engine closed the wait without an exit code".into(),
            }),
        }
    }

    /// The container's output as lines, tagged stdout/stderr. `tail` limits
    /// the past lines returned (`None`: all); `follow` keeps the stream open
    /// for new output until the container stops.
    pub fn logs(&self, id: &ContainerId, follow: bool, tail: Option<usize>) -> LogStream {
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map(|n| n.to_string()).unwrap_or_else(|| "all".into()),
            ..Default::default()
        };
        let docker = if follow {
            // As for `wait_exit`: a quiet container may not answer for long.
            self.docker.clone().with_timeout(LONG_REQUEST)
        } else {
            self.docker.clone()
        };
        logs::lines(docker.logs(id.as_str(), Some(opts)), id.0.clone())
    }

    /// Runs `cmd` in the running container and collects its exit code and
    /// output, within `timeout`. On timeout the command keeps running in the
    /// container (the engine cannot kill an exec).
    pub async fn exec(
        &self,
        id: &ContainerId,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<ExecOutput, EngineError> {
        let run = async {
            let opts = CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let exec = self
                .docker
                .create_exec(id.as_str(), opts)
                .await
                .map_err(|e| EngineError::api("exec", "container", id.as_str(), e))?;
            let mut out = ExecOutput {
                exit_code: -1,
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
            };
            let started = self
                .docker
                .start_exec(&exec.id, None)
                .await
                .map_err(|e| EngineError::api("exec", "exec", &exec.id, e))?;
            if let StartExecResults::Attached { mut output, .. } = started {
                while let Some(frame) = output.next().await {
                    let frame = frame.map_err(|e| EngineError::api("exec", "exec", &exec.id, e))?;
                    let (buf, bytes) = match frame {
                        bollard::container::LogOutput::StdErr { message } => {
                            (&mut out.stderr, message)
                        }
                        bollard::container::LogOutput::StdOut { message }
                        | bollard::container::LogOutput::Console { message } => {
                            (&mut out.stdout, message)
                        }
                        bollard::container::LogOutput::StdIn { .. } => continue,
                    };
                    let room = MAX_EXEC_OUTPUT.saturating_sub(buf.len());
                    if bytes.len() > room {
                        out.truncated = true;
                    }
                    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            let info = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| EngineError::api("exec", "exec", &exec.id, e))?;
            out.exit_code = info.exit_code.unwrap_or(-1);
            Ok(out)
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| EngineError::Timeout {
                op: "exec",
                after: timeout,
            })?
    }
}

/// The code in `Exited (137) 2 seconds ago`.
fn exit_code_in(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_from_status_text() {
        assert_eq!(exit_code_in("Exited (0) 3 seconds ago"), Some(0));
        assert_eq!(exit_code_in("Exited (137) About a minute ago"), Some(137));
        assert_eq!(exit_code_in("Up 2 seconds"), None);
    }
}
