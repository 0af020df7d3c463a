//! Validation of everything the registry stores: pure functions, no I/O.
//!
//! Every value that reaches the store passes through here, whether it came
//! from the admin CLI, the HTTP API or a hand-over file. A refusal is a
//! [`RegistryError::Invalid`] whose `field` names what is wrong and whose
//! code tells the API client why (`invalid_public_key`, `private_key_refused`,
//! `weak_key`, `invalid_field`). Messages never echo a private key and quote
//! other input only sanitized and shortened.

use crate::error::RegistryError;
use crate::model::{NewKey, RuleRecord};
use base64::Engine as _;
use pra_proto::api::{ApiErrorCode, Device, KeyStatus};
use pra_proto::sanitize::{has_control, sanitize};
use ssh_key::public::KeyData;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest accepted public-key text (the largest RSA keys are ~3 KiB).
pub const MAX_KEY_TEXT: usize = 16 * 1024;
/// Longest accepted key comment, in bytes.
pub const MAX_COMMENT: usize = 1024;
/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: u32 = 3072;
/// Longest user, rule and token name.
pub const MAX_NAME: usize = 64;
/// Longest target host name (DNS limit).
pub const MAX_HOST: usize = 253;

/// A public key that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidKey {
    /// Normalized OpenSSH line: `ALGORITHM BASE64[ COMMENT]`, single spaces.
    pub line: String,
    /// `SHA256:` fingerprint, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// Algorithm name, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The parsed key.
    pub key: ssh_key::PublicKey,
}

// Built here, beside the validation it needs, so `model` stays below `validate`.
impl NewKey {
    /// A validated key of `user` from `device`, to be stored with `status`.
    pub fn new(key: ValidKey, user: &str, device: Device, status: KeyStatus) -> NewKey {
        NewKey {
            fingerprint: key.fingerprint,
            user: user.into(),
            public_key: key.line,
            algorithm: key.algorithm,
            device,
            status,
        }
    }
}

fn key_err(reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field: "public key",
        reason: reason.into(),
        code: ApiErrorCode::InvalidPublicKey,
    }
}

fn weak(reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field: "public key",
        reason: reason.into(),
        code: ApiErrorCode::WeakKey,
    }
}

/// The refusal for a pasted private key. Its text is fixed: it never
/// contains any part of the input.
pub fn private_key_refused() -> RegistryError {
    RegistryError::Invalid {
        field: "public key",
        reason: "this is a PRIVATE key; it was not stored and must stay on the employee's PC \
                 (send only the public key, e.g. the output of `pra key export`)"
            .into(),
        code: ApiErrorCode::PrivateKeyRefused,
    }
}

/// True when `text` holds (part of) a private key in any common format:
/// PEM/OpenSSH (`-----BEGIN … PRIVATE KEY-----`), the base64 body of an
/// OpenSSH private key, or a PuTTY `.ppk` file.
pub fn looks_private(text: &[u8]) -> bool {
    const MARKERS: [&[u8]; 5] = [
        b"PRIVATE KEY",
        // base64 of "openssh-key-v1\0", the start of every OpenSSH private key body
        b"b3BlbnNzaC1rZXktdjE",
        b"PuTTY-User-Key-File",
        b"Private-Lines:",
        b"Private-MAC:",
    ];
    MARKERS
        .iter()
        .any(|m| text.windows(m.len()).any(|w| w == *m))
}

/// Key algorithms this registry accepts, and the gateway can verify.
fn is_key_algorithm_name(s: &str) -> bool {
    s.starts_with("ssh-")
        || s.starts_with("ecdsa-sha2-")
        || s.starts_with("sk-")
        || s.starts_with("rsa-sha2-")
}

/// Read the SSH `string` that starts the key blob: the embedded algorithm.
fn embedded_algorithm(blob: &[u8]) -> Option<&str> {
    let len_bytes: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    std::str::from_utf8(name).ok()
}

