//! The invite string: everything an employee needs to enroll, in one
//! copy-paste-safe line (`pra-invite:` + base64url, no spaces).
//!
//! The encoded bytes are a compact JSON object followed by a 4-byte
//! checksum (the first bytes of its SHA-256), so a string that was cut,
//! mistyped or edited is refused before anything is stored or sent. The
//! checksum guards against accidents, not attackers: the gateway decides
//! (it knows only the secret's hash, and refuses a wrong one), and the
//! client pins the host key the invite names.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every invite string starts with this.
pub const PREFIX: &str = "pra-invite:";

/// Format version written in the payload.
pub const VERSION: u32 = 1;

/// Length of the checksum appended to the payload.
const CHECKSUM_LEN: usize = 4;

/// Longest invite string accepted (a few gateways fit easily).
pub const MAX_LEN: usize = 4096;

/// The one-time secret of an invite. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InviteSecret(String);

impl InviteSecret {
    /// Wrap a secret (e.g. one just generated, or one read from an invite).
    pub fn new(secret: String) -> InviteSecret {
        InviteSecret(secret)
    }

    /// The secret itself, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the registry stores: lower-case hex SHA-256 of the secret.
    pub fn hash(&self) -> String {
        hex_sha256(self.0.as_bytes())
    }
}

impl std::fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MASKED")
    }
}

/// What an invite carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Format version ([`VERSION`]).
    #[serde(rename = "v")]
    pub version: u32,
    /// Gateway addresses (`HOST` or `HOST:PORT`), in the order to try them.
    #[serde(rename = "g")]
    pub gateways: Vec<String>,
    /// The gateways' host-key fingerprint (`SHA256:…`), to pin.
    #[serde(rename = "k")]
    pub host_key: String,
    /// The account the key is enrolled for.
    #[serde(rename = "u")]
    pub user: String,
    /// The invite's id (as `pra-registry invite list` shows it).
    #[serde(rename = "i")]
    pub id: String,
    /// The one-time secret.
    #[serde(rename = "s")]
    pub secret: InviteSecret,
    /// Unix time after which the invite is refused.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Why an invite string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// It does not start with [`PREFIX`].
    #[error("it does not start with {PREFIX}")]
    Prefix,
    /// Too long, or characters outside base64url (spaces, line breaks …).
    #[error("it holds characters an invite never has (it was wrapped or altered when copied)")]
    Encoding,
    /// The checksum does not match: cut, mistyped or edited.
    #[error("its checksum does not match (it was cut, mistyped or edited)")]
    Checksum,
    /// Checksum fine but the content is not a valid invite (another version?).
    #[error("its content is not a valid invite: {0}")]
    Content(String),
}

impl Invite {
    /// The `pra-invite:…` string.
    pub fn encode(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum[..CHECKSUM_LEN]);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Read an invite string (surrounding whitespace is ignored).
    pub fn decode(text: &str) -> Result<Invite, InviteError> {
        let text = text.trim();
        let body = text.strip_prefix(PREFIX).ok_or(InviteError::Prefix)?;
        if text.len() > MAX_LEN
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InviteError::Encoding);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| InviteError::Checksum)?;
        if bytes.len() <= CHECKSUM_LEN {
            return Err(InviteError::Checksum);
        }
        let (payload, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(payload)[..CHECKSUM_LEN] != *sum {
            return Err(InviteError::Checksum);
        }
        let invite: Invite =
            serde_json::from_slice(payload).map_err(|e| InviteError::Content(e.to_string()))?;
        invite.check()?;
        Ok(invite)
    }

    /// The fields' form (not the expiry: callers compare with their clock).
    fn check(&self) -> Result<(), InviteError> {
        let bad = |why: &str| Err(InviteError::Content(why.to_string()));
        if self.version != VERSION {
            return bad("made by another PRA version");
        }
        if self.gateways.is_empty() {
            return bad("no gateway address");
        }
        let printable = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_graphic())
        };
        if !self.gateways.iter().all(|g| printable(g, 255))
            || !self.host_key.starts_with("SHA256:")
            || !printable(&self.host_key, 100)
            || !printable(&self.user, 64)
            || !printable(&self.id, 64)
            || !printable(self.secret.expose(), 128)
        {
            return bad("a field is empty or holds unexpected characters");
        }
        Ok(())
    }

    /// Is it past its expiry at `now` (Unix seconds)?
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// Lower-case hex SHA-256.
fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            version: VERSION,
            gateways: vec!["vpn.example.com:10022".into(), "10.0.0.2".into()],
            host_key: "SHA256:2b3lYl0Tq2bXwXk0x9YVrN1kMtv3i1H3M3I3Jg1Vv3c".into(),
            user: "alice".into(),
            id: "3f2a9c0d1e4b5a6c".into(),
            secret: InviteSecret::new("q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c".into()),
            expires_at: 1_900_000_000,
        }
    }

    #[test]
    fn round_trip_and_copy_paste_safe() {
        let s = sample().encode();
        assert!(s.starts_with(PREFIX));
        assert!(!s.contains(char::is_whitespace));
        assert!(s.len() < 400, "{}", s.len());
        assert_eq!(Invite::decode(&s), Ok(sample()));
        assert_eq!(Invite::decode(&format!("  {s}\n")), Ok(sample()));
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let s = sample().encode();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in PREFIX.len()..s.len() {
            let mut bytes = s.clone().into_bytes();
            // A different base64url character at position i.
            let pos = alphabet.iter().position(|&b| b == bytes[i]).unwrap_or(0);
            bytes[i] = alphabet[(pos + 1 + i % 63) % alphabet.len()];
            let changed = String::from_utf8(bytes).unwrap();
            assert!(
                Invite::decode(&changed).is_err(),
                "position {i} of {} not caught: {s} -> {changed}",
                s.len()
            );
        }
        // Cut short, or a space inserted by a mail client.
        assert_eq!(
            Invite::decode(&s[..s.len() - 3]),
            Err(InviteError::Checksum)
        );
        let (a, b) = s.split_at(40);
        assert_eq!(
            Invite::decode(&format!("{a} {b}")),
            Err(InviteError::Encoding)
        );
        assert_eq!(Invite::decode("pra-invit:abc"), Err(InviteError::Prefix));
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let i = sample();
        assert!(!format!("{i:?}").contains(i.secret.expose()));
        assert_eq!(i.secret.hash().len(), 64);
    }

    #[test]
    fn expiry() {
        let i = sample();
        assert!(!i.expired(i.expires_at - 1));
        assert!(i.expired(i.expires_at));
    }
}
