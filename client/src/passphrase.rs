//! The user's passphrase: a newtype that never prints itself and is wiped
//! from memory when dropped, and [`obtain`], which takes it from
//! `PRA_PASSPHRASE` or asks on the terminal without echo.

use crate::error::{ClientError, ClientResult};
use pra_proto::codes::Code;
use std::fmt;
use zeroize::Zeroizing;

/// Environment variable that supplies the passphrase to scripts and tests.
pub const ENV_VAR: &str = "PRA_PASSPHRASE";

/// A passphrase. `Debug` prints `MASKED`; the memory is zeroed on drop.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wrap a passphrase.
    pub fn new(s: impl Into<String>) -> Passphrase {
        Passphrase(Zeroizing::new(s.into()))
    }

    /// The secret itself; only for key derivation, never for display.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the empty passphrase.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(MASKED)")
    }
}

/// Take the passphrase from `PRA_PASSPHRASE` or ask on the terminal (hidden).
///
/// With `confirm` (creating a key) the terminal asks twice and both entries
/// must match, and an empty passphrase is refused, also from the environment.
pub(crate) fn obtain(prompt: &str, confirm: bool) -> ClientResult<Passphrase> {
    if let Some(raw) = std::env::var_os(ENV_VAR) {
        let s = raw.into_string().map_err(|_| {
            ClientError::with_fix(
                Code::PassphraseRejected,
                format!("{ENV_VAR} is not valid UTF-8"),
                format!("set {ENV_VAR} to the passphrase as plain text"),
            )
        })?;
        let p = Passphrase::new(s);
        return if confirm { require_nonempty(p) } else { Ok(p) };
    }
    let first = ask(prompt)?;
    if !confirm {
        return Ok(first);
    }
    let first = require_nonempty(first)?;
    let second = ask("Type the passphrase again: ")?;
    confirm_entries(first, &second)
}

/// Refuse the empty passphrase (key creation).
pub fn require_nonempty(p: Passphrase) -> ClientResult<Passphrase> {
    if p.is_empty() {
        return Err(ClientError::with_fix(
            Code::PassphraseRejected,
            "the passphrase is empty",
            "choose a passphrase of at least one character (a sentence is best); nothing was written",
        ));
    }
    Ok(p)
}

/// Both entries at key creation must be the same.
pub fn confirm_entries(first: Passphrase, second: &Passphrase) -> ClientResult<Passphrase> {
    if first.expose() != second.expose() {
        return Err(ClientError::with_fix(
            Code::PassphraseRejected,
            "the two passphrase entries differ",
            "run the command again and type the same passphrase twice; nothing was written",
        ));
    }
    Ok(first)
}

fn ask(prompt: &str) -> ClientResult<Passphrase> {
    rpassword::prompt_password(prompt)
        .map(Passphrase::new)
        .map_err(|e| {
            ClientError::new(
                Code::PassphraseUnavailable,
                format!("cannot ask for the passphrase: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_is_masked() {
        let p = Passphrase::new("hunter2 correct horse");
        let shown = format!("{p:?} {:?}", Some(p.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("MASKED"));
    }

    #[test]
    fn creation_rules() {
        assert_eq!(
            require_nonempty(Passphrase::new("")).unwrap_err().code(),
            Code::PassphraseRejected
        );
        assert_eq!(
            require_nonempty(Passphrase::new("x")).unwrap().expose(),
            "x"
        );
        let e = confirm_entries(Passphrase::new("a"), &Passphrase::new("b")).unwrap_err();
        assert_eq!(e.code(), Code::PassphraseRejected);
        assert!(
            e.line()
                .starts_with("ERR(10195) the two passphrase entries differ")
        );
        assert_eq!(
            confirm_entries(Passphrase::new("a b"), &Passphrase::new("a b"))
                .unwrap()
                .expose(),
            "a b"
        );
    }
}
