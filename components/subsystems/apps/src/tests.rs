use weft_model::plan::{HookRun, Step};

use crate::check::{check, semver_ok};
use crate::paths::relative_path_problem;

const APP: &str = "[app]\nname = \"hello\"\nversion = \"1.0.0\"\n";

fn first_err(src: &str) -> String {
    match check(src, "weftapp.toml") {
        Ok(p) => panic!("expected errors, got {p:?}"),
        Err(d) => d[0].to_string(),
    }
}

#[test]
fn minimal_manifest_plans_the_fixed_steps() {
    let plan = check(APP, "weftapp.toml").unwrap();
    assert_eq!(plan.manifest.app.name, "hello");
    assert_eq!(
        plan.install,
        vec![Step::VerifyDigests(vec![]), Step::CopyBundle]
    );
    assert!(plan.start.is_empty() && plan.stop.is_empty() && plan.remove.is_empty());
}

#[test]
fn each_operation_gets_its_steps_in_order() {
    let src = format!(
        "{APP}[[agents]]\nid = \"b\"\ncomponent = \"c/b.wasm\"\n\
         [[agents]]\nid = \"idle\"\ncomponent = \"c/b.wasm\"\nauto_start = false\n\
         [[agents]]\nid = \"a\"\ncomponent = \"c/a.wasm\"\n\
         [[tools]]\nname = \"wc\"\ncomponent = \"c/wc.wasm\"\n\
         [[services]]\nname = \"api\"\ncomponent = \"c/api.wasm\"\n\
         [[services]]\nname = \"web\"\nurl = \"https://example.org\"\n\
         [hooks]\non_install = \"c/h.wasm\"\non_start = \"c/h.wasm\"\non_stop = \"c/h.wasm\"\n\
         on_remove = \"c/rm.wasm\"\n\
         [[cron]]\nschedule = \"every 5m\"\ntarget = \"idle\"\n"
    );
    let plan = check(&src, "m").unwrap();
    let m = &plan.manifest;
    let paths = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let hook = |hook: &str, c: &str| {
        Step::RunHook(HookRun {
            hook: hook.into(),
            component: c.into(),
        })
    };
    let mut install = vec![
        Step::VerifyDigests(paths(&[
            "c/a.wasm",
            "c/api.wasm",
            "c/b.wasm",
            "c/h.wasm",
            "c/rm.wasm",
            "c/wc.wasm",
        ])),
        Step::CopyBundle,
    ];
    for c in [
        "c/b.wasm",
        "c/a.wasm",
        "c/wc.wasm",
        "c/api.wasm",
        "c/h.wasm",
        "c/rm.wasm",
    ] {
        install.push(Step::Precompile(c.into()));
    }
    install.push(hook("on-install", "c/h.wasm"));
    assert_eq!(plan.install, install);
    assert_eq!(
        plan.start,
        vec![
            hook("on-start", "c/h.wasm"),
            Step::RegisterTool(m.tools[0].clone()),
            Step::RegisterService(m.services[0].clone()),
            Step::RegisterService(m.services[1].clone()),
            Step::SpawnAgent(m.agents[0].clone()),
            Step::SpawnAgent(m.agents[2].clone()),
            Step::AddCron(m.cron[0].clone()),
        ]
    );
    assert_eq!(plan.stop, vec![hook("on-stop", "c/h.wasm")]);
    assert_eq!(plan.remove, vec![hook("on-remove", "c/rm.wasm")]);
}

#[test]
fn columns_count_characters_not_bytes() {
    let src = "[app]\nname = \"hello\"\nversion = \"1.0.0\"\ndescription = \"héllo\" ; x = 1\n";
    assert!(first_err(src).starts_with("4:"), "{}", first_err(src));
    let src = format!("{APP}[[agents]]\nid = \"é\"\ncomponent = \"a.wasm\"\n");
    assert!(
        first_err(&src).starts_with("5:6: agents[0].id"),
        "{}",
        first_err(&src)
    );
}

#[test]
fn semver() {
    for ok in [
        "0.0.0",
        "1.2.3",
        "1.0.0-rc.1",
        "1.0.0-alpha-1+build.5",
        "10.20.30",
    ] {
        assert!(semver_ok(ok), "{ok}");
    }
    for bad in [
        "1", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "v1.0.0", "1.0.0.0",
    ] {
        assert!(!semver_ok(bad), "{bad}");
    }
}

#[test]
fn paths() {
    assert_eq!(relative_path_problem("a/b.wasm"), None);
    for bad in [
        "",
        "/a.wasm",
        "../a.wasm",
        "a/../b.wasm",
        "./a.wasm",
        "a//b.wasm",
        "a\\b.wasm",
        "C:x.wasm",
        "a\nb.wasm",
    ] {
        assert!(relative_path_problem(bad).is_some(), "{bad:?}");
    }
}

