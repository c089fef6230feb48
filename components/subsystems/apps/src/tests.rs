use crate::check::{check, semver_ok};
use crate::model::Step;
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
        plan.steps,
        vec![
            Step::VerifyDigests(vec![]),
            Step::GateCheck("app.install".into()),
            Step::CopyBundle
        ]
    );
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

#[test]
fn ceiling_glob_coverage() {
    let src = format!("{APP}[capabilities]\ntools = {{ allow = [\"c*\"] }}\nipc = {{ topics = [\"news.*\"] }}\n[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\ncapabilities = {{ tools = {{ allow = [\"calc\"] }}, ipc = {{ topics = [\"news.tech\"] }} }}\n");
    check(&src, "m").unwrap();
}

#[test]
fn oversized_manifest_is_refused() {
    let big = format!("{APP}# {}\n", "x".repeat(crate::check::MAX_MANIFEST_BYTES));
    assert!(first_err(&big).contains("expected at most"));
}
