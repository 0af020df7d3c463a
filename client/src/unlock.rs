//! Opening the key file in half the time: the same bcrypt-pbkdf (OpenSSH's
//! KDF, same rounds, same bytes out), with its independent output blocks
//! computed on two threads.
//!
//! bcrypt-pbkdf is PBKDF2 with a Blowfish-based PRF; each 32-byte output
//! block is its own chain of `rounds` PRF calls. The 48 bytes that
//! aes256-ctr needs (key and IV) are two blocks, so two cores derive them in
//! the time one block takes. This costs an attacker nothing less (they
//! parallelize anyway); it only stops the user from waiting for a second
//! core that sits idle. `pra connect` spends most of its start-up here.
//!
//! [`decrypt`] handles the only shape `pra keygen` writes (ed25519,
//! bcrypt-pbkdf, aes256-ctr, one key) and hands anything else to ssh-key's
//! own decryption. Its result is the key ssh-key's `decrypt` gives (tests).

use blowfish::Blowfish;
use sha2::{Digest, Sha512};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{Algorithm, Cipher, Kdf, PrivateKey};
use zeroize::Zeroizing;

const BHASH_WORDS: usize = 8;
const BHASH_OUTPUT: usize = BHASH_WORDS * 4;
const BHASH_SEED: &[u8; BHASH_OUTPUT] = b"OxychromaticBlowfishSwatDynamite";

