//! The hardware-bound private key and its public metadata.
//!
//! Two files in the home folder:
//! - `pra_ed25519`: an ed25519 key in OpenSSH private-key format, encrypted
//!   with bcrypt-pbkdf + aes256-ctr. The OpenSSH passphrase is **not** the
//!   user's: it is HKDF-SHA256 of (device id ‖ user passphrase), so the file
//!   opens only with both the passphrase and this PC's identity
//!   ([`crate::identity`]). `ssh-keygen -y -P <passphrase>` cannot open it,
//!   and neither can the file plus the passphrase on another PC. Mode 0600
//!   on Unix; on Windows the ACL is reduced to the user, SYSTEM and Administrators.
//! - `pra_ed25519.meta` (TOML): public facts for `pra key show/export`
//!   without the passphrase (user, public key, created time, what the key is
//!   bound to) and per-attribute hints ([`crate::identity::hints`]) that let
//!   a failed unlock name the attribute that changed.
//!
//! Both are written atomically (temp file + rename); an existing key is
//! never replaced without `force`.

use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::identity::{self, Attr, Attributes, Identity};
use crate::passphrase::Passphrase;
use base64::Engine;
use hkdf::Hkdf;
use pra_proto::api::Device;
use pra_proto::codes::Code;
use pra_proto::handover::Handover;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::{Cipher, Kdf, LineEnding, PrivateKey, PublicKey};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// bcrypt-pbkdf rounds (OpenSSH's default is 16).
const BCRYPT_ROUNDS: u32 = 16;
/// Version of the metadata file.
const META_FORMAT: u32 = 1;
/// A key file larger than this is not ours.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Public facts about the key, stored in `pra_ed25519.meta`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMeta {
    /// Version of this file's layout.
    pub format: u32,
    /// Account name the key is for.
    pub user: String,
    /// OpenSSH public-key line (comment `user@computer`).
    pub public_key: String,
    /// `SHA256:` fingerprint.
    pub fingerprint: String,
    /// Unix time of creation.
    pub created: u64,
    /// SHA-256 (hex) of the key file as written, to tell "modified" from
    /// "wrong passphrase".
    pub key_sha256: String,
    /// Public device tag ([`identity::DeviceId::tag`]).
    pub device_tag: String,
    /// Human description of the PC at creation (OS / model / CPU).
    pub description: String,
    /// Salt of the hints (hex).
    pub hint_salt: String,
    /// Attribute key → 16-bit salted hash of its value.
    pub hints: BTreeMap<String, String>,
    /// Attribute key → value shown to the user (secret attributes: "(set)").
    pub bound_to: BTreeMap<String, String>,
    /// Attribute key → why it could not be read when the key was made. These
    /// attributes are not bound: they are left out when the key is opened,
    /// so it keeps opening on this PC whether or not they become readable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
}

impl KeyMeta {
    /// The computer name the key was made on.
    pub(crate) fn computer(&self) -> &str {
        self.bound_to
            .get(Attr::Computer.key())
            .map(String::as_str)
            .unwrap_or("unknown-pc")
    }

    /// Device description for the registry and the hand-over file.
    pub fn device(&self) -> Device {
        Device {
            computer: self.computer().to_string(),
            os_user: self
                .bound_to
                .get(Attr::OsUser.key())
                .cloned()
                .unwrap_or_default(),
            description: self.description.clone(),
            tag: self.device_tag.clone(),
        }
    }

    /// The attributes that were unavailable when the key was made.
    pub(crate) fn unavailable_attrs(&self) -> Vec<Attr> {
        Attr::ALL
            .into_iter()
            .filter(|a| self.unavailable.contains_key(a.key()))
            .collect()
    }

    /// `WAR(10107) …` naming the attributes that were unavailable when the
    /// key was made and why; `None` when all were read.
    pub(crate) fn unavailable_line(&self) -> Option<String> {
        unavailable_line(
            &self
                .unavailable_attrs()
                .into_iter()
                .filter_map(|a| Some((a, self.unavailable.get(a.key())?.clone())))
                .collect(),
        )
    }

