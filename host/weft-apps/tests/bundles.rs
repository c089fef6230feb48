//! Pack, open and verify bundles (directory and archive), signatures and
//! the trust store, and hostile archives.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use weft_apps::{
    open_bundle, pack, verify, BundleError, Environment, SigningKey, TrustStore, LOCK_FILE,
};

const MANIFEST: &str = r#"[app]
name = "demo"
version = "0.1.0"

[[agents]]
id = "worker"
component = "components/agent.wasm"

[[tools]]
name = "calc"
component = "components/calc.wasm"
"#;

/// A bundle dir with two "components" (any bytes: packing only digests).
fn bundle_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("demo");
    std::fs::create_dir_all(dir.join("components")).unwrap();
    std::fs::write(dir.join("weftapp.toml"), MANIFEST).unwrap();
    std::fs::write(dir.join("components/agent.wasm"), b"agent bytes").unwrap();
    std::fs::write(dir.join("components/calc.wasm"), b"calc bytes").unwrap();
    dir
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn key_hex(k: &SigningKey) -> String {
    weft_chain::public_key_hex(&k.verifying_key())
}

#[tokio::test]
async fn round_trip_dir_and_archive_signed_and_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let out = tmp.path().join("demo.weftapp");
    let k = key(7);
    let packed = pack(&common::checker(), &dir, Some(&out), Some(&k))
        .await
        .unwrap();
    assert_eq!(packed.lock.components.len(), 2);
    assert_eq!(
        packed.lock.components["components/calc.wasm"],
        blake3::hash(b"calc bytes").to_hex().to_string()
    );
    let mut trust = TrustStore::open(&tmp.path().join("state")).unwrap();
    trust.add("alice", &key_hex(&k)).unwrap();
    for path in [&dir, &out] {
        let b = open_bundle(path).unwrap();
        assert_eq!(b.is_archive(), path == &out);
        let v = verify(&b, &trust, Environment::prod()).unwrap();
        assert_eq!(v.signer, Some(k.verifying_key()));
        assert_eq!(v.signer_name.as_deref(), Some("alice"));
        assert_eq!(v.digests, packed.lock.components);
        let (plan, _) = weft_apps::inspect(&common::checker(), &b, &trust, Environment::prod())
            .await
            .unwrap();
        assert_eq!(plan.manifest.app.name, "demo");
    }
    // Same inputs, same archive bytes.
    let again = tmp.path().join("again.weftapp");
    pack(&common::checker(), &dir, Some(&again), Some(&k))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[tokio::test]
