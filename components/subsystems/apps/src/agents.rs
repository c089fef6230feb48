//! `[[agents]]` and `[capabilities]`: capabilities, limits, restart policy
//! and config, with the app ceiling enforced where each value is read.

use std::ops::Range;

use toml::de::DeValue;
use weft_model::caps::{
    Capabilities, EccCaps, Excess, IpcScope, SandboxPolicy, ToolPermissions, ECC_OPS,
};
use weft_model::glob::Uncovered;
use weft_model::limits::AgentLimits;
use weft_model::plan::{AgentPriority, AgentRole, AgentSpec, CronJob, OnFailure, RestartPolicy};

use crate::check::{name_ok, ID_CHARS};
use crate::network::net_caps;
use crate::paths::component_path;
use crate::walk::{as_choice, as_int, as_str, join, Cx, Tbl, Val};

const AGENT_KEYS: &[&str] = &[
    "id",
    "component",
    "role",
    "priority",
    "auto_start",
    "capabilities",
    "limits",
    "restart",
    "config",
];
const CAP_KEYS: &[&str] = &[
    "tools",
    "ipc",
    "sandbox",
    "chain_append",
    "spawn",
    "cron",
    "ecc",
    "network",
];
const LIMIT_KEYS: &[&str] = &[
    "fuel_per_message",
    "timeout_ms",
    "max_memory_bytes",
    "max_messages",
    "max_tool_calls",
];
const RESTART_EXPECTED: &str =
    "\"never\", \"always\" or { on_failure = { max_retries, backoff_ms } }";
const IPC_EXPECTED: &str =
    "\"all\", \"parent_only\", \"none\", { named = [..] } or { topics = [..] }";

/// One `[[agents]]` entry. `seen` holds the ids before it, for duplicates.
pub fn agent(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    ceiling: Option<&Capabilities>,
    seen: &mut Vec<String>,
) -> Option<AgentSpec> {
    let t = Tbl::of(cx, v, path, "a table ([[agents]])", AGENT_KEYS)?;
    let id = t.req(cx, "id", "a string").and_then(|iv| {
        let id = as_str(cx, iv, &t.key("id"))?;
        if !name_ok(&id, ID_CHARS) {
            cx.err(
                &iv.span(),
                &t.key("id"),
                format!("expected 1 to 64 characters from [A-Za-z0-9._-], found \"{id}\""),
            );
            return None;
        }
        if seen.contains(&id) {
            cx.err(
                &iv.span(),
                &t.key("id"),
                format!("duplicate agent id \"{id}\"; expected each agent id once"),
            );
            return None;
        }
        seen.push(id.clone());
        Some(id)
    });
    let component = t
        .req(cx, "component", "a component path")
        .and_then(|cv| component_path(cx, cv, &t.key("component")));
    let role = match t.get("role") {
        None => Some(AgentRole::Worker),
        Some(rv) => match as_choice(
            cx,
            rv,
            &t.key("role"),
            &[
                ("worker", AgentRole::Worker),
                ("coordinator", AgentRole::Coordinator),
                ("supervisor", AgentRole::Supervisor),
                ("system", AgentRole::System),
            ],
        ) {
            Some(AgentRole::System) => {
                cx.err(
                    &rv.span(),
                    &t.key("role"),
                    "role \"system\" is reserved for the kernel's own components; \
                     expected \"worker\", \"coordinator\" or \"supervisor\"",
                );
                None
            }
            other => other,
        },
    };
    let priority = match t.get("priority") {
        None => Some(AgentPriority::Normal),
        Some(pv) => as_choice(
            cx,
            pv,
            &t.key("priority"),
            &[
                ("low", AgentPriority::Low),
                ("normal", AgentPriority::Normal),
                ("high", AgentPriority::High),
            ],
        ),
    };
    let auto_start = t.bool(cx, "auto_start", true);
    let capabilities = match t.get("capabilities") {
        None => Some(Capabilities::default()),
        Some(cv) => caps(cx, cv, &t.key("capabilities"), ceiling),
    }
    // The ceiling's denials bind every agent.
    .map(|own| match ceiling {
        Some(c) => own.bounded_by(c),
        None => own,
    });
    let limits = match t.get("limits") {
        None => Some(None),
        Some(lv) => agent_limits(cx, lv, &t.key("limits")).map(Some),
    };
    let restart = match t.get("restart") {
        None => Some(RestartPolicy::Never),
        Some(rv) => restart(cx, rv, &t.key("restart")),
    };
    let config = match t.get("config") {
        None => Some("{}".to_string()),
        Some(cv) => match cv.get_ref() {
            DeValue::Table(_) => to_json(cx, cv, &t.key("config")).map(|j| j.to_string()),
            _ => {
                cx.expected(cv, &t.key("config"), "a table, passed to the agent's init");
                None
            }
        },
    };
    // Starting agents is what the supervisor role is for.
    if let (Some(r), Some(c), Some(sv)) = (role, &capabilities, spawn_value(&t)) {
        if c.spawn && r != AgentRole::Supervisor {
            cx.err(
                &sv.span(),
                &join(&t.key("capabilities"), "spawn"),
                format!(
                    "only a supervisor may start agents; expected role = \"supervisor\" \
                     for this agent, found role \"{}\"",
                    r.as_str()
                ),
            );
        }
    }
    Some(AgentSpec {
        id: id?,
        component: component?,
        role: role?,
        priority: priority?,
        auto_start,
        capabilities: capabilities?,
        limits: limits?,
        restart: restart?,
        config: config?,
    })
}

