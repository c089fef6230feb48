//! `[[agents]]` and `[capabilities]`: capabilities, limits, restart policy
//! and config, with the app ceiling enforced where each value is read.

use toml::de::DeValue;

use crate::check::{name_ok, ID_CHARS};
use crate::model::{Agent, AgentLimits, Caps, CronJob, Ipc, Restart, Role, Sandbox, ToolPerms};
use crate::paths::component_path;
use crate::walk::{as_choice, as_int, as_str, join, Cx, Tbl, Val};

const AGENT_KEYS: &[&str] = &[
    "id",
    "component",
    "role",
    "auto_start",
    "capabilities",
    "limits",
    "restart",
    "config",
];
const CAP_KEYS: &[&str] = &["tools", "ipc", "sandbox", "chain_append", "spawn"];
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
    ceiling: Option<&Caps>,
    seen: &mut Vec<String>,
) -> Option<Agent> {
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
        None => Some(Role::Worker),
        Some(rv) => as_choice(
            cx,
            rv,
            &t.key("role"),
            &[
                ("worker", Role::Worker),
                ("coordinator", Role::Coordinator),
                ("supervisor", Role::Supervisor),
                ("system", Role::System),
            ],
        ),
    };
    let auto_start = t.bool(cx, "auto_start", true);
    let mut capabilities = match t.get("capabilities") {
        None => Some(Caps::default()),
        Some(cv) => caps(cx, cv, &t.key("capabilities"), ceiling),
    };
    if let (Some(own), Some(c)) = (capabilities.as_mut(), ceiling) {
        // The ceiling's denials bind every agent.
        for d in &c.tools.deny {
            if !own.tools.deny.contains(d) {
                own.tools.deny.push(d.clone());
            }
        }
    }
    let limits = match t.get("limits") {
        None => Some(None),
        Some(lv) => agent_limits(cx, lv, &t.key("limits")).map(Some),
    };
    let restart = match t.get("restart") {
        None => Some(Restart::Never),
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
    Some(Agent {
        id: id?,
        component: component?,
        role: role?,
        auto_start,
        capabilities: capabilities?,
        limits: limits?,
        restart: restart?,
        config: config?,
    })
}

/// A capabilities table; with a ceiling, each value must stay within it.
pub fn caps(cx: &mut Cx<'_>, v: &Val<'_>, path: &str, ceiling: Option<&Caps>) -> Option<Caps> {
    let t = Tbl::of(cx, v, path, "a capabilities table", CAP_KEYS)?;
    let mut ok = true;
    let mut out = Caps::default();
    if let Some(tv) = t.get("tools") {
        match tool_perms(cx, tv, &t.key("tools"), ceiling.map(|c| &c.tools)) {
            Some(p) => out.tools = p,
            None => ok = false,
        }
    }
    if let Some(iv) = t.get("ipc") {
        match ipc(cx, iv, &t.key("ipc")) {
            Some(scope) => {
                if let Some(c) = ceiling.filter(|c| !ipc_within(&scope, &c.ipc)) {
                    cx.err(
                        &iv.span(),
                        &t.key("ipc"),
                        format!(
                            "exceeds the app ceiling; expected at most {} (capabilities.ipc)",
                            ipc_text(&c.ipc)
                        ),
                    );
                    ok = false;
                }
                out.ipc = scope;
            }
            None => ok = false,
        }
    }
    if let Some(sv) = t.get("sandbox") {
        let choices = [("strict", Sandbox::Strict), ("granted", Sandbox::Granted)];
        match as_choice(cx, sv, &t.key("sandbox"), &choices) {
            Some(s) => {
                if s == Sandbox::Granted && ceiling.is_some_and(|c| c.sandbox == Sandbox::Strict) {
                    cx.err(
                        &sv.span(),
                        &t.key("sandbox"),
                        "exceeds the app ceiling; expected \"strict\" (capabilities.sandbox)",
                    );
                    ok = false;
                }
                out.sandbox = s;
            }
            None => ok = false,
        }
    }
    for (name, field) in [("chain_append", 0), ("spawn", 1)] {
        let Some(bv) = t.get(name) else { continue };
        let val = t.bool(cx, name, false);
        if !matches!(bv.get_ref(), DeValue::Boolean(_)) {
            ok = false;
        }
        let allowed = ceiling.is_none_or(|c| if field == 0 { c.chain_append } else { c.spawn });
        if val && !allowed {
            cx.err(
                &bv.span(),
                &t.key(name),
                format!("exceeds the app ceiling; expected false (capabilities.{name} is false)"),
            );
            ok = false;
        }
        if field == 0 {
            out.chain_append = val;
        } else {
            out.spawn = val;
        }
    }
    ok.then_some(out)
}

