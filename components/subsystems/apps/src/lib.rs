//! `apps`: the `weftapp.toml` checker as a component (`wit/apps.wit`).
//!
//! The host hands it the manifest text; it returns either the validated
//! manifest plus the steps of each lifecycle operation, or every problem
//! found, each with a 1-based line and column and the dotted key it
//! concerns. The checking itself is plain Rust (`check` and friends) built
//! on the model host and guests share (`weft_model::plan`, re-exported as
//! [`model`]), so it is unit-tested on the host target; this file only
//! converts to WIT types.

pub mod agents;
pub mod check;
pub mod containers;
pub mod network;
pub mod paths;
pub mod services;
pub mod walk;

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
// WIT functions with many parameters (ecc, check) become Rust functions with as many.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "apps" });
}
use bindings::*;

use weft::kernel::app_types as w;

/// The plan records, shared with the host.
pub use weft_model::plan as model;

use weft_model::caps as c;
use weft_model::plan as m;

struct Apps;

impl Guest for Apps {
    fn check(
        manifest: String,
        file_name: String,
        policy: w::CheckPolicy,
    ) -> Result<w::InstallPlan, Vec<w::Diagnostic>> {
        match check::check_with(&manifest, &file_name, policy_m(policy)) {
            Ok(plan) => Ok(w::InstallPlan {
                manifest: manifest_w(plan.manifest),
                install: steps_w(plan.install),
                start: steps_w(plan.start),
                stop: steps_w(plan.stop),
                remove: steps_w(plan.remove),
            }),
            Err(diags) => Err(diags
                .into_iter()
                .map(|d| w::Diagnostic {
                    line: d.line,
                    col: d.col,
                    key: d.key,
                    message: d.message,
                })
                .collect()),
        }
    }
}

export!(Apps);

fn policy_m(p: w::CheckPolicy) -> weft_model::policy::CheckPolicy {
    use weft_model::policy as pm;
    pm::CheckPolicy {
        containers: match p.containers {
            w::ContainerEngine::Unchecked => pm::ContainerEngine::Unchecked,
            w::ContainerEngine::Absent => pm::ContainerEngine::Absent,
            w::ContainerEngine::Policy(c) => pm::ContainerEngine::Policy(pm::ContainerPolicy {
                host_port_min: c.host_port_min,
                host_port_max: c.host_port_max,
                allowed_caps: c.allowed_caps,
                max_memory_bytes: c.max_memory_bytes,
                max_nano_cpus: c.max_nano_cpus,
            }),
        },
        default_environment: p.default_environment,
        outbound: p
            .outbound
            .into_iter()
            .map(|e| pm::EnvOutbound {
                environment: e.environment,
                outbound: e.outbound,
            })
            .collect(),
    }
}

fn manifest_w(x: m::Manifest) -> w::Manifest {
    w::Manifest {
        app: w::AppMeta {
            name: x.app.name,
            version: x.app.version,
            description: x.app.description,
            authors: x.app.authors,
            license: x.app.license,
        },
        agents: x.agents.into_iter().map(agent_w).collect(),
        tools: x.tools.into_iter().map(tool_w).collect(),
        services: x.services.into_iter().map(service_w).collect(),
        ceiling: x.ceiling.map(caps_w),
        hooks: w::Hooks {
            on_install: x.hooks.on_install,
            on_start: x.hooks.on_start,
            on_stop: x.hooks.on_stop,
            on_remove: x.hooks.on_remove,
        },
        environment: x.environment,
        cron: x.cron.into_iter().map(cron_w).collect(),
        routes: x.routes.into_iter().map(route_w).collect(),
    }
}

fn route_w(r: weft_model::net::Route) -> w::Route {
    w::Route {
        path: r.path,
        agent: r.agent,
        component: r.component,
        network: net_caps_w(r.network),
        max_body_bytes: r.max_body_bytes,
        timeout_ms: r.timeout_ms,
        token_secret: r.token_secret,
    }
}

fn cron_w(c: m::CronJob) -> w::CronJob {
    w::CronJob {
        schedule: c.schedule,
        target: c.target,
        payload: c.payload,
    }
}

fn caps_w(x: c::Capabilities) -> w::Capabilities {
    w::Capabilities {
        tools: w::ToolPermissions {
            allow: x.tools.allow,
            deny: x.tools.deny,
        },
        ipc: match x.ipc {
            c::IpcScope::All => w::IpcScope::All,
            c::IpcScope::ParentOnly => w::IpcScope::ParentOnly,
            c::IpcScope::None => w::IpcScope::None,
            c::IpcScope::Named(n) => w::IpcScope::Named(n),
            c::IpcScope::Topics(t) => w::IpcScope::Topics(t),
        },
        sandbox: match x.sandbox {
            c::SandboxPolicy::Strict => w::SandboxPolicy::Strict,
            c::SandboxPolicy::Granted => w::SandboxPolicy::Granted,
        },
        chain_append: x.chain_append,
        spawn: x.spawn,
        cron: x.cron,
        ecc: w::EccCaps {
            ops: x.ecc.ops,
            namespaces: x.ecc.namespaces,
        },
        network: net_caps_w(x.network),
    }
}

fn net_caps_w(n: weft_model::net::NetCaps) -> w::NetCaps {
    w::NetCaps {
        outbound: n.outbound,
        secrets: n
            .secrets
            .into_iter()
            .map(|s| w::SecretHeader {
                secret: s.secret,
                server: s.server,
                header: s.header,
                prefix: s.prefix,
            })
            .collect(),
    }
}

