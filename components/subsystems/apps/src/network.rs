//! `network = { outbound = [..], secrets = [..] }` in an agent's
//! capabilities (`docs/network.md`): each grant parsed by the one grammar
//! (`weft_model::net`), each secret header checked, every problem at its
//! `file:line:col`.

use toml::de::DeValue;
use weft_model::net::{
    valid_header_name, valid_route_path, valid_secret_name, Grant, NetCaps, Route, SecretHeader,
};

use crate::agents::Spot;
use crate::paths::component_path;
use crate::walk::{as_str, Cx, Tbl, Val};
use weft_model::caps::Capabilities;

const SECRET_KEYS: &[&str] = &["secret", "server", "header", "prefix"];

/// A tool's or a route component's `network`: read like an agent's, each
/// grant beyond the app `ceiling` reported at its place.
pub(crate) fn tool_net(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    ceiling: Option<&Capabilities>,
) -> Option<NetCaps> {
    let (mut spots, mut ok) = (Vec::new(), true);
    let caps = net_caps(cx, v, path, &mut spots, &mut ok);
    if let Some(c) = ceiling {
        for e in caps.within(&c.network).err().unwrap_or_default() {
            ok = false;
            let Some(s) = spots.iter().find(|s| s.field == e.field) else {
                cx.err(&v.span(), path, e.message);
                continue;
            };
            cx.err(&s.span, &s.key, crate::agents::ceiling_message(&e, s, c));
        }
    }
    ok.then_some(caps)
}

/// Why grant `g` (written `p`) is outside the app's environment's
/// allow-list, if it is.
fn outside_environment(cx: &Cx<'_>, g: &Grant, p: &str) -> Option<String> {
    let env = cx.env_outbound.as_ref()?;
    let inside = env
        .outbound
        .iter()
        .filter_map(|e| Grant::parse(e).ok())
        .any(|e| g.within(&e));
    (!inside).then(|| {
        format!(
            "\"{p}\" is outside environment `{}`'s outbound allow-list ({}: \
             [environments.{}] outbound in the kernel's weft.toml)",
            env.environment,
            crate::agents::list_text(&env.outbound),
            env.environment
        )
    })
}

/// Read a `network` value; lists keep the entries that could be read.
pub(crate) fn net_caps(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    spots: &mut Vec<Spot>,
    ok: &mut bool,
) -> NetCaps {
    let mut out = NetCaps::default();
    let keys = ["outbound", "secrets"];
    let Some(t) = Tbl::of(cx, v, path, "{ outbound = [..], secrets = [..] }", &keys) else {
        *ok = false;
        return out;
    };
    if let Some(lv) = t.get("outbound") {
        let key = t.key("outbound");
        match lv.get_ref() {
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let ik = format!("{key}[{i}]");
                    let Some(p) = as_str(cx, item, &ik) else {
                        *ok = false;
                        continue;
                    };
                    let g = match Grant::parse(&p) {
                        Ok(g) => g,
                        Err(e) => {
                            cx.err(&item.span(), &ik, format!("bad outbound grant {e}"));
                            *ok = false;
                            continue;
                        }
                    };
                    if let Some(why) = outside_environment(cx, &g, &p) {
                        cx.err(&item.span(), &ik, why);
                        *ok = false;
                        continue;
                    }
                    spots.push(Spot {
                        field: format!("network.outbound[{}]", out.outbound.len()),
                        span: item.span(),
                        key: ik,
                        pattern: Some(p.clone()),
                    });
                    out.outbound.push(p);
                }
            }
            _ => {
                cx.expected(lv, &key, "an array of \"scheme://host[:port]\" grants");
                *ok = false;
            }
        }
    }
    if let Some(lv) = t.get("secrets") {
        let key = t.key("secrets");
        match lv.get_ref() {
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    match secret(cx, item, &format!("{key}[{i}]"), &out.outbound) {
                        Some(s) => out.secrets.push(s),
                        None => *ok = false,
                    }
                }
            }
            _ => {
                cx.expected(
                    lv,
                    &key,
                    "an array of { secret, server, header, prefix } tables",
                );
                *ok = false;
            }
        }
    }
    out
}