#[test]
fn config_becomes_json() {
    let src = format!("{APP}[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\nconfig = {{ n = 1, f = 0.5, s = \"x\", l = [true], t = {{ d = 1979-05-27 }} }}\n");
    let plan = check(&src, "m").unwrap();
    let v: serde_json::Value = serde_json::from_str(&plan.manifest.agents[0].config).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"n": 1, "f": 0.5, "s": "x", "l": [true], "t": {"d": "1979-05-27"}})
    );
    let src =
        format!("{APP}[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\nconfig = {{ x = nan }}\n");
    assert!(first_err(&src).contains("agents[0].config.x: expected a finite number"));
}

/// A manifest with `ceiling` as `[capabilities]` and one agent (lines 6
/// to 9) whose capabilities table is `caps`.
fn under_ceiling(ceiling: &str, caps: &str) -> String {
    format!("{APP}[capabilities]\n{ceiling}\n[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\ncapabilities = {{ {caps} }}\n")
}

fn all_errs(src: &str) -> Vec<String> {
    match check(src, "m") {
        Ok(p) => panic!("expected errors, got {p:?}"),
        Err(d) => d.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn ceiling_glob_coverage() {
    let src = under_ceiling(
        "tools = { allow = [\"c*\"] }\nipc = { topics = [\"news.*\"] }",
        "tools = { allow = [\"calc\", \"c?\"] }, ipc = { topics = [\"news.tech\", \"news.*\"] }",
    );
    check(&src, "m").unwrap();
    // Deny takes names out of the question: `*` minus `shell*` is allowed.
    let src = under_ceiling(
        "tools = { allow = [\"calc\", \"*\"], deny = [\"shell*\"] }",
        "tools = { allow = [\"*\"] }",
    );
    let plan = check(&src, "m").unwrap();
    assert_eq!(
        plan.manifest.agents[0].capabilities.tools.deny,
        vec!["shell*".to_string()]
    );
}

#[test]
fn a_glob_is_not_within_a_narrower_ceiling() {
    // The bug this check once had: `c*` compared as text with `c?`.
    let src = under_ceiling(
        "tools = { allow = [\"c?\"] }",
        "tools = { allow = [\"c*\"] }",
    );
    assert_eq!(
        all_errs(&src),
        [
            "9:37: agents[0].capabilities.tools.allow[0]: \"c*\" exceeds the app ceiling: it \
             matches tool \"c\", which capabilities.tools.allow ([\"c?\"]) does not"
        ]
    );
    let src = under_ceiling(
        "tools = { allow = [\"ab*\"], deny = [\"ac*\"] }",
        "tools = { allow = [\"ab\", 5, \"a*\"] }",
    );
    let errs = all_errs(&src);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("9:43: agents[0].capabilities.tools.allow[1]: expected a string"));
    assert!(
        errs[1].starts_with(
            "9:46: agents[0].capabilities.tools.allow[2]: \"a*\" exceeds the app ceiling: it matches tool \"a\""
        ),
        "{errs:?}"
    );
}

#[test]
fn ipc_entries_are_checked_one_by_one() {
    let src = under_ceiling(
        "ipc = { named = [\"db\", \"w-?\"] }",
        "ipc = { named = [\"w-1\", \"w-*\"] }",
    );
    assert_eq!(
        all_errs(&src),
        [
            "9:42: agents[0].capabilities.ipc.named[1]: \"w-*\" exceeds the app ceiling: it \
             matches \"w-\", which capabilities.ipc ({ named = [\"db\", \"w-?\"] }) does not"
        ]
    );
    let src = under_ceiling("ipc = { named = [\"db\"] }", "ipc = { topics = [\"db\"] }");
    assert_eq!(
        all_errs(&src),
        [
            "9:24: agents[0].capabilities.ipc: exceeds the app ceiling; expected at most \
             { named = [\"db\"] } (capabilities.ipc)"
        ]
    );
}

#[test]
fn cron_is_a_capability_within_the_ceiling() {
    let src = under_ceiling("cron = true", "cron = true, spawn = false");
    assert!(
        check(&src, "m").unwrap().manifest.agents[0]
            .capabilities
            .cron
    );
    let src = under_ceiling("spawn = true", "cron = true");
    assert_eq!(
        all_errs(&src),
        ["9:25: agents[0].capabilities.cron: exceeds the app ceiling; expected false (capabilities.cron is false)"]
    );
    let src = under_ceiling("cron = \"yes\"", "");
    assert_eq!(
        all_errs(&src),
        ["5:8: capabilities.cron: expected a boolean (true or false), found string"]
    );
}

#[test]
fn a_pattern_too_complex_to_decide_is_refused() {
    let p = format!("*a{}", "?".repeat(20));
    let src = under_ceiling(
        &format!("tools = {{ allow = [\"{p}\"] }}"),
        &format!("tools = {{ allow = [\"{p}\"] }}"),
    );
    let errs = all_errs(&src);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].ends_with("exceeds the app ceiling: pattern too complex to prove within the ceiling (capabilities.tools.allow ([\"*a????????????????????\"]))"),
        "{errs:?}"
    );
}

