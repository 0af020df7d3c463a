//! PRA patch: the X25519 and ML-KEM-768 primitives of `curve25519-sha256`
//! and `mlkem768x25519-sha256`, in one place.
//!
//! With the `aws-lc-rs` feature they come from aws-lc-rs (AWS-LC's
//! assembly X25519 and ML-KEM), several times faster than the portable
//! `curve25519-dalek` / RustCrypto `ml-kem` code, which a server pays on
//! every login. Without the feature the portable code is used, as before.
//! Both produce the same bytes on the wire (checked against each other in
//! the tests below): only the arithmetic moved.
//!
//! A low-order X25519 peer key (all-zero shared secret) is refused by both.

use crate::Error;

/// Length of an X25519 public key and shared secret.
pub(crate) const X25519_LEN: usize = 32;
/// Length of an ML-KEM-768 encapsulation (public) key.
pub(crate) const MLKEM768_PUBLIC_KEY_SIZE: usize = 1184;
/// Length of an ML-KEM-768 ciphertext.
pub(crate) const MLKEM768_CIPHERTEXT_SIZE: usize = 1088;

#[cfg(feature = "aws-lc-rs")]
pub(crate) use aws::{MlKem768Secret, X25519Secret, mlkem768_encapsulate};
#[cfg(not(feature = "aws-lc-rs"))]
pub(crate) use portable::{MlKem768Secret, X25519Secret, mlkem768_encapsulate};

/// The all-zero output of a low-order peer point is refused.
fn contributory(shared: [u8; X25519_LEN]) -> Result<[u8; X25519_LEN], Error> {
    if shared == [0u8; X25519_LEN] {
        log::debug!("peer sent a low-order curve25519 pubkey");
        return Err(Error::Kex);
    }
    Ok(shared)
}

#[cfg(feature = "aws-lc-rs")]
mod aws {
    use aws_lc_rs::{agreement, kem};

    use super::{
        Error, MLKEM768_CIPHERTEXT_SIZE, MLKEM768_PUBLIC_KEY_SIZE, X25519_LEN, contributory,
    };

    /// An ephemeral X25519 private key.
    pub(crate) struct X25519Secret(agreement::PrivateKey);

    impl X25519Secret {
        /// A fresh key pair: the secret and its public key.
        pub(crate) fn generate() -> Result<(Self, [u8; X25519_LEN]), Error> {
            let key =
                agreement::PrivateKey::generate(&agreement::X25519).map_err(|_| Error::KexInit)?;
            let public = key.compute_public_key().map_err(|_| Error::KexInit)?;
            let public: [u8; X25519_LEN] =
                public.as_ref().try_into().map_err(|_| Error::KexInit)?;
            Ok((X25519Secret(key), public))
        }

        /// The key pair of a given private scalar (for [`super::self_check`]).
        pub(crate) fn from_scalar(scalar: [u8; 32]) -> Result<(Self, [u8; X25519_LEN]), Error> {
            let key = agreement::PrivateKey::from_private_key(&agreement::X25519, &scalar)
                .map_err(|_| Error::KexInit)?;
            let public = key.compute_public_key().map_err(|_| Error::KexInit)?;
            let public = public.as_ref().try_into().map_err(|_| Error::KexInit)?;
            Ok((X25519Secret(key), public))
        }

        /// The shared secret with the peer's public key `peer`.
        pub(crate) fn agree(self, peer: &[u8]) -> Result<[u8; X25519_LEN], Error> {
            if peer.len() != X25519_LEN {
                return Err(Error::Kex);
            }
            let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
            // AWS-LC itself refuses an all-zero result (low-order point).
            let shared = agreement::agree(&self.0, peer, Error::Kex, |s| {
                <[u8; X25519_LEN]>::try_from(s).map_err(|_| Error::Kex)
            })?;
            contributory(shared)
        }
    }

    /// An ephemeral ML-KEM-768 decapsulation key.
    pub(crate) struct MlKem768Secret(kem::DecapsulationKey);

    impl MlKem768Secret {
        /// A fresh key pair: the secret and its encapsulation key.
        pub(crate) fn generate() -> Result<(Self, Vec<u8>), Error> {
            let key =
                kem::DecapsulationKey::generate(&kem::ML_KEM_768).map_err(|_| Error::KexInit)?;
            let public = key
                .encapsulation_key()
                .and_then(|k| k.key_bytes())
                .map_err(|_| Error::KexInit)?;
            let public = public.as_ref().to_vec();
            if public.len() != MLKEM768_PUBLIC_KEY_SIZE {
                return Err(Error::KexInit);
            }
            Ok((MlKem768Secret(key), public))
        }

        /// The shared key in the peer's ciphertext `ct`.
        pub(crate) fn decapsulate(self, ct: &[u8]) -> Result<[u8; 32], Error> {
            if ct.len() != MLKEM768_CIPHERTEXT_SIZE {
                return Err(Error::Kex);
            }
            let shared = self
                .0
                .decapsulate(kem::Ciphertext::from(ct))
                .map_err(|_| Error::Kex)?;
            shared.as_ref().try_into().map_err(|_| Error::Kex)
        }
    }

