//! The `apps` component's WIT records back into [`weft_model::plan`]: the
//! one model the host and the component share. Every field maps one to
//! one; nothing is interpreted here.

use weft_model::plan as m;
use weft_model::{AgentLimits, Capabilities, IpcScope, SandboxPolicy, ToolPermissions};

use crate::checker::bindings::weft::kernel::app_types as w;

/// A checked plan as the host uses it.
pub(crate) fn plan(p: w::InstallPlan) -> m::InstallPlan {
    m::InstallPlan {
        manifest: manifest(p.manifest),
        install: p.install.into_iter().map(step).collect(),
        start: p.start.into_iter().map(step).collect(),
        stop: p.stop.into_iter().map(step).collect(),
        remove: p.remove.into_iter().map(step).collect(),
    }
}

/// The kernel's policy, as the component takes it.
pub(crate) fn policy(p: &weft_model::policy::CheckPolicy) -> w::CheckPolicy {
    use weft_model::policy::ContainerEngine as E;
    w::CheckPolicy {
        containers: match &p.containers {
            E::Unchecked => w::ContainerEngine::Unchecked,
            E::Absent => w::ContainerEngine::Absent,
            E::Policy(c) => w::ContainerEngine::Policy(w::ContainerPolicy {
                host_port_min: c.host_port_min,
                host_port_max: c.host_port_max,
                allowed_caps: c.allowed_caps.clone(),
                max_memory_bytes: c.max_memory_bytes,
                max_nano_cpus: c.max_nano_cpus,
            }),
        },
        default_environment: p.default_environment.clone(),
        outbound: p
            .outbound
            .iter()
            .map(|e| w::EnvOutbound {
                environment: e.environment.clone(),
                outbound: e.outbound.clone(),
            })
            .collect(),
    }
}

/// A diagnostic as the host renders it.
pub(crate) fn diagnostic(d: w::Diagnostic) -> m::Diagnostic {
    m::Diagnostic {
        line: d.line,
        col: d.col,
        key: d.key,
        message: d.message,
    }
}

fn manifest(x: w::Manifest) -> m::Manifest {
    m::Manifest {
        app: m::AppMeta {
            name: x.app.name,
            version: x.app.version,
            description: x.app.description,
            authors: x.app.authors,
            license: x.app.license,
        },
        agents: x.agents.into_iter().map(agent).collect(),
        tools: x.tools.into_iter().map(tool).collect(),
        services: x.services.into_iter().map(service).collect(),
        ceiling: x.ceiling.map(caps),
        hooks: m::Hooks {
            on_install: x.hooks.on_install,
            on_start: x.hooks.on_start,
            on_stop: x.hooks.on_stop,
            on_remove: x.hooks.on_remove,
        },
        environment: x.environment,
        cron: x.cron.into_iter().map(cron).collect(),
        routes: x.routes.into_iter().map(route).collect(),
    }
}

fn caps(c: w::Capabilities) -> Capabilities {
    Capabilities {
        tools: ToolPermissions {
            allow: c.tools.allow,
            deny: c.tools.deny,
        },
        ipc: match c.ipc {
            w::IpcScope::All => IpcScope::All,
            w::IpcScope::ParentOnly => IpcScope::ParentOnly,
            w::IpcScope::None => IpcScope::None,
            w::IpcScope::Named(n) => IpcScope::Named(n),
            w::IpcScope::Topics(t) => IpcScope::Topics(t),
        },
        sandbox: match c.sandbox {
            w::SandboxPolicy::Strict => SandboxPolicy::Strict,
            w::SandboxPolicy::Granted => SandboxPolicy::Granted,
        },
        chain_append: c.chain_append,
        spawn: c.spawn,
        cron: c.cron,
        ecc: weft_model::EccCaps {
            ops: c.ecc.ops,
            namespaces: c.ecc.namespaces,
        },
        network: net_caps(c.network),
    }
}

fn net_caps(n: w::NetCaps) -> weft_model::NetCaps {
    weft_model::NetCaps {
        outbound: n.outbound,
        secrets: n
            .secrets
            .into_iter()
            .map(|s| weft_model::net::SecretHeader {
                secret: s.secret,
                server: s.server,
                header: s.header,
                prefix: s.prefix,
            })
            .collect(),
    }
}

fn agent(a: w::AgentSpec) -> m::AgentSpec {
    m::AgentSpec {
        id: a.id,
        component: a.component,
        role: match a.role {
            w::AgentRole::Worker => m::AgentRole::Worker,
            w::AgentRole::Coordinator => m::AgentRole::Coordinator,
            w::AgentRole::Supervisor => m::AgentRole::Supervisor,
            w::AgentRole::System => m::AgentRole::System,
        },
        priority: match a.priority {
            w::AgentPriority::Low => m::AgentPriority::Low,
            w::AgentPriority::Normal => m::AgentPriority::Normal,
            w::AgentPriority::High => m::AgentPriority::High,
        },
        auto_start: a.auto_start,
        capabilities: caps(a.capabilities),
        limits: a.limits.map(|l| AgentLimits {
            fuel_per_message: l.fuel_per_message,
            timeout_ms: l.timeout_ms,
            max_memory_bytes: l.max_memory_bytes,
            max_messages: l.max_messages,
            max_tool_calls: l.max_tool_calls,
        }),
        restart: restart(a.restart),
        config: a.config,
    }
}

