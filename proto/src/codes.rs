//! The stable, user-facing error codes.
//!
//! Every failure a user can meet prints one line: `CODE what happened: what to do`.
//! `ERR(…)` is fatal (non-zero exit), `WAR(…)` lets the rest go on. The three codes
//! employees already know (`ERR(10203)`, `ERR(10193)`, `WAR(10102)`) keep their
//! meaning; finer causes have their own numbers. `docs/error-codes.md` documents
//! every code listed in [`Code::ALL`]; a test keeps the two in step.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a code stops the operation or only warns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Fatal: the command fails with a non-zero exit status.
    Err,
    /// Warning: the rest goes on.
    War,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = ($num:expr, $sev:ident, $summary:expr, $fix:expr), )*) => {
        /// A stable error code. The spelling of each is pinned by a test.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The number, e.g. `10203`.
            pub fn number(self) -> u32 {
                match self { $( Code::$variant => $num, )* }
            }

            /// Fatal or warning.
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }

            /// One-line cause, for the helpdesk table and generic messages.
            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }

            /// What the user (or the admin) does about it.
            pub fn fix(self) -> &'static str {
                match self { $( Code::$variant => $fix, )* }
            }
        }
    };
}

codes! {
    /// The client configuration file cannot be read or is invalid.
    ConfigInvalid = (10100, Err, "the client configuration is invalid",
        "correct the named setting in config.toml, or set it again with `pra server set`"),
    /// No gateway address has been set yet.
    ServerNotSet = (10101, Err, "no gateway address is set",
        "run `pra server set HOST` with the address your administrator gave you"),
    /// A rule's local port is held by another program.
    PortBusy = (10102, War, "a local port for a forward is not free (another program uses it); the other forwards keep working",
        "close the program that holds the port, then reconnect"),
    /// The gateway refused or could not reach a rule's target.
    TargetRefused = (10103, War, "the gateway could not open the target of a forward",
        "the internal server may be down; the other forwards keep working; tell your administrator if it persists"),
    /// The client's home folder or a file in it cannot be written.
    HomeUnwritable = (10104, Err, "the client's data folder cannot be written",
        "check the permissions of the folder given by --home / PRA_HOME"),
    /// A log bundle could not be written.
    LogExportFailed = (10105, Err, "the log bundle could not be written",
        "choose another output file or free some disk space"),
    /// A rule's local port cannot be opened for a reason other than "in use".
    PortDenied = (10106, War, "a local port for a forward cannot be opened (not allowed by the system); the other forwards keep working",
        "ask your administrator to move the rule to a local port above 1024, or allow this program to listen on it"),
    /// A source of the PC's identity (SMBIOS table, machine id, …) failed,
    /// crashed or did not answer: its attributes are not bound.
    IdentityPartial = (10107, War, "some of this PC's attributes could not be read; the key is bound to the others",
        "nothing to do to keep working; if it persists after a restart, tell your administrator the source and reason named in the line"),
    /// `pra` was given a command line it does not understand.
    UsageInvalid = (10110, Err, "the command line is not valid",
        "see `pra --help` (or `pra COMMAND --help`)"),
    /// Another `pra connect` (or the app) already holds the connection of
    /// this home folder.
    AlreadyConnected = (10111, Err, "PRA is already connected from this home folder",
        "use the running connection, or stop it first (Ctrl-C in its window, or Disconnect in the app)"),
    /// The key file may be read by other users; only public data was shown.
    KeyFileReadable = (10112, War, "the key file can be read by other users",
        "restrict it to your user (chmod 600 on Linux/macOS); if others may have copied it, generate a new key"),
    /// The key file does not exist.
    KeyMissing = (10190, Err, "no key has been generated on this PC",
        "run `pra keygen --user NAME`, then hand the public key to your administrator"),
    /// A key exists and would be overwritten.
    KeyExists = (10191, Err, "a key already exists and was not overwritten",
        "keep using it, or run `pra keygen --user NAME --force` to replace it (it must then be approved again)"),
    /// The key file may be read by other users.
    KeyPermissions = (10192, Err, "the key file can be read by other users",
        "restrict it to your user (chmod 600 on Linux/macOS) or generate a new key"),
    /// The key could not be loaded (wrong passphrase, or another PC).
    KeyNotLoaded = (10193, Err, "the key could not be loaded (wrong passphrase, or this PC is not the one the key was made on)",
        "type the passphrase again; after a PC change generate a new key and have it approved again"),
    /// The key file is damaged or was modified.
    KeyDamaged = (10194, Err, "the key file is damaged or was modified",
        "generate a new key with `pra keygen --user NAME --force` and have it approved again"),
    /// The passphrase given at key generation is not acceptable.
    PassphraseRejected = (10195, Err, "the passphrase is empty or the two entries differ",
        "choose a non-empty passphrase and type it the same way twice"),
    /// The user name given for a key is not acceptable.
    UserNameInvalid = (10196, Err, "the user name is not valid",
        "use the account name your administrator gave you (letters, digits, . _ - @)"),
    /// The passphrase could not be asked (no terminal) and `PRA_PASSPHRASE` is not set.
    PassphraseUnavailable = (10197, Err, "the passphrase could not be asked (no terminal)",
        "run the command in a terminal, or set PRA_PASSPHRASE for scripts"),
    /// The gateway host name does not resolve.
    GatewayNotResolved = (10201, Err, "the gateway name does not resolve",
        "check the address with `pra server show` and your internet connection"),
    /// The gateway port cannot be reached over TCP.
    GatewayUnreachable = (10202, Err, "the gateway cannot be reached on its port",
        "check your internet connection; a firewall may block the port; try again later"),
    /// The forwarding rules could not be fetched.
    RulesNotFetched = (10203, Err, "the forwarding rules could not be fetched (gateway unreachable on its port, account not allowed, no rules)",
        "run `pra doctor` to see which step fails, then follow its fix"),
    /// The gateway's host key differs from the pinned one.
    HostKeyChanged = (10204, Err, "the gateway's host key differs from the pinned one",
        "do not connect; ask your administrator for the gateway's fingerprint and set it with `pra server set HOST --host-key SHA256:…`"),
    /// The key waits for the administrator's approval.
    KeyPending = (10205, Err, "the key is waiting for the administrator's approval",
        "ask your administrator to approve the key (its fingerprint: `pra key show`)"),
    /// The key was revoked by the administrator.
    KeyRevoked = (10206, Err, "the key was revoked by the administrator",
        "generate a new key with `pra keygen --user NAME --force` and have it approved"),
    /// The gateway refused the key (unknown key, disabled account, or another user's key).
    KeyRefused = (10207, Err, "the gateway did not accept the key (unknown key, pending, revoked, or disabled account)",
        "submit the key with `pra key submit --registry URL` and ask your administrator to approve it"),
    /// The account has no forwarding rules.
    NoRules = (10208, Err, "the account has no forwarding rules",
        "ask your administrator to add the forwarding rules for your account"),
    /// The SSH session with the gateway failed after connecting.
    GatewayProtocol = (10209, Err, "the connection to the gateway failed during the SSH exchange",
        "try again; if it persists send `pra logs export` to the helpdesk"),
    /// The registry cannot be reached.
    RegistryUnreachable = (10210, Err, "the registry cannot be reached",
        "check the registry URL your administrator gave you and your connection"),
    /// The registry answered something that is not its API.
    RegistryGarbage = (10211, Err, "the registry answered something that is not the PRA API",
        "check the registry URL (it ends at the host and port, e.g. https://registry.example.com)"),
    /// The registry refused the request.
    RegistryRefused = (10212, Err, "the registry refused the request",
        "read the reason given; ask your administrator if it names your account or key"),
    /// The registry URL given is not a usable http(s) URL.
    RegistryUrlInvalid = (10213, Err, "the registry URL is not valid",
        "give the URL your administrator gave you, e.g. https://registry.example.com"),
    /// The connection was lost and is being re-established.
    Reconnecting = (10220, War, "the connection to the gateway was lost; reconnecting",
        "nothing to do: forwards resume by themselves when the gateway is reachable again"),
    /// One of several gateways could not be used (unreachable, timed out,
    /// session lost); the client tries the next one.
    GatewayFailover = (10221, War, "a gateway could not be used; the next gateway of the registry is tried",
        "nothing to do while another gateway works; tell your administrator if one stays unreachable"),
    /// A key was submitted for an account the registry does not have (a
    /// typo in `pra keygen --user`); told only to the key's holder.
    AccountUnknown = (10226, Err, "the registry has no account with the name this key was made for",
        "check your account name with your administrator, then `pra keygen --user NAME --force` and `pra key submit` again"),
    /// The OS credential store (Secret Service, Windows Credential Manager,
    /// macOS Keychain) is not available, so the app cannot remember the
    /// passphrase; connecting goes on.
    CredentialStore = (10230, War, "the system's credential store is not available; the passphrase is not remembered",
        "type the passphrase at each connect; to let the app remember it, start or unlock the desktop keyring (Secret Service, Windows Credential Manager, macOS Keychain)"),
    /// The invite string is not a valid invite (cut, wrapped, edited, or
    /// from another version); nothing was stored or sent.
    InviteMalformed = (10250, Err, "the invite is not valid (cut, mistyped or edited when copied)",
        "copy the whole invite again exactly as your administrator sent it (one line starting with pra-invite:), or ask for a new one"),
    /// The invite's expiry has passed.
    InviteExpired = (10251, Err, "the invite has expired",
        "ask your administrator for a new invite (`pra-registry invite create --user NAME`)"),
    /// The invite was used already (it works once).
    InviteUsed = (10252, Err, "the invite was used already (an invite works once)",
        "ask your administrator for a new invite; if you enrolled already, use `pra connect`"),
    /// An admin revoked the invite.
    InviteRevoked = (10253, Err, "the invite was revoked by the administrator",
        "ask your administrator for a new invite"),
    /// The gateway refused the invite's secret (or closed the connection
    /// right after the login): unknown invite, wrong secret, or too many
    /// failed logins from this address.
    InviteRefused = (10254, Err, "the gateway refused the invite (unknown invite or wrong secret)",
        "check that the invite is for this gateway and was copied whole; ask your administrator for a new one; after many failed tries wait a few minutes"),
    /// The gateway accepted the invite but refused the key hand-over.
    EnrollFailed = (10255, Err, "the gateway refused the key hand-over (invalid request or proof, key already registered, or registry unavailable)",
        "check that this PC's clock is right and try again; if it persists send `pra logs export` to the helpdesk"),
    /// The registry's HTTPS certificate does not verify against the
    /// trusted roots (a private CA not given with `--ca`, the wrong CA, a
    /// name mismatch, an expired certificate, or someone in between).
    RegistryCertUntrusted = (10256, Err, "the registry's HTTPS certificate is not trusted",
        "if your administrator runs the registry with its own CA, pass that CA's certificate: `pra key submit --registry URL --ca FILE` (PEM); otherwise check the URL and ask your administrator"),
    /// The `--ca` file cannot be used (missing, unreadable, no PEM
    /// certificate in it).
    RegistryCaUnusable = (10257, Err, "the CA certificate file for the registry cannot be used",
        "give the PEM file of the CA your administrator sent (it starts with -----BEGIN CERTIFICATE-----)"),
    /// The registry database cannot be opened or used (unreadable, not a
    /// database, damaged, or from a newer version). It is never replaced.
    RegistryDatabase = (10300, Err, "the registry database cannot be opened or used",
        "check --data / PRA_REGISTRY_DATA and the file's permissions; restore registry.db from a backup (pra-registry never replaces it with an empty one)"),
    /// An admin gave the registry a value it does not accept.
    RegistryInvalid = (10301, Err, "the registry refused an invalid value",
        "correct the value named in the message and run the command again"),
    /// The record already exists or belongs to someone else.
    RegistryConflict = (10302, Err, "the record already exists or belongs to another user",
        "look at the existing record with `pra-registry user list`, `key list` or `rule list`"),
    /// No such user, key, rule or token.
    RegistryNotFound = (10303, Err, "no such user, key or rule in the registry",
        "check the name or fingerprint with `pra-registry user list`, `key list` or `rule list`"),
    /// The requested database backend is not part of this build.
    RegistryUnsupported = (10304, Err, "this build of pra-registry does not support the requested database",
        "unset --database / PRA_DATABASE_URL to use the embedded SQLite database in --data"),
    /// The registry cannot listen on its address.
    RegistryListen = (10305, Err, "the registry cannot listen on its address",
        "choose another address with --api / --ssh, or stop the program that holds the port"),
    /// A fingerprint prefix given to `key approve`/`key revoke` matches
    /// several keys.
    RegistryAmbiguous = (10306, Err, "the fingerprint prefix matches several keys",
        "give more characters of the fingerprint, as `pra-registry key list` shows it"),
    /// `serve --tls-cert/--tls-key` files cannot be read or do not match.
    RegistryTlsFiles = (10330, Err, "the API's TLS certificate or key cannot be used",
        "check that --tls-cert is a PEM certificate chain and --tls-key its PEM private key (ECDSA, Ed25519 or RSA), both readable"),
}

