//! Helpers for driving `weaver` as a user would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub use weft_testkit::{guest, shared_cache_dir, weaver_bin};

#[path = "support/upstream.rs"]
pub mod upstream;

/// The result of one `weaver` invocation.
pub struct Run {
    /// Exit code; -1 when a signal killed it.
    pub code: i32,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as JSON; panics (failing the test) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Run `weaver ARGS` with `stdin`, using the shared compile cache.
pub fn weaver(args: &[&str], stdin: &[u8]) -> Run {
    weaver_in(None, args, stdin)
}

/// [`weaver`], run in `cwd` when given.
pub fn weaver_in(cwd: Option<&Path>, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(weaver_bin());
    cmd.args(args)
        .env("WEFT_CACHE_DIR", shared_cache_dir())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn weaver");
    if let Some(mut s) = child.stdin.take() {
        // The guest may not read all of it; a broken pipe is fine.
        let _ = s.write_all(stdin);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait weaver");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A background `weaver run`, killed (and reaped) when dropped, so a failing
/// test never leaves a kernel behind.
pub struct KernelProc(pub std::process::Child);

impl Drop for KernelProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `weaver ARGS` against the kernel on `state` (`--state` first: anything
/// after `--` belongs to a tool).
pub fn weaver_at(state: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--state", state.to_str().expect("utf-8 state path")];
    all.extend(args);
    weaver(&all, b"")
}

/// Start `weaver run --state STATE EXTRA..` in the background and return
/// once its control socket answers (a killed kernel leaves a stale socket
/// file behind, so the file alone proves nothing).
pub fn start_kernel(state: &Path, extra: &[&str]) -> KernelProc {
    start_kernel_with(state, extra, &[])
}

/// [`start_kernel`] with extra environment variables for the kernel
/// process (e.g. `TOKIO_WORKER_THREADS`).
pub fn start_kernel_with(state: &Path, extra: &[&str], env: &[(&str, &str)]) -> KernelProc {
    use std::time::{Duration, Instant};
    let child = Command::new(weaver_bin())
        .args(["run", "--state", state.to_str().expect("utf-8 state path")])
        .args(extra)
        .envs(env.iter().copied())
        .env("WEFT_CACHE_DIR", shared_cache_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weaver run");
    let mut k = KernelProc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = k.0.try_wait() {
            panic!("weaver run exited early: {status}");
        }
        if weaver_at(state, &["kernel", "status", "--json"]).code == 0 {
            return k;
        }
        assert!(Instant::now() < deadline, "kernel did not come up in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Write an app directory `dir/NAME` holding `manifest` as its weftapp.toml
/// and the test guests `guests` as `components/<guest>.wasm`, and pack it
/// (unsigned) into `dir/NAME.weftapp`, which is returned.
pub fn pack_app(dir: &Path, name: &str, manifest: &str, guests: &[&str]) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("components")).expect("create the app dir");
    std::fs::write(root.join("weftapp.toml"), manifest).expect("write weftapp.toml");
    for g in guests {
        std::fs::copy(guest(g), root.join(format!("components/{g}.wasm")))
            .unwrap_or_else(|e| panic!("copy guest {g}: {e}"));
    }
    let out = dir.join(format!("{name}.weftapp"));
    let r = weaver(
        &[
            "app",
            "pack",
            root.to_str().expect("utf-8 path"),
            "-o",
            out.to_str().expect("utf-8 path"),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "app pack {name}: {}", r.stderr);
    out
}