fn env(v: Vec<w::EnvVar>) -> Vec<m::EnvVar> {
    v.into_iter()
        .map(|e| m::EnvVar {
            key: e.key,
            value: e.value,
        })
        .collect()
}

fn tool(t: w::ToolSpec) -> m::ToolSpec {
    m::ToolSpec {
        name: t.name,
        component: t.component,
        dirs: t
            .dirs
            .into_iter()
            .map(|d| m::DirGrant {
                host: d.host,
                guest: d.guest,
                read_only: d.read_only,
            })
            .collect(),
        env: env(t.env),
        network: net_caps(t.network),
        limits: m::ToolLimits {
            fuel: t.limits.fuel,
            timeout_ms: t.limits.timeout_ms,
            max_memory_bytes: t.limits.max_memory_bytes,
        },
    }
}

fn restart(r: w::RestartPolicy) -> m::RestartPolicy {
    match r {
        w::RestartPolicy::Never => m::RestartPolicy::Never,
        w::RestartPolicy::Always => m::RestartPolicy::Always,
        w::RestartPolicy::OnFailure(o) => m::RestartPolicy::OnFailure(m::OnFailure {
            max_retries: o.max_retries,
            backoff_ms: o.backoff_ms,
        }),
    }
}

fn service(s: w::ServiceSpec) -> m::ServiceSpec {
    m::ServiceSpec {
        name: s.name,
        source: match s.source {
            w::ServiceSource::Component(c) => m::ServiceSource::Component(c),
            w::ServiceSource::Image(i) => m::ServiceSource::Image(i),
            w::ServiceSource::ImageArchive(a) => m::ServiceSource::ImageArchive(a),
            w::ServiceSource::Url(u) => m::ServiceSource::Url(u),
        },
        env: env(s.env),
        health: s.health.map(|h| m::HealthCheck {
            kind: match h.kind {
                w::ProbeKind::Liveness => m::ProbeKind::Liveness,
                w::ProbeKind::Readiness => m::ProbeKind::Readiness,
            },
            interval_ms: h.interval_ms,
            failure_threshold: h.failure_threshold,
            success_threshold: h.success_threshold,
            probe: match h.probe {
                w::Probe::None => m::Probe::None,
                w::Probe::Tcp(p) => m::Probe::Tcp(p),
                w::Probe::Http(x) => m::Probe::Http(m::HttpProbe {
                    port: x.port,
                    path: x.path,
                    status: x.status,
                }),
                w::Probe::Exec(argv) => m::Probe::Exec(argv),
            },
        }),
        container: s.container.map(container),
    }
}

fn container(c: w::ContainerSpec) -> m::ContainerSpec {
    m::ContainerSpec {
        pull: match c.pull {
            w::PullPolicy::Never => m::PullPolicy::Never,
            w::PullPolicy::IfNotPresent => m::PullPolicy::IfNotPresent,
        },
        command: c.command,
        ports: c
            .ports
            .into_iter()
            .map(|p| m::PortMap {
                host: p.host,
                container: p.container,
            })
            .collect(),
        volumes: c
            .volumes
            .into_iter()
            .map(|v| m::VolumeMount {
                host: v.host,
                container: v.container,
                read_only: v.read_only,
            })
            .collect(),
        memory_bytes: c.memory_bytes,
        nano_cpus: c.nano_cpus,
        restart: restart(c.restart),
        cap_add: c.cap_add,
        read_only: c.read_only,
        call: c.call.map(|x| m::ServiceCall {
            port: x.port,
            path: x.path,
        }),
    }
}

fn cron(c: w::CronJob) -> m::CronJob {
    m::CronJob {
        schedule: c.schedule,
        target: c.target,
        payload: c.payload,
    }
}

fn step(s: w::Step) -> m::Step {
    match s {
        w::Step::VerifyDigests(p) => m::Step::VerifyDigests(p),
        w::Step::CopyBundle => m::Step::CopyBundle,
        w::Step::Precompile(c) => m::Step::Precompile(c),
        w::Step::RunHook(h) => m::Step::RunHook(m::HookRun {
            hook: h.hook,
            component: h.component,
        }),
        w::Step::PrepareImage(s) => m::Step::PrepareImage(service(s)),
        w::Step::RegisterTool(t) => m::Step::RegisterTool(tool(t)),
        w::Step::RegisterService(s) => m::Step::RegisterService(service(s)),
        w::Step::SpawnAgent(a) => m::Step::SpawnAgent(agent(a)),
        w::Step::AddCron(c) => m::Step::AddCron(cron(c)),
        w::Step::AddRoute(r) => m::Step::AddRoute(route(r)),
    }
}

fn route(r: w::Route) -> weft_model::net::Route {
    weft_model::net::Route {
        path: r.path,
        agent: r.agent,
        component: r.component,
        network: net_caps(r.network),
        max_body_bytes: r.max_body_bytes,
        timeout_ms: r.timeout_ms,
        token_secret: r.token_secret,
    }
}
