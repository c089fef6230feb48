//! The entry point: parse, check every section, derive the install steps.

use toml::de::{DeTable, DeValue};

use crate::walk::{as_str, Cx, Tbl, Val};
use crate::{agents, services};
use weft_model::plan::{AppMeta, Diagnostic, HookRun, InstallPlan, Manifest, ServiceSource, Step};
use weft_model::policy::CheckPolicy;

/// Characters allowed in app, tool and service names: `[a-z0-9-]`.
pub const NAME_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789-";
/// Characters allowed in an agent's `id`: `[A-Za-z0-9._-]`.
pub const ID_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

const TOP_KEYS: &[&str] = &[
    "app",
    "agents",
    "tools",
    "services",
    "capabilities",
    "hooks",
    "environment",
    "cron",
    "routes",
];

/// Manifests larger than this are refused before parsing.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Check a manifest against its own rules only. `file` names it in
/// messages about the whole file.
pub fn check(src: &str, file: &str) -> Result<InstallPlan, Vec<Diagnostic>> {
    check_with(src, file, CheckPolicy::default())
}

/// Check a manifest against its own rules and the kernel's `policy`.
pub fn check_with(
    src: &str,
    file: &str,
    policy: CheckPolicy,
) -> Result<InstallPlan, Vec<Diagnostic>> {
    let mut cx = Cx::new(src);
    cx.policy = policy;
    if src.len() > MAX_MANIFEST_BYTES {
        cx.err(
            &(0..0),
            "",
            format!(
                "{file} is {} bytes; expected at most {MAX_MANIFEST_BYTES}",
                src.len()
            ),
        );
        return Err(cx.diags);
    }
    let root = match DeTable::parse(src) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            cx.err(&span, "", format!("invalid TOML: {}", e.message().trim()));
            return Err(cx.diags);
        }
    };
    let manifest = manifest(&mut cx, root.get_ref(), root.span(), file);
    match manifest {
        Some(m) if cx.diags.is_empty() => Ok(plan(m)),
        _ => {
            let mut d = cx.diags;
            d.sort_by_key(|d| (d.line, d.col));
            Err(d)
        }
    }
}

fn manifest(
    cx: &mut Cx<'_>,
    root: &DeTable<'_>,
    span: std::ops::Range<usize>,
    file: &str,
) -> Option<Manifest> {
    let t = Tbl::new(cx, root, span, "", TOP_KEYS);
    let app = match t.get("app") {
        Some(v) => app(cx, v),
        None => {
            cx.err(
                &(0..0),
                "app",
                format!("missing table [app] in {file}; expected [app] with `name` and `version`"),
            );
            None
        }
    };
    // The ceiling first: agents are checked against it wherever they are.
    let ceiling = match t.get("capabilities") {
        None => Some(None),
        Some(v) => agents::caps(cx, v, "capabilities", None).map(Some),
    };
    let environment = match t.get("environment") {
        None => Some(None),
        Some(v) => services::environment(cx, v).map(Some),
    };
    let named = environment.as_ref().and_then(|e| e.as_deref());
    cx.env_outbound = cx.policy.outbound_of(named).cloned();
    let mut ids = Vec::new();
    let agents = list(cx, &t, "agents", |cx, v, k| {
        agents::agent(
            cx,
            v,
            k,
            ceiling.as_ref().and_then(Option::as_ref),
            &mut ids,
        )
    });
    let mut names = Vec::new();
    let tools = list(cx, &t, "tools", |cx, v, k| {
        services::tool(
            cx,
            v,
            k,
            ceiling.as_ref().and_then(Option::as_ref),
            &mut names,
        )
    });
    let mut names = Vec::new();
    let svcs = list(cx, &t, "services", |cx, v, k| {
        services::service(cx, v, k, &mut names)
    });
    let hooks = t
        .get("hooks")
        .map_or(Some(Default::default()), |v| services::hooks(cx, v));
    let cron = list(cx, &t, "cron", |cx, v, k| agents::cron_job(cx, v, k, &ids));
    let mut paths = Vec::new();
    let routes = list(cx, &t, "routes", |cx, v, k| {
        let ceiling = ceiling.as_ref().and_then(Option::as_ref);
        crate::network::route(cx, v, k, &ids, ceiling, &mut paths)
    });
    Some(Manifest {
        app: app?,
        agents: agents?,
        tools: tools?,
        services: svcs?,
        ceiling: ceiling?,
        hooks: hooks?,
        environment: environment?,
        cron: cron?,
        routes: routes?,
    })
}