/// Validate one OpenSSH public-key line (a trailing newline is fine) and
/// return it normalized with its fingerprint.
///
/// Refused: garbage, truncated or damaged base64, an algorithm name that
/// does not match the key data, more than one key, a private key, RSA keys
/// under 3072 bits, DSA keys, certificates, security-key (`sk-`) keys,
/// unknown algorithms, and comments with control characters or over 1 KiB.
pub fn public_key(text: &str) -> Result<ValidKey, RegistryError> {
    // First, before anything can quote the input: private keys.
    if looks_private(text.as_bytes()) {
        return Err(private_key_refused());
    }
    if text.len() > MAX_KEY_TEXT {
        return Err(key_err(format!(
            "the text is {} bytes long; a public key line is at most {MAX_KEY_TEXT}",
            text.len()
        )));
    }
    if text.contains("-----BEGIN") || text.contains("---- BEGIN") {
        return Err(key_err(
            "PEM / RFC 4716 blocks are not accepted; send the one-line OpenSSH public key \
             (`ssh-ed25519 AAAA… comment`)",
        ));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty())
        .collect();
    let line = match lines.as_slice() {
        [] => {
            return Err(key_err(
                "the text is empty; send one OpenSSH public key line",
            ));
        }
        [one] => *one,
        many => {
            let keys = many
                .iter()
                .filter(|l| l.split(' ').next().is_some_and(is_key_algorithm_name))
                .count();
            return Err(key_err(if keys > 1 {
                format!("the text holds {keys} keys; send exactly one public key")
            } else {
                format!(
                    "the text has {} lines; a public key is exactly one line",
                    many.len()
                )
            }));
        }
    };

    let (algorithm, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim_start_matches(' ');
    let (data, comment) = rest.split_once(' ').unwrap_or((rest, ""));
    let comment = comment.trim();
    if algorithm.is_empty() || data.is_empty() {
        return Err(key_err(
            "not an OpenSSH public key line (expected `ALGORITHM BASE64 [COMMENT]`)",
        ));
    }
    if has_control(algorithm) || has_control(data) || !algorithm.is_ascii() {
        return Err(key_err("the key contains control or non-ASCII characters"));
    }
    if !is_key_algorithm_name(algorithm) {
        return Err(key_err(format!(
            "`{}` is not an SSH key type; the line must start with e.g. `ssh-ed25519`",
            sanitize(algorithm, 40)
        )));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| key_err("the key data is not valid base64 (truncated or damaged)"))?;
    let inner =
        embedded_algorithm(&blob).ok_or_else(|| key_err("the key data is truncated or damaged"))?;
    if inner != algorithm {
        return Err(key_err(format!(
            "the key type name `{}` does not match its data (`{}`)",
            sanitize(algorithm, 40),
            sanitize(inner, 40)
        )));
    }
    if comment.len() > MAX_COMMENT {
        return Err(RegistryError::Invalid {
            field: "key comment",
            reason: format!(
                "the comment is {} bytes long; at most {MAX_COMMENT} are allowed",
                comment.len()
            ),
            code: ApiErrorCode::InvalidPublicKey,
        });
    }
    if has_control(comment) {
        return Err(RegistryError::Invalid {
            field: "key comment",
            reason: "the comment contains control characters (e.g. terminal escape sequences)"
                .into(),
            code: ApiErrorCode::InvalidPublicKey,
        });
    }
    if comment
        .split_whitespace()
        .zip(comment.split_whitespace().skip(1))
        .any(|(a, b)| is_key_algorithm_name(a) && b.starts_with("AAAA"))
    {
        return Err(key_err(
            "the line holds more than one key; send exactly one public key",
        ));
    }

    let mut key = ssh_key::PublicKey::from_openssh(&format!("{algorithm} {data}"))
        .map_err(|_| key_err("the key data is truncated or damaged"))?;
    match key.key_data() {
        KeyData::Ed25519(_) | KeyData::Ecdsa(_) => {}
        KeyData::Rsa(rsa) => {
            let bits = rsa_bits(rsa.n().as_positive_bytes().unwrap_or_default());
            if bits < MIN_RSA_BITS {
                return Err(weak(format!(
                    "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required \
                     (better: an ed25519 key)"
                )));
            }
        }
        KeyData::Dsa(_) => {
            return Err(weak(
                "DSA keys are no longer safe and are refused; use an ed25519 key",
            ));
        }
        KeyData::Certificate(_) => {
            return Err(key_err(
                "SSH certificates are not accepted; send a plain public key",
            ));
        }
        KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_) => {
            return Err(key_err(
                "security-key (sk-) keys are not supported; use an ed25519 key",
            ));
        }
        _ => {
            return Err(key_err(format!(
                "key type `{}` is not supported; use an ed25519 key",
                sanitize(algorithm, 40)
            )));
        }
    }
    key.set_comment(comment);
    let line = key
        .to_openssh()
        .map_err(|_| key_err("the key cannot be encoded"))?;
    Ok(ValidKey {
        fingerprint: pra_proto::fingerprint(&key),
        algorithm: key.algorithm().as_str().to_string(),
        line,
        key,
    })
}