/// The `spawn` value inside an agent's `capabilities` table, if any.
fn spawn_value<'a, 'i>(t: &Tbl<'a, 'i>) -> Option<&'a Val<'i>> {
    match t.get("capabilities")?.get_ref() {
        DeValue::Table(caps) => caps.get("spawn"),
        _ => None,
    }
}

/// Where a capabilities value sits in the file, for a ceiling diagnostic.
pub(crate) struct Spot {
    /// As [`Excess::field`] names it (indexes count the values kept).
    pub(crate) field: String,
    pub(crate) span: Range<usize>,
    /// The dotted key of the diagnostic (indexes count the file's items).
    pub(crate) key: String,
    /// The pattern written there, for a list entry.
    pub(crate) pattern: Option<String>,
}

/// A capabilities table. With a ceiling, [`Capabilities::within`] decides
/// and each excess is reported at the offending value.
pub fn caps(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    ceiling: Option<&Capabilities>,
) -> Option<Capabilities> {
    let t = Tbl::of(cx, v, path, "a capabilities table", CAP_KEYS)?;
    let mut ok = true;
    let mut out = Capabilities::default();
    let mut spots = Vec::new();
    let spot = |field: &str, val: &Val<'_>| Spot {
        field: field.to_string(),
        span: val.span(),
        key: t.key(field),
        pattern: None,
    };
    // Lists keep the entries that could be read, so each of those is still
    // checked against the ceiling.
    if let Some(tv) = t.get("tools") {
        out.tools = tool_perms(cx, tv, &t.key("tools"), &mut spots, &mut ok);
    }
    if let Some(iv) = t.get("ipc") {
        spots.push(spot("ipc", iv));
        out.ipc = ipc(cx, iv, &t.key("ipc"), &mut spots, &mut ok);
    }
    if let Some(sv) = t.get("sandbox") {
        spots.push(spot("sandbox", sv));
        let choices = [
            ("strict", SandboxPolicy::Strict),
            ("granted", SandboxPolicy::Granted),
        ];
        match as_choice(cx, sv, &t.key("sandbox"), &choices) {
            Some(s) => out.sandbox = s,
            None => ok = false,
        }
    }
    for name in ["chain_append", "spawn", "cron"] {
        let Some(bv) = t.get(name) else { continue };
        spots.push(spot(name, bv));
        let val = t.bool(cx, name, false);
        if !matches!(bv.get_ref(), DeValue::Boolean(_)) {
            ok = false;
        }
        match name {
            "chain_append" => out.chain_append = val,
            "spawn" => out.spawn = val,
            _ => out.cron = val,
        }
    }
    if let Some(ev) = t.get("ecc") {
        out.ecc = ecc_caps(cx, ev, &t.key("ecc"), &mut spots, &mut ok);
    }
    if let Some(nv) = t.get("network") {
        out.network = net_caps(cx, nv, &t.key("network"), &mut spots, &mut ok);
    }
    // What could not be read stays at its default, which is within any
    // ceiling, so checking the rest still reports every real excess.
    if let Some(c) = ceiling {
        for e in out.within(c).err().unwrap_or_default() {
            ok = false;
            match spots.iter().find(|s| s.field == e.field) {
                Some(s) => cx.err(&s.span, &s.key, ceiling_message(&e, s, c)),
                // Every field `within` names was read above; never silent.
                None => cx.err(
                    &v.span(),
                    &t.key(&e.field),
                    format!("exceeds the app ceiling: {}", e.message),
                ),
            }
        }
    }
    ok.then_some(out)
}

