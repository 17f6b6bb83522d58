//! A node's secret keys and the file they live in.

use super::{bls, ed25519};
use crate::error::{Error, Result};
use crate::ids::NodeId;
use ed25519_dalek::SigningKey;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A node's secret keys: its ed25519 identity (TLS identity, message signatures) and
/// its BLS key (aggregate quorum certificates).
#[derive(Clone)]
pub struct KeyPair {
    /// The ed25519 signing key.
    pub ed25519: SigningKey,
    /// The BLS secret key.
    pub bls: bls::SecretKey,
}

/// The on-disk form of a key file (hex strings so it stays human-editable).
#[derive(Serialize, Deserialize)]
struct KeyFile {
    id: NodeId,
    ed25519_secret: String,
    bls_secret: String,
}

impl KeyPair {
    /// Fresh keys from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(&seed)
    }

    /// Keys derived deterministically from a 32-byte seed (simulation and tests: the
    /// same seed always gives the same committee).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let ed_seed = blake3::derive_key("bftlab 2026 ed25519 key from seed", seed);
        let mut wide = [0u8; 64];
        let mut xof = blake3::Hasher::new_derive_key("bftlab 2026 bls key from seed");
        xof.update(seed);
        xof.finalize_xof().fill(&mut wide);
        KeyPair {
            ed25519: SigningKey::from_bytes(&ed_seed),
            bls: bls::SecretKey::from_wide_bytes(&wide),
        }
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> ed25519::PublicKey {
        ed25519::PublicKey(self.ed25519.verifying_key().to_bytes())
    }

    /// The BLS public key.
    pub fn bls_public_key(&self) -> bls::PublicKey {
        self.bls.public_key()
    }

    /// Write the key file for node `id` (hex secrets; readable only by its owner on Unix).
    pub fn save(&self, id: NodeId, path: &Path) -> Result<()> {
        let file = KeyFile {
            id,
            ed25519_secret: hex::encode(self.ed25519.to_bytes()),
            bls_secret: hex::encode(self.bls.to_bytes()),
        };
        let text = toml::to_string(&file).map_err(|e| Error::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        crate::committee::write_file(path, &text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// Read a key file; returns the node id it is for and the keys.
    pub fn load(path: &Path) -> Result<(NodeId, KeyPair)> {
        let text = crate::committee::read_file(path)?;
        let file: KeyFile = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.into(),
            message: e.message().to_string(),
        })?;
        let bad = |what: &'static str| Error::Malformed { what };
        let mut ed = [0u8; 32];
        hex::decode_to_slice(file.ed25519_secret.trim(), &mut ed)
            .map_err(|_| bad("ed25519 secret key hex"))?;
        let mut bls_bytes = [0u8; 32];
        hex::decode_to_slice(file.bls_secret.trim(), &mut bls_bytes)
            .map_err(|_| bad("BLS secret key hex"))?;
        Ok((
            file.id,
            KeyPair {
                ed25519: SigningKey::from_bytes(&ed),
                bls: bls::SecretKey::from_bytes(&bls_bytes)?,
            },
        ))
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public_key().to_hex())
    }
}
