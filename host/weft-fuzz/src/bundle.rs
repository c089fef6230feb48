//! `bundle`: `.weftapp` archive bytes through the bundle reader
//! ([`weft_apps::open_archive_bytes`], the code `weaver app install` runs on
//! a file), then [`weft_apps::verify`] in `dev` and `prod` against a trust
//! store holding the harness key.

use std::sync::OnceLock;

use weft_apps::{digest_hex, open_archive_bytes, path_problem, verify, Environment, TrustStore};

use crate::support::{key, scratch};

fn trust() -> &'static TrustStore {
    static T: OnceLock<TrustStore> = OnceLock::new();
    T.get_or_init(|| {
        let dir = scratch().join("trust");
        std::fs::create_dir_all(&dir).expect("a trust dir");
        let mut t = TrustStore::open(&dir).expect("a trust store");
        t.add("fuzz", &hex::encode(key().verifying_key().to_bytes()))
            .expect("trust the harness key");
        t
    })
}

/// The target.
pub fn fuzz(data: &[u8]) {
    let Ok(b) = open_archive_bytes("fuzz.weftapp", data) else {
        return;
    };
    // Whatever was accepted is a plain relative path, readable within bounds.
    for e in b.entries() {
        assert_eq!(path_problem(e), None, "accepted entry {e:?}");
        let bytes = b.read(e).expect("an accepted entry reads back");
        assert!(bytes.len() as u64 <= weft_apps::MAX_ENTRY_BYTES);
    }
    let _text = b.manifest_text();
    for env in [Environment::dev(), Environment::prod()] {
        let Ok(v) = verify(&b, trust(), env.clone()) else {
            continue;
        };
        // What verified is what is there.
        assert_eq!(v.manifest_digest, digest_hex(b.manifest_bytes()));
        for (path, digest) in &v.digests {
            let bytes = b.read(path).expect("a verified component reads back");
            assert_eq!(&digest_hex(&bytes), digest, "{path}");
        }
        if env == Environment::prod() {
            assert_eq!(
                v.signer,
                Some(key().verifying_key()),
                "prod without a signer"
            );
        }
    }
}