/// The diagnostic for one excess, naming the ceiling's value it breaks.
pub(crate) fn ceiling_message(e: &Excess, s: &Spot, c: &Capabilities) -> String {
    let reach = |what: &str, limit: String| {
        let p = s.pattern.as_deref().unwrap_or_default();
        match &e.witness {
            Some(w) => format!(
                "\"{p}\" exceeds the app ceiling: it matches {what}\"{w}\", which {limit} does not"
            ),
            None => format!(
                "\"{p}\" exceeds the app ceiling: {} ({limit})",
                Uncovered::TooComplex
            ),
        }
    };
    match e.field.as_str() {
        f if f.starts_with("tools.allow[") => reach(
            "tool ",
            format!("capabilities.tools.allow ({})", list_text(&c.tools.allow)),
        ),
        f if f.starts_with("ipc.") => reach("", format!("capabilities.ipc ({})", ipc_text(&c.ipc))),
        f if f.starts_with("ecc.ops[") => reach(
            "operation ",
            format!("capabilities.ecc.ops ({})", list_text(&c.ecc.ops)),
        ),
        f if f.starts_with("ecc.namespaces[") => reach(
            "namespace ",
            format!(
                "capabilities.ecc.namespaces ({})",
                list_text(&c.ecc.namespaces)
            ),
        ),
        f if f.starts_with("network.outbound[") => format!(
            "\"{}\" exceeds the app ceiling: capabilities.network.outbound ({}) does not cover it",
            s.pattern.as_deref().unwrap_or_default(),
            list_text(&c.network.outbound)
        ),
        "ipc" => format!(
            "exceeds the app ceiling; expected at most {} (capabilities.ipc)",
            ipc_text(&c.ipc)
        ),
        "sandbox" => {
            "exceeds the app ceiling; expected \"strict\" (capabilities.sandbox)".to_string()
        }
        f => format!("exceeds the app ceiling; expected false (capabilities.{f} is false)"),
    }
}

fn tool_perms(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    spots: &mut Vec<Spot>,
    ok: &mut bool,
) -> ToolPermissions {
    let mut out = ToolPermissions::default();
    let keys = ["allow", "deny"];
    let Some(t) = Tbl::of(cx, v, path, "{ allow = [..], deny = [..] }", &keys) else {
        *ok = false;
        return out;
    };
    for (name, list) in [("allow", &mut out.allow), ("deny", &mut out.deny)] {
        let Some(lv) = t.get(name) else { continue };
        let key = t.key(name);
        let DeValue::Array(a) = lv.get_ref() else {
            cx.expected(lv, &key, "an array of tool names or globs");
            *ok = false;
            continue;
        };
        for (i, item) in a.iter().enumerate() {
            let ik = format!("{key}[{i}]");
            let Some(p) = as_str(cx, item, &ik) else {
                *ok = false;
                continue;
            };
            spots.push(Spot {
                field: format!("tools.{name}[{}]", list.len()),
                span: item.span(),
                key: ik,
                pattern: Some(p.clone()),
            });
            list.push(p);
        }
    }
    out
}

/// An `ecc` value: `{ ops = [..], namespaces = [..] }`. Each op pattern
/// must name at least one operation of [`ECC_OPS`] (a typo grants nothing
/// and is refused); lists keep the entries that can be read.
fn ecc_caps(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    spots: &mut Vec<Spot>,
    ok: &mut bool,
) -> EccCaps {
    let mut out = EccCaps::default();
    let keys = ["ops", "namespaces"];
    let Some(t) = Tbl::of(cx, v, path, "{ ops = [..], namespaces = [..] }", &keys) else {
        *ok = false;
        return out;
    };
    for (name, list) in [("ops", &mut out.ops), ("namespaces", &mut out.namespaces)] {
        let Some(lv) = t.get(name) else { continue };
        let key = t.key(name);
        let DeValue::Array(a) = lv.get_ref() else {
            let what = if name == "ops" {
                "an array of ECC operation names or globs"
            } else {
                "an array of namespace names or globs"
            };
            cx.expected(lv, &key, what);
            *ok = false;
            continue;
        };
        for (i, item) in a.iter().enumerate() {
            let ik = format!("{key}[{i}]");
            let Some(p) = as_str(cx, item, &ik) else {
                *ok = false;
                continue;
            };
            if name == "ops"
                && !ECC_OPS
                    .iter()
                    .any(|op| weft_model::glob::name_matches(&p, op))
            {
                cx.err(
                    &item.span(),
                    &ik,
                    format!(
                        "\"{p}\" names no ECC operation; expected one of {} (or a glob such as \"*\")",
                        ECC_OPS.join(", ")
                    ),
                );
                *ok = false;
                continue;
            }
            if name == "namespaces" && !namespace_pattern_ok(&p) {
                cx.err(
                    &item.span(),
                    &ik,
                    format!(
                        "expected a namespace pattern: `/`-separated segments of [A-Za-z0-9._-] or globs, at most 128 bytes, found \"{p}\""
                    ),
                );
                *ok = false;
                continue;
            }
            spots.push(Spot {
                field: format!("ecc.{name}[{}]", list.len()),
                span: item.span(),
                key: ik,
                pattern: Some(p.clone()),
            });
            list.push(p);
        }
    }
    out
}

