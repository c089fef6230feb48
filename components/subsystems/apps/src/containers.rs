//! The container keys of an `image` / `image_archive` service: what the
//! manifest itself can decide (syntax, ranges, the security rules no
//! environment relaxes). What depends on the environment (the allowed host
//! port range, the host address, which capabilities it grants, resource
//! ceilings) is the kernel's to decide at install.

use std::ops::Range;

use toml::de::DeValue;
use weft_model::plan::{
    ContainerSpec, OnFailure, PortMap, PullPolicy, RestartPolicy, ServiceCall, VolumeMount,
    LINUX_CAPABILITIES, MIN_CONTAINER_MEMORY, NEVER_CAPABILITIES,
};

use weft_model::policy::{ContainerEngine, ContainerPolicy, NO_CONTAINER_ENGINE};

use crate::agents;
use crate::paths::data_dir_problem;
use crate::walk::{as_choice, as_int, as_str, join, Cx, Tbl, Val};

/// Keys only an `image` or `image_archive` service may have.
pub const CONTAINER_KEYS: &[&str] = &[
    "pull",
    "command",
    "ports",
    "volumes",
    "resources",
    "restart",
    "cap_add",
    "read_only",
    "call",
];

/// The message for `privileged`, whatever its value.
pub const NEVER_PRIVILEGED: &str = "never allowed: Weft never runs privileged containers";
/// The message for `network`, `network_mode`, `pid` and `pid_mode`.
pub const NEVER_NAMESPACES: &str =
    "never allowed: containers get their own network and PID namespace";
/// The message for a volume naming the Docker socket.
pub const NEVER_DOCKER_SOCKET: &str =
    "never allowed: the Docker socket is never mounted into a container";

/// Keys Weft knows and refuses on any service, with their messages.
pub const REFUSED_KEYS: &[(&str, &str)] = &[
    ("privileged", NEVER_PRIVILEGED),
    ("network", NEVER_NAMESPACES),
    ("network_mode", NEVER_NAMESPACES),
    ("pid", NEVER_NAMESPACES),
    ("pid_mode", NEVER_NAMESPACES),
];

/// The default restart policy of a container service.
pub const DEFAULT_RESTART: RestartPolicy = RestartPolicy::OnFailure(OnFailure {
    max_retries: 3,
    backoff_ms: 500,
});

/// Fewest and most CPUs, and the step: 10⁻⁹ CPUs.
const MIN_CPUS: f64 = 0.01;
const MAX_CPUS: f64 = 64.0;
const NANO: f64 = 1e9;

const PORT_SYNTAX: &str = "\"HOST:CONTAINER\" with each port from 1 to 65535, e.g. \"18080:8080\"";
const MEMORY_EXPECTED: &str =
    "a memory size of at least 6 MiB: bytes as an integer, or a string like \"64m\" (k, m or g)";

/// The message for a container-only key on another kind of service.
pub fn only_for_images(kind: &str) -> String {
    format!("only for image services (`image` or `image_archive`), not for a `{kind}` service")
}

/// The container keys of service table `t`. `archive`: the source is an
/// `image_archive`. Returns the spec and the published container ports
/// (`None` when `ports` could not be read, so nothing is checked against
/// them).
pub fn spec(
    cx: &mut Cx<'_>,
    t: &Tbl<'_, '_>,
    archive: bool,
) -> (Option<ContainerSpec>, Option<Vec<u16>>) {
    let before = cx.diags.len();
    let pull = pull(cx, t, archive);
    let command = match t.get("command") {
        None => Some(Vec::new()),
        Some(v) => argv(cx, v, &t.key("command")),
    };
    let ports = ports(cx, t);
    let published: Option<Vec<u16>> = ports
        .as_ref()
        .map(|p| p.iter().map(|m| m.container).collect());
    let volumes = volumes(cx, t);
    let (memory_bytes, nano_cpus) = resources(cx, t);
    let restart = match t.get("restart") {
        None => Some(DEFAULT_RESTART),
        Some(v) => agents::restart(cx, v, &t.key("restart")),
    };
    let cap_add = cap_add(cx, t);
    let read_only = t.bool(cx, "read_only", false);
    let call = match t.get("call") {
        None => Some(None),
        Some(v) => call(cx, v, &t.key("call"), published.as_deref()).map(Some),
    };
    env(cx, t);
    let spec = (|| {
        Some(ContainerSpec {
            pull: pull?,
            command: command?,
            ports: ports?,
            volumes: volumes?,
            memory_bytes: memory_bytes?,
            nano_cpus: nano_cpus?,
            restart: restart?,
            cap_add: cap_add?,
            read_only,
            call: call?,
        })
    })();
    (spec.filter(|_| cx.diags.len() == before), published)
}

