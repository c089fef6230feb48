//! `[[tools]]`, `[[services]]` (container keys in `containers`), `[hooks]`
//! and `[environment]`.

use toml::de::DeValue;

use crate::check::{name_ok, NAME_CHARS};
use crate::containers;
use crate::paths::{bundle_file_path, component_path, data_dir_path, guest_path};
use crate::walk::{as_choice, as_str, Cx, Tbl, Val};
use weft_model::caps::Capabilities;
use weft_model::net::NetCaps;
use weft_model::plan::{
    DirGrant, EnvVar, HealthCheck, Hooks, Probe, ProbeKind, ServiceSource, ServiceSpec, ToolLimits,
    ToolSpec,
};

/// A `[a-z0-9-]` name, unique among `seen`.
fn unique_name(
    cx: &mut Cx<'_>,
    t: &Tbl<'_, '_>,
    what: &str,
    seen: &mut Vec<String>,
) -> Option<String> {
    let nv = t.req(cx, "name", "a string")?;
    let name = as_str(cx, nv, &t.key("name"))?;
    if !name_ok(&name, NAME_CHARS) {
        cx.err(
            &nv.span(),
            &t.key("name"),
            format!("expected 1 to 64 characters from [a-z0-9-], found \"{name}\""),
        );
        return None;
    }
    if seen.contains(&name) {
        cx.err(
            &nv.span(),
            &t.key("name"),
            format!("duplicate {what} name \"{name}\"; expected each {what} name once"),
        );
        return None;
    }
    seen.push(name.clone());
    Some(name)
}

/// Reads one `[[tools]]` entry; `seen` catches duplicate names. Its
/// `network` must be within the app ceiling's, when there is one.
pub fn tool(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    ceiling: Option<&Capabilities>,
    seen: &mut Vec<String>,
) -> Option<ToolSpec> {
    let keys = ["name", "component", "grants", "network", "limits"];
    let t = Tbl::of(cx, v, path, "a table ([[tools]])", &keys)?;
    let network = match t.get("network") {
        None => Some(NetCaps::default()),
        Some(nv) => crate::network::tool_net(cx, nv, &t.key("network"), ceiling),
    };
    let name = unique_name(cx, &t, "tool", seen);
    let component = t
        .req(cx, "component", "a component path")
        .and_then(|c| component_path(cx, c, &t.key("component")));
    let (dirs, env) = match t.get("grants") {
        None => (Some(Vec::new()), Vec::new()),
        Some(gv) => {
            let g = Tbl::of(cx, gv, &t.key("grants"), "a grants table", &["dirs", "env"])?;
            (dirs(cx, &g), env(g.str_map(cx, "env")))
        }
    };
    let limits = match t.get("limits") {
        None => Some(ToolLimits::default()),
        Some(lv) => {
            let keys = ["fuel", "timeout_ms", "max_memory_bytes"];
            let l = Tbl::of(cx, lv, &t.key("limits"), "a limits table", &keys)?;
            let max = i64::MAX as u64;
            let (before, out) = (
                cx.diags.len(),
                ToolLimits {
                    fuel: l.int(cx, "fuel", 1, max),
                    timeout_ms: l.int(cx, "timeout_ms", 1, max),
                    max_memory_bytes: l.int(cx, "max_memory_bytes", 1, max),
                },
            );
            (cx.diags.len() == before).then_some(out)
        }
    };
    Some(ToolSpec {
        name: name?,
        component: component?,
        dirs: dirs?,
        env,
        network: network?,
        limits: limits?,
    })
}

/// `{ KEY = "value" }` pairs, in key order, as the plan's records.
fn env(pairs: Vec<(String, String)>) -> Vec<EnvVar> {
    pairs
        .into_iter()
        .map(|(key, value)| EnvVar { key, value })
        .collect()
}

