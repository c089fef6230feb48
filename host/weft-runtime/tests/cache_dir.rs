//! The compile cache is native code the runtime maps and runs, so the
//! directory must be private to the current user and every entry must be
//! ours. Real directories and files; the cases that need another owner
//! `chown` to uid 65534 and so need root (CI runs as root).

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_runtime::{CacheError, Grants, Limits, LoadSource, RunError, Runtime, RuntimeConfig};
use weft_testkit::guest;

/// Not our uid (the tests run as root), and present on every system.
const OTHER_UID: u32 = 65534;

fn config(dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..RuntimeConfig::default()
    }
}

fn refused(dir: &Path) -> RunError {
    match Runtime::new(config(dir)) {
        Ok(_) => panic!("cache dir {} should have been refused", dir.display()),
        Err(e) => e,
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_to_other(p: &Path) {
    chown(p, Some(OTHER_UID), None).unwrap_or_else(|e| {
        panic!(
            "this test needs root (CI runs as root): cannot chown {} to uid {OTHER_UID}: {e}",
            p.display()
        )
    });
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// The one artifact in `dir`.
fn artifact(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(found.len(), 1, "expected one artifact in {}", dir.display());
    found.pop().unwrap()
}

/// A private cache dir holding the compiled `calc` guest; returns its
/// bytes and the artifact's path.
fn warm_cache(dir: &Path) -> (Vec<u8>, PathBuf) {
    let bytes = std::fs::read(guest("calc")).unwrap();
    let rt = Runtime::new(config(dir)).unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::Compiled);
    (bytes, artifact(dir))
}

async fn calc_works(rt: &Runtime, bytes: &[u8]) {
    let c = rt.load(bytes).unwrap();
    let limits = Limits {
        timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let out = rt
        .run_tool(&c, r#"{"expr":"1+1"}"#, &limits, &Grants::default())
        .await
        .unwrap();
    assert_eq!(out.result.unwrap()["value"], 2.0);
}

#[test]
fn a_missing_cache_dir_is_created_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/components");
    Runtime::new(config(&dir)).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), euid());
    // A second runtime accepts what the first created.
    Runtime::new(config(&dir)).unwrap();
}

#[test]
fn a_cache_dir_open_to_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o777);
    let e = refused(&dir);
    assert_eq!(e.kind(), "cache");
    assert!(
        matches!(e, RunError::Cache(CacheError::Mode { mode: 0o777, .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    for part in [
        format!("cache dir {} refused", dir.display()),
        "mode 0777, expected 0700 (owner only)".into(),
        format!("`chmod 700 {}`", dir.display()),
        "WEFT_CACHE_DIR".into(),
    ] {
        assert!(msg.contains(&part), "{msg:?} lacks {part:?}");
    }
    // Left as it was: the runtime does not chmod a dir it did not create.
    assert_eq!(mode(&dir), 0o777);

    // Read access alone is refused too; the fix in the message works.
    chmod(&dir, 0o755);
    assert!(refused(&dir)
        .to_string()
        .contains("mode 0755, expected 0700"));
    chmod(&dir, 0o700);
    Runtime::new(config(&dir)).unwrap();
}

#[test]
fn a_cache_dir_of_another_user_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o700);
    chown_to_other(&dir);
    let e = refused(&dir);
    assert_eq!(e.kind(), "cache");
    assert!(
        matches!(
            e,
            RunError::Cache(CacheError::Owner {
                owner: OTHER_UID,
                ..
            })
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    let want = format!(
        "owned by uid {OTHER_UID}, not by uid {} (the current user)",
        euid()
    );
    assert!(msg.contains(&want), "{msg:?} lacks {want:?}");
    assert!(msg.contains("WEFT_CACHE_DIR"), "{msg}");
}

#[test]
fn a_symlinked_cache_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    chmod(&real, 0o700);
    let link = tmp.path().join("components");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = refused(&link);
    assert!(
        matches!(e, RunError::Cache(CacheError::Symlink { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("a symlink (to {})", real.display())),
        "{msg}"
    );
    assert!(msg.contains("to the real directory"), "{msg}");
    // The real directory itself is fine.
    Runtime::new(config(&real)).unwrap();
}

#[test]
fn a_cache_path_that_is_not_a_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("components");
    std::fs::write(&file, b"").unwrap();
    let e = refused(&file);
    assert!(
        matches!(e, RunError::Cache(CacheError::NotDirectory { .. })),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("not a directory (it is a regular file)"),
        "{e}"
    );
}

#[test]
fn a_cache_dir_under_a_world_writable_parent_needs_the_sticky_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("shared");
    let dir = parent.join("components");
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o700);
    chmod(&parent, 0o777);
    let e = refused(&dir);
    assert!(
        matches!(e, RunError::Cache(CacheError::ParentWritable { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{}, has mode 0777", parent.display())),
        "{msg}"
    );
    // Like /tmp: others may create entries but not replace ours.
    chmod(&parent, 0o1777);
    Runtime::new(config(&dir)).unwrap();
}

#[tokio::test]
async fn the_disk_cache_round_trip_still_works_and_entries_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    let (bytes, entry) = warm_cache(&dir);
    assert_eq!(mode(&entry), 0o600);
    let rt = Runtime::new(config(&dir)).unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::DiskCache);
    calc_works(&rt, &bytes).await;
}

#[tokio::test]
async fn a_planted_artifact_of_another_user_is_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    let (bytes, entry) = warm_cache(&dir);
    chown_to_other(&entry);
    let rt = Runtime::new(config(&dir)).unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::Compiled);
    calc_works(&rt, &bytes).await;
    // Replaced by our own entry, which the next runtime trusts.
    assert_eq!(std::fs::metadata(&entry).unwrap().uid(), euid());
    assert_eq!(mode(&entry), 0o600);
    let rt = Runtime::new(config(&dir)).unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::DiskCache);
}

#[tokio::test]
async fn a_group_writable_artifact_is_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    let (bytes, entry) = warm_cache(&dir);
    chmod(&entry, 0o664);
    let rt = Runtime::new(config(&dir)).unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::Compiled);
    calc_works(&rt, &bytes).await;
    assert_eq!(mode(&entry), 0o600);
}

#[test]
fn a_symlinked_artifact_is_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("components");
    let (bytes, entry) = warm_cache(&dir);
    // A valid artifact, but reached through a link that could be re-pointed.
    let elsewhere = tmp.path().join("elsewhere.cwasm");
    std::fs::rename(&entry, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
    let rt = Runtime::new(config(&dir)).unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::Compiled);
    assert!(std::fs::symlink_metadata(&entry).unwrap().is_file());
}
