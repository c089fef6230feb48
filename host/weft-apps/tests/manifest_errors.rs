//! Malformed manifests through the real `apps` component: each must be
//! rejected at the exact line and column, naming the key and what was
//! expected.

#![allow(clippy::unwrap_used)]

mod common;

use common::{checker, with_agent, APP};
use weft_apps::CheckError;

/// (manifest, "line:col", key, a fragment of the message)
fn cases() -> Vec<(String, &'static str, &'static str, &'static str)> {
    let a = with_agent;
    let s = |x: &str| x.to_string();
    vec![
        (s("[app]\nname = \"hello\"\nversion = \"1.0.0\n"), "3:17", "", "invalid TOML: invalid basic string, expected `\"`"),
        (s("[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\n"), "1:1", "app", "missing table [app] in weftapp.toml"),
        (s("[app]\nname = \"Hello\"\nversion = \"1.0.0\"\n"), "2:8", "app.name", "expected 1 to 64 characters from [a-z0-9-], found \"Hello\""),
        (s("[app]\nname = \"hello\"\nversion = \"1.0\"\n"), "3:11", "app.version", "expected a semantic version like \"1.2.3\", found \"1.0\""),
        (s("[app]\nname = \"hello\"\nversion = 1\n"), "3:11", "app.version", "expected a string, found integer"),
        (format!("{APP}homepage = \"x\"\n"), "4:1", "app.homepage", "unknown key; expected one of `name`, `version`"),
        (format!("{APP}[extra]\n"), "4:2", "extra", "unknown key; expected one of `app`, `agents`"),
        (s("[app]\nname = \"hello\"\n"), "1:1", "app.version", "missing key `version` in `app`; expected a semantic version"),
        (a("restart = 5"), "7:11", "agents[0].restart", "expected \"never\", \"always\" or { on_failure = { max_retries, backoff_ms } }, found integer"),
        (a("restart = \"sometimes\""), "7:11", "agents[0].restart", "found \"sometimes\""),
        (a("restart = { on_failure = { max_retries = 3 } }"), "7:26", "agents[0].restart.on_failure.backoff_ms", "missing key `backoff_ms`"),
        (a("restart = { on_failure = { max_retries = \"3\", backoff_ms = 100 } }"), "7:42", "agents[0].restart.on_failure.max_retries", "expected an integer from 0 to 4294967295, found string"),
        (a("role = \"boss\""), "7:8", "agents[0].role", "expected \"worker\", \"coordinator\", \"supervisor\" or \"system\", found \"boss\""),
        (a("auto_start = \"yes\""), "7:14", "agents[0].auto_start", "expected a boolean (true or false), found string"),
        (a("[[agents]]\nid = \"a\"\ncomponent = \"b.wasm\""), "8:6", "agents[1].id", "duplicate agent id \"a\""),
        (format!("{APP}[[agents]]\nid = \"a\"\ncomponent = \"../x.wasm\"\n"), "6:13", "agents[0].component", "`..` escapes the bundle"),
        (format!("{APP}[[agents]]\nid = \"a\"\ncomponent = \"/abs/x.wasm\"\n"), "6:13", "agents[0].component", "an absolute path escapes the bundle"),
        (format!("{APP}[[agents]]\nid = \"a\"\ncomponent = \"a.txt\"\n"), "6:13", "agents[0].component", "must end in .wasm"),
        (format!("{APP}[[agents]]\nid = \"a\"\n"), "4:1", "agents[0].component", "missing key `component`"),
        (a("colour = \"red\""), "7:1", "agents[0].colour", "unknown key; expected one of `id`, `component`"),
        (format!("{APP}[[agents]]\nid = \"a b\"\ncomponent = \"a.wasm\"\n"), "5:6", "agents[0].id", "expected 1 to 64 characters from [A-Za-z0-9._-]"),
        (a("capabilities = { ipc = \"everyone\" }"), "7:24", "agents[0].capabilities.ipc", "expected \"all\", \"parent_only\" or \"none\", found \"everyone\""),
        (a("capabilities = { sandbox = \"open\" }"), "7:28", "agents[0].capabilities.sandbox", "expected \"strict\" or \"granted\", found \"open\""),
        (a("capabilities = { tools = { allow = \"calc\" } }"), "7:36", "agents[0].capabilities.tools.allow", "expected an array of tool names or globs, found string"),
        (a("limits = { timeout_ms = -5 }"), "7:25", "agents[0].limits.timeout_ms", "expected an integer >= 1, found -5"),
        (a("limits = { fuel = 5 }"), "7:12", "agents[0].limits.fuel", "unknown key; expected one of `fuel_per_message`"),
        (a("config = 5"), "7:10", "agents[0].config", "expected a table, passed to the agent's init, found integer"),
        (format!("{APP}[capabilities]\nipc = \"none\"\n[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\ncapabilities = {{ ipc = \"all\" }}\n"), "9:24", "agents[0].capabilities.ipc", "exceeds the app ceiling; expected at most \"none\""),
        (format!("{APP}[capabilities]\ntools = {{ allow = [\"calc\"] }}\n[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\ncapabilities = {{ tools = {{ allow = [\"shell\"] }} }}\n"), "9:37", "agents[0].capabilities.tools.allow[0]", "\"shell\" exceeds the app ceiling"),
        (format!("{APP}[capabilities]\nsandbox = \"strict\"\n[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\ncapabilities = {{ spawn = true }}\n"), "9:26", "agents[0].capabilities.spawn", "exceeds the app ceiling; expected false"),
        (format!("{APP}[[services]]\nname = \"db\"\nimage = \"postgres:16\"\nurl = \"https://x\"\n"), "7:7", "services[0].url", "expected exactly one of `component`, `image`, `image_archive` or `url`, found both `image` and `url`"),
        (format!("{APP}[[services]]\nname = \"db\"\n"), "4:1", "services[0]", "missing service source; expected exactly one of `component`, `image`, `image_archive` or `url`"),
        (format!("{APP}[[services]]\nname = \"db\"\nimage = \"pg\"\nports = [\"5432:5432\", \"70000:80\"]\n"), "7:23", "services[0].ports[1]", "expected \"HOST:CONTAINER\" with each port from 1 to 65535, e.g. \"18080:8080\", found \"70000:80\""),
        (format!("{APP}[[services]]\nname = \"db\"\nurl = \"https://x\"\nhealth = {{ kind = \"sometimes\" }}\n"), "7:19", "services[0].health.kind", "expected \"liveness\" or \"readiness\", found \"sometimes\""),
        // Container services: what no environment allows, refused where it is written.
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nprivileged = true\n"), "7:1", "services[0].privileged", "never allowed: Weft never runs privileged containers"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nnetwork_mode = \"host\"\n"), "7:1", "services[0].network_mode", "never allowed: containers get their own network and PID namespace"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\npid = \"host\"\n"), "7:1", "services[0].pid", "never allowed: containers get their own network and PID namespace"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nvolumes = [\"/etc:/etc:ro\"]\n"), "7:12", "services[0].volumes[0]", "expected HOST to be a relative path inside the app's data dir, found \"/etc\" (an absolute path escapes the data dir)"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nvolumes = [\"../x:/x\"]\n"), "7:12", "services[0].volumes[0]", "(`..` escapes the data dir)"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nvolumes = [\"s:/var/run/docker.sock\"]\n"), "7:12", "services[0].volumes[0]", "never allowed: the Docker socket is never mounted into a container"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nports = [\"0:80\"]\n"), "7:10", "services[0].ports[0]", "expected \"HOST:CONTAINER\" with each port from 1 to 65535"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nports = [\"18080:8080\"]\ncall = {{ port = 18080 }}\n"), "8:17", "services[0].call.port", "expected a container port published in `ports` (8080), found 18080"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\ncap_add = [\"SYS_ADMIN\"]\n"), "7:12", "services[0].cap_add[0]", "never allowed: \"SYS_ADMIN\" amounts to root on the host"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nimage_archive = \"web.tar\"\n"), "7:17", "services[0].image_archive", "found both `image` and `image_archive`"),
        (format!("{APP}[[services]]\nname = \"api\"\ncomponent = \"a.wasm\"\nports = [\"18080:8080\"]\n"), "7:1", "services[0].ports", "only for image services (`image` or `image_archive`), not for a `component` service"),
        (format!("{APP}[[services]]\nname = \"web\"\nimage = \"busybox\"\nhealth = {{ kind = \"readiness\" }}\n"), "7:10", "services[0].health", "missing probe; expected exactly one of `tcp`, `http` or `exec`"),
        (format!("{APP}[[services]]\nname = \"db\"\nurl = \"not a url\"\n"), "6:7", "services[0].url", "expected a URL like"),
        (format!("{APP}[[tools]]\nname = \"Calc\"\ncomponent = \"c.wasm\"\n"), "5:8", "tools[0].name", "expected 1 to 64 characters from [a-z0-9-], found \"Calc\""),
        (format!("{APP}[[tools]]\nname = \"calc\"\ncomponent = \"c.wasm\"\ngrants = {{ dirs = [{{ host = \"../etc\", guest = \"/etc\" }}] }}\n"), "7:29", "tools[0].grants.dirs[0].host", "expected a relative path inside the app's data dir, found \"../etc\""),
        (format!("{APP}[[tools]]\nname = \"calc\"\ncomponent = \"c.wasm\"\ngrants = {{ env = {{ DEBUG = 1 }} }}\n"), "7:28", "tools[0].grants.env.DEBUG", "expected a string, found integer"),
        (format!("{APP}[[tools]]\nname = \"calc\"\ncomponent = \"c.wasm\"\n[[tools]]\nname = \"calc\"\ncomponent = \"d.wasm\"\n"), "8:8", "tools[1].name", "duplicate tool name \"calc\""),
        (format!("{APP}[[tools]]\nname = \"calc\"\ncomponent = \"c.wasm\"\nlimits = {{ fuel = 0 }}\n"), "7:19", "tools[0].limits.fuel", "expected an integer >= 1, found 0"),
        (format!("{APP}[hooks]\non_boot = \"h.wasm\"\n"), "5:1", "hooks.on_boot", "unknown key; expected one of `on_install`"),
        (format!("{APP}[hooks]\non_install = \"../h.wasm\"\n"), "5:14", "hooks.on_install", "`..` escapes the bundle"),
        (format!("{APP}[environment]\nname = \"Production\"\n"), "5:8", "environment.name", "\"Production\" is not an environment name"),
        (format!("agents = \"x\"\n{APP}"), "1:10", "agents", "expected an array of tables ([[agents]]), found string"),
        (format!("{APP}authors = \"me\"\n"), "4:11", "app.authors", "expected an array of strings, found string"),
    ]
}

