//! docs/getting-started.md, followed literally: its ```sh blocks run in
//! order in one bash in an empty directory (its `file=` blocks written
//! where they appear), with this build's `weaver` first on PATH; each
//! ```text block after a ```sh block must appear in that block's output
//! (each line, split at `...`). A page that drifts from the product fails.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use weft_e2e::{shared_cache_dir, weaver_bin};

/// One fenced block: its language, its info string after the language, its body.
fn blocks(doc: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(head) = line.strip_prefix("```") else {
            continue;
        };
        let (lang, info) = head.split_once(' ').unwrap_or((head, ""));
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        out.push((lang.to_string(), info.trim().to_string(), body));
    }
    out
}

#[test]
fn the_getting_started_page_works_as_written() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/getting-started.md"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    // Whatever happens, no kernel outlives the test.
    let mut script = vec![
        "set -e\ntrap 'weaver --state state kernel stop >/dev/null 2>&1 || true' EXIT".to_string(),
    ];
    let mut checks: Vec<(usize, String)> = Vec::new();
    let (mut n, mut last) = (0usize, None);
    for (lang, info, body) in blocks(&doc) {
        if let Some(file) = info.strip_prefix("file=") {
            script.push(format!(
                "mkdir -p \"$(dirname {file})\"\ncat > {file} <<'WEFT_EOF'\n{body}WEFT_EOF"
            ));
        } else if lang == "sh" {
            n += 1;
            script.push(format!("echo \"@@BLOCK {n}\"\n{body}"));
            last = Some(n);
        } else if lang == "text" {
            if let Some(b) = last.take() {
                checks.push((b, body));
            }
        }
    }
    assert!(
        n >= 8 && checks.len() >= 8,
        "the page lost its commands: {n} blocks"
    );
    script.push("echo \"@@END\"".into());
    std::fs::write(work.join("follow.sh"), script.join("\n") + "\n").unwrap();

    let bin_dir = weaver_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("follow.sh")
        .current_dir(work)
        .env("PATH", path)
        .env("WEFT_CACHE_DIR", shared_cache_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = |s: &str| {
        s.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        out.status.success() && stdout.contains("@@END"),
        "the page stopped ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        tail(&stdout),
        tail(&stderr)
    );
    let mut parts: Vec<String> = vec![String::new(); n + 1];
    let mut cur = 0;
    for line in stdout.lines() {
        if let Some(b) = line.strip_prefix("@@BLOCK ") {
            cur = b.trim().parse().unwrap();
            continue;
        }
        parts[cur].push_str(line);
        parts[cur].push('\n');
    }
    let mut missing = Vec::new();
    for (b, body) in &checks {
        for line in body.lines() {
            for frag in line.split("...") {
                let frag = frag.trim();
                if !frag.is_empty() && !parts[*b].contains(frag) {
                    missing.push(format!("block {b}: {frag:?}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "output the page promises is missing: {missing:#?}"
    );
}