/// Exact bit length of a big-endian unsigned integer.
fn rsa_bits(n: &[u8]) -> u32 {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    let lead = n.first().map_or(8, |b| b.leading_zeros());
    (n.len() as u32).saturating_mul(8).saturating_sub(lead)
}

/// A `SHA256:` fingerprint as printed by `ssh-keygen -l`.
pub fn fingerprint(s: &str) -> Result<&str, RegistryError> {
    let s = s.trim();
    let ok = s.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    });
    if ok {
        Ok(s)
    } else {
        Err(RegistryError::invalid(
            "fingerprint",
            "expected `SHA256:` followed by 43 base64 characters, as `pra-registry key list` prints it",
        ))
    }
}

fn name(field: &'static str, s: &str, extra: &[char], allowed: &str) -> Result<(), RegistryError> {
    if s.is_empty() {
        return Err(RegistryError::invalid(field, "it is empty"));
    }
    if s.chars().count() > MAX_NAME {
        return Err(RegistryError::invalid(
            field,
            format!("it is longer than {MAX_NAME} characters"),
        ));
    }
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    if !first_ok || !all_ok {
        return Err(RegistryError::invalid(
            field,
            format!(
                "`{}` is not allowed; use {allowed}, starting with a letter or digit",
                sanitize(s, 64)
            ),
        ));
    }
    Ok(())
}

/// An account name: 1–64 of `A-Z a-z 0-9 . _ @ -`, starting with a letter
/// or digit.
pub fn user_name(s: &str) -> Result<(), RegistryError> {
    name(
        "user name",
        s,
        &['.', '_', '@', '-'],
        "letters, digits, . _ @ -",
    )
}

/// A rule name: 1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn rule_name(s: &str) -> Result<(), RegistryError> {
    name("rule name", s, &['.', '_', '-'], "letters, digits, . _ -")
}

/// An admin token name: same charset as rule names.
pub fn token_name(s: &str) -> Result<(), RegistryError> {
    name("token name", s, &['.', '_', '-'], "letters, digits, . _ -")
}

/// A duration as an admin writes it: a whole number and a unit, `s`, `m`,
/// `h`, `d` or `w` (`90d`, `12h`, `30m`), from 1 minute to 10 years.
/// Returns seconds. `field` names it in the error (e.g. `--expires`).
pub fn duration(field: &'static str, s: &str) -> Result<i64, RegistryError> {
    let bad = |why: &str| {
        RegistryError::invalid(
            field,
            format!(
                "{why} (got {:?}; write e.g. 90d, 12h, 30m)",
                sanitize(s, 40)
            ),
        )
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad("not a number with a unit"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad("the unit must be s, m, h, d or w")),
    };
    let secs = n.checked_mul(scale).ok_or_else(|| bad("too long"))?;
    if !(60..=10 * 366 * 86_400).contains(&secs) {
        return Err(bad("must be between 1 minute and 10 years"));
    }
    Ok(secs)
}

/// A TCP port 1–65535. `field` names it in the error (`local port`, `target port`).
pub fn port(field: &'static str, value: i64) -> Result<u16, RegistryError> {
    match u16::try_from(value) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(RegistryError::invalid(
            field,
            format!("{value} is outside 1–65535"),
        )),
    }
}

