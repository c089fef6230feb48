//! Real etcd members for cluster tests: one member or a three-member
//! cluster on free 127.0.0.1 ports, each its own `etcd` process with its own
//! data dir, started and stopped by pid.
//!
//! A watchdog shell per member waits for EOF on a pipe from the test
//! process, so a member is killed (and its data dir removed) even when the
//! test process dies without running its destructors.
//!
//! Tests that need etcd fail, saying how to install it, when `etcd` is
//! missing: they are never skipped silently.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const INSTALL: &str = "apt-get install -y etcd-server etcd-client";
const ROOT: &str = "/tmp/weft-testetcd";

/// One member: its ports, data dir and process.
#[derive(Debug)]
pub struct EtcdMember {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl EtcdMember {
    /// `http://127.0.0.1:PORT`, where clients connect.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The member's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// A running etcd cluster of one or more members; every member still
/// running is killed, and the data dirs removed, when it is dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: PathBuf,
    etcd: PathBuf,
    members: Vec<EtcdMember>,
}

impl EtcdCluster {
    /// One member, healthy when this returns. Panics naming what is missing.
    pub fn single() -> EtcdCluster {
        Self::start(1).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Three members with a leader when this returns. Panics naming what is
    /// missing.
    pub fn three() -> EtcdCluster {
        Self::start(3).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `n` members on free loopback ports, each healthy (a leader elected)
    /// within 20 s.
    pub fn start(n: usize) -> Result<EtcdCluster, String> {
        let etcd = which("etcd").ok_or_else(|| {
            format!("etcd is not installed (no `etcd` on PATH); install it with `{INSTALL}` (or `just test-deps`)")
        })?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(ROOT).join(format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Hold every listener until all ports are picked, so no two collide.
        let held: Vec<TcpListener> = (0..2 * n)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot pick a free port: {e}"))?;
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read a port: {e}"))?;
        drop(held);
        let members = (0..n)
            .map(|i| EtcdMember {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: dir.join(format!("m{i}.etcd")),
                log: dir.join(format!("m{i}.log")),
                child: None,
                watchdog: None,
            })
            .collect();
        let mut cluster = EtcdCluster { dir, etcd, members };
        for i in 0..n {
            cluster.spawn(i, "new")?;
        }
        cluster.wait_healthy(&(0..n).collect::<Vec<_>>(), Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// Every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::endpoint).collect()
    }

    /// The endpoints as one comma-separated string (`weaver run --cluster`).
    pub fn endpoints_csv(&self) -> String {
        self.endpoints().join(",")
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &EtcdMember {
        &self.members[i]
    }

    /// Stop member `i` with SIGKILL (by pid) and wait for it to exit; its
    /// data stays, so [`EtcdCluster::restart`] brings it back.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop member `i` with SIGTERM (by pid), waiting up to 10 s, then SIGKILL.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start a stopped member again on its data dir, healthy within 20 s.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.members[i].child.is_some() {
            return Ok(());
        }
        self.spawn(i, "existing")?;
        self.wait_healthy(&[i], Duration::from_secs(20))
    }

    /// The last lines of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let text = fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), String> {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        let token = self.dir.display().to_string();
        let m = &self.members[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| format!("cannot open {}: {e}", m.log.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", m.log.display()))?;
        let child = Command::new(&self.etcd)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.endpoint()])
            .args(["--advertise-client-urls", &m.endpoint()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", state])
            // One token per cluster: every member must share it.
            .args(["--initial-cluster-token", &token])
            // Fast elections on loopback keep the tests short.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.etcd.display()))?;
        let pid = child.id();
        // Kills the member when our end of its stdin closes (we exit or die).
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "read _ignored; kill -9 {pid} 2>/dev/null; rm -rf '{}'",
                m.data_dir.display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog of etcd member {}: {e}", m.name))?;
        let m = &mut self.members[i];
        m.child = Some(child);
        if let Some(mut old) = m.watchdog.replace(watchdog) {
            let _ = old.kill();
            let _ = old.wait();
        }
        Ok(())
    }

    fn wait_healthy(&mut self, which: &[usize], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for &i in which {
            loop {
                if health(self.members[i].client_port) {
                    break;
                }
                if let Some(child) = self.members[i].child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "etcd member {} exited ({status}) while starting:\n{}",
                            self.members[i].name,
                            self.log_tail(i)
                        ));
                    }
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "etcd member {} not healthy after {timeout:?}:\n{}",
                        self.members[i].name,
                        self.log_tail(i)
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
            if let Some(mut w) = self.members[i].watchdog.take() {
                // Closing its stdin lets it finish (the member is gone already).
                drop(w.stdin.take());
                let _ = w.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `GET /health` answers `"health":"true"` once the member has a leader.
fn health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_member_starts_and_stops_by_pid() {
        let mut c = EtcdCluster::single();
        let pid = c.member(0).pid().expect("running");
        assert!(health(c.member(0).client_port));
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        c.stop(0);
        assert!(!health(c.member(0).client_port));
        c.restart(0).expect("restart");
        assert!(health(c.member(0).client_port));
    }

    #[test]
    fn three_members_survive_one_loss_and_not_two() {
        let mut c = EtcdCluster::three();
        assert_eq!(c.endpoints().len(), 3);
        c.kill(2);
        // Two of three: still a quorum, so a leader and health once any
        // election the kill caused (it may have been the leader) is over.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !health(c.member(0).client_port) {
            assert!(Instant::now() < deadline, "{}", c.log_tail(0));
            std::thread::sleep(Duration::from_millis(100));
        }
        c.kill(1);
        // One of three: no quorum, /health turns false within an election timeout or two.
        let deadline = Instant::now() + Duration::from_secs(10);
        while health(c.member(0).client_port) {
            assert!(Instant::now() < deadline, "member 0 still healthy alone");
            std::thread::sleep(Duration::from_millis(100));
        }
        let dir = c.dir.clone();
        drop(c);
        assert!(!dir.exists());
    }
}