    /// One line: what the key is bound to.
    pub fn bound_summary(&self) -> String {
        let parts: Vec<String> = Attr::ALL
            .iter()
            .filter_map(|a| {
                let v = self.bound_to.get(a.key())?;
                Some(if a.is_secret() {
                    short_label(*a).to_string()
                } else {
                    format!("{} {v}", short_label(*a))
                })
            })
            .collect();
        if parts.is_empty() {
            "nothing readable (weak binding)".into()
        } else {
            parts.join(", ")
        }
    }
}

/// `WAR(10107) not readable on this PC: board vendor, board (SMBIOS: …)`,
/// one reason per source; `None` when nothing is unavailable.
pub(crate) fn unavailable_line(unavailable: &BTreeMap<Attr, String>) -> Option<String> {
    if unavailable.is_empty() {
        return None;
    }
    // Group the attributes by reason (one source may feed several).
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for (a, why) in unavailable {
        match by_reason.iter_mut().find(|(w, _)| *w == why.as_str()) {
            Some((_, attrs)) => attrs.push(short_label(*a)),
            None => by_reason.push((why.as_str(), vec![short_label(*a)])),
        }
    }
    let parts: Vec<String> = by_reason
        .iter()
        .map(|(why, attrs)| format!("{} ({why})", attrs.join(", ")))
        .collect();
    Some(format!(
        "{} not readable on this PC, so not bound: {}: {}",
        Code::IdentityPartial.label(),
        parts.join("; "),
        Code::IdentityPartial.fix()
    ))
}

fn short_label(a: Attr) -> &'static str {
    match a {
        Attr::OsUser => "OS user",
        Attr::Computer => "computer",
        Attr::MachineId => "OS machine id",
        Attr::BoardVendor => "board vendor",
        Attr::BoardName => "board",
        Attr::ProductVendor => "PC vendor",
        Attr::ProductName => "PC model",
        Attr::CpuBrand => "CPU",
    }
}

/// A stored key as seen without the passphrase.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// The metadata file.
    pub meta: KeyMeta,
    /// The public key (with comment).
    pub public: PublicKey,
}

impl KeyInfo {
    /// `SHA256:` fingerprint.
    pub fn fingerprint(&self) -> String {
        pra_proto::fingerprint(&self.public)
    }

    /// The line `ssh-keygen -l` prints for the public key.
    pub(crate) fn keygen_line(&self) -> String {
        format!(
            "256 {} {} (ED25519)",
            self.fingerprint(),
            self.public.comment().as_str_lossy()
        )
    }

    /// The hand-over file for the administrator.
    pub(crate) fn handover(&self) -> Handover {
        Handover {
            public_key: self.meta.public_key.clone(),
            user: Some(self.meta.user.clone()),
            device: Some(self.meta.device()),
        }
    }
}

/// `pra_ed25519.meta` next to the key file.
pub(crate) fn meta_file(home: &Home) -> PathBuf {
    home.key_file().with_extension("meta")
}

/// Check an account name: 1–64 of letters, digits, `.`, `_`, `-`, `@`,
/// starting with a letter or digit.
pub fn check_user(user: &str) -> ClientResult<()> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user.starts_with(|c: char| c.is_ascii_alphanumeric())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ClientError::new(
            Code::UserNameInvalid,
            format!(
                "`{}` is not a valid account name",
                pra_proto::sanitize::sanitize(user, 80)
            ),
        ))
    }
}

/// Create a new key bound to this PC. Refuses to replace an existing key
/// unless `force`. The passphrase must not be empty.
/// The new key (and the one it replaced) is written to System.log and
/// User.log for the helpdesk.
pub fn generate(home: &Home, user: &str, pass: &Passphrase, force: bool) -> ClientResult<KeyInfo> {
    let old = read_public(home).ok();
    let info = generate_with(
        home,
        user,
        pass,
        &identity::collect::current(),
        force,
        unix_now(),
    )?;
    crate::logging::user_line(&match old {
        Some(old) => format!(
            "keygen --force: replaced the key {} of {} with {} for {user}; the old key no longer works, the new one must be approved",
            old.fingerprint(),
            pra_proto::sanitize::sanitize(&old.meta.user, 64),
            info.fingerprint()
        ),
        None => format!(
            "keygen: created the key {} for {user}, bound to {}",
            info.fingerprint(),
            info.meta.bound_summary()
        ),
    });
    Ok(info)
}