/// Refuse a container service (at its `image` / `image_archive` key `v`)
/// when the kernel has no container engine.
pub fn engine_present(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) {
    if cx.policy.containers == ContainerEngine::Absent {
        cx.err(&v.span(), key, NO_CONTAINER_ENGINE.to_string());
    }
}

/// The kernel's container policy, when it has one.
fn policy(cx: &Cx<'_>) -> Option<ContainerPolicy> {
    match &cx.policy.containers {
        ContainerEngine::Policy(p) => Some(p.clone()),
        _ => None,
    }
}

/// Why `r` is not an image reference `[registry/]name[:tag][@sha256:<64
/// hex>]`, or `None` when it is one.
pub fn image_ref_problem(r: &str) -> Option<&'static str> {
    if r.is_empty() {
        return Some("it is empty");
    }
    if r.len() > 512 {
        return Some("it is longer than 512 bytes");
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it has whitespace or control characters");
    }
    let (rest, digest) = match r.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let hex = |h: &str| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !d.strip_prefix("sha256:").is_some_and(hex) {
            return Some("a digest is `@sha256:` and 64 lower-case hex digits");
        }
    }
    // A tag follows the last `:` after the last `/` (a `:` before it is a
    // registry port).
    let slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(i) if slash.is_none_or(|s| i > s) => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        let mut cs = tag.chars();
        let first = cs
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let rest_ok = cs.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !(first && rest_ok && tag.len() <= 128) {
            return Some("a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with `.` or `-`");
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
            let port_ok = port.is_none_or(|p| {
                !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit())
            });
            if !(host_ok && port_ok) {
                return Some("a registry is a host name with an optional `:port`");
            }
            parts.remove(0);
        }
    }
    let component_ok = |c: &str| {
        let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
        c.chars().next().is_some_and(alnum)
            && c.chars().last().is_some_and(alnum)
            && c.chars().all(|ch| alnum(ch) || "._-".contains(ch))
    };
    if !parts.iter().all(|c| component_ok(c)) {
        return Some(
            "a name is `/`-separated parts of lower-case letters, digits and `.`, `_`, `-`, \
             each starting and ending with a letter or digit",
        );
    }
    None
}

/// `pull`: `never` | `if-not-present`; an archive is never pulled.
fn pull(cx: &mut Cx<'_>, t: &Tbl<'_, '_>, archive: bool) -> Option<PullPolicy> {
    let default = if archive {
        PullPolicy::Never
    } else {
        PullPolicy::IfNotPresent
    };
    let Some(v) = t.get("pull") else {
        return Some(default);
    };
    let key = t.key("pull");
    let choices = [
        ("never", PullPolicy::Never),
        ("if-not-present", PullPolicy::IfNotPresent),
    ];
    let p = as_choice(cx, v, &key, &choices)?;
    if archive && p != PullPolicy::Never {
        cx.err(
            &v.span(),
            &key,
            "an `image_archive` is loaded at install, never pulled; expected \"never\", \
             found \"if-not-present\"",
        );
        return None;
    }
    Some(p)
}

