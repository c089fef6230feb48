//! Helpers for driving `weaver` as a user would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub use weft_testkit::{guest, shared_cache_dir, weaver_bin};

/// The result of one `weaver` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Run `weaver ARGS` with `stdin`, using the shared compile cache.
pub fn weaver(args: &[&str], stdin: &[u8]) -> Run {
    weaver_in(None, args, stdin)
}

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
