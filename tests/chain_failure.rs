//! A full disk: a chain that cannot be written makes actions fail (nothing
//! is reported done that the chain did not record), an install or a cron
//! job that cannot be written fails with a clear error and leaves nothing
//! behind, and the kernel works again once space returns. The state dir
//! sits on a small tmpfs that fills up (root is needed to mount it; CI runs
//! as root).

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use weft_e2e::{guest, start_kernel, weaver_at as w};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "this test mounts a small tmpfs to fill a disk, which needs root (CI runs as root)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t tmpfs failed: {st}");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let st = Command::new("umount").arg("-l").arg(&self.0).status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!("could not unmount {}", self.0.display());
        }
    }
}

/// Fill the file system holding `dir` until only `free` bytes are left
/// (rounded to its pages); remove `dir/filler` to give the space back.
fn fill_leaving(dir: &Path, free: usize) {
    let reserve = dir.join("reserve");
    std::fs::write(&reserve, vec![0u8; free]).unwrap();
    fill(dir);
    std::fs::remove_file(reserve).unwrap();
}

/// Fill the file system holding `dir` until it refuses to grow.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    // The last bytes may still fit; take them too.
    while f.write_all(&[0u8; 512]).is_ok() {}
}

#[test]
fn a_full_disk_fails_actions_instead_of_losing_their_records() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"), "4m");
    let state = disk.0.join("state");
    let probe = format!("echo={}", guest("probe").display());
    let kernel = start_kernel(&state, &["--spawn", &probe]);
    assert_eq!(w(&state, &["agent", "send", "echo", "before"]).code, 0);
    fill(&disk.0);

    // Each send records; the control API syncs before answering. Once the
    // chain's writer hits ENOSPC, every action fails.
    let mut acknowledged = 1;
    let mut failure = None;
    for i in 0..2_000 {
        let r = w(&state, &["agent", "send", "echo", &format!("m{i}")]);
        if r.code == 0 {
            acknowledged += 1;
        } else {
            failure = Some(r);
            break;
        }
    }
    let failure = failure.expect("the chain never failed on a full disk");
    assert_ne!(failure.code, 0);
    assert!(
        failure.stderr.contains("chain"),
        "the failure does not name the chain: {}",
        failure.stderr
    );
    // Fail closed: later actions and queries fail too, none is reported done.
    for args in [
        &["agent", "send", "echo", "after"][..],
        &["kernel", "status"],
        &["ps"],
    ] {
        let r = w(&state, args);
        assert_ne!(
            r.code, 0,
            "{args:?} succeeded on a failed chain: {}",
            r.stdout
        );
    }
    // Space returns. The chain's writer failure holds until the kernel
    // restarts: SIGTERM still shuts it down promptly.
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    let mut kernel = kernel;
    terminate(&mut kernel);

    // Every send reported done is on disk, in a chain that verifies (a torn
    // tail, the write that did not fit, is cut off when it is read).
    let key = weft_chain::SigningKeyFile::load(state.join("chain/chain.key"))
        .expect("chain.key")
        .signing_key()
        .verifying_key();
    let copy = tmp.path().join("chain-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(state.join("chain")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
        }
    }
    let (events, _report) = weft_chain::read_dir(&copy, &key).expect("the chain reads back");
    let sends = events
        .iter()
        .filter(|e| e.kind == "ipc.send" && e.source == "operator")
        .count();
    assert!(
        sends >= acknowledged,
        "{acknowledged} sends acknowledged, {sends} on disk"
    );

    // It boots again on the same state and works: the torn tail is cut,
    // nothing acknowledged is lost, new actions are recorded.
    let _again = start_kernel(&state, &["--spawn", &probe]);
    let r = w(&state, &["agent", "send", "echo", "after"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "after"), "{}", r.stderr);
    let v = w(&state, &["chain", "verify"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let export = w(&state, &["chain", "export"]).stdout;
    let sends = export
        .lines()
        .filter(|l| l.contains("\"kind\":\"ipc.send\"") && l.contains("\"source\":\"operator\""))
        .count();
    assert!(
        sends > acknowledged,
        "{acknowledged} acknowledged before, {sends} sends after"
    );
}

/// SIGTERM, and wait for the kernel to exit (at most 30 s).
fn terminate(k: &mut weft_e2e::KernelProc) {
    let pid = k.0.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while k.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the kernel did not exit within 30 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A state dir on a small tmpfs, its chain on a tmpfs of its own: filling
/// the state's disk leaves the chain writable, so what fails is the write
/// under test.
struct SplitState {
    state: PathBuf,
    // Unmounted in reverse order (the chain's mount sits inside the state's).
    _chain: Tmpfs,
    disk: Tmpfs,
}

fn split_state(tmp: &Path, size: &str) -> SplitState {
    let disk = Tmpfs::mount(&tmp.join("disk"), size);
    let state = disk.0.join("state");
    std::fs::create_dir_all(state.join("chain")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    // (`size` takes further mount options after a comma.)
    let chain = Tmpfs::mount(&state.join("chain"), "64m,mode=0700");
    SplitState {
        state,
        _chain: chain,
        disk,
    }
}

fn dev_config(dir: &Path) -> PathBuf {
    let p = dir.join("weft.toml");
    std::fs::write(&p, "[kernel]\nenvironment = \"dev\"\n").unwrap();
    p
}

/// `apps/hello` with its components, packed (unsigned) in `dir`.
fn hello_bundle(dir: &Path) -> PathBuf {
    let app = dir.join("hello");
    std::fs::create_dir_all(app.join("components")).unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/hello/weftapp.toml");
    std::fs::copy(manifest, app.join("weftapp.toml")).unwrap();
    for g in ["probe", "calc"] {
        std::fs::copy(guest(g), app.join(format!("components/{g}.wasm"))).unwrap();
    }
    let r = weft_e2e::weaver(&["app", "pack", app.to_str().unwrap()], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    app
}

#[test]
fn an_install_on_a_full_disk_fails_cleanly_and_succeeds_once_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = hello_bundle(tmp.path());
    let s = split_state(tmp.path(), "8m");
    let config = dev_config(tmp.path());
    let _kernel = start_kernel(&s.state, &["--config", config.to_str().unwrap()]);
    // Less room than the bundle's components need.
    fill_leaving(&s.disk.0, 64 << 10);
    let r = w(&s.state, &["app", "install", bundle.to_str().unwrap()]);
    assert_ne!(r.code, 0, "installed on a full disk: {}", r.stdout);
    assert!(
        r.stderr.contains("No space left on device") && r.stderr.contains("apps"),
        "the error does not say what is full and where: {}",
        r.stderr
    );
    // Nothing half-installed, nothing registered, the chain intact.
    let apps = w(&s.state, &["app", "ls", "--json"]).json();
    assert_eq!(apps, serde_json::json!([]));
    let left: Vec<String> = std::fs::read_dir(s.state.join("apps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "registry.json")
        .collect();
    assert!(left.is_empty(), "left behind in apps/: {left:?}");
    let v = w(&s.state, &["chain", "verify"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    // Space returns: the same install works, without a restart.
    std::fs::remove_file(s.disk.0.join("filler")).unwrap();
    let r = w(&s.state, &["app", "install", bundle.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = w(&s.state, &["app", "start", "hello"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = w(&s.state, &["agent", "send", "hello.greeter", "hi"]);
    assert_eq!(r.stdout.trim(), "hi", "{}", r.stderr);
}

#[test]
fn a_cron_job_that_cannot_be_saved_is_not_kept_and_saving_resumes_with_space() {
    let tmp = tempfile::tempdir().unwrap();
    let s = split_state(tmp.path(), "4m");
    let probe = format!("echo={}", guest("probe").display());
    let mut kernel = start_kernel(&s.state, &["--spawn", &probe]);
    let r = w(
        &s.state,
        &["cron", "add", "every 1h", "echo", "--payload", "{\"n\":1}"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    fill(&s.disk.0);
    let r = w(
        &s.state,
        &["cron", "add", "every 2h", "echo", "--payload", "{\"n\":2}"],
    );
    assert_ne!(r.code, 0, "a job was added on a full disk: {}", r.stdout);
    assert!(
        r.stderr.contains("No space left on device") && r.stderr.contains("cron.json"),
        "the error does not say what is full and where: {}",
        r.stderr
    );
    // Refused means not kept: the table is what is on disk.
    let jobs = w(&s.state, &["cron", "ls", "--json"]).json();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.state.join("cron.json")).unwrap()).unwrap();
    assert!(on_disk.to_string().contains("every 1h"), "{on_disk}");
    assert!(!on_disk.to_string().contains("every 2h"), "{on_disk}");
    let v = w(&s.state, &["chain", "verify"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    // Space returns: adding works again and survives a restart.
    std::fs::remove_file(s.disk.0.join("filler")).unwrap();
    let r = w(
        &s.state,
        &["cron", "add", "every 3h", "echo", "--payload", "{\"n\":3}"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    terminate(&mut kernel);
    let _again = start_kernel(&s.state, &["--spawn", &probe]);
    let jobs = w(&s.state, &["cron", "ls", "--json"]).json();
    let schedules: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["schedule"].as_str().unwrap())
        .collect();
    assert_eq!(schedules, ["every 1h", "every 3h"], "{jobs}");
}