/// A port given as text (CLI arguments).
pub fn port_text(field: &'static str, s: &str) -> Result<u16, RegistryError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegistryError::invalid(
            field,
            format!("`{}` is not a port number (1–65535)", sanitize(s, 20)),
        ));
    }
    port(field, s.parse::<i64>().unwrap_or(i64::MAX))
}

/// A target host: a DNS name or an IP literal (IPv6 with or without
/// brackets). Returns the form to store: IPv6 canonical without brackets,
/// everything else as written.
pub fn host(s: &str) -> Result<String, RegistryError> {
    let bad = |reason: String| RegistryError::invalid("target host", reason);
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if s.len() > MAX_HOST {
        return Err(bad(format!(
            "it is {} characters long; at most {MAX_HOST} are allowed",
            s.len()
        )));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) || has_control(s) {
        return Err(bad("it contains spaces or control characters".into()));
    }
    let inner = match s.strip_prefix('[') {
        Some(rest) => Some(
            rest.strip_suffix(']')
                .ok_or_else(|| bad("unbalanced `[`".into()))?,
        ),
        None => None,
    };
    if let Some(v6) = inner {
        return v6
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| bad(format!("`{}` is not an IPv6 address", sanitize(v6, 60))));
    }
    if s.contains(':') {
        return s
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| bad(format!("`{}` is not an IPv6 address", sanitize(s, 60))));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Ok(s.to_string());
    }
    dns_name(s).map_err(bad)?;
    Ok(s.to_string())
}

fn dns_name(s: &str) -> Result<(), String> {
    let body = s.strip_suffix('.').unwrap_or(s);
    if body.is_empty() {
        return Err("it is not a host name".into());
    }
    let labels: Vec<&str> = body.split('.').collect();
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "`{}` is not a valid host name (empty or over-long label)",
                sanitize(s, 60)
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "`{}` is not a valid host name (letters, digits, - and _ between dots)",
                sanitize(s, 60)
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "`{}` is neither an IPv4 address nor a host name",
            sanitize(s, 60)
        ));
    }
    Ok(())
}

/// `HOST:PORT`, with IPv6 literals as `[ADDR]:PORT`. Returns the stored host
/// form (see [`host`]) and the port.
pub fn target(s: &str) -> Result<(String, u16), RegistryError> {
    let s = s.trim();
    let (h, p) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| RegistryError::invalid("target", "expected `[IPv6]:PORT`"))?;
        (format!("[{h}]"), p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(|| {
            RegistryError::invalid("target", "expected HOST:PORT (e.g. mail.corp:25)")
        })?;
        if h.contains(':') {
            return Err(RegistryError::invalid(
                "target",
                "an IPv6 address needs brackets: [ADDR]:PORT",
            ));
        }
        (h.to_string(), p)
    };
    Ok((host(&h)?, port_text("target port", p)?))
}

/// A complete rule, normalized.
pub fn rule(
    user: &str,
    name: &str,
    local_port: i64,
    target_host: &str,
    target_port: i64,
) -> Result<RuleRecord, RegistryError> {
    user_name(user)?;
    rule_name(name)?;
    Ok(RuleRecord {
        user: user.to_string(),
        name: name.to_string(),
        local_port: port("local port", local_port)?,
        target_host: host(target_host)?,
        target_port: port("target port", target_port)?,
    })
}

/// Length caps of the device description fields (characters).
pub const DEVICE_LIMITS: [(&str, usize); 4] = [
    ("device computer", 255),
    ("device os_user", 255),
    ("device description", 1024),
    ("device tag", 128),
];

/// A device description: trimmed, each field capped, no control characters.
pub fn device(d: &Device) -> Result<Device, RegistryError> {
    let fields = [&d.computer, &d.os_user, &d.description, &d.tag];
    let mut out = Vec::with_capacity(4);
    for ((field, max), value) in DEVICE_LIMITS.iter().zip(fields) {
        let v = value.trim();
        if v.chars().count() > *max {
            return Err(RegistryError::invalid(
                field,
                format!("it is longer than {max} characters"),
            ));
        }
        if has_control(v) {
            return Err(RegistryError::invalid(
                field,
                "it contains control characters",
            ));
        }
        out.push(v.to_string());
    }
    let mut it = out.into_iter();
    Ok(Device {
        computer: it.next().unwrap_or_default(),
        os_user: it.next().unwrap_or_default(),
        description: it.next().unwrap_or_default(),
        tag: it.next().unwrap_or_default(),
    })
}

