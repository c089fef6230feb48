//! A private Docker engine for tests: `dockerd` with its own data root, exec
//! root, socket and bridge, and the local test image `weft-test/busybox:latest`.
//!
//! No registry is reachable from the test machines, so the image is made here
//! by `docker import` of a root filesystem holding a static busybox and its
//! applet links (`sh`, `httpd`, `nc`, `sleep`, ...).
//!
//! Each daemon gets a slot `N` (an exclusive `flock` on
//! `/tmp/weft-testdocker/slot-N.lock`), its own bridge `weftdN` on
//! `10.213.N.0/24`, and runs with `--iptables=false --ip-masq=false
//! --ip-forward=false`, so several daemons (nextest runs each test in its own
//! process) coexist and none touches the host's firewall. Ports published on
//! 127.0.0.1 still work: `docker-proxy` forwards them.
//!
//! Cleanup is done by a watchdog shell process that waits for EOF on a pipe
//! from the test process, so it also runs when the test process is killed:
//! SIGTERM to dockerd, SIGKILL after 10 s (then its shims and their
//! containers), unmount, remove the directory and the bridge. The watchdog
//! holds the slot lock until it is done, and whoever takes a slot first
//! cleans up anything a crashed run left in it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The image every test daemon has: a static busybox with its applet links,
/// `CMD ["/bin/sh"]`.
pub const TEST_IMAGE: &str = "weft-test/busybox:latest";

const INSTALL: &str = "apt-get install -y --no-install-recommends docker.io busybox-static";
const LOCK_DIR: &str = "/tmp/weft-testdocker";
const SLOTS: u32 = 64;

/// A running test daemon. [`TestDocker::start`] shares one per test process;
/// [`TestDocker::start_private`] gives one that is stopped when dropped.
pub struct TestDocker {
    root: PathBuf,
    socket: PathBuf,
    bridge: String,
    pid: u32,
    // Closing the watchdog's stdin starts the cleanup.
    watchdog: Mutex<Option<Child>>,
    // Kept so the slot stays ours until drop (the watchdog holds it too).
    _lock: File,
}

impl std::fmt::Debug for TestDocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDocker")
            .field("socket", &self.socket)
            .field("bridge", &self.bridge)
            .field("pid", &self.pid)
            .finish()
    }
}

impl TestDocker {
    /// The daemon shared by every test of this process, started on first use.
    ///
    /// Panics, saying what is missing and how to install it, when `dockerd`,
    /// `docker`, a static busybox or `ip` is missing or we are not root: tests
    /// that need Docker fail, they are never skipped silently.
    pub fn start() -> &'static TestDocker {
        static SHARED: OnceLock<Result<TestDocker, String>> = OnceLock::new();
        match SHARED.get_or_init(launch) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// A daemon of its own, stopped and removed when the value is dropped.
    pub fn start_private() -> TestDocker {
        launch().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix://<socket>`, the form `DOCKER_HOST` takes.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The bridge the daemon's containers are attached to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// A `docker` CLI command aimed at this daemon.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.host());
        c
    }

