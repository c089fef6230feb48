//! `weaver tool run FILE.wasm`: tools and WASI commands with no kernel.

#![allow(clippy::unwrap_used)]

use weft_e2e::{guest, weaver, Run};

fn path(name: &str) -> String {
    guest(name).display().to_string()
}

fn assert_guest_failure(r: &Run, kind: &str, limit: &str) {
    assert_eq!(r.code, 2, "exit code; stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {}", r.stderr);
    assert!(
        lines[0].starts_with(&format!("weaver: {kind}:")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(limit),
        "names the limit {limit}: {}",
        lines[0]
    );
}

#[test]
fn tool_prints_json_result() {
    let r = weaver(
        &[
            "tool",
            "run",
            &path("calc"),
            "--",
            r#"{"expr":"2*(x+1)","vars":{"x":3}}"#,
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json(), serde_json::json!({"value": 8.0}));
}

#[test]
fn tool_reads_input_from_stdin_when_no_argument() {
    let r = weaver(&["tool", "run", &path("calc")], br#"{"expr":"10 % 4"}"#);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["value"], 2.0);
}

#[test]
fn tool_error_result_exits_1() {
    let r = weaver(
        &["tool", "run", &path("calc"), "--", r#"{"expr":"1/0"}"#],
        b"",
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("division by zero"), "{}", r.stderr);
}

#[test]
fn json_report_has_result_fuel_wall_and_error_kind() {
    let r = weaver(
        &[
            "tool",
            "run",
            &path("calc"),
            "--json",
            "--",
            r#"{"expr":"1+1"}"#,
        ],
        b"",
    );
    assert_eq!(r.code, 0);
    let j = r.json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["result"]["value"], 2.0);
    assert!(j["usage"]["fuel_used"].as_u64().unwrap() > 0);
    assert!(j["usage"]["wall_us"].as_u64().is_some());

    let r = weaver(
        &[
            "tool",
            "run",
            &path("misbehave"),
            "--json",
            "--fuel",
            "1000000",
            "--",
            r#"{"mode":"loop"}"#,
        ],
        b"",
    );
    assert_eq!(r.code, 2);
    let j = r.json();
    assert_eq!(j["error"]["kind"], "out of fuel");
    assert_eq!(j["usage"]["fuel_used"], 1_000_000);
}

#[test]
fn each_limit_is_named_on_one_line_with_exit_2() {
    let m = path("misbehave");
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["--fuel", "1000000", "--", r#"{"mode":"loop"}"#],
            "out of fuel",
            "1000000",
        ),
        (
            &[
                "--fuel",
                "100000000000",
                "--timeout-ms",
                "300",
                "--",
                r#"{"mode":"loop"}"#,
            ],
            "timeout",
            "300 ms",
        ),
        (
            &["--max-memory", "16777216", "--", r#"{"mode":"alloc"}"#],
            "memory limit",
            "16777216",
        ),
        (&["--", r#"{"mode":"recurse"}"#], "stack overflow", "bytes"),
        (
            &["--", r#"{"mode":"panic"}"#],
            "trap",
            "misbehave was asked to panic",
        ),
        (&["--", r#"{"mode":"flood"}"#], "output limit", "1048576"),
    ];
    for (args, kind, limit) in cases {
        let mut full = vec!["tool", "run", m.as_str()];
        full.extend_from_slice(args);
        assert_guest_failure(&weaver(&full, b""), kind, limit);
    }
}

#[test]
fn invalid_component_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let r = weaver(&["tool", "run", junk.to_str().unwrap()], b"");
    assert_guest_failure(&r, "invalid component", "bad magic");
}

#[test]
fn command_gets_stdin_args_and_keeps_its_exit_code() {
    let r = weaver(&["tool", "run", &path("wc")], b"a b\nc\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["2", "3", "6"]
    );

    // No grants: a host file is invisible, and the command's exit code is ours.
    let r = weaver(&["tool", "run", &path("wc"), "--", "/etc/hostname"], b"");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("wc: /etc/hostname"), "{}", r.stderr);
}

#[test]
fn dir_grants_read_only_and_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "one two three\n").unwrap();
    let grant = format!("{}::/work:ro", dir.path().display());
    let r = weaver(
        &[
            "tool",
            "run",
            &path("wc"),
            "--dir",
            &grant,
            "--env",
            "LANG=C",
            "--",
            "/work/notes.txt",
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("3") && r.stdout.contains("/work/notes.txt"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_usage_exits_64() {
    let r = weaver(&["tool", "run", &path("calc"), "--dir", "nocolons"], b"");
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("HOST::GUEST"), "{}", r.stderr);
}