#[cfg(test)]
pub(crate) mod tests {

    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn durations() {
        for (text, want) in [
            ("90d", Some(90 * 86_400)),
            ("12h", Some(12 * 3600)),
            ("30m", Some(1800)),
            ("2w", Some(14 * 86_400)),
            ("60s", Some(60)),
            (" 1d ", Some(86_400)),
            ("59s", None),
            ("0d", None),
            ("11000d", None),
            ("d", None),
            ("5", None),
            ("5y", None),
            ("-5d", None),
            ("99999999999999999999d", None),
            ("", None),
        ] {
            assert_eq!(duration("--expires", text).ok(), want, "{text:?}");
        }
        let e = duration("--expires", "5y").unwrap_err().to_string();
        assert!(e.contains("--expires") && e.contains("90d"), "{e}");
    }
    use ssh_key::private::Ed25519Keypair;

    pub(crate) fn ed25519_line(seed: u8, comment: &str) -> String {
        let kp = Ed25519Keypair::from_seed(&[seed; 32]);
        let mut k = ssh_key::PublicKey::from(kp.public);
        k.set_comment(comment);
        k.to_openssh().unwrap()
    }

    fn ssh_string(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }

    /// A positive mpint of exactly `bits` bits (top bit set).
    fn mpint(out: &mut Vec<u8>, bits: usize) {
        let mut n = vec![0x5au8; bits / 8];
        n[0] = 0x80;
        let mut enc = vec![0u8];
        enc.extend_from_slice(&n);
        ssh_string(out, &enc);
    }