    /// Runs the `docker` CLI against this daemon; panics with its stderr when
    /// it fails. Returns stdout, trimmed.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self
            .docker()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"));
        if !out.status.success() {
            panic!(
                "docker {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The tail of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.root.join("dockerd.log"))
    }
}

impl Drop for TestDocker {
    fn drop(&mut self) {
        let child = match self.watchdog.get_mut() {
            Ok(c) => c.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(mut child) = child {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// What is missing, as one message naming the fix.
fn preflight() -> Result<(PathBuf, PathBuf), String> {
    // Each problem with its own fix.
    let mut problems: Vec<String> = Vec::new();
    if !is_root() {
        problems
            .push("not running as root: dockerd must run as root; run the tests as root".into());
    }
    let dockerd = which("dockerd");
    if dockerd.is_none() {
        problems.push(format!("`dockerd` is missing; install it with: {INSTALL}"));
    }
    if which("docker").is_none() {
        problems.push(format!(
            "the `docker` CLI is missing; install it with: {INSTALL}"
        ));
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| which("busybox"));
    match &busybox {
        None => problems.push(format!("`busybox` is missing; install it with: {INSTALL}")),
        Some(p) if !is_static_elf(p) => problems.push(format!(
            "{} is dynamically linked and cannot run alone in the test image; \
             install the static one with: {INSTALL}",
            p.display()
        )),
        Some(_) => {}
    }
    for (tool, package) in [("ip", "iproute2"), ("tar", "tar")] {
        if which(tool).is_none() {
            problems.push(format!(
                "`{tool}` is missing; install it with: apt-get install -y {package}"
            ));
        }
    }
    match (problems.is_empty(), dockerd, busybox) {
        (true, Some(d), Some(b)) => Ok((d, b)),
        _ => Err(format!(
            "the Docker test harness cannot start:\n  - {}",
            problems.join("\n  - ")
        )),
    }
}

fn launch() -> Result<TestDocker, String> {
    let (dockerd, busybox) = preflight()?;
    fs::create_dir_all(LOCK_DIR).map_err(|e| format!("cannot create {LOCK_DIR}: {e}"))?;
    let (slot, lock) = take_slot()?;
    let root = PathBuf::from(format!("{LOCK_DIR}/{slot}"));
    let bridge = format!("weftd{slot}");

    // Whatever a crashed run left in this slot goes first.
    let stale_pid = fs::read_to_string(root.join("dockerd.pid")).unwrap_or_default();
    run_cleanup(&root, &bridge, stale_pid.trim())?;

    fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let net = format!("10.213.{slot}.1/24");
    sh(&format!(
        "ip link add name {bridge} type bridge && ip addr add {net} dev {bridge} && ip link set {bridge} up"
    ))?;
    fs::write(root.join("daemon.json"), "{}\n").map_err(|e| e.to_string())?;
    let socket = root.join("docker.sock");
    let log = File::create(root.join("dockerd.log")).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(&dockerd)
        .arg("--config-file")
        .arg(root.join("daemon.json"))
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("exec"))
        .arg("--pidfile")
        .arg(root.join("dockerd.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--bridge")
        .arg(&bridge)
        // Many daemons share the host's network namespace: none may rewrite
        // its firewall or sysctls. docker-proxy still publishes ports.
        .args(["--iptables=false", "--ip-masq=false", "--ip-forward=false"])
        .args(["--shutdown-timeout", "3", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Keep it out of the test's process group: a Ctrl-C or a nextest
        // timeout kills the test, the watchdog then stops the daemon.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot spawn {}: {e}", dockerd.display()))?;
    let pid = child.id();

    let watchdog = spawn_watchdog(&root, &bridge, pid, &lock);
    let watchdog = match watchdog {
        Ok(w) => w,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let _ = run_cleanup(&root, &bridge, "");
            return Err(e);
        }
    };
    let docker = TestDocker {
        root,
        socket,
        bridge,
        pid,
        watchdog: Mutex::new(Some(watchdog)),
        _lock: lock,
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ping(&docker.socket) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "dockerd exited ({status}) before answering on {}; its log:\n{}",
                docker.socket.display(),
                docker.log_tail()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "dockerd did not answer on {} within 30 s; its log:\n{}",
                docker.socket.display(),
                docker.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    // dockerd is reaped by the watchdog's wait loop or at process exit.
    std::mem::forget(child);

    build_image(&docker, &busybox)?;
    Ok(docker)
}

fn take_slot() -> Result<(u32, File), String> {
    for slot in 0..SLOTS {
        let path = format!("{LOCK_DIR}/slot-{slot}.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        if f.try_lock().is_ok() {
            return Ok((slot, f));
        }
    }
    Err(format!(
        "all {SLOTS} test-docker slots in {LOCK_DIR} are busy"
    ))
}

// Stops dockerd (SIGTERM, then SIGKILL after 10 s; only a pid whose command
// line names our root), kills leftover shims and their containers, unmounts
// and removes the root, deletes the bridge. Arguments: root bridge pid.
const CLEANUP: &str = r#"
root=$1; br=$2; pid=$3
if [ -n "$pid" ] && grep -q "$root/" "/proc/$pid/cmdline" 2>/dev/null; then
  kill -TERM "$pid" 2>/dev/null
  i=0
  while [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i+1))
  done
  kill -KILL "$pid" 2>/dev/null
fi
for p in /proc/[0-9]*; do
  n=${p#/proc/}
  [ "$n" = "$$" ] && continue
  if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q -- "-address $root/exec/"; then
    for c in /proc/[0-9]*; do
      pp=$(awk '/^PPid:/ {print $2}' "$c/status" 2>/dev/null)
      [ "$pp" = "$n" ] && kill -KILL "${c#/proc/}" 2>/dev/null
    done
    kill -KILL "$n" 2>/dev/null
  fi
done
awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
rm -rf "$root"
ip link del "$br" 2>/dev/null
exit 0
"#;

fn run_cleanup(root: &Path, bridge: &str, pid: &str) -> Result<(), String> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(CLEANUP)
        .arg("sh")
        .arg(root)
        .arg(bridge)
        .arg(pid)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the cleanup script: {e}"))?;
    if !status.success() {
        return Err(format!("cleanup of {} failed: {status}", root.display()));
    }
    Ok(())
}

fn spawn_watchdog(root: &Path, bridge: &str, pid: u32, lock: &File) -> Result<Child, String> {
    // The lock file is the watchdog's stdout, so the slot stays locked until
    // the cleanup is over even when this process is long gone.
    let lock = lock.try_clone().map_err(|e| e.to_string())?;
    let script = format!("cat >/dev/null\n{CLEANUP}");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(root)
        .arg(bridge)
        .arg(pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::from(lock))
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot spawn the watchdog: {e}"))
}

fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.0 200") || buf[..n].starts_with(b"HTTP/1.1 200")
}

fn build_image(d: &TestDocker, busybox: &Path) -> Result<(), String> {
    let rootfs = d.root.join("rootfs");
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    for dir in ["tmp", "etc", "proc", "sys", "dev", "www"] {
        fs::create_dir_all(rootfs.join(dir)).map_err(|e| e.to_string())?;
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")
        .map_err(|e| e.to_string())?;
    fs::copy(busybox, bin.join("busybox")).map_err(|e| format!("copy busybox: {e}"))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("busybox --list: {e}"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", bin.join(applet)).map_err(|e| format!("link {applet}: {e}"))?;
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tar: {e}"))?;
    let tar_out = tar.stdout.take().ok_or("tar has no stdout")?;
    let import = d
        .docker()
        .args(["import", "-c", r#"CMD ["/bin/sh"]"#, "-", TEST_IMAGE])
        .stdin(Stdio::from(tar_out))
        .output()
        .map_err(|e| format!("docker import: {e}"))?;
    let _ = tar.wait();
    if !import.status.success() {
        return Err(format!(
            "docker import of {TEST_IMAGE} failed: {}\ndaemon log:\n{}",
            String::from_utf8_lossy(&import.stderr),
            d.log_tail()
        ));
    }
    let _ = fs::remove_dir_all(&rootfs);
    Ok(())
}

fn sh(script: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(|e| format!("sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    // std has no geteuid; /proc says it too: "Uid: real effective saved fs".
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// An ELF file without a `PT_INTERP` program header is statically linked, so
/// it runs in a root filesystem that holds nothing else.
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = fs::read(path) else { return false };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false; // only 64-bit little-endian is checked; others count as dynamic
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) != 3
    })
}

fn tail(path: &Path) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