impl Code {
    /// `ERR(10203)` / `WAR(10102)`.
    pub fn label(self) -> String {
        let prefix = match self.severity() {
            Severity::Err => "ERR",
            Severity::War => "WAR",
        };
        format!("{prefix}({})", self.number())
    }

    /// Look a code up by its number.
    pub fn from_number(n: u32) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.number() == n)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The one line a user sees: `ERR(10193) what happened: what to do`.
pub fn line(code: Code, what: &str, fix: &str) -> String {
    format!("{} {what}: {fix}", code.label())
}

/// A command-line parser's rendered error (clap's) as the `what` of a
/// [`line`]: its message up to the first blank line, joined into one line,
/// without the `error: ` prefix.
pub fn usage_reason(rendered: &str) -> String {
    let joined = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    match joined.strip_prefix("error: ") {
        Some(what) => what.to_string(),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_keep_their_spelling() {
        assert_eq!(Code::RulesNotFetched.label(), "ERR(10203)");
        assert_eq!(Code::KeyNotLoaded.label(), "ERR(10193)");
        assert_eq!(Code::PortBusy.label(), "WAR(10102)");
        assert_eq!(Code::HostKeyChanged.label(), "ERR(10204)");
        assert_eq!(Code::KeyPending.label(), "ERR(10205)");
        assert_eq!(Code::KeyRevoked.label(), "ERR(10206)");
        assert_eq!(Code::TargetRefused.label(), "WAR(10103)");
    }

    #[test]
    fn numbers_are_unique_and_sorted() {
        let nums: Vec<u32> = Code::ALL.iter().map(|c| c.number()).collect();
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(nums, sorted);
        assert!(nums.len() > 20);
    }

    #[test]
    fn every_code_is_documented() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/error-codes.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            doc.contains("| code | cause | fix |"),
            "{path} is missing or has no table"
        );
        let missing: Vec<String> = Code::ALL
            .iter()
            .map(|c| format!("| `{}` |", c.label()))
            .filter(|row| !doc.contains(row.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "codes without a row in docs/error-codes.md: {missing:?}"
        );
    }

    #[test]
    fn every_code_round_trips_through_its_number() {
        for c in Code::ALL {
            assert_eq!(Code::from_number(c.number()), Some(*c));
            assert!(!c.summary().is_empty() && !c.fix().is_empty());
        }
    }
}