fn tool_perms(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    ceiling: Option<&ToolPerms>,
) -> Option<ToolPerms> {
    let t = Tbl::of(
        cx,
        v,
        path,
        "{ allow = [..], deny = [..] }",
        &["allow", "deny"],
    )?;
    let mut ok = true;
    let mut out = ToolPerms::default();
    for (name, list) in [("allow", &mut out.allow), ("deny", &mut out.deny)] {
        let Some(lv) = t.get(name) else { continue };
        let key = t.key(name);
        let DeValue::Array(a) = lv.get_ref() else {
            cx.expected(lv, &key, "an array of tool names or globs");
            ok = false;
            continue;
        };
        for (i, item) in a.iter().enumerate() {
            let ik = format!("{key}[{i}]");
            let Some(p) = as_str(cx, item, &ik) else {
                ok = false;
                continue;
            };
            if let Some(c) = ceiling.filter(|c| name == "allow" && !covered(&p, &c.allow)) {
                cx.err(
                    &item.span(),
                    &ik,
                    format!(
                        "\"{p}\" exceeds the app ceiling; expected a tool allowed by \
                         capabilities.tools.allow ({})",
                        list_text(&c.allow)
                    ),
                );
                ok = false;
            }
            list.push(p);
        }
    }
    ok.then_some(out)
}

fn ipc(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<Ipc> {
    match v.get_ref() {
        DeValue::String(_) => as_choice(cx, v, key, &[("all", 0), ("parent_only", 1), ("none", 2)])
            .map(|i| [Ipc::All, Ipc::ParentOnly, Ipc::None][i].clone()),
        DeValue::Table(t) if t.len() == 1 => {
            let (k, lv) = t.iter().next()?;
            let inner = join(key, k.get_ref());
            let which = k.get_ref().as_ref();
            if which != "named" && which != "topics" {
                cx.err(
                    &k.span(),
                    &inner,
                    format!("unknown key; expected {IPC_EXPECTED}"),
                );
                return None;
            }
            let list = crate::walk::as_str_list(cx, lv, &inner)?;
            Some(if which == "named" {
                Ipc::Named(list)
            } else {
                Ipc::Topics(list)
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

fn restart(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<Restart> {
    match v.get_ref() {
        DeValue::String(s) if s == "never" => Some(Restart::Never),
        DeValue::String(s) if s == "always" => Some(Restart::Always),
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
            Some(Restart::OnFailure {
                max_retries: u32::try_from(retries?).ok()?,
                backoff_ms: backoff?,
            })
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

/// Is `pattern` (an agent's allow entry) within one of the ceiling's?
/// A glob is treated as literal text, so `calc*` is covered by `c*` or `*`.
fn covered(pattern: &str, ceiling: &[String]) -> bool {
    ceiling.iter().any(|c| glob(c, pattern))
}

fn ipc_within(a: &Ipc, c: &Ipc) -> bool {
    match (a, c) {
        (Ipc::None, _) | (_, Ipc::All) | (Ipc::ParentOnly, Ipc::ParentOnly) => true,
        (Ipc::Named(a), Ipc::Named(c)) | (Ipc::Topics(a), Ipc::Topics(c)) => {
            a.iter().all(|p| covered(p, c))
        }
        _ => false,
    }
}

fn ipc_text(i: &Ipc) -> String {
    match i {
        Ipc::All => "\"all\"".into(),
        Ipc::ParentOnly => "\"parent_only\"".into(),
        Ipc::None => "\"none\"".into(),
        Ipc::Named(n) => format!("{{ named = {} }}", list_text(n)),
        Ipc::Topics(t) => format!("{{ topics = {} }}", list_text(t)),
    }
}

fn list_text(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}

/// The kernel's glob: `*` any run, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
