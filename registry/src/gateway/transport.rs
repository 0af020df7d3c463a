//! The SSH transport settings: modern algorithms only, strict key exchange
//! (Terrapin), no compression, public-key authentication only, keepalives.

use super::GatewayConfig;
use russh::{MethodKind, MethodSet, Preferred, SshId, cipher, compression, kex, mac};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg};
use std::borrow::Cow;
use std::time::Duration;

/// Version string sent to clients (no version number to fingerprint).
pub const SERVER_ID: &str = "SSH-2.0-PRA";

/// Key exchanges: post-quantum hybrid first, then curve25519; plus the
/// extension markers (`ext-info-s`, strict kex against Terrapin).
pub const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

/// AEAD ciphers, AES-GCM first where the CPU has AES instructions.
const CIPHERS_AES_FIRST: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
    cipher::CHACHA20_POLY1305,
];
const CIPHERS_CHACHA_FIRST: &[cipher::Name] = &[
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
];

/// MACs (unused with AEAD ciphers, but negotiated): SHA-2, encrypt-then-MAC.
pub const MACS: &[mac::Name] = &[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM];

/// Compression: none, ever.
pub const COMPRESSION: &[compression::Name] = &[compression::NONE];

/// Public-key signature algorithms accepted from clients (and announced as
/// `server-sig-algs`); the host key itself is ed25519. No `ssh-rsa` (SHA-1).
pub const KEY_ALGORITHMS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// Does this CPU have AES (and carry-less multiply) instructions?
pub fn has_aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The algorithm lists. SSH lets the client's order pick among what both
/// sides offer; ours only says what is offered at all.
pub fn preferred() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(KEX),
        key: Cow::Borrowed(KEY_ALGORITHMS),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Borrowed(if has_aes_instructions() {
            CIPHERS_AES_FIRST
        } else {
            CIPHERS_CHACHA_FIRST
        }),
        mac: Cow::Borrowed(MACS),
        compression: Cow::Borrowed(COMPRESSION),
    }
}

/// russh's server configuration for `cfg`.
pub fn server_config(cfg: &GatewayConfig) -> russh::server::Config {
    let keepalive = cfg.keepalive_interval;
    let max = u32::try_from(cfg.keepalive_max).unwrap_or(u32::MAX);
    russh::server::Config {
        server_id: SshId::Standard(Cow::Borrowed(SERVER_ID)),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: cfg.auth_rejection_time,
        // OpenSSH opens with a "none" probe; answering it at once leaks nothing.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![cfg.host_key.private().clone()],
        certificates: Vec::new(),
        limits: russh::Limits {
            rekey_write_limit: cfg.rekey_after.min(1 << 30),
            rekey_read_limit: cfg.rekey_after.min(1 << 30),
            ..russh::Limits::default()
        },
        // Forwards open with a small window and are granted their share of
        // the budgets by the gateway (see `memory`).
        window_size: super::memory::initial_window(cfg.window_size),
        maximum_packet_size: cfg.max_packet_size,
        // Channel read halves are not used (data comes through the handler).
        channel_buffer_size: 16,
        event_buffer_size: 64,
        preferred: preferred(),
        max_auth_attempts: cfg.max_auth_attempts,
        // Dead peers: after `keepalive_max` unanswered keepalives, or when a
        // write has been stuck this long (peer gone while we were sending).
        inactivity_timeout: Some(keepalive.saturating_mul(max.saturating_add(2))),
        keepalive_interval: Some(keepalive),
        keepalive_max: cfg.keepalive_max,
        nodelay: true,
        auto_window_adjust: false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn only_modern_algorithms() {
        let p = preferred();
        let kex: Vec<&str> = p.kex.iter().map(|k| k.as_ref()).collect();
        assert_eq!(kex[0], "mlkem768x25519-sha256");
        assert!(kex.contains(&"curve25519-sha256"));
        assert!(kex.contains(&"kex-strict-s-v00@openssh.com"));
        assert!(
            kex.iter()
                .all(|k| !k.contains("sha1") && !k.contains("group1"))
        );
        let ciphers: Vec<&str> = p.cipher.iter().map(|c| c.as_ref()).collect();
        assert_eq!(ciphers.len(), 3);
        assert!(
            ciphers
                .iter()
                .all(|c| c.contains("gcm") || c.contains("poly1305")),
            "{ciphers:?}"
        );
        if has_aes_instructions() {
            assert_eq!(ciphers[0], "aes256-gcm@openssh.com");
        }
        let macs: Vec<&str> = p.mac.iter().map(|m| m.as_ref()).collect();
        assert!(
            macs.iter().all(|m| m.contains("sha2") && m.contains("etm")),
            "{macs:?}"
        );
        let comp: Vec<&str> = p.compression.iter().map(|c| c.as_ref()).collect();
        assert_eq!(comp, vec!["none"]);
        assert!(!p.key.contains(&Algorithm::Rsa { hash: None }));
        assert!(!p.key.contains(&Algorithm::Dsa));
    }
}