#[test]
fn oversized_manifest_is_refused() {
    let big = format!("{APP}# {}\n", "x".repeat(crate::check::MAX_MANIFEST_BYTES));
    assert!(first_err(&big).contains("expected at most"));
}

#[test]
fn a_tools_network_is_read_and_held_to_the_ceiling() {
    let tool = "[[tools]]\nname = \"get\"\ncomponent = \"c/get.wasm\"\n";
    let src = format!(
        "{APP}[capabilities]\nnetwork = {{ outbound = [\"https://*.example.com\"] }}\n\
         {tool}network = {{ outbound = [\"https://api.example.com\"] }}\n"
    );
    let plan = check(&src, "weftapp.toml").unwrap();
    assert_eq!(
        plan.manifest.tools[0].network.outbound,
        ["https://api.example.com"]
    );
    let beyond = src.replace("https://api.example.com", "http://10.0.0.1");
    let e = first_err(&beyond);
    assert!(
        e.starts_with("9:25: tools[0].network.outbound[0]:")
            && e.contains("exceeds the app ceiling"),
        "{e}"
    );
    let bad = format!("{APP}{tool}network = {{ outbound = [\"ftp://x\"] }}\n");
    let e = first_err(&bad);
    assert!(
        e.contains("tools[0].network.outbound[0]") && e.contains("bad outbound grant"),
        "{e}"
    );
    let no_key = format!("{APP}{tool}network = {{ inbound = [] }}\n");
    assert!(first_err(&no_key).contains("tools[0].network"));
}

#[test]
fn a_route_targets_an_agent_or_a_component() {
    let agent = "[[agents]]\nid = \"a\"\ncomponent = \"c/a.wasm\"\n";
    let src = format!(
        "{APP}{agent}[[routes]]\npath = \"/h\"\ncomponent = \"c/h.wasm\"\n\
         [[routes]]\npath = \"/a\"\nagent = \"a\"\n"
    );
    let plan = check(&src, "weftapp.toml").unwrap();
    let r = &plan.manifest.routes;
    assert_eq!(
        (r[0].agent.as_str(), r[0].component.as_deref()),
        ("", Some("c/h.wasm"))
    );
    assert_eq!(
        (r[1].agent.as_str(), r[1].component.as_deref()),
        ("a", None)
    );
    // The handler is locked and compiled at install like any component.
    assert_eq!(
        plan.install[0],
        Step::VerifyDigests(vec!["c/a.wasm".into(), "c/h.wasm".into()])
    );
    assert!(plan.install.contains(&Step::Precompile("c/h.wasm".into())));
    let both =
        format!("{APP}{agent}[[routes]]\npath = \"/h\"\nagent = \"a\"\ncomponent = \"c/h.wasm\"\n");
    let e = first_err(&both);
    assert!(
        e.contains("routes[0].component") && e.contains("exactly one of"),
        "{e}"
    );
    let neither = format!("{APP}[[routes]]\npath = \"/h\"\n");
    let e = first_err(&neither);
    assert!(
        e.contains("missing key `agent`") && e.contains("`component`"),
        "{e}"
    );
    let outside = format!("{APP}[[routes]]\npath = \"/h\"\ncomponent = \"../h.wasm\"\n");
    assert!(first_err(&outside).contains("routes[0].component"));
    // A component route may have grants, within the ceiling; an agent
    // route may not (its agent has its own).
    let net = "network = { outbound = [\"https://api.example.com\"] }\n";
    let with = format!("{APP}[[routes]]\npath = \"/h\"\ncomponent = \"c/h.wasm\"\n{net}");
    let plan = check(&with, "weftapp.toml").unwrap();
    assert_eq!(
        plan.manifest.routes[0].network.outbound,
        ["https://api.example.com"]
    );
    let ceiling = "[capabilities]\nnetwork = { outbound = [\"http://127.0.0.1:*\"] }\n";
    let e = first_err(&format!(
        "{APP}{ceiling}[[routes]]\npath = \"/h\"\ncomponent = \"c/h.wasm\"\n{net}"
    ));
    assert!(
        e.contains("routes[0].network.outbound[0]") && e.contains("exceeds the app ceiling"),
        "{e}"
    );
    let e = first_err(&format!(
        "{APP}{agent}[[routes]]\npath = \"/h\"\nagent = \"a\"\n{net}"
    ));
    assert!(
        e.contains("routes[0].network") && e.contains("only a `component` route"),
        "{e}"
    );
}