    /// Encapsulate a fresh shared key to the peer's encapsulation key `pk`:
    /// the ciphertext and the shared key.
    pub(crate) fn mlkem768_encapsulate(pk: &[u8]) -> Result<(Vec<u8>, [u8; 32]), Error> {
        if pk.len() != MLKEM768_PUBLIC_KEY_SIZE {
            return Err(Error::Kex);
        }
        let pk = kem::EncapsulationKey::new(&kem::ML_KEM_768, pk).map_err(|_| Error::Kex)?;
        let (ct, shared) = pk.encapsulate().map_err(|_| Error::Kex)?;
        let shared: [u8; 32] = shared.as_ref().try_into().map_err(|_| Error::Kex)?;
        Ok((ct.as_ref().to_vec(), shared))
    }
}

/// The portable implementation: used without the `aws-lc-rs` feature, and
/// the reference [`self_check`] holds the aws-lc-rs one against.
mod portable {
    use curve25519_dalek::montgomery::MontgomeryPoint;
    use ml_kem::kem::{Decapsulate, DecapsulationKey, Encapsulate, EncapsulationKey};
    use ml_kem::{Kem, KeyExport, MlKem768, TryKeyInit};

    use super::{
        Error, MLKEM768_CIPHERTEXT_SIZE, MLKEM768_PUBLIC_KEY_SIZE, X25519_LEN, contributory,
    };

    pub(crate) struct X25519Secret([u8; 32]);

    impl X25519Secret {
        pub(crate) fn generate() -> Result<(Self, [u8; X25519_LEN]), Error> {
            let secret = rand::random::<[u8; 32]>();
            let public = MontgomeryPoint::mul_base_clamped(secret);
            Ok((X25519Secret(secret), public.0))
        }

        pub(crate) fn from_scalar(scalar: [u8; 32]) -> Result<(Self, [u8; X25519_LEN]), Error> {
            let public = MontgomeryPoint::mul_base_clamped(scalar).0;
            Ok((X25519Secret(scalar), public))
        }

        pub(crate) fn agree(self, peer: &[u8]) -> Result<[u8; X25519_LEN], Error> {
            let peer: [u8; X25519_LEN] = peer.try_into().map_err(|_| Error::Kex)?;
            contributory(MontgomeryPoint(peer).mul_clamped(self.0).0)
        }
    }

    pub(crate) struct MlKem768Secret(Box<DecapsulationKey<MlKem768>>);

    impl MlKem768Secret {
        pub(crate) fn generate() -> Result<(Self, Vec<u8>), Error> {
            let (sk, pk) = MlKem768::generate_keypair_from_rng(&mut rand::rng());
            Ok((MlKem768Secret(Box::new(sk)), pk.to_bytes().to_vec()))
        }

        pub(crate) fn decapsulate(self, ct: &[u8]) -> Result<[u8; 32], Error> {
            if ct.len() != MLKEM768_CIPHERTEXT_SIZE {
                return Err(Error::Kex);
            }
            let ct = ml_kem::Ciphertext::<MlKem768>::try_from(ct).map_err(|_| Error::Kex)?;
            let shared = self.0.decapsulate(&ct);
            shared.as_slice().try_into().map_err(|_| Error::Kex)
        }
    }

    pub(crate) fn mlkem768_encapsulate(pk: &[u8]) -> Result<(Vec<u8>, [u8; 32]), Error> {
        if pk.len() != MLKEM768_PUBLIC_KEY_SIZE {
            return Err(Error::Kex);
        }
        let pk = EncapsulationKey::<MlKem768>::new_from_slice(pk).map_err(|_| Error::Kex)?;
        let (ct, shared) = pk.encapsulate_with_rng(&mut rand::rng());
        let shared: [u8; 32] = shared.as_slice().try_into().map_err(|_| Error::Kex)?;
        Ok((ct.as_slice().to_vec(), shared))
    }
}

/// Check the aws-lc-rs primitives against the portable ones for `rounds`
/// rounds each: X25519 and ML-KEM-768 key pairs from one, agreement or
/// encapsulation by the other, both ways, the same shared secrets; the same
/// scalar gives the same public key and the same secret with any peer
/// bytes; low-order points and wrong lengths refused by both. `Err` names
/// the first difference. Public (hidden) so that a workspace without
/// russh's dev-dependencies can run it from its own tests.
#[doc(hidden)]
pub fn self_check(rounds: usize) -> Result<(), String> {
    #[cfg(feature = "aws-lc-rs")]
    {
        checks::all(rounds)
    }
    #[cfg(not(feature = "aws-lc-rs"))]
    {
        let _ = rounds;
        Err("built without the aws-lc-rs feature: nothing to compare".into())
    }
}

#[cfg(feature = "aws-lc-rs")]
mod checks {
    use super::{MLKEM768_CIPHERTEXT_SIZE, aws, portable};

    type R = Result<(), String>;

    fn ok<T>(r: Result<T, crate::Error>, what: &str) -> Result<T, String> {
        r.map_err(|e| format!("{what}: {e}"))
    }

