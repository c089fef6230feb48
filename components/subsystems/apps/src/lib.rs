//! `apps`: the `weftapp.toml` checker as a component (`wit/apps.wit`).
//!
//! The host hands it the manifest text; it returns either the validated
//! manifest plus the ordered install steps, or every problem found, each
//! with a 1-based line and column and the dotted key it concerns. The
//! checking itself is plain Rust (`check`, `model` and friends) so it is
//! unit-tested on the host target; this file only converts to WIT types.

pub mod agents;
pub mod check;
pub mod model;
pub mod paths;
pub mod services;
pub mod walk;

wit_bindgen::generate!({ path: "../../../wit", world: "apps" });

use weft::kernel::app_types as w;

use model as m;

struct Apps;

impl Guest for Apps {
    fn check(manifest: String, file_name: String) -> Result<w::InstallPlan, Vec<w::Diagnostic>> {
        match check::check(&manifest, &file_name) {
            Ok(plan) => Ok(w::InstallPlan {
                manifest: manifest_w(plan.manifest),
                steps: plan.steps.into_iter().map(step_w).collect(),
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
        environment: x.environment.map(|e| match e {
            m::Env::Dev => w::Environment::Dev,
            m::Env::Staging => w::Environment::Staging,
            m::Env::Prod => w::Environment::Prod,
        }),
        cron: x
            .cron
            .into_iter()
            .map(|c| w::CronJob {
                schedule: c.schedule,
                target: c.target,
                payload: c.payload,
            })
            .collect(),
    }
}

fn caps_w(c: m::Caps) -> w::Capabilities {
    w::Capabilities {
        tools: w::ToolPermissions {
            allow: c.tools.allow,
            deny: c.tools.deny,
        },
        ipc: match c.ipc {
            m::Ipc::All => w::IpcScope::All,
            m::Ipc::ParentOnly => w::IpcScope::ParentOnly,
            m::Ipc::None => w::IpcScope::None,
            m::Ipc::Named(n) => w::IpcScope::Named(n),
            m::Ipc::Topics(t) => w::IpcScope::Topics(t),
        },
        sandbox: match c.sandbox {
            m::Sandbox::Strict => w::SandboxPolicy::Strict,
            m::Sandbox::Granted => w::SandboxPolicy::Granted,
        },
        chain_append: c.chain_append,
        spawn: c.spawn,
    }
}

fn agent_w(a: m::Agent) -> w::AgentSpec {
    w::AgentSpec {
        id: a.id,
        component: a.component,
        role: match a.role {
            m::Role::Worker => w::AgentRole::Worker,
            m::Role::Coordinator => w::AgentRole::Coordinator,
            m::Role::Supervisor => w::AgentRole::Supervisor,
            m::Role::System => w::AgentRole::System,
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
        restart: match a.restart {
            m::Restart::Never => w::RestartPolicy::Never,
            m::Restart::Always => w::RestartPolicy::Always,
            m::Restart::OnFailure {
                max_retries,
                backoff_ms,
            } => w::RestartPolicy::OnFailure(w::OnFailure {
                max_retries,
                backoff_ms,
            }),
        },
        config: a.config,
    }
}

fn env_w(env: Vec<(String, String)>) -> Vec<w::EnvVar> {
    env.into_iter()
        .map(|(key, value)| w::EnvVar { key, value })
        .collect()
}

fn tool_w(t: m::Tool) -> w::ToolSpec {
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
        limits: w::ToolLimits {
            fuel: t.limits.fuel,
            timeout_ms: t.limits.timeout_ms,
            max_memory_bytes: t.limits.max_memory_bytes,
        },
    }
}

fn service_w(s: m::Service) -> w::ServiceSpec {
    w::ServiceSpec {
        name: s.name,
        source: match s.source {
            m::Source::Component(c) => w::ServiceSource::Component(c),
            m::Source::Image(i) => w::ServiceSource::Image(i),
            m::Source::Url(u) => w::ServiceSource::Url(u),
        },
        ports: s.ports,
        env: env_w(s.env),
        health: s.health.map(|h| w::HealthCheck {
            kind: match h.kind {
                m::ProbeKind::Liveness => w::ProbeKind::Liveness,
                m::ProbeKind::Readiness => w::ProbeKind::Readiness,
            },
            interval_ms: h.interval_ms,
            failure_threshold: h.failure_threshold,
            success_threshold: h.success_threshold,
        }),
    }
}

fn step_w(s: m::Step) -> w::Step {
    match s {
        m::Step::VerifyDigests(p) => w::Step::VerifyDigests(p),
        m::Step::GateCheck(a) => w::Step::GateCheck(a),
        m::Step::CopyBundle => w::Step::CopyBundle,
        m::Step::Precompile(c) => w::Step::Precompile(c),
        m::Step::RunHook { hook, component } => w::Step::RunHook(w::HookRun { hook, component }),
        m::Step::RegisterTool(n) => w::Step::RegisterTool(n),
        m::Step::RegisterService(n) => w::Step::RegisterService(n),
        m::Step::SpawnAgent(i) => w::Step::SpawnAgent(i),
        m::Step::AddCron(i) => w::Step::AddCron(i),
    }
}

#[cfg(test)]
mod tests;