/// One secret header; its `server` must be a grant within the agent's own
/// outbound grants (a secret goes only where the agent may go).
fn secret(cx: &mut Cx<'_>, v: &Val<'_>, path: &str, outbound: &[String]) -> Option<SecretHeader> {
    let what = "{ secret = \"NAME\", server = \"https://host\", header = \"authorization\", prefix = \"Bearer \" }";
    let t = Tbl::of(cx, v, path, what, SECRET_KEYS)?;
    let name = t.req_str(cx, "secret");
    let server = t.req_str(cx, "server");
    let header = t.req_str(cx, "header");
    let prefix = t.str(cx, "prefix").unwrap_or_default();
    let (name, server, header) = (name?, server?, header?);
    let span = |k: &str| t.get(k).map(|x| x.span()).unwrap_or_else(|| v.span());
    let mut good = true;
    if !valid_secret_name(&name) {
        let m = format!("expected a secret name of [A-Za-z0-9_.-] (1-64 bytes), found \"{name}\"");
        cx.err(&span("secret"), &t.key("secret"), m);
        good = false;
    }
    match Grant::parse(&server) {
        Err(e) => {
            cx.err(&span("server"), &t.key("server"), format!("bad server {e}"));
            good = false;
        }
        Ok(g) => {
            let inside = outbound
                .iter()
                .filter_map(|o| Grant::parse(o).ok())
                .any(|o| g.within(&o));
            if !inside {
                let m = format!("\"{server}\" is not within this agent's network.outbound");
                cx.err(&span("server"), &t.key("server"), m);
                good = false;
            }
        }
    }
    if !valid_header_name(&header) {
        let m = format!("expected a lowercase HTTP header name, found \"{header}\"");
        cx.err(&span("header"), &t.key("header"), m);
        good = false;
    }
    if prefix.bytes().any(|b| b < 0x20 || b == 0x7f) {
        cx.err(
            &span("prefix"),
            &t.key("prefix"),
            "a header prefix holds no control characters",
        );
        good = false;
    }
    good.then_some(SecretHeader {
        secret: name,
        server,
        header,
        prefix,
    })
}

const ROUTE_KEYS: &[&str] = &[
    "path",
    "agent",
    "component",
    "network",
    "max_body_bytes",
    "timeout_ms",
    "token_secret",
];

/// One `[[routes]]` entry; `paths` holds the paths before it.
pub(crate) fn route(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    path: &str,
    agents: &[String],
    ceiling: Option<&Capabilities>,
    paths: &mut Vec<String>,
) -> Option<Route> {
    let t = Tbl::of(cx, v, path, "a table ([[routes]])", ROUTE_KEYS)?;
    let p = t.req(cx, "path", "a string").and_then(|pv| {
        let p = as_str(cx, pv, &t.key("path"))?;
        if !valid_route_path(&p) {
            let m = format!("expected a path such as \"/hooks/github\" (`/`-separated segments of [A-Za-z0-9-._~], no empty, `.` or `..` segment), found \"{p}\"");
            cx.err(&pv.span(), &t.key("path"), m);
            return None;
        }
        if paths.contains(&p) {
            cx.err(&pv.span(), &t.key("path"), format!("path \"{p}\" is routed twice"));
            return None;
        }
        paths.push(p.clone());
        Some(p)
    });
    // Exactly one target: an agent of the app, or a component exporting
    // `wasi:http/incoming-handler`.
    let (agent, component) = match (t.get("agent"), t.get("component")) {
        (Some(_), Some(cv)) => {
            let m = "expected exactly one of `agent` and `component`, found both";
            cx.err(&cv.span(), &t.key("component"), m.to_string());
            (None, None)
        }
        (None, Some(cv)) => (
            Some(String::new()),
            component_path(cx, cv, &t.key("component")).map(Some),
        ),
        _ => {
            let what = "the id of an agent in [[agents]] (or `component`: a component \
                        exporting wasi:http/incoming-handler)";
            let agent = t.req(cx, "agent", what).and_then(|av| {
                let id = as_str(cx, av, &t.key("agent"))?;
                if !agents.contains(&id) {
                    let m = format!("expected the id of an agent in [[agents]], found \"{id}\"");
                    cx.err(&av.span(), &t.key("agent"), m);
                    return None;
                }
                Some(id)
            });
            (agent, Some(None))
        }
    };
    let max_body_bytes = match t.get("max_body_bytes") {
        None => Some(0),
        Some(_) => t.int(cx, "max_body_bytes", 1, 64 << 20),
    };
    let timeout_ms = match t.get("timeout_ms") {
        None => Some(0),
        Some(_) => t.int(cx, "timeout_ms", 1, 600_000),
    };
    let token_secret = match t.get("token_secret") {
        None => Some(None),
        Some(sv) => as_str(cx, sv, &t.key("token_secret")).and_then(|s| {
            if valid_secret_name(&s) {
                Some(Some(s))
            } else {
                let m =
                    format!("expected a secret name of [A-Za-z0-9_.-] (1-64 bytes), found \"{s}\"");
                cx.err(&sv.span(), &t.key("token_secret"), m);
                None
            }
        }),
    };
    let network = match (t.get("network"), &component) {
        (None, _) => Some(NetCaps::default()),
        (Some(nv), Some(Some(_))) => tool_net(cx, nv, &t.key("network"), ceiling),
        (Some(nv), _) => {
            let m = "only a `component` route has `network`; an agent's grants are its \
                     capabilities.network";
            cx.err(&nv.span(), &t.key("network"), m.to_string());
            None
        }
    };
    Some(Route {
        path: p?,
        agent: agent?,
        component: component?,
        network: network?,
        max_body_bytes: max_body_bytes?,
        timeout_ms: timeout_ms?,
        token_secret: token_secret?,
    })
}

