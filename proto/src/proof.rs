//! Proof of key possession for registry requests.
//!
//! A client proves it holds the private key of the public key it sends by
//! signing a short statement with SSHSIG (the format of `ssh-keygen -Y sign`).
//! The statement names the action, the user, the key's fingerprint and the
//! time, so a captured proof is useless for anything else and goes stale
//! after [`MAX_SKEW_SECS`].

use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// SSHSIG namespace of PRA registry proofs.
pub const NAMESPACE: &str = "pra-registry@pra";
/// How far the proof's time may be from the registry's clock.
pub const MAX_SKEW_SECS: u64 = 300;

/// What a proof is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `POST /api/v1/keys`.
    Submit,
    /// `POST /api/v1/keys/status`.
    Status,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::Status => "status",
        }
    }
}

/// A signed statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Unix time (seconds) when it was signed.
    pub time: u64,
    /// SSHSIG, PEM-armored.
    pub signature: String,
}

/// Why a proof was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// The time is too far from now.
    #[error("the proof is stale or from the future (time {time}, now {now})")]
    Stale {
        /// Time in the proof.
        time: u64,
        /// Registry's time.
        now: u64,
    },
    /// The signature cannot be parsed.
    #[error("the proof's signature is malformed")]
    Malformed,
    /// The signature does not verify with the key.
    #[error("the proof's signature does not match the key")]
    BadSignature,
    /// Signing failed on the client.
    #[error("could not sign the proof: {0}")]
    Sign(String),
}

fn statement(action: Action, user: &str, fingerprint: &str, time: u64) -> Vec<u8> {
    format!(
        "pra-proof\n{}\n{user}\n{fingerprint}\n{time}\n",
        action.as_str()
    )
    .into_bytes()
}

/// Sign a proof with the private key.
pub fn sign(key: &PrivateKey, action: Action, user: &str, time: u64) -> Result<Proof, ProofError> {
    let fp = crate::fingerprint(key.public_key());
    let sig = key
        .sign(
            NAMESPACE,
            HashAlg::Sha512,
            &statement(action, user, &fp, time),
        )
        .map_err(|e| ProofError::Sign(e.to_string()))?;
    let signature = sig
        .to_pem(LineEnding::LF)
        .map_err(|e| ProofError::Sign(e.to_string()))?;
    Ok(Proof { time, signature })
}

/// Check a proof against the public key, for `now` (Unix seconds).
pub fn verify(
    key: &PublicKey,
    action: Action,
    user: &str,
    proof: &Proof,
    now: u64,
) -> Result<(), ProofError> {
    if proof.time.abs_diff(now) > MAX_SKEW_SECS {
        return Err(ProofError::Stale {
            time: proof.time,
            now,
        });
    }
    let sig = SshSig::from_pem(proof.signature.as_bytes()).map_err(|_| ProofError::Malformed)?;
    let fp = crate::fingerprint(key);
    key.verify(NAMESPACE, &statement(action, user, &fp, proof.time), &sig)
        .map_err(|_| ProofError::BadSignature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> PrivateKey {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed))
    }

    #[test]
    fn verifies_only_the_signed_statement() {
        let k = key();
        let p = sign(&k, Action::Submit, "alice", 1000).unwrap();
        assert_eq!(
            verify(k.public_key(), Action::Submit, "alice", &p, 1100),
            Ok(())
        );
        assert_eq!(
            verify(k.public_key(), Action::Status, "alice", &p, 1100),
            Err(ProofError::BadSignature)
        );
        assert_eq!(
            verify(k.public_key(), Action::Submit, "bob", &p, 1100),
            Err(ProofError::BadSignature)
        );
        assert!(matches!(
            verify(k.public_key(), Action::Submit, "alice", &p, 2000),
            Err(ProofError::Stale { .. })
        ));
        let other = key();
        assert_eq!(
            verify(other.public_key(), Action::Submit, "alice", &p, 1000),
            Err(ProofError::BadSignature)
        );
        let bad = Proof {
            time: 1000,
            signature: "garbage".into(),
        };
        assert_eq!(
            verify(k.public_key(), Action::Submit, "alice", &bad, 1000),
            Err(ProofError::Malformed)
        );
    }
}