/// An array of tables, each read by `item`.
fn list<T>(
    cx: &mut Cx<'_>,
    t: &Tbl<'_, '_>,
    name: &str,
    mut item: impl FnMut(&mut Cx<'_>, &Val<'_>, &str) -> Option<T>,
) -> Option<Vec<T>> {
    let Some(v) = t.get(name) else {
        return Some(Vec::new());
    };
    let DeValue::Array(a) = v.get_ref() else {
        cx.expected(v, name, &format!("an array of tables ([[{name}]])"));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, v) in a.iter().enumerate() {
        match item(cx, v, &format!("{name}[{i}]")) {
            Some(x) => out.push(x),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn app(cx: &mut Cx<'_>, v: &Val<'_>) -> Option<AppMeta> {
    let keys = ["name", "version", "description", "authors", "license"];
    let t = Tbl::of(cx, v, "app", "a table ([app])", &keys)?;
    let name = t.req(cx, "name", "a string").and_then(|nv| {
        let n = as_str(cx, nv, "app.name")?;
        if name_ok(&n, NAME_CHARS) {
            Some(n)
        } else {
            cx.err(
                &nv.span(),
                "app.name",
                format!("expected 1 to 64 characters from [a-z0-9-], found \"{n}\""),
            );
            None
        }
    });
    let version = t.req(cx, "version", "a semantic version").and_then(|vv| {
        let s = as_str(cx, vv, "app.version")?;
        if semver_ok(&s) {
            Some(s)
        } else {
            cx.err(
                &vv.span(),
                "app.version",
                format!("expected a semantic version like \"1.2.3\", found \"{s}\""),
            );
            None
        }
    });
    let description = t.str(cx, "description").unwrap_or_default();
    let authors = t.str_list(cx, "authors");
    let license = t.str(cx, "license");
    Some(AppMeta {
        name: name?,
        version: version?,
        description,
        authors,
        license,
    })
}

/// Is `s` 1 to 64 characters, each in `chars`?
pub fn name_ok(s: &str, chars: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| chars.contains(c))
}

/// Semantic Versioning 2.0.0: `MAJOR.MINOR.PATCH[-pre][+build]`.
pub fn semver_ok(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|id| ident(id) && (!id.chars().all(|c| c.is_ascii_digit()) || numeric(id)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// The steps of each lifecycle operation, in the order the host carries
/// them out (see `InstallPlan` for what each list holds).
pub fn plan(m: Manifest) -> InstallPlan {
    let h = &m.hooks;
    let hook = |name: &str, c: &Option<String>| {
        c.as_ref().map(|c| {
            Step::RunHook(HookRun {
                hook: name.into(),
                component: c.clone(),
            })
        })
    };
    // Every component, once, in manifest order: agents, tools, component
    // services, route handlers, hooks.
    let mut components: Vec<String> = Vec::new();
    let all = m
        .agents
        .iter()
        .map(|a| &a.component)
        .chain(m.tools.iter().map(|t| &t.component))
        .chain(m.services.iter().filter_map(|s| match &s.source {
            ServiceSource::Component(c) => Some(c),
            _ => None,
        }))
        .chain(m.routes.iter().filter_map(|r| r.component.as_ref()))
        .chain(
            [&h.on_install, &h.on_start, &h.on_stop, &h.on_remove]
                .into_iter()
                .flatten(),
        );
    for c in all {
        if !components.contains(c) {
            components.push(c.clone());
        }
    }
    // Image archives are locked, signed and copied like components, but
    // are not compiled: the container subsystem loads them.
    let mut sorted = components.clone();
    sorted.extend(m.services.iter().filter_map(|s| match &s.source {
        ServiceSource::ImageArchive(a) => Some(a.clone()),
        _ => None,
    }));
    sorted.sort();
    sorted.dedup();
    let mut install = vec![Step::VerifyDigests(sorted), Step::CopyBundle];
    install.extend(components.into_iter().map(Step::Precompile));
    install.extend(
        m.services
            .iter()
            .filter(|s| s.source.is_container())
            .cloned()
            .map(Step::PrepareImage),
    );
    install.extend(hook("on-install", &h.on_install));
    let start = hook("on-start", &h.on_start)
        .into_iter()
        .chain(m.tools.iter().cloned().map(Step::RegisterTool))
        .chain(m.services.iter().cloned().map(Step::RegisterService))
        .chain(
            m.agents
                .iter()
                .filter(|a| a.auto_start)
                .cloned()
                .map(Step::SpawnAgent),
        )
        .chain(m.cron.iter().cloned().map(Step::AddCron))
        .chain(m.routes.iter().cloned().map(Step::AddRoute))
        .collect();
    let stop = hook("on-stop", &h.on_stop).into_iter().collect();
    let remove = hook("on-remove", &h.on_remove).into_iter().collect();
    InstallPlan {
        install,
        start,
        stop,
        remove,
        manifest: m,
    }
}