#[cfg(test)]
mod tests {
    use weft_model::plan::Step;

    use crate::check::check;

    const APP: &str = "[app]\nname = \"web\"\nversion = \"1.0.0\"\n";

    fn errors(src: &str) -> Vec<String> {
        match check(src, "weftapp.toml") {
            Ok(p) => panic!("expected errors, got {p:?}"),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn grants_secrets_and_routes_become_the_plan() {
        let src = format!(
            "{APP}[capabilities]\nnetwork = {{ outbound = [\"https://*.example.com\"] }}\n\
             [[agents]]\nid = \"r\"\ncomponent = \"c/r.wasm\"\n\
             capabilities = {{ network = {{ outbound = [\"https://api.example.com\"], secrets = [{{ secret = \"K\", server = \"https://api.example.com\", header = \"authorization\", prefix = \"Bearer \" }}] }} }}\n\
             [[routes]]\npath = \"/hooks/gh\"\nagent = \"r\"\ntoken_secret = \"T\"\n"
        );
        let plan = check(&src, "weftapp.toml").unwrap();
        let net = &plan.manifest.agents[0].capabilities.network;
        assert_eq!(net.outbound, ["https://api.example.com"]);
        assert_eq!(net.secrets[0].secret, "K");
        let r = &plan.manifest.routes[0];
        assert_eq!((r.path.as_str(), r.agent.as_str()), ("/hooks/gh", "r"));
        assert_eq!(r.token_secret.as_deref(), Some("T"));
        assert!(matches!(plan.start.last(), Some(Step::AddRoute(_))));
    }

    #[test]
    fn bad_grants_excess_and_bad_routes_are_placed() {
        let src = format!(
            "{APP}[capabilities]\nnetwork = {{ outbound = [\"https://*.example.com\"] }}\n\
             [[agents]]\nid = \"r\"\ncomponent = \"c/r.wasm\"\n\
             capabilities = {{ network = {{ outbound = [\"ftp://x\", \"https://evil.org\"] }} }}\n\
             [[routes]]\npath = \"/a/../b\"\nagent = \"nobody\"\n"
        );
        let e = errors(&src);
        assert!(
            e[0].starts_with("9:42: agents[0].capabilities.network.outbound[0]"),
            "{e:?}"
        );
        assert!(e[0].contains("scheme `ftp` is not http or https"), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.contains("\"https://evil.org\" exceeds the app ceiling")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("11:8: routes[0].path")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("expected the id of an agent")),
            "{e:?}"
        );
        let e = errors(&format!(
            "{APP}[[agents]]\nid = \"r\"\ncomponent = \"c/r.wasm\"\n\
             capabilities = {{ network = {{ outbound = [\"http://a.org\"], secrets = [{{ secret = \"K\", server = \"http://b.org\", header = \"Auth\" }}] }} }}\n"
        ));
        assert!(
            e.iter()
                .any(|m| m.contains("not within this agent's network.outbound")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("lowercase HTTP header name")),
            "{e:?}"
        );
    }
}