/// [`generate`] for a given identity (tests make "other PCs" this way).
pub(crate) fn generate_with(
    home: &Home,
    user: &str,
    pass: &Passphrase,
    id: &Identity,
    force: bool,
    now: u64,
) -> ClientResult<KeyInfo> {
    check_user(user)?;
    if pass.is_empty() {
        return Err(ClientError::new(
            Code::PassphraseRejected,
            "the passphrase is empty",
        ));
    }
    let key_path = home.key_file();
    if !force && key_path.exists() {
        return Err(existing_key(home, read_public(home).ok().as_ref(), user));
    }
    home.ensure()?;

    let mut seed = Zeroizing::new([0u8; 32]);
    fill_random(seed.as_mut())?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let comment = format!("{user}@{}", id.computer_display());
    key.set_comment(comment.as_str());

    let device_id = identity::fingerprint(&id.attributes);
    let secret = derive_openssh_passphrase(pass, &device_id);
    let mut kdf_salt = vec![0u8; 16];
    fill_random(&mut kdf_salt)?;
    let mut check = [0u8; 4];
    fill_random(&mut check)?;
    let encrypted = key
        .encrypt_with(
            Cipher::Aes256Ctr,
            Kdf::Bcrypt {
                salt: kdf_salt,
                rounds: BCRYPT_ROUNDS,
            },
            u32::from_be_bytes(check),
            secret.as_bytes(),
        )
        .map_err(|e| internal(format!("cannot encrypt the key: {e}")))?;
    let pem = encrypted
        .to_openssh(LineEnding::LF)
        .map_err(|e| internal(format!("cannot encode the key: {e}")))?;

    let mut hint_salt = [0u8; 16];
    fill_random(&mut hint_salt)?;
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| internal(format!("cannot encode the public key: {e}")))?;
    let bound_to = Attr::ALL
        .iter()
        .filter_map(|a| {
            let v = id.attributes.value(*a)?;
            Some((
                a.key().to_string(),
                if a.is_secret() {
                    "(set)".to_string()
                } else {
                    v
                },
            ))
        })
        .collect();
    let meta = KeyMeta {
        format: META_FORMAT,
        user: user.to_string(),
        public_key: public_line,
        fingerprint: pra_proto::fingerprint(key.public_key()),
        created: now,
        key_sha256: sha256_hex(pem.as_bytes()),
        device_tag: device_id.tag(),
        description: id.description(),
        hint_salt: hex(&hint_salt),
        hints: identity::hints(&id.attributes, &hint_salt),
        bound_to,
        unavailable: id
            .unavailable
            .iter()
            .map(|(a, why)| (a.key().to_string(), why.clone()))
            .collect(),
    };
    let meta_text = toml::to_string(&meta)
        .map_err(|e| internal(format!("cannot encode the key metadata: {e}")))?;
    // Metadata first: if the key's rename fails, the old key no longer
    // matches its metadata and says "damaged" instead of opening silently
    // under wrong facts.
    write_atomic(&meta_file(home), meta_text.as_bytes(), false)?;
    write_atomic(&key_path, pem.as_bytes(), true)?;
    Ok(KeyInfo {
        meta,
        public: key.public_key().clone(),
    })
}

/// Read the public side of the stored key (no passphrase needed) and check
/// that the metadata belongs to the key file.
pub fn read_public(home: &Home) -> ClientResult<KeyInfo> {
    read_public_checked(home, true).map(|(info, _)| info)
}

/// [`read_public`] for commands that show only public data (`pra key
/// show`): a key file others may read is no failure here; its
/// `WAR(10112)` comes back next to the key.
pub(crate) fn read_public_warning(home: &Home) -> ClientResult<(KeyInfo, Option<ClientError>)> {
    read_public_checked(home, false)
}

