//! The hybrid key schedule (docs/mesh.md, "Key schedule").

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Info labels, versioned so a future schedule can never collide with this one.
pub(crate) const LABEL_HYBRID_I2R: &[u8] = b"weft-mesh/1 hybrid i2r";
pub(crate) const LABEL_HYBRID_R2I: &[u8] = b"weft-mesh/1 hybrid r2i";
pub(crate) const LABEL_CLASSICAL_I2R: &[u8] = b"weft-mesh/1 classical i2r";
pub(crate) const LABEL_CLASSICAL_R2I: &[u8] = b"weft-mesh/1 classical r2i";
pub(crate) const LABEL_REKEY: &[u8] = b"weft-mesh/1 rekey";
pub(crate) const LABEL_KEY_ID: &[u8] = b"weft-mesh/1 key id";

/// A 32-byte symmetric key that is wiped when dropped.
pub(crate) type Key = Zeroizing<[u8; 32]>;

/// The two directional ChaCha20-Poly1305 keys of a session.
pub(crate) struct TrafficKeys {
    /// Initiator to responder.
    pub(crate) i2r: Key,
    /// Responder to initiator.
    pub(crate) r2i: Key,
}

/// PRK = HKDF-Extract(salt = h, IKM = k1 || k2 [|| ss]); each key = HKDF-Expand(PRK, label, 32).
///
/// `h` is Noise's handshake hash after the last message, so the keys are bound to the whole
/// transcript: prologue, both ephemerals, both statics, the negotiation and the KEM messages.
pub(crate) fn derive_traffic_keys(
    handshake_hash: &[u8],
    split: (&[u8; 32], &[u8; 32]),
    kem_shared: Option<&[u8; 32]>,
) -> TrafficKeys {
    let mut ikm = Zeroizing::new(Vec::with_capacity(96));
    ikm.extend_from_slice(split.0);
    ikm.extend_from_slice(split.1);
    let (i2r_label, r2i_label) = match kem_shared {
        Some(ss) => {
            ikm.extend_from_slice(ss);
            (LABEL_HYBRID_I2R, LABEL_HYBRID_R2I)
        }
        None => (LABEL_CLASSICAL_I2R, LABEL_CLASSICAL_R2I),
    };
    let hk = Hkdf::<Sha256>::new(Some(handshake_hash), &ikm);
    TrafficKeys {
        i2r: expand(&hk, i2r_label),
        r2i: expand(&hk, r2i_label),
    }
}

/// The key after a rekey: HKDF-Expand(PRK = current key, "weft-mesh/1 rekey", 32).
pub(crate) fn next_key(key: &[u8; 32]) -> Key {
    expand(&prk(key), LABEL_REKEY)
}

/// A public, non-secret name for a key (first 16 bytes of HKDF-Expand(key, "key id")), so tests
/// and logs can compare keys without exposing them.
pub(crate) fn key_id(key: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    prk(key)
        .expand(LABEL_KEY_ID, &mut out)
        .expect("16 bytes is a valid HKDF-SHA256 output length");
    out
}

fn prk(key: &[u8; 32]) -> Hkdf<Sha256> {
    Hkdf::<Sha256>::from_prk(key).expect("a 32-byte key is a valid HKDF-SHA256 PRK")
}

fn expand(hk: &Hkdf<Sha256>, label: &[u8]) -> Key {
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand(label, out.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_keys_differ_from_noise_only_and_from_split() {
        let h = [7u8; 32];
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let ss = [3u8; 32];
        let hybrid = derive_traffic_keys(&h, (&k1, &k2), Some(&ss));
        let classical = derive_traffic_keys(&h, (&k1, &k2), None);
        let other_ss = derive_traffic_keys(&h, (&k1, &k2), Some(&[4u8; 32]));
        let other_h = derive_traffic_keys(&[8u8; 32], (&k1, &k2), Some(&ss));
        for k in [&classical.i2r, &other_ss.i2r, &other_h.i2r] {
            assert_ne!(**k, *hybrid.i2r);
        }
        assert_ne!(*hybrid.i2r, *hybrid.r2i);
        assert_ne!(*hybrid.i2r, k1);
        assert_ne!(*classical.i2r, k1);
        let next = next_key(&hybrid.i2r);
        assert_ne!(*next, *hybrid.i2r);
        assert_ne!(key_id(&next), key_id(&hybrid.i2r));
    }
}
