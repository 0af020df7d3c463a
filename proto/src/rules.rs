//! The forwarding rules a client learns over the SSH session.
//!
//! The client sends `exec pra-rules`; the gateway answers one JSON document
//! ([`RulesDocument`]) on the channel's stdout and exit status 0.

use serde::{Deserialize, Serialize};

/// Version of the rules document this build speaks.
pub const RULES_VERSION: u32 = 1;

/// One fixed forward: client `127.0.0.1:local_port` → `target_host:target_port`
/// as seen from the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Rule name, unique per user (e.g. `smtp`).
    pub name: String,
    /// Port the client listens on, on 127.0.0.1.
    pub local_port: u16,
    /// Target host name or IP literal, exactly as the admin wrote it.
    pub target_host: String,
    /// Target port.
    pub target_port: u16,
}

/// The answer to `exec pra-rules`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesDocument {
    /// Document version ([`RULES_VERSION`]).
    pub version: u32,
    /// The account the session is logged in as.
    pub user: String,
    /// The user's rules, sorted by local port.
    pub rules: Vec<Rule>,
}

impl RulesDocument {
    /// Parse and check the version.
    pub fn parse(bytes: &[u8]) -> Result<RulesDocument, String> {
        let doc: RulesDocument = serde_json::from_slice(bytes)
            .map_err(|e| format!("rules document is not valid JSON: {e}"))?;
        if doc.version != RULES_VERSION {
            return Err(format!(
                "rules document version {} is not supported (this client speaks {RULES_VERSION})",
                doc.version
            ));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let doc = RulesDocument {
            version: RULES_VERSION,
            user: "alice".into(),
            rules: vec![Rule {
                name: "smtp".into(),
                local_port: 10025,
                target_host: "mail.corp".into(),
                target_port: 25,
            }],
        };
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        assert_eq!(RulesDocument::parse(&bytes), Ok(doc.clone()));
        let mut v2 = doc;
        v2.version = 2;
        let bytes = serde_json::to_vec(&v2).unwrap_or_default();
        assert!(RulesDocument::parse(&bytes).is_err());
        assert!(RulesDocument::parse(b"not json").is_err());
    }
}