/// A non-empty argv: `command`, a health `exec`.
fn argv(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<Vec<String>> {
    let what = "a non-empty array of strings (argv)";
    let DeValue::Array(a) = v.get_ref() else {
        cx.expected(v, key, what);
        return None;
    };
    if a.is_empty() {
        cx.err(
            &v.span(),
            key,
            format!("expected {what}, found an empty array"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in a.iter().enumerate() {
        let ik = format!("{key}[{i}]");
        match as_str(cx, item, &ik) {
            Some(s) if s.contains('\0') => {
                cx.err(&item.span(), &ik, "expected no NUL characters, found one");
                ok = false;
            }
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A port `1..=65535` written as decimal digits.
fn port_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// `ports = ["HOST:CONTAINER", ..]`, no host port twice.
fn ports(cx: &mut Cx<'_>, t: &Tbl<'_, '_>) -> Option<Vec<PortMap>> {
    let Some(pv) = t.get("ports") else {
        return Some(Vec::new());
    };
    let key = t.key("ports");
    let DeValue::Array(a) = pv.get_ref() else {
        cx.expected(pv, &key, "an array of \"HOST:CONTAINER\" strings");
        return None;
    };
    let mut out: Vec<PortMap> = Vec::new();
    let mut ok = true;
    for (i, item) in a.iter().enumerate() {
        let ik = format!("{key}[{i}]");
        let DeValue::String(s) = item.get_ref() else {
            cx.expected(item, &ik, &format!("a string {PORT_SYNTAX}"));
            ok = false;
            continue;
        };
        let parsed = s
            .split_once(':')
            .and_then(|(h, c)| Some((port_number(h)?, port_number(c)?)));
        match parsed {
            None => {
                cx.err(
                    &item.span(),
                    &ik,
                    format!("expected {PORT_SYNTAX}, found \"{s}\""),
                );
                ok = false;
            }
            Some((host, _)) if out.iter().any(|p| p.host == host) => {
                cx.err(
                    &item.span(),
                    &ik,
                    format!("duplicate host port {host}; expected each host port once"),
                );
                ok = false;
            }
            Some((host, container)) => {
                if let Some(why) = policy(cx).and_then(|p| p.port_problem(host)) {
                    cx.err(&item.span(), &ik, why);
                    ok = false;
                }
                out.push(PortMap { host, container })
            }
        }
    }
    ok.then_some(out)
}

/// Does a path name the Docker socket (any `docker.sock` segment)?
fn docker_socket(p: &str) -> bool {
    p.split('/')
        .any(|seg| seg.eq_ignore_ascii_case("docker.sock"))
}

/// `volumes = ["HOST:CONTAINER[:ro]", ..]`: the host side under the app's
/// data dir, the container side absolute, each mount point once.
fn volumes(cx: &mut Cx<'_>, t: &Tbl<'_, '_>) -> Option<Vec<VolumeMount>> {
    let Some(vv) = t.get("volumes") else {
        return Some(Vec::new());
    };
    let key = t.key("volumes");
    let DeValue::Array(a) = vv.get_ref() else {
        cx.expected(vv, &key, "an array of \"HOST:CONTAINER[:ro]\" strings");
        return None;
    };
    let mut out: Vec<VolumeMount> = Vec::new();
    let mut ok = true;
    for (i, item) in a.iter().enumerate() {
        let ik = format!("{key}[{i}]");
        match volume(cx, item, &ik, &out) {
            Some(m) => out.push(m),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn volume(cx: &mut Cx<'_>, item: &Val<'_>, key: &str, seen: &[VolumeMount]) -> Option<VolumeMount> {
    let syntax = "\"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\"";
    let DeValue::String(s) = item.get_ref() else {
        cx.expected(item, key, &format!("a string {syntax}"));
        return None;
    };
    let mut err = |msg: String| {
        cx.err(&item.span(), key, msg);
        None
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        _ => return err(format!("expected {syntax}, found \"{s}\"")),
    };
    if docker_socket(host) || docker_socket(container) {
        return err(format!("{NEVER_DOCKER_SOCKET} (found \"{s}\")"));
    }
    if let Some(why) = data_dir_problem(host) {
        return err(format!(
            "expected HOST to be a relative path inside the app's data dir, found \"{host}\" \
             ({why})"
        ));
    }
    let container_ok = container.starts_with('/')
        && !container.trim_end_matches('/').is_empty()
        && container.len() <= 256
        && !container.chars().any(char::is_control)
        && !container.split('/').any(|seg| seg == "..");
    if !container_ok {
        return err(format!(
            "expected CONTAINER to be an absolute path other than \"/\", without `..`, \
             found \"{container}\""
        ));
    }
    let target = container.trim_end_matches('/');
    if seen
        .iter()
        .any(|m| m.container.trim_end_matches('/') == target)
    {
        return err(format!(
            "duplicate container path \"{container}\"; expected each mount point once"
        ));
    }
    Some(VolumeMount {
        host: host.to_string(),
        container: container.to_string(),
        read_only,
    })
}

/// `resources = { memory, cpus }`: each `Some(None)` when absent, `None`
/// when wrong.
#[allow(clippy::type_complexity)]
fn resources(cx: &mut Cx<'_>, t: &Tbl<'_, '_>) -> (Option<Option<u64>>, Option<Option<u64>>) {
    let Some(rv) = t.get("resources") else {
        return (Some(None), Some(None));
    };
    let path = t.key("resources");
    let Some(r) = Tbl::of(
        cx,
        rv,
        &path,
        "a table { memory, cpus }",
        &["memory", "cpus"],
    ) else {
        return (None, None);
    };
    let memory = match r.get("memory") {
        None => Some(None),
        Some(v) => memory(cx, v, &r.key("memory")).map(Some),
    };
    let cpus = match r.get("cpus") {
        None => Some(None),
        Some(v) => cpus(cx, v, &r.key("cpus")).map(Some),
    };
    (memory, cpus)
}

/// Bytes, from an integer or `"<n>"`, `"<n>k"`, `"<n>m"`, `"<n>g"` (binary
/// units, either case); at least [`MIN_CONTAINER_MEMORY`].
pub fn memory_bytes(s: &str) -> Option<u64> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c.to_ascii_lowercase())),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some(_) => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn memory(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<u64> {
    let (bytes, found) = match v.get_ref() {
        DeValue::Integer(i) => {
            let n = i64::from_str_radix(i.as_str(), i.radix()).ok();
            (
                n.and_then(|n| u64::try_from(n).ok()),
                n.map_or("an integer out of range".to_string(), |n| n.to_string()),
            )
        }
        DeValue::String(s) => (memory_bytes(s), format!("\"{s}\"")),
        _ => {
            cx.expected(v, key, MEMORY_EXPECTED);
            return None;
        }
    };
    match bytes {
        Some(b) if (MIN_CONTAINER_MEMORY..=i64::MAX as u64).contains(&b) => {
            if let Some(why) = policy(cx).and_then(|p| p.memory_problem(b)) {
                cx.err(&v.span(), key, why);
                return None;
            }
            Some(b)
        }
        _ => {
            cx.err(
                &v.span(),
                key,
                format!("expected {MEMORY_EXPECTED}, found {found}"),
            );
            None
        }
    }
}

/// CPUs from 0.01 to 64, as nano-CPUs.
fn cpus(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<u64> {
    let what = "a number of CPUs from 0.01 to 64";
    let n = match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        _ => {
            cx.expected(v, key, what);
            return None;
        }
    };
    match n {
        Some(c) if (MIN_CPUS..=MAX_CPUS).contains(&c) => {
            let nano = (c * NANO).round() as u64;
            if let Some(why) = policy(cx).and_then(|p| p.cpus_problem(nano)) {
                cx.err(&v.span(), key, why);
                return None;
            }
            Some(nano)
        }
        Some(c) => {
            cx.err(&v.span(), key, format!("expected {what}, found {c}"));
            None
        }
        None => {
            cx.err(&v.span(), key, format!("expected {what}, found nan or inf"));
            None
        }
    }
}

/// `cap_add = ["NET_BIND_SERVICE", ..]`: Linux capability names without
/// `CAP_`; `ALL` and the capabilities that amount to host root never.
fn cap_add(cx: &mut Cx<'_>, t: &Tbl<'_, '_>) -> Option<Vec<String>> {
    let Some(cv) = t.get("cap_add") else {
        return Some(Vec::new());
    };
    let key = t.key("cap_add");
    let DeValue::Array(a) = cv.get_ref() else {
        cx.expected(cv, &key, "an array of Linux capability names");
        return None;
    };
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (i, item) in a.iter().enumerate() {
        let ik = format!("{key}[{i}]");
        let Some(c) = as_str(cx, item, &ik) else {
            ok = false;
            continue;
        };
        let bare = c.strip_prefix("CAP_").unwrap_or(&c);
        let problem = if bare == "ALL" {
            Some(format!(
                "never allowed: \"{c}\" would give the container every capability"
            ))
        } else if NEVER_CAPABILITIES.contains(&bare) {
            Some(format!(
                "never allowed: \"{c}\" amounts to root on the host"
            ))
        } else if c.starts_with("CAP_") && LINUX_CAPABILITIES.contains(&bare) {
            Some(format!(
                "expected the name without \"CAP_\", e.g. \"{bare}\", found \"{c}\""
            ))
        } else if !LINUX_CAPABILITIES.contains(&c.as_str()) {
            Some(format!(
                "expected a Linux capability name like \"NET_BIND_SERVICE\" (upper case, \
                 without \"CAP_\"), found \"{c}\""
            ))
        } else if out.contains(&c) {
            Some(format!(
                "duplicate capability \"{c}\"; expected each capability once"
            ))
        } else {
            policy(cx).and_then(|p| p.cap_problem(&c))
        };
        match problem {
            Some(msg) => {
                cx.err(&item.span(), &ik, msg);
                ok = false;
            }
            None => out.push(c),
        }
    }
    ok.then_some(out)
}

/// An absolute HTTP path: `/`, no whitespace or control characters.
pub fn http_path(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<String> {
    let p = as_str(cx, v, key)?;
    let ok = p.starts_with('/')
        && p.len() <= 1024
        && !p.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Some(p)
    } else {
        cx.err(
            &v.span(),
            key,
            format!("expected an absolute path like \"/\" without whitespace, found \"{p}\""),
        );
        None
    }
}

/// A container port that `ports` publishes (`published`; unchecked when
/// `None`, because `ports` itself is wrong and already reported).
pub fn published_port(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    key: &str,
    published: Option<&[u16]>,
) -> Option<u16> {
    let p = as_int(cx, v, key, 1, 65535).and_then(|p| u16::try_from(p).ok())?;
    let Some(published) = published else {
        return Some(p);
    };
    if published.contains(&p) {
        return Some(p);
    }
    let msg = if published.is_empty() {
        format!(
            "expected a container port published in `ports`, but `ports` publishes none; \
             found {p}"
        )
    } else {
        let list: Vec<String> = published.iter().map(u16::to_string).collect();
        format!(
            "expected a container port published in `ports` ({}), found {p}",
            list.join(", ")
        )
    };
    cx.err(&v.span(), key, msg);
    None
}

/// `call = { port, path = "/" }`.
fn call(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    published: Option<&[u16]>,
) -> Option<ServiceCall> {
    let t = Tbl::of(cx, v, path, "a table { port, path }", &["port", "path"])?;
    let port = t
        .req(cx, "port", "a published container port")
        .and_then(|pv| published_port(cx, pv, &t.key("port"), published));
    let p = match t.get("path") {
        None => Some("/".to_string()),
        Some(pv) => http_path(cx, pv, &t.key("path")),
    };
    Some(ServiceCall {
        port: port?,
        path: p?,
    })
}

/// A container's environment: names without `=` (TOML lets a quoted key
/// hold one), nothing with NUL. The values are read with the service.
fn env(cx: &mut Cx<'_>, t: &Tbl<'_, '_>) {
    let Some(ev) = t.get("env") else {
        return;
    };
    let DeValue::Table(vars) = ev.get_ref() else {
        return;
    };
    let key = t.key("env");
    for (k, v) in vars.iter() {
        let name: &str = k.get_ref();
        let span: Range<usize> = k.span();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            cx.err(
                &span,
                &join(&key, name),
                format!(
                    "expected a variable name without `=` or NUL, found \"{}\"",
                    name.escape_debug()
                ),
            );
        } else if matches!(v.get_ref(), DeValue::String(s) if s.contains('\0')) {
            cx.err(
                &v.span(),
                &join(&key, name),
                "expected no NUL characters, found one",
            );
        }
    }
}

/// Exactly one of `tcp`, `http`, `exec` in a health table `t`.
pub fn probe(
    cx: &mut Cx<'_>,
    t: &Tbl<'_, '_>,
    published: Option<&[u16]>,
) -> Option<weft_model::plan::Probe> {
    use weft_model::plan::{HttpProbe, Probe};
    let mut present: Vec<(&str, &Val<'_>)> = ["tcp", "http", "exec"]
        .into_iter()
        .filter_map(|k| t.get(k).map(|v| (k, v)))
        .collect();
    present.sort_by_key(|(_, v)| v.span().start);
    match present.as_slice() {
        [] => {
            cx.err(
                &t.span,
                &t.path,
                "missing probe; expected exactly one of `tcp`, `http` or `exec` for an image \
                 service",
            );
            None
        }
        [("tcp", v)] => published_port(cx, v, &t.key("tcp"), published).map(Probe::Tcp),
        [("http", v)] => {
            let path = t.key("http");
            let keys = ["port", "path", "status"];
            let h = Tbl::of(cx, v, &path, "a table { port, path, status }", &keys)?;
            let port = h
                .req(cx, "port", "a published container port")
                .and_then(|pv| published_port(cx, pv, &h.key("port"), published));
            let p = match h.get("path") {
                None => Some("/".to_string()),
                Some(pv) => http_path(cx, pv, &h.key("path")),
            };
            let status = match h.get("status") {
                None => Some(200),
                Some(sv) => as_int(cx, sv, &h.key("status"), 100, 599),
            };
            Some(Probe::Http(HttpProbe {
                port: port?,
                path: p?,
                status: u16::try_from(status?).ok()?,
            }))
        }
        [(_, v)] => argv(cx, v, &t.key("exec")).map(Probe::Exec),
        [(first, _), (second, v), ..] => {
            cx.err(
                &v.span(),
                &t.key(second),
                format!(
                    "expected exactly one of `tcp`, `http` or `exec`, found both `{first}` \
                     and `{second}`"
                ),
            );
            None
        }
    }
}
