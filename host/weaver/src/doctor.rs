//! `weaver doctor`: what this machine has and lacks for Weft, each missing
//! piece with the command that fixes it. Nothing is changed; a kernel that
//! is running is only asked, never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde::Serialize;
use serde_json::json;
use weft_kernel::control::protocol::exit;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    /// Present and usable.
    Ok,
    /// Absent; needed only for what `needed_for` says.
    Missing,
    /// Present but wrong (a version, a permission): fix it.
    Problem,
}

#[derive(Debug, Serialize)]
struct Check {
    what: &'static str,
    status: Status,
    detail: String,
    /// What it is needed for.
    needed_for: &'static str,
    /// The command (or step) that fixes it.
    fix: Option<String>,
}

impl Check {
    fn ok(what: &'static str, needed_for: &'static str, detail: impl Into<String>) -> Self {
        Check {
            what,
            status: Status::Ok,
            detail: detail.into(),
            needed_for,
            fix: None,
        }
    }

    fn bad(
        what: &'static str,
        status: Status,
        needed_for: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            what,
            status,
            detail: detail.into(),
            needed_for,
            fix: Some(fix.into()),
        }
    }
}

/// `weaver doctor [--json]` on the state dir `state`.
pub async fn run(state: &Path, json_out: bool) -> ExitCode {
    let checks = vec![
        embedded(),
        cache_dir(),
        state_dir(state).await,
        rust_target(),
        c_toolchain(),
        tool_version(
            "wit-bindgen",
            "wit-bindgen",
            "0.63.0",
            "C guests (bindings)",
            "cargo install --locked wit-bindgen-cli@0.63.0 --no-default-features --features c",
        ),
        tool_version(
            "wasm-tools",
            "wasm-tools",
            "1.262.0",
            "C guests (wrapping a core module as a component)",
            "cargo install --locked wasm-tools@1.262.0 --no-default-features --features component",
        ),
        componentize_py(),
        node(),
        docker(),
        etcd(),
    ];
    let problems = checks
        .iter()
        .filter(|c| c.status == Status::Problem)
        .count();
    if json_out {
        println!(
            "{}",
            json!({ "ok": problems == 0, "state_dir": state, "checks": checks })
        );
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok     ",
                Status::Missing => "missing",
                Status::Problem => "PROBLEM",
            };
            println!("{mark}  {:<16} {}", c.what, c.detail);
            if c.status != Status::Ok {
                println!("         {:<16} needed for: {}", "", c.needed_for);
            }
            if let Some(fix) = &c.fix {
                println!("         {:<16} fix: {fix}", "");
            }
        }
        let missing = checks
            .iter()
            .filter(|c| c.status == Status::Missing)
            .count();
        println!(
            "\n{} ok, {missing} missing (optional: only for what each says), {problems} problem{}",
            checks.len() - missing - problems,
            if problems == 1 { "" } else { "s" }
        );
    }
    ExitCode::from(if problems == 0 { 0 } else { exit::FAILED })
}

/// `cmd args` if it runs; its stdout and stderr, trimmed.
fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    out.status.success().then(|| s.trim().to_string())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn embedded() -> Check {
    let names = ["governance.wasm", "cron.wasm", "health.wasm", "apps.wasm"];
    let have: Vec<String> = names
        .iter()
        .filter_map(|n| {
            weft_kernel::components::embedded(n).map(|b| format!("{n} {} KB", b.len() / 1024))
        })
        .collect();
    if std::env::var_os("WEFT_COMPONENTS_DIR").is_some() {
        let dir = weft_kernel::components::components_dir();
        let absent: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !dir.join(n).is_file())
            .collect();
        return if absent.is_empty() {
            Check::ok(
                "components",
                "booting a kernel",
                format!("from WEFT_COMPONENTS_DIR={}", dir.display()),
            )
        } else {
            Check::bad(
                "components",
                Status::Problem,
                "booting a kernel",
                format!(
                    "WEFT_COMPONENTS_DIR={} lacks {}",
                    dir.display(),
                    absent.join(", ")
                ),
                "unset WEFT_COMPONENTS_DIR to use the components built into weaver",
            )
        };
    }
    if have.len() == names.len() {
        Check::ok(
            "components",
            "booting a kernel",
            format!("built into weaver: {}", have.join(", ")),
        )
    } else {
        Check::bad(
            "components",
            Status::Problem,
            "booting a kernel",
            "this weaver was built without its subsystem components",
            "rebuild weaver: just build",
        )
    }
}