fn dirs(cx: &mut Cx<'_>, g: &Tbl<'_, '_>) -> Option<Vec<DirGrant>> {
    let Some(dv) = g.get("dirs") else {
        return Some(Vec::new());
    };
    let key = g.key("dirs");
    let what = "an array of { host, guest, read_only } tables";
    let DeValue::Array(a) = dv.get_ref() else {
        cx.expected(dv, &key, what);
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in a.iter().enumerate() {
        let ik = format!("{key}[{i}]");
        let keys = ["host", "guest", "read_only"];
        let Some(d) = Tbl::of(cx, item, &ik, "a { host, guest, read_only } table", &keys) else {
            ok = false;
            continue;
        };
        let host = d
            .req(cx, "host", "a relative path")
            .and_then(|h| data_dir_path(cx, h, &d.key("host")));
        let guest = d
            .req(cx, "guest", "an absolute guest path")
            .and_then(|h| guest_path(cx, h, &d.key("guest")));
        // Read-only unless the manifest says otherwise: the safe default.
        let read_only = d.bool(cx, "read_only", true);
        match (host, guest) {
            (Some(host), Some(guest)) => out.push(DirGrant {
                host,
                guest,
                read_only,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// One `[[services]]` entry: a component, an image (or image archive) or
/// a URL. Container keys are read for image services and refused, at the
/// key, on the others.
pub fn service(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    seen: &mut Vec<String>,
) -> Option<ServiceSpec> {
    let mut keys = vec![
        "name",
        "component",
        "image",
        "image_archive",
        "url",
        "env",
        "health",
    ];
    keys.extend_from_slice(containers::CONTAINER_KEYS);
    let what = "a table ([[services]])";
    let t = Tbl::of_refusing(cx, v, path, what, &keys, containers::REFUSED_KEYS)?;
    let name = unique_name(cx, &t, "service", seen);
    let source = source(cx, &t);
    let env = env(t.str_map(cx, "env"));
    let image = t.get("image").is_some() || t.get("image_archive").is_some();
    let other = ["component", "url"]
        .into_iter()
        .find(|k| t.get(k).is_some());
    let (container, published) = if image {
        let (spec, published) = containers::spec(cx, &t, t.get("image_archive").is_some());
        (spec.map(Some), published)
    } else {
        if let Some(kind) = other {
            for k in containers::CONTAINER_KEYS {
                if let Some(span) = t.key_span(k) {
                    cx.err(&span, &t.key(k), containers::only_for_images(kind));
                }
            }
        }
        (Some(None), None)
    };
    let probes = if image {
        Probes::Required(published.as_deref())
    } else {
        Probes::Refused(other)
    };
    let health = match t.get("health") {
        None => Some(None),
        Some(hv) => health(cx, hv, &t.key("health"), probes).map(Some),
    };
    Some(ServiceSpec {
        name: name?,
        source: source?,
        env,
        health: health?,
        container: container?,
    })
}

/// Exactly one of `component`, `image`, `image_archive`, `url`; a second
/// one is the error.
fn source(cx: &mut Cx<'_>, t: &Tbl<'_, '_>) -> Option<ServiceSource> {
    let mut present: Vec<(&str, &Val<'_>)> = ["component", "image", "image_archive", "url"]
        .into_iter()
        .filter_map(|k| t.get(k).map(|v| (k, v)))
        .collect();
    // Report at the later of the two in the file.
    present.sort_by_key(|(_, v)| v.span().start);
    match present.as_slice() {
        [] => {
            cx.err(
                &t.span,
                &t.path,
                "missing service source; expected exactly one of `component`, `image`, \
                 `image_archive` or `url`",
            );
            None
        }
        [(k, v)] => {
            let key = t.key(k);
            match *k {
                "component" => component_path(cx, v, &key).map(ServiceSource::Component),
                "image" => {
                    let s = as_str(cx, v, &key)?;
                    if let Some(why) = containers::image_ref_problem(&s) {
                        cx.err(
                            &v.span(),
                            &key,
                            format!(
                                "expected a container image reference \
                                 [registry/]name[:tag][@sha256:<64 hex>], found \"{s}\" ({why})"
                            ),
                        );
                        return None;
                    }
                    containers::engine_present(cx, v, &key);
                    Some(ServiceSource::Image(s))
                }
                "image_archive" => {
                    let path = bundle_file_path(cx, v, &key, "a `docker save` tarball")?;
                    containers::engine_present(cx, v, &key);
                    Some(ServiceSource::ImageArchive(path))
                }
                _ => {
                    let s = as_str(cx, v, &key)?;
                    if !url_ok(&s) {
                        cx.err(
                            &v.span(),
                            &key,
                            format!("expected a URL like \"https://host/path\", found \"{s}\""),
                        );
                        return None;
                    }
                    Some(ServiceSource::Url(s))
                }
            }
        }
        [(first, _), (second, v), ..] => {
            cx.err(
                &v.span(),
                &t.key(second),
                format!(
                    "expected exactly one of `component`, `image`, `image_archive` or `url`, \
                     found both `{first}` and `{second}`"
                ),
            );
            None
        }
    }
}

fn url_ok(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let mut sc = scheme.chars();
    sc.next().is_some_and(|c| c.is_ascii_lowercase())
        && sc.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

/// What a health table may say about probes.
enum Probes<'p> {
    /// An image service: exactly one of `tcp`, `http`, `exec`, on these
    /// published container ports (`None`: `ports` is wrong, not checked).
    Required(Option<&'p [u16]>),
    /// A component or URL service (its kind, when it has one): no probe
    /// keys.
    Refused(Option<&'static str>),
}

const PROBE_KEYS: [&str; 3] = ["tcp", "http", "exec"];

fn health(cx: &mut Cx<'_>, v: &Val<'_>, path: &str, probes: Probes<'_>) -> Option<HealthCheck> {
    let keys = [
        "kind",
        "interval_ms",
        "failure_threshold",
        "success_threshold",
        "tcp",
        "http",
        "exec",
    ];
    let t = Tbl::of(cx, v, path, "a health table", &keys)?;
    let before = cx.diags.len();
    let kind = match t.get("kind") {
        None => Some(ProbeKind::Liveness),
        Some(kv) => as_choice(
            cx,
            kv,
            &t.key("kind"),
            &[
                ("liveness", ProbeKind::Liveness),
                ("readiness", ProbeKind::Readiness),
            ],
        ),
    };
    let u32max = u32::MAX as u64;
    let interval_ms = t
        .int(cx, "interval_ms", 1, i64::MAX as u64)
        .unwrap_or(10_000);
    let failure = t.int(cx, "failure_threshold", 1, u32max).unwrap_or(3);
    let success = t.int(cx, "success_threshold", 1, u32max).unwrap_or(1);
    let probe = match probes {
        Probes::Required(published) => containers::probe(cx, &t, published),
        Probes::Refused(kind) => {
            for k in PROBE_KEYS {
                if let (Some(span), Some(kind)) = (t.key_span(k), kind) {
                    cx.err(&span, &t.key(k), containers::only_for_images(kind));
                }
            }
            Some(Probe::None)
        }
    };
    if cx.diags.len() != before {
        return None;
    }
    Some(HealthCheck {
        kind: kind?,
        interval_ms,
        failure_threshold: u32::try_from(failure).ok()?,
        success_threshold: u32::try_from(success).ok()?,
        probe: probe?,
    })
}

/// Reads `[hooks]`: a component path per lifecycle hook.
pub fn hooks(cx: &mut Cx<'_>, v: &Val<'_>) -> Option<Hooks> {
    let keys = ["on_install", "on_start", "on_stop", "on_remove"];
    let t = Tbl::of(cx, v, "hooks", "a table ([hooks])", &keys)?;
    let mut get = |name: &str| {
        t.get(name)
            .and_then(|hv| component_path(cx, hv, &t.key(name)))
    };
    Some(Hooks {
        on_install: get("on_install"),
        on_start: get("on_start"),
        on_stop: get("on_stop"),
        on_remove: get("on_remove"),
    })
}

/// Reads `[environment]`: `name = "dev"` (or `staging`, `prod`, or one
/// the kernel defines: whether it exists is the kernel's to check).
pub fn environment(cx: &mut Cx<'_>, v: &Val<'_>) -> Option<String> {
    let t = Tbl::of(cx, v, "environment", "a table ([environment])", &["name"])?;
    let nv = t.req(
        cx,
        "name",
        "\"dev\", \"staging\", \"prod\" or another environment's name",
    )?;
    let name = as_str(cx, nv, &t.key("name"))?;
    if !weft_model::env::valid_env_name(&name) {
        cx.err(
            &nv.span(),
            &t.key("name"),
            format!("\"{name}\" is not an environment name (1 to 32 of a-z, 0-9 and -, starting with a letter)"),
        );
        return None;
    }
    Some(name)
}