fn agent_w(a: m::AgentSpec) -> w::AgentSpec {
    w::AgentSpec {
        id: a.id,
        component: a.component,
        role: match a.role {
            m::AgentRole::Worker => w::AgentRole::Worker,
            m::AgentRole::Coordinator => w::AgentRole::Coordinator,
            m::AgentRole::Supervisor => w::AgentRole::Supervisor,
            m::AgentRole::System => w::AgentRole::System,
        },
        priority: match a.priority {
            m::AgentPriority::Low => w::AgentPriority::Low,
            m::AgentPriority::Normal => w::AgentPriority::Normal,
            m::AgentPriority::High => w::AgentPriority::High,
        },
        auto_start: a.auto_start,
        capabilities: caps_w(a.capabilities),
        limits: a.limits.map(|l| w::AgentLimits {
            fuel_per_message: l.fuel_per_message,
            timeout_ms: l.timeout_ms,
            max_memory_bytes: l.max_memory_bytes,
            max_messages: l.max_messages,
            max_tool_calls: l.max_tool_calls,
        }),
        restart: restart_w(a.restart),
        config: a.config,
    }
}

fn env_w(env: Vec<m::EnvVar>) -> Vec<w::EnvVar> {
    env.into_iter()
        .map(|e| w::EnvVar {
            key: e.key,
            value: e.value,
        })
        .collect()
}

fn tool_w(t: m::ToolSpec) -> w::ToolSpec {
    w::ToolSpec {
        name: t.name,
        component: t.component,
        dirs: t
            .dirs
            .into_iter()
            .map(|d| w::DirGrant {
                host: d.host,
                guest: d.guest,
                read_only: d.read_only,
            })
            .collect(),
        env: env_w(t.env),
        network: net_caps_w(t.network),
        limits: w::ToolLimits {
            fuel: t.limits.fuel,
            timeout_ms: t.limits.timeout_ms,
            max_memory_bytes: t.limits.max_memory_bytes,
        },
    }
}

fn restart_w(r: m::RestartPolicy) -> w::RestartPolicy {
    match r {
        m::RestartPolicy::Never => w::RestartPolicy::Never,
        m::RestartPolicy::Always => w::RestartPolicy::Always,
        m::RestartPolicy::OnFailure(o) => w::RestartPolicy::OnFailure(w::OnFailure {
            max_retries: o.max_retries,
            backoff_ms: o.backoff_ms,
        }),
    }
}

fn service_w(s: m::ServiceSpec) -> w::ServiceSpec {
    w::ServiceSpec {
        name: s.name,
        source: match s.source {
            m::ServiceSource::Component(c) => w::ServiceSource::Component(c),
            m::ServiceSource::Image(i) => w::ServiceSource::Image(i),
            m::ServiceSource::ImageArchive(a) => w::ServiceSource::ImageArchive(a),
            m::ServiceSource::Url(u) => w::ServiceSource::Url(u),
        },
        env: env_w(s.env),
        health: s.health.map(|h| w::HealthCheck {
            kind: match h.kind {
                m::ProbeKind::Liveness => w::ProbeKind::Liveness,
                m::ProbeKind::Readiness => w::ProbeKind::Readiness,
            },
            interval_ms: h.interval_ms,
            failure_threshold: h.failure_threshold,
            success_threshold: h.success_threshold,
            probe: match h.probe {
                m::Probe::None => w::Probe::None,
                m::Probe::Tcp(p) => w::Probe::Tcp(p),
                m::Probe::Http(x) => w::Probe::Http(w::HttpProbe {
                    port: x.port,
                    path: x.path,
                    status: x.status,
                }),
                m::Probe::Exec(argv) => w::Probe::Exec(argv),
            },
        }),
        container: s.container.map(container_w),
    }
}

fn container_w(c: m::ContainerSpec) -> w::ContainerSpec {
    w::ContainerSpec {
        pull: match c.pull {
            m::PullPolicy::Never => w::PullPolicy::Never,
            m::PullPolicy::IfNotPresent => w::PullPolicy::IfNotPresent,
        },
        command: c.command,
        ports: c
            .ports
            .into_iter()
            .map(|p| w::PortMap {
                host: p.host,
                container: p.container,
            })
            .collect(),
        volumes: c
            .volumes
            .into_iter()
            .map(|v| w::VolumeMount {
                host: v.host,
                container: v.container,
                read_only: v.read_only,
            })
            .collect(),
        memory_bytes: c.memory_bytes,
        nano_cpus: c.nano_cpus,
        restart: restart_w(c.restart),
        cap_add: c.cap_add,
        read_only: c.read_only,
        call: c.call.map(|x| w::ServiceCall {
            port: x.port,
            path: x.path,
        }),
    }
}

fn steps_w(steps: Vec<m::Step>) -> Vec<w::Step> {
    steps.into_iter().map(step_w).collect()
}

fn step_w(s: m::Step) -> w::Step {
    match s {
        m::Step::VerifyDigests(p) => w::Step::VerifyDigests(p),
        m::Step::CopyBundle => w::Step::CopyBundle,
        m::Step::Precompile(c) => w::Step::Precompile(c),
        m::Step::RunHook(h) => w::Step::RunHook(w::HookRun {
            hook: h.hook,
            component: h.component,
        }),
        m::Step::PrepareImage(s) => w::Step::PrepareImage(service_w(s)),
        m::Step::RegisterTool(t) => w::Step::RegisterTool(tool_w(t)),
        m::Step::RegisterService(s) => w::Step::RegisterService(service_w(s)),
        m::Step::SpawnAgent(a) => w::Step::SpawnAgent(agent_w(a)),
        m::Step::AddCron(c) => w::Step::AddCron(cron_w(c)),
        m::Step::AddRoute(r) => w::Step::AddRoute(route_w(r)),
    }
}

#[cfg(test)]
mod container_tests;
#[cfg(test)]
mod tests;