fn cache_dir() -> Check {
    let Some(dir) = weft_kernel::control::cli::cache_dir() else {
        return Check::bad(
            "cache dir",
            Status::Missing,
            "fast starts (compiled components are kept between runs)",
            "no cache dir: neither WEFT_CACHE_DIR nor a user cache dir ($HOME) is set",
            "set WEFT_CACHE_DIR to a directory of your own",
        );
    };
    match weft_runtime::Runtime::new(weft_runtime::RuntimeConfig {
        cache_dir: Some(dir.clone()),
        ..Default::default()
    }) {
        Ok(_) => Check::ok(
            "cache dir",
            "fast starts",
            format!("{} (private to this user)", dir.display()),
        ),
        Err(e) => Check::bad(
            "cache dir",
            Status::Problem,
            "running any component (native code is loaded from it)",
            e.to_string(),
            "see the message: fix the permissions or point WEFT_CACHE_DIR elsewhere",
        ),
    }
}

async fn state_dir(state: &Path) -> Check {
    use std::os::unix::fs::MetadataExt;
    let what = "state dir";
    let needed = "a kernel (`weaver run`)";
    let meta = match std::fs::metadata(state) {
        Ok(m) => m,
        Err(_) => {
            return Check::ok(
                what,
                needed,
                format!(
                    "{} does not exist yet (weaver run creates it, owner-only)",
                    state.display()
                ),
            )
        }
    };
    if !meta.is_dir() {
        return Check::bad(
            what,
            Status::Problem,
            needed,
            format!("{} is not a directory", state.display()),
            "pass --state DIR naming a directory",
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Check::bad(
            what,
            Status::Problem,
            needed,
            format!(
                "{} has mode {mode:04o}: others can reach the chain's signing key",
                state.display()
            ),
            format!("chmod 700 {}", state.display()),
        );
    }
    let running = weft_kernel::control::client::call(
        state,
        "kernel",
        &weft_kernel::status::Request::Status,
        |_| {},
    )
    .await
    .is_ok();
    let lock = state.join(weft_kernel::control::server::LOCK_FILE);
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock)
        .ok()
        .map(|f| match f.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        })
        .unwrap_or(false);
    match (running, held) {
        (true, _) => Check::ok(
            what,
            needed,
            format!("{}: a kernel is running and answers", state.display()),
        ),
        (false, true) => Check::bad(
            what,
            Status::Problem,
            needed,
            format!(
                "{}: a process holds {} but no kernel answers on its socket (booting, or hung)",
                state.display(),
                lock.display()
            ),
            format!(
                "wait a moment; if it stays so, find it with `fuser {}` and stop it",
                lock.display()
            ),
        ),
        (false, false) => Check::ok(
            what,
            needed,
            format!(
                "{}: no kernel running, lock free (start one: weaver run --state {})",
                state.display(),
                state.display()
            ),
        ),
    }
}

fn rust_target() -> Check {
    let needed = "Rust guests (`cargo build --target wasm32-wasip2`)";
    match output("rustup", &["target", "list", "--installed"]) {
        Some(list) if list.lines().any(|l| l.trim() == "wasm32-wasip2") => {
            Check::ok("wasm32-wasip2", needed, "Rust target installed")
        }
        Some(_) => Check::bad(
            "wasm32-wasip2",
            Status::Missing,
            needed,
            "the Rust target is not installed",
            "rustup target add wasm32-wasip2",
        ),
        None => Check::bad(
            "wasm32-wasip2",
            Status::Missing,
            needed,
            "rustup not found",
            "install rustup (https://rustup.rs), then: rustup target add wasm32-wasip2",
        ),
    }
}

