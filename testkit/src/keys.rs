//! Keys made in-process.

/// An ed25519 key from the OS RNG.
pub fn new_key() -> russh::keys::PrivateKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("os rng");
    from_seed(seed)
}

/// The ed25519 key of a fixed seed (the same key every run).
pub fn from_seed(seed: [u8; 32]) -> russh::keys::PrivateKey {
    russh::keys::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed))
}

/// `ssh-ed25519 AAAA…` of a key.
pub fn public_line(key: &russh::keys::PrivateKey) -> String {
    key.public_key().to_openssh().expect("encode public key")
}