fn read_public_checked(
    home: &Home,
    strict_mode: bool,
) -> ClientResult<(KeyInfo, Option<ClientError>)> {
    let (file_key, bytes, warning) = read_key_file(home, strict_mode)?;
    let meta = read_meta(home)?;
    let public = PublicKey::from_openssh(&meta.public_key).map_err(|_| {
        damaged(
            home,
            format!("{}: the public key is not valid", meta_file(home).display()),
        )
    })?;
    if public.key_data() != file_key.public_key().key_data() {
        return Err(damaged(
            home,
            format!(
                "{} belongs to another key than {}",
                meta_file(home).display(),
                home.key_file().display()
            ),
        ));
    }
    if sha256_hex(&bytes) != meta.key_sha256 {
        return Err(damaged(
            home,
            format!(
                "{} was modified since it was made",
                home.key_file().display()
            ),
        ));
    }
    Ok((KeyInfo { meta, public }, warning))
}

/// Write the hand-over file of the stored key (what `pra key export FILE`
/// writes) to `path`; returns the key it describes.
pub fn export_public(home: &Home, path: &Path) -> ClientResult<KeyInfo> {
    let info = read_public(home)?;
    write_atomic(path, info.handover().render().as_bytes(), false).map_err(|e| {
        ClientError::with_fix(
            Code::HomeUnwritable,
            e.to_string(),
            "choose a file in a folder you can write to",
        )
    })?;
    Ok(info)
}

/// Unlock the private key with the passphrase on this PC.
///
/// Fails with `ERR(10193)` for a wrong passphrase or another PC (naming the
/// attribute that changed when the hints tell), `ERR(10190)` when there is
/// no key, `ERR(10192)` when others may read the file, `ERR(10194)` when it
/// is damaged or modified.
pub fn load(home: &Home, pass: &Passphrase) -> ClientResult<PrivateKey> {
    load_with(home, pass, &identity::collect::current().attributes)
}

/// [`load`] for given attributes (tests make "other PCs" this way).
pub(crate) fn load_with(
    home: &Home,
    pass: &Passphrase,
    attrs: &Attributes,
) -> ClientResult<PrivateKey> {
    let info = read_public(home)?;
    let (file_key, _, _) = read_key_file(home, true)?;
    // What was unavailable when the key was made is not bound.
    let attrs = &attrs.without(&info.meta.unavailable_attrs());
    if pass.is_empty() {
        return Err(ClientError::with_fix(
            Code::KeyNotLoaded,
            "the key could not be unlocked: the passphrase is empty",
            "type the passphrase you chose at `pra keygen`",
        ));
    }
    let secret = derive_openssh_passphrase(pass, &identity::fingerprint(attrs));
    match crate::unlock::decrypt(&file_key, secret.as_bytes()) {
        Ok(mut key) => {
            if key.public_key().key_data() != info.public.key_data() {
                return Err(damaged(
                    home,
                    "the decrypted key does not match its public key",
                ));
            }
            key.set_comment(info.public.comment().clone());
            Ok(key)
        }
        Err(ssh_key::Error::PublicKey) => Err(damaged(
            home,
            "the decrypted key does not match its public key",
        )),
        Err(_) => Err(unlock_failure(&info.meta, attrs)),
    }
}

/// Why unlocking failed: a named attribute change, or the passphrase.
fn unlock_failure(meta: &KeyMeta, attrs: &Attributes) -> ClientError {
    let salt = unhex(&meta.hint_salt).unwrap_or_default();
    let changed = identity::changed(&meta.hints, attrs, &salt);
    if changed.is_empty() {
        return ClientError::with_fix(
            Code::KeyNotLoaded,
            "the key could not be unlocked: wrong passphrase (this PC's identity is unchanged)",
            format!(
                "type the passphrase again; if it is lost, run `{}` and have the new key approved",
                keygen_force(Some(&meta.user))
            ),
        );
    }
    let what: Vec<String> = changed
        .iter()
        .map(|a| {
            let was = meta.bound_to.get(a.key());
            let now = attrs.value(*a);
            if a.is_secret() {
                a.label().to_string()
            } else {
                format!(
                    "{} (was {}, now {})",
                    a.label(),
                    was.map(String::as_str).unwrap_or("not readable"),
                    now.as_deref().unwrap_or("not readable")
                )
            }
        })
        .collect();
    let verb = if changed.len() == 1 { "has" } else { "have" };
    ClientError::with_fix(
        Code::KeyNotLoaded,
        format!(
            "the key could not be unlocked: this is not the PC it was made on: {} {verb} changed since the key was made",
            what.join(", ")
        ),
        format!(
            "generate a new key on this PC with `{}` and have it approved again",
            keygen_force(Some(&meta.user))
        ),
    )
}