fn c_toolchain() -> Check {
    let needed = "C guests";
    let fix = "apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32";
    let clang = ["clang-14", "clang"]
        .into_iter()
        .find_map(|c| output(c, &["--version"]).map(|v| (c, v)));
    let Some((clang, version)) = clang else {
        return Check::bad(
            "C toolchain",
            Status::Missing,
            needed,
            "clang not found",
            fix,
        );
    };
    if !Path::new("/usr/include/wasm32-wasi/stdio.h").exists() {
        return Check::bad(
            "C toolchain",
            Status::Missing,
            needed,
            format!("{clang} found, but not wasi-libc (/usr/include/wasm32-wasi)"),
            fix,
        );
    }
    let rt = glob_exists(
        "/usr/lib",
        &[
            "llvm-",
            "/lib/clang/",
            "/lib/wasi/libclang_rt.builtins-wasm32.a",
        ],
    );
    if !rt {
        return Check::bad(
            "C toolchain",
            Status::Missing,
            needed,
            format!("{clang} and wasi-libc found, but not the wasm32 compiler runtime"),
            fix,
        );
    }
    Check::ok(
        "C toolchain",
        needed,
        format!("{} with wasi-libc", first_line(&version)),
    )
}

/// `/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a`.
fn glob_exists(root: &str, parts: &[&str; 3]) -> bool {
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    dirs(Path::new(root))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(parts[0]))
        })
        .flat_map(|llvm| dirs(&llvm.join(parts[1].trim_matches('/'))))
        .any(|ver| ver.join(parts[2].trim_start_matches('/')).is_file())
}

fn tool_version(
    what: &'static str,
    bin: &str,
    pinned: &str,
    needed: &'static str,
    fix: &str,
) -> Check {
    match output(bin, &["--version"]) {
        Some(v) if v.contains(pinned) => Check::ok(what, needed, first_line(&v).to_string()),
        Some(v) => Check::bad(
            what,
            Status::Missing,
            needed,
            format!("{} found; the guides pin {pinned}", first_line(&v)),
            fix,
        ),
        None => Check::bad(
            what,
            Status::Missing,
            needed,
            format!("{bin} not found"),
            fix,
        ),
    }
}

fn componentize_py() -> Check {
    let needed = "Python guests";
    let fix = "pip install componentize-py==0.25.1";
    if let Some(v) = output("componentize-py", &["--version"]) {
        return if v.contains("0.25.1") {
            Check::ok("componentize-py", needed, first_line(&v).to_string())
        } else {
            Check::bad(
                "componentize-py",
                Status::Missing,
                needed,
                format!("{} found; the guides pin 0.25.1", first_line(&v)),
                fix,
            )
        };
    }
    match output("python3", &["--version"]) {
        Some(py) => Check::bad(
            "componentize-py",
            Status::Missing,
            needed,
            format!("{py} found, componentize-py not on PATH"),
            fix,
        ),
        None => Check::bad(
            "componentize-py",
            Status::Missing,
            needed,
            "python3 not found",
            format!("apt-get install python3 python3-pip, then {fix}"),
        ),
    }
}

fn node() -> Check {
    let needed = "JavaScript guests (componentize-js runs on node)";
    match (
        output("node", &["--version"]),
        output("npm", &["--version"]),
    ) {
        (Some(n), Some(npm)) => Check::ok(
            "node + npm",
            needed,
            format!(
                "node {n}, npm {npm} (each project installs \
                 @bytecodealliance/componentize-js@0.23.0)"
            ),
        ),
        _ => Check::bad(
            "node + npm",
            Status::Missing,
            needed,
            "node or npm not found",
            "apt-get install nodejs npm",
        ),
    }
}

fn docker() -> Check {
    let needed = "container services (`image` in a weftapp.toml)";
    let sock = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
    let cli = output("docker", &["--version"]);
    let engine = std::os::unix::net::UnixStream::connect(&sock).is_ok();
    match (cli, engine) {
        (_, true) => Check::ok(
            "docker",
            needed,
            format!("an engine answers on {}", sock.display()),
        ),
        (Some(v), false) => Check::bad(
            "docker",
            Status::Missing,
            needed,
            format!(
                "{} installed, but no engine on {}",
                first_line(&v),
                sock.display()
            ),
            "start it: systemctl start docker (or dockerd &)",
        ),
        (None, false) => Check::bad(
            "docker",
            Status::Missing,
            needed,
            "no docker CLI and no engine",
            "apt-get install docker.io (just test-deps does it)",
        ),
    }
}

fn etcd() -> Check {
    let needed = "clustered kernels";
    match output("etcd", &["--version"]) {
        Some(v) => Check::ok("etcd", needed, first_line(&v).to_string()),
        None => Check::bad(
            "etcd",
            Status::Missing,
            needed,
            "etcd not found",
            "apt-get install etcd-server etcd-client",
        ),
    }
}
