//! A chain that cannot be written makes actions fail: nothing is reported
//! done that the chain did not record. The kernel's state dir sits on a
//! small tmpfs that fills up (root is needed to mount it; CI runs as root).

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
    drop(kernel);

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
}