    fn ensure(cond: bool, what: impl FnOnce() -> String) -> R {
        if cond { Ok(()) } else { Err(what()) }
    }

    pub(super) fn all(rounds: usize) -> R {
        x25519_both_ways(rounds)?;
        x25519_same_scalar(rounds)?;
        x25519_low_order()?;
        mlkem768_both_ways(rounds)?;
        mlkem768_wrong_lengths()
    }

    /// Either side generating, the same shared secret.
    fn x25519_both_ways(rounds: usize) -> R {
        for _ in 0..rounds {
            let (a, a_pub) = ok(aws::X25519Secret::generate(), "aws x25519 generate")?;
            let (p, p_pub) = ok(
                portable::X25519Secret::generate(),
                "portable x25519 generate",
            )?;
            let from_aws = ok(a.agree(&p_pub), "aws x25519 agree")?;
            let from_portable = ok(p.agree(&a_pub), "portable x25519 agree")?;
            ensure(from_aws == from_portable, || {
                "x25519 shared secrets differ".into()
            })?;
        }
        Ok(())
    }

    /// The same scalar: the same public key, and the same result for any
    /// peer bytes (top bit set or not: RFC 7748 ignores it).
    fn x25519_same_scalar(rounds: usize) -> R {
        for round in 0..rounds {
            let scalar = rand::random::<[u8; 32]>();
            let mut peer = rand::random::<[u8; 32]>();
            if round % 2 == 0 {
                peer[31] |= 0x80;
            }
            let (a, a_pub) = ok(aws::X25519Secret::from_scalar(scalar), "aws x25519 key")?;
            let (p, p_pub) = ok(
                portable::X25519Secret::from_scalar(scalar),
                "portable x25519 key",
            )?;
            ensure(a_pub == p_pub, || "x25519 public keys differ".into())?;
            let (a, p) = (a.agree(&peer).ok(), p.agree(&peer).ok());
            ensure(a == p, || {
                format!("x25519 results differ for peer {peer:02x?}")
            })?;
        }
        Ok(())
    }

    /// Low-order points (orders 1, 4 and 8) and a short key: refused.
    fn x25519_low_order() -> R {
        let low_order: [[u8; 32]; 4] = [
            [0; 32],
            hex_literal::hex!("0100000000000000000000000000000000000000000000000000000000000000"),
            hex_literal::hex!("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            hex_literal::hex!("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ];
        for point in low_order {
            let (a, _) = ok(aws::X25519Secret::generate(), "aws x25519 generate")?;
            ensure(a.agree(&point).is_err(), || {
                format!("aws-lc-rs accepted {point:02x?}")
            })?;
            let (p, _) = ok(
                portable::X25519Secret::generate(),
                "portable x25519 generate",
            )?;
            ensure(p.agree(&point).is_err(), || {
                format!("portable accepted {point:02x?}")
            })?;
        }
        let (a, _) = ok(aws::X25519Secret::generate(), "aws x25519 generate")?;
        ensure(a.agree(&[9u8; 31]).is_err(), || {
            "short x25519 key accepted".into()
        })
    }

    /// A key pair from one, encapsulation by the other, both ways.
    fn mlkem768_both_ways(rounds: usize) -> R {
        for _ in 0..rounds {
            let (a, a_pk) = ok(aws::MlKem768Secret::generate(), "aws ml-kem generate")?;
            let (ct, k) = ok(
                portable::mlkem768_encapsulate(&a_pk),
                "portable encapsulate",
            )?;
            ensure(ct.len() == MLKEM768_CIPHERTEXT_SIZE, || {
                "portable ciphertext size".into()
            })?;
            let got = ok(a.decapsulate(&ct), "aws decapsulate")?;
            ensure(got == k, || "ml-kem keys differ (aws key pair)".into())?;

            let (p, p_pk) = ok(
                portable::MlKem768Secret::generate(),
                "portable ml-kem generate",
            )?;
            ensure(p_pk.len() == a_pk.len(), || {
                "ml-kem public key sizes differ".into()
            })?;
            let (ct, k) = ok(aws::mlkem768_encapsulate(&p_pk), "aws encapsulate")?;
            ensure(ct.len() == MLKEM768_CIPHERTEXT_SIZE, || {
                "aws ciphertext size".into()
            })?;
            let got = ok(p.decapsulate(&ct), "portable decapsulate")?;
            ensure(got == k, || "ml-kem keys differ (portable key pair)".into())?;
        }
        Ok(())
    }

    fn mlkem768_wrong_lengths() -> R {
        let (a, a_pk) = ok(aws::MlKem768Secret::generate(), "aws ml-kem generate")?;
        #[allow(clippy::indexing_slicing)]
        let short = &a_pk[1..];
        ensure(aws::mlkem768_encapsulate(short).is_err(), || {
            "short ml-kem key accepted".into()
        })?;
        ensure(a.decapsulate(&[0u8; 100]).is_err(), || {
            "short ciphertext accepted".into()
        })
    }
}
