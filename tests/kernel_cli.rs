//! `weaver run` and `weaver chain ...` against a real kernel's state dir.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use weft_e2e::{guest, weaver};

fn public_key(stderr: &str) -> String {
    stderr
        .split("public key ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no public key in: {stderr}"))
        .to_string()
}

fn boot_once(state: &Path) -> (String, String) {
    let probe = format!("echo={}", guest("probe").display());
    let calc = format!("calc={}", guest("calc").display());
    let r = weaver(
        &[
            "run",
            "--once",
            "--state",
            state.to_str().unwrap(),
            "--spawn",
            &probe,
            "--tool",
            &calc,
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("spawned agent echo"), "{}", r.stderr);
    assert!(r.stderr.contains("kernel halted"), "{}", r.stderr);
    (public_key(&r.stderr), r.stderr)
}

#[test]
fn run_boots_spawns_and_the_chain_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = boot_once(dir.path());
    // Boot again on the same state: the chain continues and still verifies.
    let (key2, _) = boot_once(dir.path());
    assert_eq!(key, key2, "the signing key persists");
    let file = dir.path().join("chain");
    let r = weaver(
        &["chain", "verify", file.to_str().unwrap(), "--key", &key],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("ok:"), "{}", r.stdout);
    let r = weaver(
        &[
            "chain",
            "verify",
            dir.path().to_str().unwrap(),
            "--key",
            &key,
            "--json",
        ],
        b"",
    );
    let j = r.json();
    assert_eq!(j["ok"], true);
    assert!(j["receipts"]["receipts"].as_u64().unwrap() >= 4, "{j}");

    let r = weaver(
        &[
            "chain",
            "tail",
            file.to_str().unwrap(),
            "--key",
            &key,
            "-n",
            "3",
        ],
        b"",
    );
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.lines().count(), 3);
    assert!(r.stdout.contains("kernel.shutdown"), "{}", r.stdout);

    let r = weaver(
        &["chain", "export", file.to_str().unwrap(), "--key", &key],
        b"",
    );
    let kinds: Vec<String> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for k in [
        "chain.genesis",
        "kernel.boot",
        "gate.permit",
        "agent.spawn",
        "tool.register",
        "agent.stop",
        "kernel.shutdown",
    ] {
        assert!(kinds.iter().any(|x| x == k), "missing {k} in {kinds:?}");
    }
}

#[test]
fn a_tampered_or_wrongly_keyed_chain_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = boot_once(dir.path());
    let file = dir.path().join("chain/00000000000000000000.seg");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let r = weaver(
        &["chain", "verify", file.to_str().unwrap(), "--key", &key],
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("NOT valid: at seq"), "{}", r.stderr);

    // A different key is rejected too.
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let other = "0".repeat(63) + "1";
    let r = weaver(
        &["chain", "verify", file.to_str().unwrap(), "--key", &other],
        b"",
    );
    assert_ne!(r.code, 0);
}
