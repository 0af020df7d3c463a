//! PRA patch: Ed25519 signing through aws-lc-rs.
//!
//! ssh-key signs an Ed25519 key with `ed25519-dalek` and rebuilds the
//! signing key from the seed for every signature. A server signs the
//! exchange hash with its host key at every login and a client signs its
//! public-key login, so a login storm pays this on both sides. With the
//! `aws-lc-rs` feature the signature comes from AWS-LC instead: about
//! 18 µs against 34 µs for seed-to-signature on the machine of
//! `docs/performance.md` (measured with both crates side by side).
//! Ed25519 is deterministic, so the bytes are the same (checked by
//! [`self_check`], which the workspace's tests run). Verification is left to ssh-key: AWS-LC's measured no
//! faster. No key pair is kept: it is rebuilt from the seed each time, as
//! ssh-key does, so no copy of a private key outlives the call.

use ssh_key::private::Ed25519Keypair;
use ssh_key::{Algorithm, Signature};

/// Sign `data` with `keypair` (the same signature as ssh-key's `Signer`).
pub(crate) fn sign(keypair: &Ed25519Keypair, data: &[u8]) -> ssh_key::Result<Signature> {
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(
        keypair.private.as_ref(),
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    Signature::new(Algorithm::Ed25519, pair.sign(data).as_ref())
}

/// Signatures of [`sign`] against ssh-key's own (ed25519-dalek) for
/// `rounds` keys and message lengths: the same bytes, and they verify.
/// `Err` names the first difference. Public (hidden) so that a workspace
/// without russh's dev-dependencies can run it from its own tests.
#[doc(hidden)]
pub fn self_check(rounds: u32) -> Result<(), String> {
    use signature::{Signer, Verifier};
    for i in 0..rounds {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        seed[31] = 0xa5;
        let keypair = Ed25519Keypair::from_seed(&seed);
        let data: Vec<u8> = (0..(i as usize * 7) % 301).map(|b| b as u8).collect();
        let ours = sign(&keypair, &data).map_err(|e| format!("key {i}: aws-lc-rs: {e}"))?;
        let theirs: Signature = keypair
            .try_sign(&data)
            .map_err(|e| format!("key {i}: ssh-key: {e}"))?;
        if ours != theirs {
            return Err(format!("key {i}: the signatures differ"));
        }
        keypair
            .public
            .verify(&data, &ours)
            .map_err(|e| format!("key {i}: ssh-key refuses the signature: {e}"))?;
    }
    Ok(())
}
