//! The cluster, end to end: real etcd members (started and stopped by pid
//! by the testkit) and real `weaver run` nodes on 127.0.0.1, driven through
//! `weaver cluster`, `weaver tree` and `weaver chain`.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_e2e::{shared_cache_dir, weaver_at, weaver_bin, Run};
use weft_testkit::etcd::EtcdCluster;

/// A `weaver run` node, killed when dropped; its stderr goes to a file
/// shown when it fails.
struct Node {
    name: String,
    state: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Node {
    /// `weaver run --cluster EP --node NAME --mesh 127.0.0.1:PORT` with a
    /// weft.toml holding `extra` under `[cluster]` (lease 2 s by default).
    fn start(dir: &Path, name: &str, endpoints: &str, extra: &str) -> Node {
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let config = dir.join(format!("{name}.toml"));
        let extra = if extra.contains("lease_ttl_secs") {
            extra.to_string()
        } else {
            format!("lease_ttl_secs = 2\n{extra}")
        };
        std::fs::write(&config, format!("[cluster]\n{extra}\n")).unwrap();
        Node::start_raw(dir, name, endpoints)
    }

    /// Start `name` with the weft.toml already at `DIR/NAME.toml`.
    fn start_raw(dir: &Path, name: &str, endpoints: &str) -> Node {
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let config = dir.join(format!("{name}.toml"));
        let log = dir.join(format!("{name}.log"));
        let mesh = format!("127.0.0.1:{}", free_port());
        let child = Command::new(weaver_bin())
            .args(["run", "--state", state.to_str().unwrap()])
            .args(["--config", config.to_str().unwrap()])
            .args(["--cluster", endpoints, "--node", name, "--mesh", &mesh])
            .env("WEFT_CACHE_DIR", shared_cache_dir())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut n = Node {
            name: name.into(),
            state,
            log,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = n.child.as_mut().unwrap().try_wait() {
                panic!("node {name} exited early ({status}):\n{}", n.log_text());
            }
            if weaver_at(&n.state, &["kernel", "status", "--json"]).code == 0 {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "node {name} did not come up in 30 s:\n{}",
                n.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn w(&self, args: &[&str]) -> Run {
        weaver_at(&self.state, args)
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.w(args);
        assert_eq!(
            r.code,
            0,
            "node {}: weaver {args:?} failed: {}{}\nnode log:\n{}",
            self.name,
            r.stdout,
            r.stderr,
            self.log_text()
        );
        r
    }

    fn key(&self) -> String {
        self.ok(&["cluster", "status", "--json"]).json()["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn nodes(&self) -> Vec<Value> {
        self.ok(&["cluster", "nodes", "--json"])
            .json()
            .as_array()
            .unwrap()
            .clone()
    }

    fn state_of(&self, node: &str) -> String {
        self.nodes()
            .iter()
            .find(|n| n["name"] == node)
            .map(|n| n["state"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn peer(&self, node: &str) -> Option<Value> {
        let v = self.ok(&["tree", "ls", "/network/peers", "--json"]).json();
        v.as_array()
            .unwrap()
            .iter()
            .find(|n| n["path"] == format!("/network/peers/{node}"))
            .map(|n| n["metadata"].clone())
    }

    fn chain(&self) -> Vec<Value> {
        self.ok(&["chain", "tail", "-n", "100000", "--json"])
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect()
    }

    fn chain_has(&self, kind: &str) -> Vec<Value> {
        self.chain()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    }

    /// SIGTERM, wait for a clean exit.
    fn stop(&mut self) {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let status = c.wait().unwrap();
        assert!(
            status.success(),
            "node {} stopped with {status}:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// SIGKILL, by pid.
    fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn membership_trust_admission_and_peers() {
    let etcd = EtcdCluster::single();
    let ep = etcd.endpoints_csv();
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(dir.path(), "a", &ep, "");
    let mut b = Node::start(dir.path(), "b", &ep, "");
    // c speaks classical Noise only and does not require post-quantum.
    let mut c = Node::start(dir.path(), "c", &ep, "kem = false\nrequire_pq = false");
    // d does not require post-quantum either, but offers ML-KEM.
    let d = Node::start(dir.path(), "d", &ep, "require_pq = false");

    // Everyone sees everyone Active; nobody is trusted yet.
    wait_for("four active nodes", Duration::from_secs(10), || {
        a.nodes().iter().filter(|n| n["state"] == "active").count() == 4
    });
    let meta = a.peer("b").expect("/network/peers/b on a");
    assert_eq!(meta["state"], "active");
    assert_eq!(meta["trusted"], false);
    assert!(meta["mesh"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(meta["key"].as_str().unwrap().len(), 64);
    assert!(meta["cpus"].as_u64().unwrap() >= 1);

    // Untrusted: refused at the handshake, and recorded.
    let r = a.w(&["cluster", "ping", "b", "--count", "1"]);
    assert_ne!(r.code, 0, "an untrusted peer answered: {}", r.stdout);
    assert!(r.stderr.contains("untrusted peer"), "{}", r.stderr);
    let refused = a.chain_has("cluster.mesh.refused");
    assert!(!refused.is_empty(), "no cluster.mesh.refused on a");

    // The operator trusts a, b, c, d (gated, recorded on the chain of the
    // node that did it); every node follows the store.
    let keys: Vec<(String, String)> = [&a, &b, &c, &d]
        .iter()
        .map(|n| (n.name.clone(), n.key()))
        .collect();
    for (name, key) in &keys {
        let r = a.ok(&["cluster", "trust", "add", key, "--label", name]);
        assert!(r.stdout.contains("trusted"), "{}", r.stdout);
    }
    assert_eq!(a.chain_has("cluster.trust.add").len(), 4);
    wait_for(
        "b to trust a (/network/peers/a trusted)",
        Duration::from_secs(10),
        || b.peer("a").is_some_and(|m| m["trusted"] == true),
    );
    let r = a
        .ok(&["cluster", "ping", "b", "--count", "200", "--json"])
        .json();
    assert_eq!(r["pq"], true, "{r}");
    assert_eq!(r["count"], 200);
    eprintln!("a -> b mesh ping: {r}");
    assert!(!b.chain_has("cluster.mesh.session").is_empty());

    // A classical peer: refused under a's post-quantum policy (recorded) ...
    let r = a.w(&["cluster", "ping", "c", "--count", "1"]);
    assert_ne!(r.code, 0, "a accepted a classical session: {}", r.stdout);
    assert!(
        a.chain_has("cluster.mesh.refused")
            .iter()
            .any(|e| e["payload"]["reason"]
                .as_str()
                .unwrap_or("")
                .contains("post-quantum")),
        "no post-quantum refusal recorded on a"
    );
    // ... accepted, and recorded as a downgrade, where it is not required.
    wait_for("d to trust c", Duration::from_secs(10), || {
        d.peer("c").is_some_and(|m| m["trusted"] == true)
    });
    let r = d
        .ok(&["cluster", "ping", "c", "--count", "10", "--json"])
        .json();
    assert_eq!(r["pq"], false, "{r}");
    let downgrades = d.chain_has("cluster.mesh.downgrade");
    assert!(!downgrades.is_empty(), "no cluster.mesh.downgrade on d");
    assert_eq!(downgrades[0]["payload"]["peer_kem"], false);

    // Removing a key takes effect at the next handshake.
    let bkey = &keys[1].1;
    a.ok(&["cluster", "trust", "rm", bkey]);
    assert_eq!(a.chain_has("cluster.trust.rm").len(), 1);
    wait_for("a to distrust b", Duration::from_secs(10), || {
        a.peer("b").is_some_and(|m| m["trusted"] == false)
    });
    assert_ne!(a.w(&["cluster", "ping", "b", "--count", "1"]).code, 0);

    // Drain.
    a.ok(&["cluster", "drain", "d"]);
    assert!(a
        .nodes()
        .iter()
        .any(|n| n["name"] == "d" && n["draining"] == true));
    assert_eq!(a.chain_has("cluster.drain").len(), 1);
    let r = a.w(&["cluster", "drain", "nosuch"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no node `nosuch`"), "{}", r.stderr);

    // A clean stop: Leaving. A kill -9: Failed once the lease (2 s) expires.
    b.stop();
    wait_for("b leaving", Duration::from_secs(5), || {
        a.state_of("b") == "leaving"
    });
    let t0 = Instant::now();
    c.kill9();
    wait_for("c failed", Duration::from_secs(6), || {
        a.state_of("c") == "failed"
    });
    eprintln!("c seen failed {:?} after kill -9 (lease 2 s)", t0.elapsed());
    wait_for(
        "/network/peers/c failed on a",
        Duration::from_secs(5),
        || a.peer("c").is_some_and(|m| m["state"] == "failed"),
    );
    // The tree changes are chain events on a.
    assert!(a
        .chain()
        .iter()
        .any(|e| e["source"] == "tree" && e["payload"].to_string().contains("/network/peers/c")));
    let r = a.ok(&["chain", "verify"]);
    assert!(r.stdout.contains("ok") || r.stdout.contains("OK") || r.code == 0);
}

#[test]
fn a_gated_operator_is_refused_and_recorded() {
    let etcd = EtcdCluster::single();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "[operator]\ndeny = [\"cluster.trust.*\"]\n\n[cluster]\nlease_ttl_secs = 2\n",
    )
    .unwrap();
    let a = Node::start_raw(dir.path(), "a", &etcd.endpoints_csv());
    let key = a.key();
    let r = a.w(&["cluster", "trust", "add", &key]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(a
        .chain_has("gate.deny")
        .iter()
        .any(|e| e["payload"]["action"] == "cluster.trust.add"));
    assert!(a.chain_has("cluster.trust.add").is_empty());
    assert!(a
        .ok(&["cluster", "trust", "ls", "--json"])
        .json()
        .as_object()
        .unwrap()
        .is_empty());
}

#[test]
fn quorum_lost_refuses_cluster_changes_and_keeps_the_node_serving() {
    let mut etcd = EtcdCluster::three();
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(dir.path(), "a", &etcd.endpoints_csv(), "timeout_ms = 1500");
    let key = a.key();
    // One member down: still a quorum.
    etcd.kill(2);
    a.ok(&["cluster", "trust", "add", &key, "--label", "a"]);
    // Two down: no quorum. Changes are refused with a clear error ...
    etcd.kill(1);
    let r = a.w(&["cluster", "trust", "rm", &key]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("quorum"), "{}", r.stderr);
    assert!(a.chain_has("cluster.trust.rm").is_empty());
    // ... while the node itself keeps serving.
    a.ok(&["kernel", "status", "--json"]);
    a.ok(&["tree", "ls", "/network/peers", "--json"]);
    // Quorum back: changes work again.
    etcd.restart(1).unwrap();
    wait_for(
        "trust rm after quorum returns",
        Duration::from_secs(15),
        || a.w(&["cluster", "trust", "rm", &key]).code == 0,
    );
}

#[test]
fn without_a_cluster_section_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let _k = weft_e2e::start_kernel(&state, &[]);
    let r = weaver_at(&state, &["cluster", "status"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not in a cluster"), "{}", r.stderr);
    let v = weaver_at(&state, &["tree", "ls", "/network/peers", "--json"]).json();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
}
