//! Sans-IO handshake: Noise XX with the negotiation and the ML-KEM-768 exchange carried in its
//! payloads (docs/mesh.md, "Handshake"). The async driver in `channel.rs` only moves bytes.

use ml_kem::array::Array;
use ml_kem::kem::{Decapsulate, KeyExport};
use ml_kem::{DecapsulationKey768, EncapsulationKey768, Seed};
use snow::HandshakeState;
use zeroize::{Zeroize, Zeroizing};

use crate::config::MeshConfig;
use crate::identity::{MeshIdentity, PeerKey};
use crate::keys::{derive_traffic_keys, Key, TrafficKeys};
use crate::negotiation::{Downgrade, Negotiation};
use crate::MeshError;

/// The Noise protocol name; its hash is the initial handshake hash.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue: ties every handshake hash to this protocol and version.
pub const PROLOGUE: &[u8] = b"weft-mesh/1";
/// Version byte of the hello.
pub(crate) const VERSION: u8 = 1;
/// Bytes of the hello: version, flags, max_frame (u32 BE).
pub(crate) const HELLO_LEN: usize = 6;
/// Hello flag: the sender offers ML-KEM-768.
pub(crate) const HELLO_KEM: u8 = 0x01;
/// Hello flag: the sender's policy requires a post-quantum session.
pub(crate) const HELLO_REQUIRE_PQ: u8 = 0x02;
/// ML-KEM-768 encapsulation key bytes (FIPS 203).
pub(crate) const KEM_EK_LEN: usize = 1184;
/// ML-KEM-768 ciphertext bytes (FIPS 203).
pub(crate) const KEM_CT_LEN: usize = 1088;
/// Noise's own message limit.
pub(crate) const MAX_NOISE_MESSAGE: usize = 65535;

/// The negotiation each side sends in its first handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) kem: bool,
    pub(crate) require_pq: bool,
    pub(crate) max_frame: u32,
}

