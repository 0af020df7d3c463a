//! Admin API tokens: the secret as a client sends it ([`BearerToken`],
//! never shown by `Debug`), making one, and the hash the store keeps. Used
//! by the API's bearer check, the admin page's sign-in and `token create`.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// An admin token as sent by a client. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(MASKED)")
    }
}

impl BearerToken {
    /// Parse an `Authorization` header value: `Bearer TOKEN` with a token
    /// of visible ASCII. `None` when missing or malformed.
    pub fn from_header(value: Option<&[u8]>) -> Option<BearerToken> {
        let v = std::str::from_utf8(value?).ok()?;
        let (scheme, token) = v.trim().split_once(' ')?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer")
            || token.is_empty()
            || token.len() > 512
            || !token.bytes().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        Some(BearerToken(token.to_string()))
    }

    /// Wrap a token string.
    pub fn new(token: String) -> BearerToken {
        BearerToken(token)
    }

    /// A new random token, `pra_` and 32 bytes from the OS in URL-safe
    /// base64 (`token create`).
    pub fn generate() -> Result<BearerToken, getrandom::Error> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)?;
        Ok(BearerToken(format!(
            "pra_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )))
    }

    /// The secret itself, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps: lower-case hex SHA-256 of the token.
    pub fn hash(&self) -> String {
        token_hash(&self.0)
    }
}

/// Lower-case hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        for (h, ok) in [
            (Some(&b"Bearer pra_abc"[..]), true),
            (Some(b"bearer pra_abc"), true),
            (Some(b"Bearer  pra_abc "), true),
            (None, false),
            (Some(b""), false),
            (Some(b"Bearer"), false),
            (Some(b"Bearer "), false),
            (Some(b"Basic dXNlcjpwdw=="), false),
            (Some(b"Bearer a b"), false),
            (Some(b"Bearer \xff\xfe"), false),
            (Some(b"Bearer a\x01b"), false),
        ] {
            assert_eq!(BearerToken::from_header(h).is_some(), ok, "{h:?}");
        }
    }

    #[test]
    fn token_debug_is_masked_and_hash_is_hex() {
        let t = BearerToken::new("pra_secret".into());
        assert_eq!(format!("{t:?}"), "BearerToken(MASKED)");
        assert_eq!(t.hash().len(), 64);
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