#[tokio::test]
async fn malformed_manifests_are_rejected_with_positions() {
    let checker = checker();
    let cases = cases();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for (i, (text, at, key, fragment)) in cases.iter().enumerate() {
        let err = match checker.check(text, "weftapp.toml").await {
            Ok(_) => {
                failures.push(format!("case {i}: accepted:\n{text}"));
                continue;
            }
            Err(CheckError::Invalid { diagnostics, .. }) => diagnostics,
            Err(e) => panic!("case {i}: checker failed: {e}"),
        };
        let first = &err[0];
        let pos = format!("{}:{}", first.line, first.col);
        let ok = pos == *at && first.key == *key && first.message.contains(fragment);
        if !ok || err.len() != 1 {
            failures.push(format!(
                "case {i}: want {at} {key}: ..{fragment}..\n  got {}\n{text}",
                weft_apps::render("weftapp.toml", &err)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn errors_render_as_file_line_col() {
    let err = checker()
        .check(&with_agent("restart = 5"), "apps/x/weftapp.toml")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "apps/x/weftapp.toml:7:11: agents[0].restart: expected \"never\", \"always\" or \
         { on_failure = { max_retries, backoff_ms } }, found integer"
    );
}

#[tokio::test]
async fn several_problems_are_all_reported_in_order() {
    let text =
        format!("{APP}bogus = 1\n[[agents]]\nid = \"a\"\ncomponent = \"/x.wasm\"\nrole = 3\n");
    let Err(CheckError::Invalid { diagnostics, .. }) = checker().check(&text, "m").await else {
        panic!("expected diagnostics");
    };
    let got: Vec<(u32, u32, &str)> = diagnostics
        .iter()
        .map(|d| (d.line, d.col, d.key.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (4, 1, "app.bogus"),
            (7, 13, "agents[0].component"),
            (8, 8, "agents[0].role")
        ]
    );
}