async fn unsigned_only_in_dev() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let out = tmp.path().join("demo.weftapp");
    pack(&common::checker(), &dir, Some(&out), None)
        .await
        .unwrap();
    let trust = TrustStore::empty();
    for path in [&dir, &out] {
        let b = open_bundle(path).unwrap();
        let v = verify(&b, &trust, Environment::dev()).unwrap();
        assert!(v.signer.is_none());
        for env in [Environment::staging(), Environment::prod()] {
            let err = verify(&b, &trust, env.clone()).unwrap_err();
            assert!(matches!(err, BundleError::Unsigned { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("environment `{env}` installs only signed bundles")),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn untrusted_signer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let k = key(9);
    pack(&common::checker(), &dir, None, Some(&k))
        .await
        .unwrap();
    let mut trust = TrustStore::empty();
    trust.add("bob", &key_hex(&key(1))).unwrap();
    let b = open_bundle(&dir).unwrap();
    for env in [Environment::dev(), Environment::prod()] {
        let err = verify(&b, &trust, env).unwrap_err();
        assert!(matches!(err, BundleError::Untrusted { .. }), "{err}");
        assert!(err.to_string().contains(&key_hex(&k)), "{err}");
    }
}

#[tokio::test]
async fn changed_component_byte_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let k = key(3);
    pack(&common::checker(), &dir, None, Some(&k))
        .await
        .unwrap();
    std::fs::write(dir.join("components/calc.wasm"), b"calc bytez").unwrap();
    let mut trust = TrustStore::empty();
    trust.add("me", &key_hex(&k)).unwrap();
    let err = verify(&open_bundle(&dir).unwrap(), &trust, Environment::prod()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BundleError::DigestMismatch { .. }), "{msg}");
    assert!(msg.contains("components/calc.wasm"), "{msg}");
    assert!(
        msg.contains(&blake3::hash(b"calc bytez").to_hex().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&blake3::hash(b"calc bytes").to_hex().to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn tampered_lock_breaks_the_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let k = key(4);
    pack(&common::checker(), &dir, None, Some(&k))
        .await
        .unwrap();
    // Re-lock a changed component without re-signing.
    std::fs::write(dir.join("components/calc.wasm"), b"evil").unwrap();
    let lock = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
    let lock = lock.replace(
        &blake3::hash(b"calc bytes").to_hex().to_string(),
        blake3::hash(b"evil").to_hex().as_str(),
    );
    std::fs::write(dir.join(LOCK_FILE), lock).unwrap();
    let mut trust = TrustStore::empty();
    trust.add("me", &key_hex(&k)).unwrap();
    let err = verify(&open_bundle(&dir).unwrap(), &trust, Environment::prod()).unwrap_err();
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
}

/// The bytes of a stand-in `docker save` tarball (packing only digests).
const IMAGE_TAR: &[u8] = b"pretend docker save tarball: manifest.json, layers";

#[tokio::test]
async fn an_image_archive_is_locked_signed_and_checked_like_a_component() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let manifest = format!(
        "{MANIFEST}\n[[services]]\nname = \"web\"\nimage_archive = \"images/web.tar\"\n\
         ports = [\"18080:8080\"]\ncall = {{ port = 8080 }}\n"
    );
    std::fs::write(dir.join("weftapp.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::write(dir.join("images/web.tar"), IMAGE_TAR).unwrap();
    let out = tmp.path().join("web.weftapp");
    let k = key(5);
    let packed = pack(&common::checker(), &dir, Some(&out), Some(&k))
        .await
        .unwrap();
    let tar_digest = blake3::hash(IMAGE_TAR).to_hex().to_string();
    assert_eq!(packed.lock.components["images/web.tar"], tar_digest);
    assert_eq!(packed.lock.components.len(), 3);
    // The signature covers it like a component.
    let signed = String::from_utf8(packed.lock.signed_bytes()).unwrap();
    assert!(
        signed.contains(&format!("component {tar_digest} images/web.tar\n")),
        "{signed}"
    );
    let mut trust = TrustStore::empty();
    trust.add("me", &key_hex(&k)).unwrap();
    for path in [&dir, &out] {
        let b = open_bundle(path).unwrap();
        let v = verify(&b, &trust, Environment::prod()).unwrap();
        assert_eq!(v.digests["images/web.tar"], tar_digest);
        assert_eq!(b.read("images/web.tar").unwrap(), IMAGE_TAR);
        weft_apps::inspect(&common::checker(), &b, &trust, Environment::prod())
            .await
            .unwrap();
    }

    // One byte flipped after signing: refused at verify, naming the archive.
    let mut flipped = IMAGE_TAR.to_vec();
    flipped[0] ^= 1;
    let flipped_digest = blake3::hash(&flipped).to_hex().to_string();
    let check = |err: BundleError| {
        let msg = err.to_string();
        assert!(matches!(err, BundleError::DigestMismatch { .. }), "{msg}");
        assert!(msg.contains("images/web.tar"), "{msg}");
        assert!(
            msg.contains(&tar_digest) && msg.contains(&flipped_digest),
            "{msg}"
        );
    };
    std::fs::write(dir.join("images/web.tar"), &flipped).unwrap();
    check(verify(&open_bundle(&dir).unwrap(), &trust, Environment::prod()).unwrap_err());
    // The same inside the `.weftapp` (a plain tar stores the bytes as is).
    let mut bytes = std::fs::read(&out).unwrap();
    let at = bytes
        .windows(IMAGE_TAR.len())
        .position(|w| w == IMAGE_TAR)
        .unwrap();
    bytes[at] ^= 1;
    std::fs::write(&out, bytes).unwrap();
    check(verify(&open_bundle(&out).unwrap(), &trust, Environment::prod()).unwrap_err());
}

#[tokio::test]
async fn pack_refuses_a_bad_manifest_with_positions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    std::fs::write(
        dir.join("weftapp.toml"),
        "[app]\nname = \"x\"\nversion = \"1\"\n",
    )
    .unwrap();
    let err = pack(&common::checker(), &dir, None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with("weftapp.toml:3:11: app.version: expected a semantic version like \"1.2.3\", found \"1\""), "{err}");
}

/// A tar with one entry whose raw name and type we control, bypassing the
/// `tar` crate's own path checks.
fn evil_archive(path: &Path, name: &[u8], kind: tar::EntryType, link: Option<&str>) {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &[u8], kind: tar::EntryType, data: &[u8]| {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            if kind == tar::EntryType::Symlink {
                h.set_link_name(l).unwrap();
            }
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add(
        b"weftapp.toml",
        tar::EntryType::Regular,
        MANIFEST.as_bytes(),
    );
    let data: &[u8] = if kind == tar::EntryType::Symlink {
        b""
    } else {
        b"x"
    };
    add(name, kind, data);
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

#[test]
fn malicious_archives_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[u8], tar::EntryType, Option<&str>, &str); 4] = [
        (
            b"../evil",
            tar::EntryType::Regular,
            None,
            "`..` would escape the bundle",
        ),
        (
            b"/etc/evil",
            tar::EntryType::Regular,
            None,
            "absolute paths are not allowed",
        ),
        (
            b"components/x.wasm",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
            "symlinks are not allowed",
        ),
        (
            b"components/y.wasm",
            tar::EntryType::Link,
            None,
            "hard links are not allowed",
        ),
    ];
    for (i, (name, kind, link, why)) in cases.into_iter().enumerate() {
        let p = tmp.path().join(format!("evil{i}.weftapp"));
        evil_archive(&p, name, kind, link);
        let err = open_bundle(&p).unwrap_err();
        assert!(matches!(err, BundleError::UnsafeEntry { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(why) && msg.contains(std::str::from_utf8(name).unwrap()),
            "{msg}"
        );
    }
    // Nothing was written outside.
    assert!(!tmp.path().join("evil").exists());
}

#[tokio::test]
async fn symlinked_component_in_a_dir_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    std::fs::write(tmp.path().join("outside.wasm"), b"outside").unwrap();
    std::fs::remove_file(dir.join("components/calc.wasm")).unwrap();
    std::os::unix::fs::symlink(
        tmp.path().join("outside.wasm"),
        dir.join("components/calc.wasm"),
    )
    .unwrap();
    let err = pack(&common::checker(), &dir, None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}

#[tokio::test]
async fn extra_archive_entry_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bundle_dir(tmp.path());
    let out = tmp.path().join("demo.weftapp");
    pack(&common::checker(), &dir, Some(&out), None)
        .await
        .unwrap();
    let mut bytes = std::fs::read(&out).unwrap();
    // Drop the two zero end blocks and append an unlisted file.
    bytes.truncate(bytes.len() - 1024);
    let mut b = tar::Builder::new(bytes);
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, "extra.wasm", &b"abc"[..]).unwrap();
    std::fs::write(&out, b.into_inner().unwrap()).unwrap();
    let err = verify(
        &open_bundle(&out).unwrap(),
        &TrustStore::empty(),
        Environment::dev(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("extra.wasm") && err.to_string().contains("not listed"),
        "{err}"
    );
}

#[test]
fn trust_store_persists() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (a, b) = (key_hex(&key(1)), key_hex(&key(2)));
    {
        let mut t = TrustStore::open(&state).unwrap();
        assert!(t.list().is_empty());
        t.add("alice", &a).unwrap();
        t.add("bob", &b).unwrap();
        t.add("alice", &a).unwrap(); // idempotent
        assert!(t.add("alice", &b).is_err());
        assert!(t.add("bad name", &a).is_err());
        assert!(t.add("carol", "zz").is_err());
    }
    let mut t = TrustStore::open(&state).unwrap();
    assert_eq!(
        t.list(),
        vec![("alice".into(), a.clone()), ("bob".into(), b.clone())]
    );
    t.remove("alice").unwrap();
    assert!(t.remove("alice").is_err());
    let t = TrustStore::open(&state).unwrap();
    assert_eq!(t.list(), vec![("bob".into(), b)]);
    assert_eq!(t.name_of(&key(2).verifying_key()), Some("bob"));
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("trust.json")).unwrap()).unwrap();
    assert!(raw["bob"].is_string());
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
}