/// A namespace pattern: non-empty `/`-separated segments of
/// `[A-Za-z0-9._-]` and glob characters, none `.` or `..`.
fn namespace_pattern_ok(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*' | '?'))
        })
}

/// An `ipc` value; what cannot be read is `none`, a list keeps the
/// entries that can.
fn ipc(cx: &mut Cx<'_>, v: &Val<'_>, key: &str, spots: &mut Vec<Spot>, ok: &mut bool) -> IpcScope {
    let scope = ipc_scope(cx, v, key, spots, ok);
    *ok &= scope.is_some();
    scope.unwrap_or_default()
}

fn ipc_scope(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    key: &str,
    spots: &mut Vec<Spot>,
    ok: &mut bool,
) -> Option<IpcScope> {
    match v.get_ref() {
        DeValue::String(_) => as_choice(cx, v, key, &[("all", 0), ("parent_only", 1), ("none", 2)])
            .map(|i| [IpcScope::All, IpcScope::ParentOnly, IpcScope::None][i].clone()),
        DeValue::Table(t) if t.len() == 1 => {
            let (k, lv) = t.iter().next()?;
            let inner = join(key, k.get_ref());
            let which: &str = k.get_ref().as_ref();
            if which != "named" && which != "topics" {
                cx.err(
                    &k.span(),
                    &inner,
                    format!("unknown key; expected {IPC_EXPECTED}"),
                );
                return None;
            }
            let DeValue::Array(a) = lv.get_ref() else {
                cx.expected(lv, &inner, "an array of strings");
                return None;
            };
            let mut list = Vec::new();
            for (i, item) in a.iter().enumerate() {
                let ik = format!("{inner}[{i}]");
                let Some(p) = as_str(cx, item, &ik) else {
                    *ok = false;
                    continue;
                };
                spots.push(Spot {
                    field: format!("ipc.{which}[{}]", list.len()),
                    span: item.span(),
                    key: ik,
                    pattern: Some(p.clone()),
                });
                list.push(p);
            }
            Some(if which == "named" {
                IpcScope::Named(list)
            } else {
                IpcScope::Topics(list)
            })
        }
        _ => {
            cx.expected(v, key, IPC_EXPECTED);
            None
        }
    }
}

fn agent_limits(cx: &mut Cx<'_>, v: &Val<'_>, path: &str) -> Option<AgentLimits> {
    let t = Tbl::of(cx, v, path, "a limits table", LIMIT_KEYS)?;
    let d = AgentLimits::default();
    let mut ok = true;
    let mut get = |name: &str, min: u64, default: u64| match t.get(name) {
        None => default,
        Some(x) => as_int(cx, x, &t.key(name), min, i64::MAX as u64).unwrap_or_else(|| {
            ok = false;
            default
        }),
    };
    let out = AgentLimits {
        fuel_per_message: get("fuel_per_message", 1, d.fuel_per_message),
        timeout_ms: get("timeout_ms", 1, d.timeout_ms),
        max_memory_bytes: get("max_memory_bytes", 1, d.max_memory_bytes),
        max_messages: get("max_messages", 0, d.max_messages),
        max_tool_calls: get("max_tool_calls", 0, d.max_tool_calls),
    };
    ok.then_some(out)
}

