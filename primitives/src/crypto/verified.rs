//! A process-wide memory of signature checks that succeeded.
//!
//! The same signature is often checked many times: a certificate reaches a node from its
//! author and again through sync, and in a simulation every node of the committee runs
//! in one process and checks every certificate. A check that succeeded is remembered by
//! a BLAKE3 digest over the scheme, the keys, the message and the signature bytes, so
//! a repeat costs one hash. Only successes are remembered (a failure is recomputed and
//! fails again), so results never change, only their cost. The memory is a fixed table
//! of [`CAPACITY`] slots, reserved whole when it is first used: a check's digest picks
//! its slot and a newer check overwrites an older one there. So remembering never
//! allocates after that (the fuzz runner counts every allocation an input causes) and
//! never grows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turn the memory on (the default) or off (benchmarks that time the checks themselves).
/// Turning it on reserves its table now, so later checks allocate nothing for it.
pub fn remember_verified(enabled: bool) {
    ENABLED.store(enabled, Ordering::SeqCst);
    if enabled {
        let _ = memory();
    }
}

/// Reserve the table now if the memory is on (so that a later check allocates nothing
/// for it): for callers that measure allocations from a point on.
pub fn reserve_verified_memory() {
    if ENABLED.load(Ordering::SeqCst) {
        let _ = memory();
    }
}

/// Slots of the table (32 bytes each).
pub const CAPACITY: usize = 1 << 18;

/// An empty slot. A check whose digest is this (probability 2^-256) is not remembered.
const EMPTY: [u8; 32] = [0; 32];

fn memory() -> &'static Mutex<Box<[[u8; 32]]>> {
    static MEMORY: OnceLock<Mutex<Box<[[u8; 32]]>>> = OnceLock::new();
    MEMORY.get_or_init(|| Mutex::new(vec![EMPTY; CAPACITY].into_boxed_slice()))
}

fn slot(id: &[u8; 32]) -> usize {
    let mut low = [0u8; 8];
    low.copy_from_slice(&id[..8]);
    (u64::from_le_bytes(low) % CAPACITY as u64) as usize
}

/// The identity of one check: domain, then every part length-prefixed.
pub(crate) fn check_id(domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&(domain.len() as u64).to_le_bytes());
    h.update(domain);
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// Whether this exact check succeeded before (and was not overwritten since).
pub(crate) fn known(id: &[u8; 32]) -> bool {
    *id != EMPTY
        && memory()
            .lock()
            .map(|m| m.get(slot(id)) == Some(id))
            .unwrap_or(false)
}

/// Remember a check that succeeded.
pub(crate) fn remember(id: [u8; 32]) {
    if id == EMPTY {
        return;
    }
    if let Ok(mut m) = memory().lock() {
        if let Some(s) = m.get_mut(slot(&id)) {
            *s = id;
        }
    }
}

/// Run `check` unless the same check (`id`) succeeded before; remember a success.
pub(crate) fn or_check<E>(
    id: [u8; 32],
    check: impl FnOnce() -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let enabled = ENABLED.load(Ordering::Relaxed);
    if enabled && known(&id) {
        return Ok(());
    }
    check()?;
    if enabled {
        remember(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{known, remember, slot, CAPACITY, EMPTY};
    use crate::crypto::ed25519;
    use crate::crypto::KeyPair;

    #[test]
    fn a_remembered_success_never_vouches_for_anything_else() {
        let k = KeyPair::from_seed(&[7; 32]);
        let other = KeyPair::from_seed(&[8; 32]);
        let vk = k.ed25519.verifying_key();
        let sig = ed25519::sign(&k.ed25519, b"message");
        // Twice: computed, then remembered.
        ed25519::verify(&vk, b"message", &sig).unwrap();
        ed25519::verify(&vk, b"message", &sig).unwrap();
        // Any other message, key or signature is checked for real and fails.
        assert!(ed25519::verify(&vk, b"messagf", &sig).is_err());
        assert!(ed25519::verify(&other.ed25519.verifying_key(), b"message", &sig).is_err());
        let mut bad = sig;
        bad.0[10] ^= 1;
        assert!(ed25519::verify(&vk, b"message", &bad).is_err());
        assert!(ed25519::verify(&vk, b"message", &bad).is_err());
        // Same for BLS.
        let bsig = k.bls.sign(b"message");
        k.bls_public_key().verify(b"message", &bsig).unwrap();
        k.bls_public_key().verify(b"message", &bsig).unwrap();
        assert!(other.bls_public_key().verify(b"message", &bsig).is_err());
        assert!(k.bls_public_key().verify(b"other", &bsig).is_err());
    }

    #[test]
    fn a_newer_check_in_the_same_slot_overwrites_the_older_one() {
        let mut a = [9u8; 32];
        a[..8].copy_from_slice(&5u64.to_le_bytes());
        let mut b = [7u8; 32];
        b[..8].copy_from_slice(&(5 + CAPACITY as u64).to_le_bytes());
        assert_eq!(slot(&a), slot(&b));
        remember(a);
        assert!(known(&a));
        remember(b);
        assert!(known(&b));
        assert!(
            !known(&a),
            "overwritten: checked again, never wrongly vouched for"
        );
        remember(EMPTY);
        assert!(
            !known(&EMPTY),
            "the empty slot marker is never a known check"
        );
    }
}