/// bcrypt's hash of a (SHA-512'd) passphrase and salt.
fn bhash(sha2_pass: &[u8], sha2_salt: &[u8]) -> [u8; BHASH_OUTPUT] {
    let mut bf = Blowfish::bc_init_state();
    bf.salted_expand_key(sha2_salt, sha2_pass);
    for _ in 0..64 {
        bf.bc_expand_key(sha2_salt);
        bf.bc_expand_key(sha2_pass);
    }
    let mut cdata = [0u32; BHASH_WORDS];
    for (i, word) in cdata.iter_mut().enumerate() {
        let mut b = [0u8; 4];
        b.copy_from_slice(&BHASH_SEED[i * 4..i * 4 + 4]);
        *word = u32::from_be_bytes(b);
    }
    for _ in 0..64 {
        for pair in cdata.chunks_exact_mut(2) {
            let [l, r] = bf.bc_encrypt([pair[0], pair[1]]);
            pair[0] = l;
            pair[1] = r;
        }
    }
    let mut out = [0u8; BHASH_OUTPUT];
    for (i, word) in cdata.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// PBKDF2 output block `index` (from 1) with bhash as the PRF.
fn block(sha2_pass: &[u8], salt: &[u8], rounds: u32, index: u32) -> Zeroizing<[u8; BHASH_OUTPUT]> {
    let mut first = Sha512::new();
    first.update(salt);
    first.update(index.to_be_bytes());
    let mut u = Zeroizing::new(bhash(sha2_pass, &first.finalize()));
    let mut t = Zeroizing::new(*u);
    for _ in 1..rounds {
        *u = bhash(sha2_pass, &Sha512::digest(*u));
        for (a, b) in t.iter_mut().zip(u.iter()) {
            *a ^= b;
        }
    }
    t
}

/// bcrypt-pbkdf into `output` (at most 1,024 bytes), one thread per output
/// block. `None` for inputs OpenSSH refuses (empty passphrase or salt, no
/// rounds, no or too much output).
pub(crate) fn bcrypt_pbkdf(
    passphrase: &[u8],
    salt: &[u8],
    rounds: u32,
    output: &mut [u8],
) -> Option<()> {
    if passphrase.is_empty()
        || salt.is_empty()
        || rounds == 0
        || output.is_empty()
        || output.len() > BHASH_OUTPUT * BHASH_OUTPUT
    {
        return None;
    }
    let stride = output.len().div_ceil(BHASH_OUTPUT);
    let mut sha2_pass = Zeroizing::new([0u8; 64]);
    sha2_pass.copy_from_slice(&Sha512::digest(passphrase));
    let pass: &[u8] = &sha2_pass[..];
    // Block 1 here, the others on their own threads.
    let blocks: Vec<Zeroizing<[u8; BHASH_OUTPUT]>> = std::thread::scope(|s| {
        let others: Vec<_> = (2..=stride)
            .map(|i| {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                s.spawn(move || block(pass, salt, rounds, index))
            })
            .collect();
        let mut all = vec![block(pass, salt, rounds, 1)];
        for h in others {
            all.push(h.join().ok()?);
        }
        Some(all)
    })?;
    // bcrypt-pbkdf's interleaving: byte i comes from block i % stride.
    for (i, out) in output.iter_mut().enumerate() {
        *out = blocks[i % stride][i / stride];
    }
    Some(())
}

/// Decrypt an encrypted OpenSSH private key with `password`: the parallel
/// KDF for `pra keygen`'s shape, ssh-key's own decryption for any other.
/// Errors as ssh-key's `decrypt` gives them: a wrong password is
/// [`ssh_key::Error::Crypto`], a key that does not match its public key
/// [`ssh_key::Error::PublicKey`].
pub(crate) fn decrypt(key: &PrivateKey, password: &[u8]) -> ssh_key::Result<PrivateKey> {
    let Kdf::Bcrypt { salt, rounds } = key.kdf() else {
        return key.decrypt(password);
    };
    if key.cipher() != Cipher::Aes256Ctr || key.algorithm() != Algorithm::Ed25519 {
        return key.decrypt(password);
    }
    let Some(ciphertext) = key.key_data().encrypted() else {
        return Err(ssh_key::Error::Decrypted);
    };
    let mut key_iv = Zeroizing::new([0u8; 48]);
    bcrypt_pbkdf(password, salt, *rounds, &mut key_iv[..]).ok_or(ssh_key::Error::Crypto)?;
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    key.cipher()
        .decrypt(&key_iv[..32], &key_iv[32..], &mut plain, None)
        .map_err(|_| ssh_key::Error::Crypto)?;
    let seed = parse_ed25519(&plain)?;
    let mut out = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    if out.public_key().key_data() != key.public_key().key_data() {
        return Err(ssh_key::Error::PublicKey);
    }
    out.set_comment(key.comment().clone());
    Ok(out)
}

/// The seed of the one ed25519 key in a decrypted private-key section:
/// `checkint checkint string("ssh-ed25519") string(pub) string(seed‖pub)
/// string(comment) padding` (OpenSSH PROTOCOL.key). Mismatched check
/// integers mean a wrong password.
fn parse_ed25519(plain: &[u8]) -> ssh_key::Result<Zeroizing<[u8; 32]>> {
    let mut r = plain;
    let check1 = take_u32(&mut r)?;
    let check2 = take_u32(&mut r)?;
    if check1 != check2 {
        return Err(ssh_key::Error::Crypto);
    }
    if take_string(&mut r)? != b"ssh-ed25519" {
        return Err(ssh_key::Error::AlgorithmUnknown);
    }
    let public = take_string(&mut r)?;
    let private = take_string(&mut r)?;
    if public.len() != 32 || private.len() != 64 || private[32..] != *public {
        return Err(ssh_key::Error::PublicKey);
    }
    let _comment = take_string(&mut r)?;
    // Padding 1, 2, 3, … up to the cipher's block size.
    if r.len() >= 16 || r.iter().enumerate().any(|(i, b)| usize::from(*b) != i + 1) {
        return Err(ssh_key::Error::Crypto);
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&private[..32]);
    Ok(seed)
}

fn take_u32(r: &mut &[u8]) -> ssh_key::Result<u32> {
    let Some((head, rest)) = r.split_first_chunk::<4>() else {
        return Err(ssh_key::Error::Crypto);
    };
    *r = rest;
    Ok(u32::from_be_bytes(*head))
}

fn take_string<'a>(r: &mut &'a [u8]) -> ssh_key::Result<&'a [u8]> {
    let len = usize::try_from(take_u32(r)?).map_err(|_| ssh_key::Error::Crypto)?;
    if r.len() < len {
        return Err(ssh_key::Error::Crypto);
    }
    let (s, rest) = r.split_at(len);
    *r = rest;
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use ssh_key::LineEnding;

    #[test]
    fn same_bytes_as_the_reference_bcrypt_pbkdf() {
        for (pass, salt, rounds, len) in [
            (&b"password"[..], &b"salt"[..], 4u32, 32usize),
            (b"password", b"salt", 4, 48),
            (b"x", b"0123456789abcdef", 16, 48),
            (b"a longer passphrase", b"s", 2, 7),
            (b"p", b"salt", 1, 100),
            (b"p", b"salt", 3, 1024),
        ] {
            let mut ours = vec![0u8; len];
            let mut reference = vec![0u8; len];
            bcrypt_pbkdf(pass, salt, rounds, &mut ours).unwrap();
            bcrypt_pbkdf::bcrypt_pbkdf(pass, salt, rounds, &mut reference).unwrap();
            assert_eq!(ours, reference, "rounds {rounds} len {len}");
        }
    }

    #[test]
    fn refuses_what_openssh_refuses() {
        let mut out = [0u8; 48];
        assert!(bcrypt_pbkdf(b"", b"salt", 16, &mut out).is_none());
        assert!(bcrypt_pbkdf(b"p", b"", 16, &mut out).is_none());
        assert!(bcrypt_pbkdf(b"p", b"salt", 0, &mut out).is_none());
        assert!(bcrypt_pbkdf(b"p", b"salt", 16, &mut []).is_none());
        assert!(bcrypt_pbkdf(b"p", b"salt", 16, &mut [0u8; 1025]).is_none());
    }

    /// An ed25519 key encrypted as `pra keygen` does it (fewer rounds).
    fn encrypted(seed: u8, password: &str) -> PrivateKey {
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
        key.encrypt_with(
            Cipher::Aes256Ctr,
            Kdf::Bcrypt {
                salt: vec![seed; 16],
                rounds: 4,
            },
            0x1234_5678,
            password,
        )
        .unwrap()
    }

    #[test]
    fn gives_the_key_ssh_key_gives() {
        let file = encrypted(7, "correct horse");
        let text = file.to_openssh(LineEnding::LF).unwrap();
        let file = PrivateKey::from_openssh(text.as_bytes()).unwrap();
        let ours = decrypt(&file, b"correct horse").unwrap();
        let theirs = file.decrypt("correct horse").unwrap();
        assert_eq!(ours, theirs);
        assert!(!ours.is_encrypted());
    }

    #[test]
    fn a_wrong_password_is_a_crypto_error() {
        let file = encrypted(9, "right");
        assert!(matches!(
            decrypt(&file, b"wrong"),
            Err(ssh_key::Error::Crypto)
        ));
    }
}