/// The key file, checked; with `strict_mode` false a mode others may read
/// is returned as a `WAR(10112)` instead of failing with `ERR(10192)`.
fn read_key_file(
    home: &Home,
    strict_mode: bool,
) -> ClientResult<(PrivateKey, Vec<u8>, Option<ClientError>)> {
    let path = home.key_file();
    let md = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ClientError::new(
                Code::KeyMissing,
                format!("no key at {}", path.display()),
            ));
        }
        Err(e) => {
            return Err(ClientError::new(
                Code::KeyNotLoaded,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    let warning = match check_private_mode(&path, &md) {
        Ok(()) => None,
        Err(e) if !strict_mode => Some(ClientError::with_fix(
            Code::KeyFileReadable,
            format!("{e}; only the public data is shown"),
            e.fix().to_string(),
        )),
        Err(e) => return Err(e),
    };
    if md.len() > MAX_KEY_FILE {
        return Err(damaged(
            home,
            format!("{} is too large for a key", path.display()),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| {
        ClientError::new(
            Code::KeyNotLoaded,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let key = PrivateKey::from_openssh(&bytes).map_err(|_| {
        damaged(
            home,
            format!(
                "{} is truncated or not an OpenSSH private key",
                path.display()
            ),
        )
    })?;
    let protected = key.is_encrypted()
        && key.cipher() == Cipher::Aes256Ctr
        && matches!(key.kdf(), Kdf::Bcrypt { .. })
        && matches!(key.key_data(), KeypairData::Encrypted(_))
        && key.public_key().algorithm() == ssh_key::Algorithm::Ed25519;
    if !protected {
        return Err(damaged(
            home,
            format!(
                "{} is not a PRA key (not an encrypted ed25519 key)",
                path.display()
            ),
        ));
    }
    Ok((key, bytes, warning))
}

#[cfg(unix)]
fn check_private_mode(path: &Path, md: &std::fs::Metadata) -> ClientResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ClientError::with_fix(
            Code::KeyPermissions,
            format!(
                "{} can be read by other users (mode {mode:o})",
                path.display()
            ),
            format!(
                "run `chmod 600 {}`, or generate a new key if others may have copied it",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path, _md: &std::fs::Metadata) -> ClientResult<()> {
    Ok(())
}

fn read_meta(home: &Home) -> ClientResult<KeyMeta> {
    let path = meta_file(home);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| damaged(home, format!("cannot read {}: {e}", path.display())))?;
    let meta: KeyMeta = toml::from_str(&text).map_err(|e| {
        damaged(
            home,
            format!(
                "{} is damaged: {}",
                path.display(),
                e.message().trim_end().replace('\n', " ")
            ),
        )
    })?;
    if meta.format != META_FORMAT {
        return Err(damaged(
            home,
            format!("{} has unknown format {}", path.display(), meta.format),
        ));
    }
    Ok(meta)
}

/// The OpenSSH passphrase: HKDF-SHA256 over the device id and the user's
/// passphrase, as 43 characters of base64. The bcrypt-pbkdf of the OpenSSH
/// format then makes each guess slow.
fn derive_openssh_passphrase(pass: &Passphrase, device: &identity::DeviceId) -> Zeroizing<String> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 + pass.expose().len()));
    ikm.extend_from_slice(device.as_bytes());
    ikm.extend_from_slice(pass.expose().as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(b"pra-keystore-v1"), &ikm);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF's limit of 255 * 32.
    if hk.expand(b"openssh-key-passphrase", okm.as_mut()).is_err() {
        okm.fill(0);
    }
    Zeroizing::new(base64::engine::general_purpose::STANDARD_NO_PAD.encode(okm.as_ref()))
}

fn damaged(home: &Home, what: impl Into<String>) -> ClientError {
    ClientError::with_fix(
        Code::KeyDamaged,
        what,
        format!(
            "generate a new key with `{}` and have it approved again (or restore both files from a backup made on this PC)",
            keygen_force(known_user(home).as_deref())
        ),
    )
}

/// `ERR(10191)` for the key file already in `home` (`old`: its public
/// part, when readable), before `user`'s new key would replace it.
pub(crate) fn existing_key(home: &Home, old: Option<&KeyInfo>, user: &str) -> ClientError {
    let which = old
        .map(|k| format!(" ({} for {})", k.fingerprint(), k.meta.user))
        .unwrap_or_default();
    ClientError::with_fix(
        Code::KeyExists,
        format!(
            "a key already exists at {}{which}",
            home.key_file().display()
        ),
        format!(
            "keep using it, or run `{}` to replace it (it must then be approved again)",
            keygen_force(Some(user))
        ),
    )
}

/// `pra keygen --user alice --force` (`NAME` when the user is unknown).
pub(crate) fn keygen_force(user: Option<&str>) -> String {
    let user = user.filter(|u| check_user(u).is_ok()).unwrap_or("NAME");
    format!("pra keygen --user {user} --force")
}

/// The key's user as its `.meta` file says, if it can be read at all.
fn known_user(home: &Home) -> Option<String> {
    let text = std::fs::read_to_string(meta_file(home)).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("user")?.as_str().map(str::to_string)
}

fn internal(what: String) -> ClientError {
    ClientError::new(Code::HomeUnwritable, what)
}

fn fill_random(buf: &mut [u8]) -> ClientResult<()> {
    getrandom::fill(buf).map_err(|e| {
        ClientError::with_fix(
            Code::HomeUnwritable,
            format!("the OS random generator failed: {e}"),
            "try again; nothing was written",
        )
    })
}

/// Write a file atomically: a temporary file in the same folder (mode 0600
/// when `private`), flushed to disk, then renamed over the target.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> ClientResult<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut rnd = [0u8; 6];
    fill_random(&mut rnd)?;
    let tmp = dir.join(format!(".{name}.tmp-{}", hex(&rnd)));
    let fail = |e: std::io::Error| {
        ClientError::new(
            Code::HomeUnwritable,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        #[cfg(windows)]
        if private {
            // Before any secret is written: the file keeps its ACL on rename.
            restrict_to_user(&tmp)?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Windows: remove inherited permissions (ProgramData is readable by all
/// users) and give full control to the current user, SYSTEM (`S-1-5-18`)
/// and the Administrators group (`S-1-5-32-544`, backups and the helpdesk)
/// only, with the stock `icacls` tool. (Wine's icacls accepts the call and
/// changes nothing: the Windows lane checks the call, see
/// docs/architecture.md.)
#[cfg(windows)]
fn restrict_to_user(path: &Path) -> std::io::Result<()> {
    let user = whoami::fallible::username().map_err(std::io::Error::other)?;
    let status = std::process::Command::new("icacls")
        .arg(path)
        .arg("/inheritance:r")
        .arg("/grant:r")
        .arg(format!("{user}:F"))
        .arg("*S-1-5-18:F")
        .arg("*S-1-5-32-544:F")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "icacls could not restrict the file to {user}"
        )))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pc(computer: &str) -> Identity {
        Identity {
            attributes: Attributes {
                os_user: Some("alice".into()),
                computer: Some(computer.into()),
                machine_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
                board_vendor: Some("Dell Inc.".into()),
                board_name: Some("0X8DXD".into()),
                product_vendor: None,
                product_name: Some("OptiPlex 7090".into()),
                cpu_brand: Some("Intel(R) Core(TM) i7".into()),
            },
            os: Some("Linux".into()),
            unavailable: BTreeMap::new(),
        }
    }

    fn home() -> (tempfile::TempDir, Home) {
        let d = tempfile::tempdir().unwrap();
        let h = Home::at(d.path().join("home"));
        (d, h)
    }

    #[test]
    fn round_trip_on_the_same_pc() {
        let (_d, home) = home();
        let pass = Passphrase::new("correct horse");
        let info = generate_with(&home, "alice", &pass, &pc("PC-1"), false, 1000).unwrap();
        assert_eq!(info.public.comment().as_str_lossy(), "alice@PC-1");
        assert!(info.meta.public_key.ends_with(" alice@PC-1"));
        let key = load_with(&home, &pass, &pc("pc-1.corp.example").attributes).unwrap();
        assert_eq!(key.public_key().key_data(), info.public.key_data());
        assert_eq!(pra_proto::fingerprint(key.public_key()), info.fingerprint());
        let again = read_public(&home).unwrap();
        assert_eq!(again.meta, info.meta);
        assert!(again.meta.bound_summary().contains("computer pc-1"));
        assert!(!toml::to_string(&again.meta).unwrap().contains("3d1219c7"));
    }

    #[test]
    fn a_key_made_with_an_unreadable_source_opens_on_the_same_pc() {
        let (_d, home) = home();
        let pass = Passphrase::new("correct horse");
        // keygen on a PC whose SMBIOS reader crashed: board unavailable.
        let mut made = pc("PC-1");
        let why = "SMBIOS: the reader crashed (range start index 282 out of range)";
        for a in [Attr::BoardVendor, Attr::BoardName] {
            made.unavailable.insert(a, why.to_string());
        }
        made.attributes = made
            .attributes
            .without(&[Attr::BoardVendor, Attr::BoardName]);
        let info = generate_with(&home, "alice", &pass, &made, false, 1000).unwrap();
        let line = info.meta.unavailable_line().unwrap();
        assert!(
            line.starts_with("WAR(10107) not readable on this PC, so not bound: board vendor, board (SMBIOS: the reader crashed"),
            "{line}"
        );
        let meta_text = std::fs::read_to_string(meta_file(&home)).unwrap();
        assert!(meta_text.contains("[unavailable]"), "{meta_text}");
        assert!(!info.meta.bound_summary().contains("board"));
        // Still unreadable, and after a fix (readable again): it opens.
        load_with(&home, &pass, &made.attributes).unwrap();
        load_with(&home, &pass, &pc("PC-1").attributes).unwrap();
        // The other attributes stay bound.
        let e = load_with(&home, &pass, &pc("PC-2").attributes).unwrap_err();
        assert_eq!(e.code(), Code::KeyNotLoaded);
        assert!(
            e.line().contains("computer name (was pc-1, now pc-2)"),
            "{}",
            e.line()
        );

        // A key made with everything readable: a source failing later is
        // named ("now not readable").
        let (_d2, home2) = super::tests::home();
        generate_with(&home2, "alice", &pass, &pc("PC-1"), false, 1000).unwrap();
        assert_eq!(read_public(&home2).unwrap().meta.unavailable_line(), None);
        assert!(
            !std::fs::read_to_string(meta_file(&home2))
                .unwrap()
                .contains("unavailable")
        );
        let e = load_with(&home2, &pass, &made.attributes).unwrap_err();
        assert!(
            e.line()
                .contains("mainboard vendor (was Dell Inc., now not readable)"),
            "{}",
            e.line()
        );
    }

    #[test]
    fn another_pc_or_passphrase_fails_and_says_why() {
        let (_d, home) = home();
        let pass = Passphrase::new("correct horse");
        generate_with(&home, "alice", &pass, &pc("PC-1"), false, 1000).unwrap();

        let e = load_with(&home, &pass, &pc("PC-2").attributes).unwrap_err();
        assert_eq!(e.code(), Code::KeyNotLoaded);
        assert!(
            e.line()
                .contains("computer name (was pc-1, now pc-2) has changed since the key was made"),
            "{}",
            e.line()
        );

        let mut other = pc("PC-1");
        other.attributes.machine_id = Some("00112233445566778899aabbccddeeff".into());
        let e = load_with(&home, &pass, &other.attributes).unwrap_err();
        assert!(e.line().contains("OS machine id"), "{}", e.line());
        assert!(!e.line().contains("0011223344"), "{}", e.line());

        let e = load_with(&home, &Passphrase::new("wrong"), &pc("PC-1").attributes).unwrap_err();
        assert_eq!(e.code(), Code::KeyNotLoaded);
        assert!(e.line().contains("wrong passphrase"), "{}", e.line());

        let e = load_with(&home, &Passphrase::new(""), &pc("PC-1").attributes).unwrap_err();
        assert_eq!(e.code(), Code::KeyNotLoaded);
    }

    #[test]
    fn never_overwrites_without_force() {
        let (_d, home) = home();
        let pass = Passphrase::new("p");
        let first = generate_with(&home, "alice", &pass, &pc("PC-1"), false, 1).unwrap();
        let e = generate_with(&home, "alice", &pass, &pc("PC-1"), false, 2).unwrap_err();
        assert_eq!(e.code(), Code::KeyExists);
        assert!(e.line().contains(&first.fingerprint()));
        assert_eq!(read_public(&home).unwrap().meta, first.meta);
        let second = generate_with(&home, "alice", &pass, &pc("PC-1"), true, 3).unwrap();
        assert_ne!(second.fingerprint(), first.fingerprint());
        assert_eq!(
            read_public(&home).unwrap().fingerprint(),
            second.fingerprint()
        );
        let leftovers: Vec<_> = std::fs::read_dir(home.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn bad_input_is_refused() {
        let (_d, home) = home();
        assert_eq!(
            generate_with(&home, "alice", &Passphrase::new(""), &pc("A"), false, 1)
                .unwrap_err()
                .code(),
            Code::PassphraseRejected
        );
        for bad in ["", "al ice", "-x", "a/b", "ä"] {
            assert_eq!(
                check_user(bad).unwrap_err().code(),
                Code::UserNameInvalid,
                "{bad}"
            );
        }
        assert!(!home.key_file().exists());
        assert_eq!(read_public(&home).unwrap_err().code(), Code::KeyMissing);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, home) = home();
        let pass = Passphrase::new("p");
        generate_with(&home, "alice", &pass, &pc("A"), false, 1).unwrap();
        let mode = std::fs::metadata(home.key_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(home.key_file(), std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_with(&home, &pass, &pc("A").attributes).unwrap_err();
        assert_eq!(e.code(), Code::KeyPermissions);
    }

    /// The file is a standard OpenSSH key: stock `ssh-keygen` opens it with
    /// the derived passphrase (and only with that, see tests/it/keygen_cli.rs).
    #[cfg(unix)]
    #[test]
    fn openssh_opens_it_with_the_derived_passphrase_only() {
        let (_d, home) = home();
        let pass = Passphrase::new("correct horse");
        let info = generate_with(&home, "alice", &pass, &pc("PC-1"), false, 1).unwrap();
        let derived =
            derive_openssh_passphrase(&pass, &identity::fingerprint(&pc("PC-1").attributes));
        let run = |p: &str| {
            std::process::Command::new("ssh-keygen")
                .args(["-y", "-P", p, "-f"])
                .arg(home.key_file())
                .output()
                .unwrap()
        };
        let ok = run(&derived);
        assert!(ok.status.success(), "{ok:?}");
        let line = String::from_utf8(ok.stdout).unwrap();
        assert_eq!(
            line.split_whitespace().take(2).collect::<Vec<_>>(),
            info.meta
                .public_key
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
        );
        assert!(!run("correct horse").status.success());
    }

    #[test]
    fn hkdf_output_is_not_the_passphrase() {
        let id = identity::fingerprint(&pc("A").attributes);
        let other = identity::fingerprint(&pc("B").attributes);
        let p = Passphrase::new("p");
        let a = derive_openssh_passphrase(&p, &id);
        assert_eq!(a.len(), 43);
        assert_ne!(a.as_str(), "p");
        assert_ne!(a, derive_openssh_passphrase(&p, &other));
        assert_ne!(a, derive_openssh_passphrase(&Passphrase::new("q"), &id));
        assert_eq!(unhex(&hex(&[1, 2, 255])), Some(vec![1, 2, 255]));
    }
}