impl Hello {
    fn from_config(config: &MeshConfig) -> Self {
        Hello {
            kem: config.kem_supported,
            require_pq: config.require_pq,
            // validate() caps max_frame at 16 MiB.
            max_frame: u32::try_from(config.max_frame).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn encode(&self) -> [u8; HELLO_LEN] {
        let mut flags = 0;
        if self.kem {
            flags |= HELLO_KEM;
        }
        if self.require_pq {
            flags |= HELLO_REQUIRE_PQ;
        }
        let m = self.max_frame.to_be_bytes();
        [VERSION, flags, m[0], m[1], m[2], m[3]]
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, MeshError> {
        let [version, flags, a, b, c, d] = <[u8; HELLO_LEN]>::try_from(bytes)
            .map_err(|_| MeshError::Protocol(format!("hello of {} bytes", bytes.len())))?;
        if version != VERSION {
            return Err(MeshError::Protocol(format!(
                "unsupported mesh version {version}"
            )));
        }
        let max_frame = u32::from_be_bytes([a, b, c, d]);
        if max_frame == 0 {
            return Err(MeshError::Protocol("peer announced max_frame 0".into()));
        }
        // Unknown flag bits are ignored: they are authenticated, so they can only be a newer
        // peer's, never an attacker's.
        Ok(Hello {
            kem: flags & HELLO_KEM != 0,
            require_pq: flags & HELLO_REQUIRE_PQ != 0,
            max_frame,
        })
    }
}

/// The randomness one handshake consumes. Fixed values exist only for the test vectors.
pub(crate) struct Entropy {
    /// `None`: snow draws the ephemeral from the OS. `Some`: a fixed ephemeral secret.
    pub(crate) ephemeral: Option<Zeroizing<[u8; 32]>>,
    /// ML-KEM-768 seed `d || z` (FIPS 203 key generation), used by the responder.
    pub(crate) kem_seed: Zeroizing<[u8; 64]>,
    /// ML-KEM-768 encapsulation randomness `m`, used by the initiator.
    pub(crate) encaps_m: Zeroizing<[u8; 32]>,
}

impl Entropy {
    /// Everything from the operating system's random source.
    pub(crate) fn os() -> Result<Self, MeshError> {
        let mut kem_seed = Zeroizing::new([0u8; 64]);
        let mut encaps_m = Zeroizing::new([0u8; 32]);
        getrandom::fill(kem_seed.as_mut()).map_err(|e| MeshError::Entropy(e.to_string()))?;
        getrandom::fill(encaps_m.as_mut()).map_err(|e| MeshError::Entropy(e.to_string()))?;
        Ok(Entropy {
            ephemeral: None,
            kem_seed,
            encaps_m,
        })
    }
}

/// A finished handshake.
pub(crate) struct Established {
    pub(crate) peer: PeerKey,
    pub(crate) negotiation: Negotiation,
    pub(crate) handshake_hash: [u8; 32],
    pub(crate) keys: TrafficKeys,
    pub(crate) initiator: bool,
    #[cfg(test)]
    pub(crate) trace: Trace,
}

/// Intermediate values, kept only in tests to write and check the test vectors.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Trace {
    pub(crate) payloads: Vec<Vec<u8>>,
    pub(crate) split: ([u8; 32], [u8; 32]),
    pub(crate) kem_shared: Option<[u8; 32]>,
    pub(crate) kem_ek: Option<Vec<u8>>,
    pub(crate) kem_ct: Option<Vec<u8>>,
}

fn build(
    identity: &MeshIdentity,
    entropy: &Entropy,
    initiator: bool,
) -> Result<HandshakeState, MeshError> {
    let params = NOISE_PARAMS.parse().map_err(MeshError::Noise)?;
    let mut builder = snow::Builder::new(params)
        .local_private_key(identity.secret_bytes())
        .map_err(MeshError::Noise)?
        .prologue(PROLOGUE)
        .map_err(MeshError::Noise)?;
    if let Some(e) = &entropy.ephemeral {
        builder = builder.fixed_ephemeral_key_for_testing_only(e.as_ref());
    }
    if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(MeshError::Noise)
}

fn write(hs: &mut HandshakeState, payload: &[u8]) -> Result<Vec<u8>, MeshError> {
    let mut out = vec![0u8; MAX_NOISE_MESSAGE];
    let n = hs
        .write_message(payload, &mut out)
        .map_err(MeshError::from_noise)?;
    out.truncate(n);
    Ok(out)
}

fn read(hs: &mut HandshakeState, message: &[u8]) -> Result<Vec<u8>, MeshError> {
    let mut payload = vec![0u8; message.len()];
    let n = hs
        .read_message(message, &mut payload)
        .map_err(MeshError::from_noise)?;
    payload.truncate(n);
    Ok(payload)
}

fn remote_static(hs: &HandshakeState) -> Result<PeerKey, MeshError> {
    let rs = hs
        .get_remote_static()
        .ok_or_else(|| MeshError::Protocol("no remote static key".into()))?;
    PeerKey::from_slice(rs)
}

/// Applies the cluster policy to an authenticated, admitted peer's hello. Our own policy is
/// checked first: a refusal on our side is the one to record.
fn settle(local: Hello, peer: Hello, peer_key: PeerKey) -> Result<Negotiation, MeshError> {
    let pq = local.kem && peer.kem;
    let negotiation = Negotiation {
        local_kem: local.kem,
        peer_kem: peer.kem,
        local_require_pq: local.require_pq,
        peer_require_pq: peer.require_pq,
        pq,
        peer_max_frame: peer.max_frame,
    };
    if !pq && local.require_pq {
        return Err(MeshError::DowngradeRefused {
            downgrade: Downgrade {
                peer: peer_key,
                local_kem: local.kem,
                peer_kem: peer.kem,
            },
        });
    }
    if !pq && peer.require_pq {
        return Err(MeshError::PeerRequiresPq {
            peer: Some(peer_key),
        });
    }
    Ok(negotiation)
}

fn finish(
    mut hs: HandshakeState,
    peer: PeerKey,
    negotiation: Negotiation,
    kem_shared: Option<&Key>,
    #[cfg(test)] mut trace: Trace,
) -> Result<Established, MeshError> {
    if !hs.is_handshake_finished() {
        return Err(MeshError::Protocol("handshake not finished".into()));
    }
    let handshake_hash: [u8; 32] = hs
        .get_handshake_hash()
        .try_into()
        .map_err(|_| MeshError::Protocol("handshake hash is not 32 bytes".into()))?;
    let mut split = hs.dangerously_get_raw_split();
    let keys = derive_traffic_keys(
        &handshake_hash,
        (&split.0, &split.1),
        kem_shared.map(|k| &**k),
    );
    #[cfg(test)]
    {
        trace.split = split;
    }
    split.0.zeroize();
    split.1.zeroize();
    Ok(Established {
        peer,
        negotiation,
        handshake_hash,
        keys,
        initiator: hs.is_initiator(),
        #[cfg(test)]
        trace,
    })
}

/// The initiator's side: `write_msg1`, `read_msg2`, `write_msg3`, `finish`.
pub(crate) struct Initiator {
    hs: HandshakeState,
    local: Hello,
    entropy: Entropy,
    peer: Option<(PeerKey, Negotiation)>,
    kem_ct: Option<Vec<u8>>,
    kem_shared: Option<Key>,
    /// The peer's policy will refuse this session; reported once message 3 is out.
    refusal: Option<MeshError>,
    #[cfg(test)]
    trace: Trace,
}

impl Initiator {
    pub(crate) fn new(
        identity: &MeshIdentity,
        config: &MeshConfig,
        entropy: Entropy,
    ) -> Result<Self, MeshError> {
        Ok(Initiator {
            hs: build(identity, &entropy, true)?,
            local: Hello::from_config(config),
            entropy,
            peer: None,
            kem_ct: None,
            kem_shared: None,
            refusal: None,
            #[cfg(test)]
            trace: Trace::default(),
        })
    }

    /// `-> e`, payload: our hello (sent in clear but mixed into the handshake hash).
    pub(crate) fn write_msg1(&mut self) -> Result<Vec<u8>, MeshError> {
        let payload = self.local.encode();
        #[cfg(test)]
        self.trace.payloads.push(payload.to_vec());
        write(&mut self.hs, &payload)
    }

    /// `<- e, ee, s, es`, payload: the responder's hello, then its ML-KEM-768 encapsulation key
    /// when both offered the KEM. Admission and policy are decided here.
    pub(crate) fn read_msg2(
        &mut self,
        message: &[u8],
        admit: &dyn Fn(&PeerKey) -> bool,
    ) -> Result<(), MeshError> {
        let payload = read(&mut self.hs, message)?;
        let peer_key = remote_static(&self.hs)?;
        if !admit(&peer_key) {
            return Err(MeshError::UntrustedPeer { key: peer_key });
        }
        let (hello, rest) = payload.split_at(payload.len().min(HELLO_LEN));
        let peer = Hello::decode(hello)?;
        let negotiation = match settle(self.local, peer, peer_key) {
            // Still send message 3, so the responder learns who we are and records its own
            // refusal (a downgrade) with our key; `finish` then reports the refusal.
            Err(refusal @ MeshError::PeerRequiresPq { .. }) => {
                self.refusal = Some(refusal);
                Negotiation {
                    local_kem: self.local.kem,
                    peer_kem: peer.kem,
                    local_require_pq: self.local.require_pq,
                    peer_require_pq: peer.require_pq,
                    pq: false,
                    peer_max_frame: peer.max_frame,
                }
            }
            other => other?,
        };
        if negotiation.pq {
            let ek_bytes: Array<u8, _> = rest.try_into().map_err(|_| {
                MeshError::Protocol(format!(
                    "expected a {KEM_EK_LEN}-byte ML-KEM-768 key, got {} bytes",
                    rest.len()
                ))
            })?;
            let ek = EncapsulationKey768::new(&ek_bytes)
                .map_err(|_| MeshError::Protocol("invalid ML-KEM-768 encapsulation key".into()))?;
            let (ct, shared) = ek.encapsulate_deterministic(&Array::from(*self.entropy.encaps_m));
            let mut ss = Zeroizing::new([0u8; 32]);
            ss.copy_from_slice(shared.as_slice());
            #[cfg(test)]
            {
                self.trace.kem_ek = Some(rest.to_vec());
                self.trace.kem_ct = Some(ct.to_vec());
                self.trace.kem_shared = Some(*ss);
            }
            self.kem_ct = Some(ct.to_vec());
            self.kem_shared = Some(ss);
        } else if !rest.is_empty() {
            return Err(MeshError::Protocol(
                "KEM key sent although the KEM was not negotiated".into(),
            ));
        }
        #[cfg(test)]
        self.trace.payloads.push(payload);
        self.peer = Some((peer_key, negotiation));
        Ok(())
    }

    /// `-> s, se`, payload: the ML-KEM-768 ciphertext when the session is hybrid, else empty.
    pub(crate) fn write_msg3(&mut self) -> Result<Vec<u8>, MeshError> {
        let payload = self.kem_ct.take().unwrap_or_default();
        #[cfg(test)]
        self.trace.payloads.push(payload.clone());
        write(&mut self.hs, &payload)
    }

    pub(crate) fn finish(self) -> Result<Established, MeshError> {
        if let Some(refusal) = self.refusal {
            return Err(refusal);
        }
        let (peer, negotiation) = self
            .peer
            .ok_or_else(|| MeshError::Protocol("handshake not finished".into()))?;
        finish(
            self.hs,
            peer,
            negotiation,
            self.kem_shared.as_ref(),
            #[cfg(test)]
            self.trace,
        )
    }
}

/// The responder's side: `read_msg1`, `write_msg2`, `read_msg3`, `finish`.
pub(crate) struct Responder {
    hs: HandshakeState,
    local: Hello,
    entropy: Entropy,
    peer_hello: Option<Hello>,
    kem_dk: Option<DecapsulationKey768>,
    peer: Option<(PeerKey, Negotiation)>,
    kem_shared: Option<Key>,
    #[cfg(test)]
    trace: Trace,
}

impl Responder {
    pub(crate) fn new(
        identity: &MeshIdentity,
        config: &MeshConfig,
        entropy: Entropy,
    ) -> Result<Self, MeshError> {
        Ok(Responder {
            hs: build(identity, &entropy, false)?,
            local: Hello::from_config(config),
            entropy,
            peer_hello: None,
            kem_dk: None,
            peer: None,
            kem_shared: None,
            #[cfg(test)]
            trace: Trace::default(),
        })
    }

    pub(crate) fn read_msg1(&mut self, message: &[u8]) -> Result<(), MeshError> {
        let payload = read(&mut self.hs, message)?;
        self.peer_hello = Some(Hello::decode(&payload)?);
        #[cfg(test)]
        self.trace.payloads.push(payload);
        Ok(())
    }

    fn pq(&self) -> bool {
        self.local.kem && self.peer_hello.is_some_and(|h| h.kem)
    }

    /// The initiator announced it requires post-quantum and we cannot give it: it will hang up
    /// instead of sending message 3.
    pub(crate) fn peer_will_refuse(&self) -> bool {
        !self.pq() && self.peer_hello.is_some_and(|h| h.require_pq)
    }

    pub(crate) fn write_msg2(&mut self) -> Result<Vec<u8>, MeshError> {
        let mut payload = self.local.encode().to_vec();
        if self.pq() {
            // FIPS 203 ML-KEM.KeyGen_internal(d, z) from the 64-byte seed d || z.
            let seed: Seed = Array::from(*self.entropy.kem_seed);
            let dk = DecapsulationKey768::from_seed(seed);
            payload.extend_from_slice(&dk.encapsulation_key().to_bytes());
            self.kem_dk = Some(dk);
        }
        #[cfg(test)]
        self.trace.payloads.push(payload.clone());
        write(&mut self.hs, &payload)
    }

    pub(crate) fn read_msg3(
        &mut self,
        message: &[u8],
        admit: &dyn Fn(&PeerKey) -> bool,
    ) -> Result<(), MeshError> {
        let payload = read(&mut self.hs, message)?;
        let peer_key = remote_static(&self.hs)?;
        if !admit(&peer_key) {
            return Err(MeshError::UntrustedPeer { key: peer_key });
        }
        let peer_hello = self
            .peer_hello
            .ok_or_else(|| MeshError::Protocol("message 3 before message 1".into()))?;
        let negotiation = settle(self.local, peer_hello, peer_key)?;
        match &self.kem_dk {
            Some(dk) if negotiation.pq => {
                let ct: Array<u8, _> = payload.as_slice().try_into().map_err(|_| {
                    MeshError::Protocol(format!(
                        "expected a {KEM_CT_LEN}-byte ML-KEM-768 ciphertext, got {} bytes",
                        payload.len()
                    ))
                })?;
                let shared = dk.decapsulate(&ct);
                let mut ss = Zeroizing::new([0u8; 32]);
                ss.copy_from_slice(shared.as_slice());
                #[cfg(test)]
                {
                    self.trace.kem_ek = Some(dk.encapsulation_key().to_bytes().to_vec());
                    self.trace.kem_ct = Some(payload.clone());
                    self.trace.kem_shared = Some(*ss);
                }
                self.kem_shared = Some(ss);
            }
            _ if !payload.is_empty() => {
                return Err(MeshError::Protocol(
                    "KEM ciphertext sent although the KEM was not negotiated".into(),
                ))
            }
            _ => {}
        }
        #[cfg(test)]
        self.trace.payloads.push(payload);
        self.peer = Some((peer_key, negotiation));
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Established, MeshError> {
        let (peer, negotiation) = self
            .peer
            .ok_or_else(|| MeshError::Protocol("handshake not finished".into()))?;
        finish(
            self.hs,
            peer,
            negotiation,
            self.kem_shared.as_ref(),
            #[cfg(test)]
            self.trace,
        )
    }
}