/// A `restart` value: `"never"`, `"always"` or `{ on_failure = { .. } }`
/// (agents and container services share the grammar).
pub fn restart(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<RestartPolicy> {
    match v.get_ref() {
        DeValue::String(s) if s == "never" => Some(RestartPolicy::Never),
        DeValue::String(s) if s == "always" => Some(RestartPolicy::Always),
        DeValue::String(s) => {
            cx.err(
                &v.span(),
                key,
                format!("expected {RESTART_EXPECTED}, found \"{s}\""),
            );
            None
        }
        DeValue::Table(t) => {
            let outer = Tbl::new(cx, t, v.span(), key, &["on_failure"]);
            let of = outer.req(cx, "on_failure", "{ max_retries, backoff_ms }")?;
            let inner = Tbl::of(
                cx,
                of,
                &outer.key("on_failure"),
                "{ max_retries, backoff_ms }",
                &["max_retries", "backoff_ms"],
            )?;
            let retries = inner
                .req(cx, "max_retries", "an integer")
                .and_then(|x| as_int(cx, x, &inner.key("max_retries"), 0, u32::MAX as u64));
            let backoff = inner
                .req(cx, "backoff_ms", "an integer")
                .and_then(|x| as_int(cx, x, &inner.key("backoff_ms"), 0, 3_600_000));
            Some(RestartPolicy::OnFailure(OnFailure {
                max_retries: u32::try_from(retries?).ok()?,
                backoff_ms: backoff?,
            }))
        }
        _ => {
            cx.expected(v, key, RESTART_EXPECTED);
            None
        }
    }
}

/// One `[[cron]]` entry: a schedule, an agent of this app, a payload.
/// The schedule's syntax is the cron component's to judge when the app
/// starts; here it only has to be a non-empty string.
pub fn cron_job(cx: &mut Cx<'_>, v: &Val<'_>, path: &str, agents: &[String]) -> Option<CronJob> {
    let t = Tbl::of(
        cx,
        v,
        path,
        "a table ([[cron]])",
        &["schedule", "target", "payload"],
    )?;
    let schedule = t.req(cx, "schedule", "a string").and_then(|sv| {
        let s = as_str(cx, sv, &t.key("schedule"))?;
        if s.trim().is_empty() {
            cx.err(
                &sv.span(),
                &t.key("schedule"),
                "expected a cron expression, `every <duration>` or `at <RFC 3339 time>`, found an empty string",
            );
            return None;
        }
        Some(s)
    });
    let target = t.req(cx, "target", "a string").and_then(|tv| {
        let id = as_str(cx, tv, &t.key("target"))?;
        if !agents.contains(&id) {
            cx.err(
                &tv.span(),
                &t.key("target"),
                format!("expected the id of an agent in [[agents]], found \"{id}\""),
            );
            return None;
        }
        Some(id)
    });
    let payload = match t.get("payload") {
        None => Some("{}".to_string()),
        Some(pv) => to_json(cx, pv, &t.key("payload")).map(|j| j.to_string()),
    };
    Some(CronJob {
        schedule: schedule?,
        target: target?,
        payload: payload?,
    })
}

/// TOML to JSON for `config`. Datetimes become strings; NaN and infinities
/// have no JSON form and are refused.
fn to_json(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match v.get_ref() {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => J::from(n),
            Err(_) => {
                cx.err(
                    &v.span(),
                    key,
                    "expected a 64-bit integer, found one out of range",
                );
                return None;
            }
        },
        DeValue::Float(f) => {
            let n = f.as_str().replace('_', "").parse::<f64>().ok();
            match n.and_then(serde_json::Number::from_f64) {
                Some(n) => J::Number(n),
                None => {
                    cx.err(&v.span(), key, "expected a finite number, found nan or inf");
                    return None;
                }
            }
        }
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => {
            let mut out = Vec::new();
            for (i, item) in a.iter().enumerate() {
                out.push(to_json(cx, item, &format!("{key}[{i}]"))?);
            }
            J::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = serde_json::Map::new();
            for (k, item) in t.iter() {
                out.insert(
                    k.get_ref().to_string(),
                    to_json(cx, item, &join(key, k.get_ref()))?,
                );
            }
            J::Object(out)
        }
    })
}

fn ipc_text(i: &IpcScope) -> String {
    match i {
        IpcScope::All => "\"all\"".into(),
        IpcScope::ParentOnly => "\"parent_only\"".into(),
        IpcScope::None => "\"none\"".into(),
        IpcScope::Named(n) => format!("{{ named = {} }}", list_text(n)),
        IpcScope::Topics(t) => format!("{{ topics = {} }}", list_text(t)),
    }
}

pub(crate) fn list_text(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}