    pub(crate) fn rsa_line(bits: usize) -> String {
        let mut blob = Vec::new();
        ssh_string(&mut blob, b"ssh-rsa");
        ssh_string(&mut blob, &[1, 0, 1]);
        mpint(&mut blob, bits);
        format!(
            "ssh-rsa {} rsa@test",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    pub(crate) fn dsa_line() -> String {
        let mut blob = Vec::new();
        ssh_string(&mut blob, b"ssh-dss");
        mpint(&mut blob, 1024);
        mpint(&mut blob, 160);
        mpint(&mut blob, 1024);
        mpint(&mut blob, 1024);
        format!(
            "ssh-dss {} dsa@test",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    pub(crate) const PRIVATE_PEM: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
        -----END OPENSSH PRIVATE KEY-----\n";

    /// Every bad key from the issue, with the expected code and a word of
    /// the reason.
    pub(crate) fn bad_keys() -> Vec<(&'static str, String, ApiErrorCode, &'static str)> {
        let good = ed25519_line(1, "alice@pc");
        let data = good.split(' ').nth(1).unwrap().to_string();
        let other_data = ed25519_line(2, "").split(' ').nth(1).unwrap().to_string();
        vec![
            (
                "empty",
                String::new(),
                ApiErrorCode::InvalidPublicKey,
                "empty",
            ),
            (
                "garbage",
                "hello world".into(),
                ApiErrorCode::InvalidPublicKey,
                "not an SSH key type",
            ),
            (
                "one word",
                "ssh-ed25519".into(),
                ApiErrorCode::InvalidPublicKey,
                "not an OpenSSH",
            ),
            (
                "base64 garbage",
                "ssh-ed25519 !!!notbase64!!!".into(),
                ApiErrorCode::InvalidPublicKey,
                "base64",
            ),
            (
                "truncated base64",
                format!("ssh-ed25519 {} x", &data[..data.len() / 2]),
                ApiErrorCode::InvalidPublicKey,
                "truncated",
            ),
            (
                "truncated data, valid base64",
                format!("ssh-ed25519 {} x", &data[..40]),
                ApiErrorCode::InvalidPublicKey,
                "truncated",
            ),
            (
                "algorithm does not match data",
                format!("ssh-rsa {data} x"),
                ApiErrorCode::InvalidPublicKey,
                "does not match",
            ),
            (
                "two key lines",
                format!("{good}\n{}", ed25519_line(2, "b")),
                ApiErrorCode::InvalidPublicKey,
                "2 keys",
            ),
            (
                "two keys on one line",
                format!("ssh-ed25519 {data} ssh-ed25519 {other_data}"),
                ApiErrorCode::InvalidPublicKey,
                "more than one key",
            ),
            (
                "private key (PEM)",
                PRIVATE_PEM.into(),
                ApiErrorCode::PrivateKeyRefused,
                "PRIVATE",
            ),
            (
                "private key body without armor",
                "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ".into(),
                ApiErrorCode::PrivateKeyRefused,
                "PRIVATE",
            ),
            (
                "PKCS#8 private key",
                "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----"
                    .into(),
                ApiErrorCode::PrivateKeyRefused,
                "PRIVATE",
            ),
            (
                "PuTTY private key",
                "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\nAAAA"
                    .into(),
                ApiErrorCode::PrivateKeyRefused,
                "PRIVATE",
            ),
            (
                "public PEM",
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----".into(),
                ApiErrorCode::InvalidPublicKey,
                "PEM",
            ),
            (
                "RSA 2048",
                rsa_line(2048),
                ApiErrorCode::WeakKey,
                "2048 bits",
            ),
            (
                "RSA 3071",
                rsa_line(3064),
                ApiErrorCode::WeakKey,
                "3064 bits",
            ),
            ("DSA", dsa_line(), ApiErrorCode::WeakKey, "DSA"),
            (
                "comment with ANSI escape",
                format!("ssh-ed25519 {data} \x1b[31mred"),
                ApiErrorCode::InvalidPublicKey,
                "control",
            ),
            (
                "comment with BEL",
                format!("ssh-ed25519 {data} ding\x07"),
                ApiErrorCode::InvalidPublicKey,
                "control",
            ),
            (
                "comment with bidi override",
                format!("ssh-ed25519 {data} abc\u{202e}fed"),
                ApiErrorCode::InvalidPublicKey,
                "control",
            ),
            (
                "comment over 1 KiB",
                format!("ssh-ed25519 {data} {}", "c".repeat(1025)),
                ApiErrorCode::InvalidPublicKey,
                "1024",
            ),
            (
                "text over 16 KiB",
                format!("ssh-ed25519 {data} {}", "c".repeat(20_000)),
                ApiErrorCode::InvalidPublicKey,
                "bytes long",
            ),
            (
                "authorized_keys options",
                format!("from=\"10.0.0.1\" ssh-ed25519 {data}"),
                ApiErrorCode::InvalidPublicKey,
                "not an SSH key type",
            ),
            (
                "NUL in data",
                format!("ssh-ed25519 {}\0", &data),
                ApiErrorCode::InvalidPublicKey,
                "control",
            ),
            (
                "unknown algorithm",
                {
                    let mut blob = Vec::new();
                    ssh_string(&mut blob, b"ssh-foo");
                    ssh_string(&mut blob, b"data");
                    format!(
                        "ssh-foo {}",
                        base64::engine::general_purpose::STANDARD.encode(blob)
                    )
                },
                ApiErrorCode::InvalidPublicKey,
                "",
            ),
        ]
    }

    #[test]
    fn refuses_every_bad_key() {
        let cases = bad_keys();
        assert!(cases.len() > 20);
        for (what, text, code, word) in cases {
            match public_key(&text) {
                Ok(k) => panic!("{what}: accepted as {}", k.fingerprint),
                Err(e) => {
                    assert_eq!(e.code(), code, "{what}: {e}");
                    assert!(e.to_string().contains(word), "{what}: {e}");
                    if code == ApiErrorCode::PrivateKeyRefused {
                        // never echoes any of the input
                        assert!(!e.to_string().contains("b3BlbnNz"), "{what}");
                        assert!(!e.to_string().contains("-----"), "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn accepts_and_normalizes_good_keys() {
        let good = ed25519_line(1, "alice@pc");
        let data = good.split(' ').nth(1).unwrap();
        for input in [
            good.clone(),
            format!("{good}\n"),
            format!("{good}\r\n"),
            format!("  ssh-ed25519   {data}   alice@pc  \n\n"),
        ] {
            let k = public_key(&input).unwrap();
            assert_eq!(k.line, good, "{input:?}");
            assert_eq!(k.algorithm, "ssh-ed25519");
            assert!(k.fingerprint.starts_with("SHA256:"));
            assert_eq!(fingerprint(&k.fingerprint).unwrap(), k.fingerprint);
        }
        let bare = public_key(&format!("ssh-ed25519 {data}")).unwrap();
        assert_eq!(bare.line, format!("ssh-ed25519 {data}"));
        let spaced = public_key(&format!("ssh-ed25519 {data} Alice Smith (laptop)")).unwrap();
        assert_eq!(
            spaced.line,
            format!("ssh-ed25519 {data} Alice Smith (laptop)")
        );
        let rsa = public_key(&rsa_line(3072)).unwrap();
        assert_eq!(rsa.algorithm, "ssh-rsa");
        assert!(public_key(&rsa_line(4096)).is_ok());
        let c = format!("ssh-ed25519 {data} {}", "c".repeat(1024));
        assert!(public_key(&c).is_ok());
    }

    #[test]
    fn rsa_bit_length_is_exact() {
        assert_eq!(rsa_bits(&[0x80, 0]), 16);
        assert_eq!(rsa_bits(&[0x01, 0]), 9);
        assert_eq!(rsa_bits(&[0, 0x7f]), 7);
        assert_eq!(rsa_bits(&[]), 0);
    }

    #[test]
    fn names() {
        let x64 = "x".repeat(64);
        let x65 = "x".repeat(65);
        for ok in [
            "alice",
            "a",
            "alice.smith",
            "a_b-c@corp.example",
            "A1",
            x64.as_str(),
        ] {
            assert!(user_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " alice",
            "alice ",
            "al ice",
            "-alice",
            ".alice",
            "@x",
            "al/ice",
            "al\0ice",
            "al\x1bice",
            "ålice",
            x65.as_str(),
            "a:b",
            "a;b",
        ] {
            let e = user_name(bad).unwrap_err();
            assert_eq!(e.code(), ApiErrorCode::InvalidField, "{bad:?}");
            assert!(!e.to_string().contains('\x1b'));
        }
        assert!(rule_name("smtp-1.a_b").is_ok());
        assert!(rule_name("a@b").is_err());
        assert!(token_name("ci").is_ok());
        assert!(token_name("").is_err());
    }

    #[test]
    fn ports() {
        for (v, ok) in [
            (0, false),
            (1, true),
            (65535, true),
            (65536, false),
            (-1, false),
            (i64::MAX, false),
        ] {
            assert_eq!(port("local port", v).is_ok(), ok, "{v}");
        }
        for (s, ok) in [
            ("22", true),
            ("0", false),
            ("65536", false),
            ("", false),
            ("x", false),
            ("-1", false),
            ("99999999999999999999", false),
            (" 80 ", true),
        ] {
            assert_eq!(port_text("local port", s).is_ok(), ok, "{s:?}");
        }
        assert!(
            port("local port", 0)
                .unwrap_err()
                .to_string()
                .contains("local port")
        );
    }

    #[test]
    fn hosts() {
        let a63 = "a".repeat(63);
        let a64 = "a".repeat(64);
        for (input, stored) in [
            ("mail.corp", "mail.corp"),
            ("Mail.Corp.", "Mail.Corp."),
            ("localhost", "localhost"),
            ("db_1.internal", "db_1.internal"),
            ("10.0.0.5", "10.0.0.5"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("[FE80:0:0:0:0:0:0:1]", "fe80::1"),
            ("2001:db8::10", "2001:db8::10"),
            (a63.as_str(), a63.as_str()),
        ] {
            assert_eq!(host(input).unwrap(), stored, "{input}");
        }
        let long = format!("{}.corp", "a.".repeat(125));
        for bad in [
            "",
            " ",
            "mail corp",
            "mail\0corp",
            "mail\tcorp",
            "mail\x1b[0m",
            long.as_str(),
            a64.as_str(),
            "-mail.corp",
            "mail-.corp",
            "mail..corp",
            ".",
            "[::1",
            "[mail.corp]",
            "fe80::1%eth0",
            "1.2.3.999",
            "010.1.1.1",
            "mail/corp",
            "mail.corp:25",
            "ma!l",
        ] {
            let e = host(bad).unwrap_err();
            assert_eq!(e.code(), ApiErrorCode::InvalidField, "{bad:?}");
        }
    }

    #[test]
    fn targets() {
        for (input, h, p) in [
            ("mail.corp:25", "mail.corp", 25),
            ("10.0.0.5:3389", "10.0.0.5", 3389),
            ("[::1]:22", "::1", 22),
            ("[2001:DB8::1]:443", "2001:db8::1", 443),
        ] {
            assert_eq!(target(input).unwrap(), (h.to_string(), p), "{input}");
        }
        for bad in [
            "mail.corp",
            "mail.corp:",
            "mail.corp:0",
            "mail.corp:65536",
            ":25",
            "::1:22",
            "[::1]",
            "[::1]22",
            "mail corp:25",
            "mail.corp:2x",
        ] {
            assert!(target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rules_validate_every_field() {
        let r = rule("alice", "smtp", 10025, "[::1]", 25).unwrap();
        assert_eq!(r.target_host, "::1");
        for (user, name, local, host, port, field) in [
            ("", "smtp", 10025, "mail", 25, "user name"),
            ("alice", "", 10025, "mail", 25, "rule name"),
            ("alice", "sm tp", 10025, "mail", 25, "rule name"),
            ("alice", "smtp", 0, "mail", 25, "local port"),
            ("alice", "smtp", 65536, "mail", 25, "local port"),
            ("alice", "smtp", 10025, "", 25, "target host"),
            ("alice", "smtp", 10025, "a b", 25, "target host"),
            ("alice", "smtp", 10025, "mail", 0, "target port"),
            ("alice", "smtp", 10025, "mail", 70000, "target port"),
        ] {
            let e = rule(user, name, local, host, port).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn devices() {
        let ok = Device {
            computer: " PC-01 ".into(),
            os_user: "alice".into(),
            description: "Linux 6.1 / Dell / i7".into(),
            tag: "3f2a".into(),
        };
        assert_eq!(device(&ok).unwrap().computer, "PC-01");
        assert!(device(&Device::default()).is_ok());
        for (d, field) in [
            (
                Device {
                    computer: "x".repeat(256),
                    ..ok.clone()
                },
                "device computer",
            ),
            (
                Device {
                    os_user: "a\x1bb".into(),
                    ..ok.clone()
                },
                "device os_user",
            ),
            (
                Device {
                    description: "d".repeat(1025),
                    ..ok.clone()
                },
                "device description",
            ),
            (
                Device {
                    description: "line\nbreak".into(),
                    ..ok.clone()
                },
                "device description",
            ),
            (
                Device {
                    tag: "t".repeat(129),
                    ..ok.clone()
                },
                "device tag",
            ),
        ] {
            let e = device(&d).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn fingerprints() {
        assert!(fingerprint("SHA256:abc").is_err());
        assert!(fingerprint("MD5:aa:bb").is_err());
        assert!(fingerprint(&format!("SHA256:{}", "A".repeat(43))).is_ok());
        assert!(fingerprint(&format!("SHA256:{}=", "A".repeat(42))).is_err());
    }

    #[test]
    fn private_markers() {
        assert!(looks_private(PRIVATE_PEM.as_bytes()));
        assert!(looks_private(
            b"{\"public_key\":\"-----BEGIN RSA PRIVATE KEY-----\\nMII\"}"
        ));
        assert!(!looks_private(ed25519_line(3, "x").as_bytes()));
    }
}
