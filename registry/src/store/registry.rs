//! The registry's rules, written once for both databases.
//!
//! [`Store`]'s methods hold every check, audit event and revision bump. A
//! [`Backend`] only runs a closure inside a transaction
//! ([`Tx`]) whose statements are written in the SQL that SQLite and
//! PostgreSQL share; the backend adapts the few dialect points (placeholders
//! `?N`, the `user` column, `COLLATE "C"` for byte order) and converts
//! values ([`Val`]) to and from its driver.

use super::{
    AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, Change, MAX_PENDING_PER_USER, SESSION_KEEP_SECS,
    SESSION_STALE_SECS, StoreResult, UNKNOWN_SUBMISSION_KEEP_SECS, checks, event,
};
use crate::error::RegistryError;
use crate::model::*;
use crate::validate;
use pra_proto::api::{Device, KeyStatus};
use tokio::sync::watch;

/// A value going into or coming out of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// SQL `NULL`.
    Null,
    /// An integer (SQLite `INTEGER`; PostgreSQL `INTEGER` or `BIGINT`).
    Int(i64),
    /// A boolean (SQLite stores 0 or 1).
    Bool(bool),
    /// Text (PostgreSQL `TEXT` or `JSONB`).
    Text(String),
}

/// `impl From<T> for Val` for each `T => |v| value`.
macro_rules! val_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl From<$t> for Val {
            fn from($v: $t) -> Val {
                $e
            }
        })*
    };
}

val_from! {
    i64 => |v| Val::Int(v);
    u16 => |v| Val::Int(v.into());
    u32 => |v| Val::Int(v.into());
    // Byte counts are stored as SQL integers (i64).
    u64 => |v| Val::Int(i64::try_from(v).unwrap_or(i64::MAX));
    bool => |v| Val::Bool(v);
    &str => |v| Val::Text(v.to_owned());
    &String => |v| Val::Text(v.clone());
    String => |v| Val::Text(v);
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// Statement parameters: `vals![a, b]` is `&[Val::from(a), Val::from(b)]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$(Val::from($v)),*] };
}

/// A result row.
#[derive(Debug)]
pub struct Row(pub Vec<Val>);

/// A Rust type a column can be read as.
pub trait FromVal: Sized {
    /// `None` when the value does not fit.
    fn from_val(v: &Val) -> Option<Self>;
}
/// `impl FromVal for T` for each `T => |v| value`.
macro_rules! from_val {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl FromVal for $t {
            fn from_val($v: &Val) -> Option<$t> {
                $e
            }
        })*
    };
}

from_val! {
    i64 => |v| if let Val::Int(i) = v { Some(*i) } else { None };
    u16 => |v| i64::from_val(v).and_then(|i| u16::try_from(i).ok());
    // Counters never go below zero.
    u64 => |v| i64::from_val(v).map(|i| i.max(0) as u64);
    bool => |v| match v { Val::Bool(b) => Some(*b), Val::Int(i) => Some(*i != 0), _ => None };
    String => |v| if let Val::Text(s) = v { Some(s.clone()) } else { None };
    KeyStatus => |v| String::from_val(v).and_then(|s| KeyStatus::parse(&s));
    // JSON columns: invite gateways, audit details (kept as text if not JSON).
    Vec<String> => |v| String::from_val(v).map(|s| serde_json::from_str(&s).unwrap_or_default());
    serde_json::Value => |v| String::from_val(v)
        .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)));
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val) -> Option<Option<T>> {
        match v {
            Val::Null => Some(None),
            v => T::from_val(v).map(Some),
        }
    }
}

impl Row {
    /// Column `i` as a `T`.
    pub fn get<T: FromVal>(&self, i: usize) -> StoreResult<T> {
        self.0.get(i).and_then(T::from_val).ok_or_else(|| {
            RegistryError::Database(format!(
                "column {i} holds a value of an unexpected type ({})",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// One open transaction of a backend (or, for reads, one connection).
/// Statements use `?1`, `?2`… placeholders.
pub trait Tx {
    /// Run a statement and return its rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>>;
    /// Run a statement; returns how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Val]) -> StoreResult<u64>;
    /// The revision just moved to `revision`, inside this transaction
    /// (PostgreSQL tells the other processes when it commits).
    fn revision_moved(&mut self, _revision: i64) -> StoreResult<()> {
        Ok(())
    }
}

impl dyn Tx + '_ {
    fn one<T>(
        &mut self,
        sql: &str,
        p: &[Val],
        f: fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.query(sql, p)?.first().map(f).transpose()
    }

    fn all<T>(
        &mut self,
        sql: &str,
        p: &[Val],
        f: fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.query(sql, p)?.iter().map(f).collect()
    }

    /// The first column of the first row.
    fn value<T: FromVal>(&mut self, sql: &str, p: &[Val]) -> StoreResult<T> {
        match self.query(sql, p)?.first() {
            Some(row) => row.get(0),
            None => Err(RegistryError::Database("a query returned no row".into())),
        }
    }
}

/// What a transaction may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only reads (no transaction needed).
    Read,
    /// Writes of the gateway (sessions, audit events).
    Write,
    /// Admin changes: serialized with each other (SQLite `BEGIN IMMEDIATE`,
    /// PostgreSQL a lock on the revision row), so checks then writes cannot race.
    Admin,
}

/// What runs inside one transaction.
pub trait Work<T>: FnOnce(&mut dyn Tx) -> StoreResult<T> + Send {}
impl<T, F: FnOnce(&mut dyn Tx) -> StoreResult<T> + Send> Work<T> for F {}

/// What a [`Backend`] runs inside one transaction.
pub type Step<'a> = dyn FnMut(&mut dyn Tx) -> StoreResult<()> + Send + 'a;

/// A database: runs closures in transactions, follows the revision.
pub trait Backend: std::fmt::Debug + Send + Sync + 'static {
    /// Run `f` in a transaction of `mode`, committed when it returns `Ok`.
    fn run(&self, mode: Mode, f: &mut Step<'_>) -> StoreResult<()>;
    /// See [`Store::subscribe`].
    fn subscribe(&self) -> watch::Receiver<Change>;
}

/// A backend's revision feed, started by the first [`Backend::subscribe`].
#[derive(Debug, Default)]
pub struct Feed(std::sync::Mutex<Option<watch::Sender<Change>>>);

impl Feed {
    /// A receiver; the first call makes the sender and hands it to `start`.
    pub fn subscribe(&self, start: impl FnOnce(watch::Sender<Change>)) -> watch::Receiver<Change> {
        let mut feed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let tx = feed.get_or_insert_with(|| {
            let tx = watch::Sender::new(Change::default());
            start(tx.clone());
            tx
        });
        tx.subscribe()
    }
}

/// The registry's records, in one of the two databases. Cheap to share
/// (`Arc<Store>`).
#[derive(Debug)]
pub struct Store(pub(super) Box<dyn Backend>);

// --- columns and row mapping --------------------------------------------------

const USER_COLS: &str = "name, enabled, created_at";
const KEY_COLS: &str = "fingerprint, user, public_key, algorithm, status, submitted_at, \
     approved_by, approved_at, revoked_by, revoked_at, last_seen, device_computer, device_os_user, \
     device_description, device_tag";
const RULE_COLS: &str = "user, name, local_port, target_host, target_port";
const TOKEN_COLS: &str = "name, created_at, last_used, expires_at";
const INVITE_COLS: &str = "id, user, gateways, approve, created_at, created_by, expires_at, \
     used_at, used_fingerprint, revoked_at";
const SESSION_COLS: &str = "id, gateway, user, fingerprint, source, started_at, heartbeat_at, \
     bytes_up, bytes_down, ended_at, end_reason, disconnect_requested_by, disconnect_requested_at";
const WEB_SESSION_COLS: &str = "id_hash, token_name, token_hash, csrf, secure, created_ms, \
     last_seen_ms, flash_error, flash_text";
/// Reads the revision.
pub(super) const REVISION: &str = "SELECT value FROM meta WHERE key = 'revision'";

/// Read a row's columns, in order from column `start`, into the fields of a
/// struct; the fields after `;` are local variables of the same name.
macro_rules! from_row {
    ($r:expr, $start:expr, $t:ident: $($field:ident),* $(; $($local:ident),*)?) => {{
        let mut col = $start..;
        Ok::<_, RegistryError>($t {
            $($field: $r.get(col.next().unwrap_or_default())?,)*
            $($($local,)*)?
        })
    }};
}

fn user_row(r: &Row) -> StoreResult<User> {
    from_row!(r, 0, User: name, enabled, created_at)
}

fn key_row(r: &Row) -> StoreResult<KeyRecord> {
    let device = from_row!(r, 11, Device: computer, os_user, description, tag)?;
    from_row!(r, 0, KeyRecord: fingerprint, user, public_key, algorithm, status, submitted_at,
        approved_by, approved_at, revoked_by, revoked_at, last_seen; device)
}

fn rule_row(r: &Row) -> StoreResult<RuleRecord> {
    from_row!(r, 0, RuleRecord: user, name, local_port, target_host, target_port)
}

fn token_row(r: &Row) -> StoreResult<TokenRecord> {
    from_row!(r, 0, TokenRecord: name, created_at, last_used, expires_at)
}

fn invite_row(r: &Row) -> StoreResult<InviteRecord> {
    from_row!(r, 0, InviteRecord: id, user, gateways, approve, created_at, created_by, expires_at,
        used_at, used_fingerprint, revoked_at)
}

fn session_row(r: &Row) -> StoreResult<SessionRecord> {
    from_row!(r, 0, SessionRecord: id, gateway, user, fingerprint, source, started_at, heartbeat_at,
        bytes_up, bytes_down, ended_at, end_reason, disconnect_requested_by, disconnect_requested_at)
}

fn audit_row(r: &Row) -> StoreResult<AuditEntry> {
    let event = from_row!(r, 2, AuditEvent: kind, actor, user, fingerprint, source, detail)?;
    from_row!(r, 0, AuditEntry: id, at; event)
}

fn flash_of(r: &Row, i: usize) -> StoreResult<Option<(bool, String)>> {
    Ok(match (r.get(i)?, r.get(i + 1)?) {
        (Some(error), Some(text)) => Some((error, text)),
        _ => None,
    })
}

fn web_session_row(r: &Row) -> StoreResult<WebSession> {
    let flash = flash_of(r, 7)?;
    from_row!(r, 0, WebSession: id_hash, token_name, token_hash, csrf, secure, created_ms,
        last_seen_ms; flash)
}

fn pair(r: &Row) -> StoreResult<(String, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

// --- statements used by several calls ----------------------------------------

fn get_user(tx: &mut dyn Tx, name: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE name = ?1");
    tx.one(&sql, vals![name], user_row)
}

fn get_key(tx: &mut dyn Tx, fingerprint: &str) -> StoreResult<Option<KeyRecord>> {
    let sql = format!("SELECT {KEY_COLS} FROM keys WHERE fingerprint = ?1");
    tx.one(&sql, vals![fingerprint], key_row)
}

fn get_invite(tx: &mut dyn Tx, id: &str) -> StoreResult<Option<InviteRecord>> {
    let sql = format!("SELECT {INVITE_COLS} FROM invites WHERE id = ?1");
    tx.one(&sql, vals![id], invite_row)
}

fn get_session(tx: &mut dyn Tx, id: i64) -> StoreResult<Option<SessionRecord>> {
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1");
    tx.one(&sql, vals![id], session_row)
}

fn login_facts(tx: &mut dyn Tx, user: &str, fingerprint: &str) -> StoreResult<LoginFacts> {
    Ok(LoginFacts {
        key: get_key(tx, fingerprint)?,
        user: get_user(tx, user)?,
    })
}

fn no_user(name: &str) -> RegistryError {
    RegistryError::NotFound(format!("no user named {name}"))
}

/// Add a live session (its fields checked); its id.
fn insert_session(tx: &mut dyn Tx, s: &NewSession) -> StoreResult<i64> {
    checks::session(s)?;
    tx.value(
        "INSERT INTO sessions (gateway, user, fingerprint, source, started_at, heartbeat_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
        vals![&s.gateway, &s.user, &s.fingerprint, &s.source, s.started_at],
    )
}

/// End a live session (an ended one stays as it was).
fn close_session(
    tx: &mut dyn Tx,
    p: SessionProgress,
    at: Timestamp,
    reason: &str,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE sessions SET bytes_up = ?1, bytes_down = ?2, heartbeat_at = ?3, \
         ended_at = ?3, end_reason = ?4 WHERE id = ?5 AND ended_at IS NULL",
        vals![p.bytes_up, p.bytes_down, at, reason, p.id],
    )?;
    Ok(())
}

fn insert_audit(tx: &mut dyn Tx, at: Timestamp, e: &AuditEvent) -> StoreResult<()> {
    checks::audit_event(e)?;
    tx.execute(
        "INSERT INTO audit (at, kind, actor, user, fingerprint, source, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vals![
            at,
            &e.kind,
            &e.actor,
            e.user.as_deref(),
            e.fingerprint.as_deref(),
            e.source.as_deref(),
            e.detail.to_string()
        ],
    )?;
    Ok(())
}

/// Audit an admin change and bump the revision, inside its transaction.
fn admin_change(tx: &mut dyn Tx, at: Timestamp, e: AuditEvent) -> StoreResult<()> {
    insert_audit(tx, at, &e)?;
    let revision: i64 = tx.value(
        "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
        &[],
    )?;
    tx.revision_moved(revision)
}

fn add_user_in(
    tx: &mut dyn Tx,
    name: &str,
    actor: &Actor,
    now: Timestamp,
    via: Option<&str>,
) -> StoreResult<User> {
    validate::user_name(name)?;
    if get_user(tx, name)?.is_some() {
        return Err(RegistryError::Conflict(format!(
            "user {name} already exists"
        )));
    }
    tx.execute(
        "INSERT INTO users (name, enabled, created_at) VALUES (?1, ?2, ?3)",
        vals![name, true, now],
    )?;
    let mut e = event("user.add", actor, Some(name), None);
    if let Some(via) = via {
        e.detail = serde_json::json!({ "via": via });
    }
    admin_change(tx, now, e)?;
    Ok(User {
        name: name.to_string(),
        enabled: true,
        created_at: now,
    })
}

/// Insert a checked new key and audit it as `kind`.
fn insert_key(
    tx: &mut dyn Tx,
    key: &NewKey,
    line: &str,
    device: &Device,
    actor: &Actor,
    now: Timestamp,
    kind: &str,
) -> StoreResult<KeyRecord> {
    let approved = key.status == KeyStatus::Approved;
    tx.execute(
        &format!(
            "INSERT INTO keys ({KEY_COLS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, NULL, ?9, ?10, ?11, ?12)"
        ),
        vals![
            &key.fingerprint,
            &key.user,
            line,
            &key.algorithm,
            key.status.as_str(),
            now,
            approved.then(|| actor.to_string()),
            approved.then_some(now),
            &device.computer,
            &device.os_user,
            &device.description,
            &device.tag,
        ],
    )?;
    let mut e = event(kind, actor, Some(&key.user), Some(&key.fingerprint));
    e.detail = serde_json::json!({
        "status": key.status.as_str(),
        "algorithm": key.algorithm,
        "computer": device.computer,
    });
    admin_change(tx, now, e)?;
    get_key(tx, &key.fingerprint)?.ok_or_else(|| {
        RegistryError::Database("the new key vanished inside its transaction".into())
    })
}

fn rule_detail(rule: &RuleRecord) -> serde_json::Value {
    serde_json::json!({
        "rule": rule.name,
        "local_port": rule.local_port,
        "target_host": rule.target_host,
        "target_port": rule.target_port,
    })
}

impl Store {
    /// Run `f` in a transaction of `mode`; its value.
    fn run<T: Send>(&self, mode: Mode, f: impl Work<T>) -> StoreResult<T> {
        let (mut f, mut out) = (Some(f), None);
        self.0.run(mode, &mut |tx| {
            out = f.take().map(|f| f(tx)).transpose()?;
            Ok(())
        })?;
        out.ok_or_else(|| RegistryError::Database("a transaction did not run".into()))
    }

    fn read<T: Send>(&self, f: impl Work<T>) -> StoreResult<T> {
        self.run(Mode::Read, f)
    }

    fn write<T: Send>(&self, f: impl Work<T>) -> StoreResult<T> {
        self.run(Mode::Write, f)
    }

    fn admin<T: Send>(&self, f: impl Work<T>) -> StoreResult<T> {
        self.run(Mode::Admin, f)
    }

    /// Create an enabled user. `Conflict` if the name exists.
    pub fn add_user(&self, name: &str, actor: &Actor) -> StoreResult<User> {
        self.admin(|tx| add_user_in(tx, name, actor, now(), None))
    }

    /// One user.
    pub fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.read(|tx| get_user(tx, name))
    }

    /// All users, by name.
    pub fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY name COLLATE \"C\"");
        self.read(|tx| tx.all(&sql, &[], user_row))
    }

    /// Enable or disable. `NotFound` if missing.
    pub fn set_user_enabled(&self, name: &str, enabled: bool, actor: &Actor) -> StoreResult<User> {
        self.admin(|tx| {
            let mut user = get_user(tx, name)?.ok_or_else(|| no_user(name))?;
            if user.enabled == enabled {
                return Ok(user);
            }
            tx.execute(
                "UPDATE users SET enabled = ?1 WHERE name = ?2",
                vals![enabled, name],
            )?;
            let kind = if enabled {
                "user.enable"
            } else {
                "user.disable"
            };
            admin_change(tx, now(), event(kind, actor, Some(name), None))?;
            user.enabled = enabled;
            Ok(user)
        })
    }

    /// Store a new key, or return the existing record when the same key is
    /// already registered to the same user (idempotent; `bool` = created).
    /// `Conflict` if it belongs to another user. The user must exist unless
    /// `create_user` is set (then it is created, enabled).
    pub fn add_key(
        &self,
        key: NewKey,
        create_user: bool,
        actor: &Actor,
    ) -> StoreResult<(KeyRecord, bool)> {
        let (valid, device) = checks::new_key(&key)?;
        self.admin(|tx| {
            let now = now();
            if let Some(existing) = get_key(tx, &key.fingerprint)? {
                if existing.user == key.user {
                    return Ok((existing, false));
                }
                return Err(RegistryError::Conflict(format!(
                    "key {} is already registered to another user",
                    key.fingerprint
                )));
            }
            if get_user(tx, &key.user)?.is_none() {
                if !create_user {
                    return Err(no_user(&key.user));
                }
                add_user_in(tx, &key.user, actor, now, Some("key.import"))?;
            }
            if matches!(actor, Actor::Submitter(_)) && key.status == KeyStatus::Pending {
                let pending: i64 = tx.value(
                    "SELECT count(*) FROM keys WHERE user = ?1 AND status = 'pending'",
                    vals![&key.user],
                )?;
                if pending >= MAX_PENDING_PER_USER as i64 {
                    return Err(checks::too_many_pending(&key.user));
                }
            }
            let kind = match actor {
                Actor::Submitter(_) => "key.submit",
                _ => "key.import",
            };
            let record = insert_key(tx, &key, &valid.line, &device, actor, now, kind)?;
            Ok((record, true))
        })
    }

    /// Remember that `fingerprint` was submitted (with a valid proof) for
    /// `user`, an account that does not exist: audited as
    /// `key.submit.unknown_user`. The same limit as for pending keys
    /// applies per name ([`MAX_PENDING_PER_USER`], `TooManyPending`), so a
    /// caller cannot tell known from unknown names by it. Entries older than
    /// [`UNKNOWN_SUBMISSION_KEEP_SECS`] are forgotten.
    pub fn note_unknown_submission(
        &self,
        fingerprint: &str,
        user: &str,
        actor: &Actor,
    ) -> StoreResult<()> {
        validate::fingerprint(fingerprint)?;
        validate::user_name(user)?;
        // Serialized like admin changes, so the per-name count holds.
        self.admin(|tx| {
            let now = now();
            tx.execute(
                "DELETE FROM unknown_submissions WHERE submitted_at < ?1",
                vals![now - UNKNOWN_SUBMISSION_KEEP_SECS],
            )?;
            let sql = "SELECT count(*), coalesce(sum(CASE WHEN fingerprint = ?1 THEN 1 ELSE 0 \
                       END), 0) FROM unknown_submissions WHERE user = ?2";
            let counts = tx.one(sql, vals![fingerprint, user], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            let (count, seen): (i64, i64) = counts.unwrap_or_default();
            if seen == 0 && count >= MAX_PENDING_PER_USER as i64 {
                return Err(checks::too_many_pending(user));
            }
            tx.execute(
                "INSERT INTO unknown_submissions (fingerprint, user, submitted_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (fingerprint, user) \
                 DO UPDATE SET submitted_at = excluded.submitted_at",
                vals![fingerprint, user, now],
            )?;
            let e = event(
                "key.submit.unknown_user",
                actor,
                Some(user),
                Some(fingerprint),
            );
            insert_audit(tx, now, &e)
        })
    }

    /// Was `fingerprint` submitted for the (unknown) account `user` lately?
    pub fn unknown_submission(&self, fingerprint: &str, user: &str) -> StoreResult<bool> {
        self.read(|tx| {
            tx.value(
                "SELECT EXISTS (SELECT 1 FROM unknown_submissions \
                 WHERE fingerprint = ?1 AND user = ?2 AND submitted_at >= ?3)",
                vals![fingerprint, user, now() - UNKNOWN_SUBMISSION_KEEP_SECS],
            )
        })
    }

    /// One key by fingerprint.
    pub fn get_key(&self, fingerprint: &str) -> StoreResult<Option<KeyRecord>> {
        self.read(|tx| get_key(tx, fingerprint))
    }

    /// Keys, optionally only one status, newest first.
    pub fn list_keys(&self, status: Option<KeyStatus>) -> StoreResult<Vec<KeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM keys WHERE CAST(?1 AS TEXT) IS NULL OR status = ?1 \
             ORDER BY submitted_at DESC, fingerprint COLLATE \"C\""
        );
        self.read(|tx| tx.all(&sql, vals![status.map(KeyStatus::as_str)], key_row))
    }

    /// Approve or revoke. Approving a revoked key is refused (`Conflict`).
    pub fn set_key_status(
        &self,
        fingerprint: &str,
        status: KeyStatus,
        actor: &Actor,
    ) -> StoreResult<KeyRecord> {
        let missing = || RegistryError::NotFound(format!("no key {fingerprint}"));
        self.admin(|tx| {
            let key = get_key(tx, fingerprint)?.ok_or_else(missing)?;
            if key.status == status {
                return Ok(key);
            }
            let now = now();
            let kind = checks::transition(fingerprint, key.status, status)?;
            let sql = if status == KeyStatus::Approved {
                "UPDATE keys SET status = 'approved', approved_by = ?1, approved_at = ?2 \
                 WHERE fingerprint = ?3"
            } else {
                "UPDATE keys SET status = 'revoked', revoked_by = ?1, revoked_at = ?2 \
                 WHERE fingerprint = ?3"
            };
            tx.execute(sql, vals![actor.to_string(), now, fingerprint])?;
            let mut e = event(kind, actor, Some(&key.user), Some(fingerprint));
            e.detail = serde_json::json!({ "from": key.status.as_str() });
            admin_change(tx, now, e)?;
            get_key(tx, fingerprint)?.ok_or_else(missing)
        })
    }

    /// Add a validated rule. `NotFound` for an unknown user; `Conflict` for a
    /// duplicate name or local port of that user.
    pub fn add_rule(&self, rule: RuleRecord, actor: &Actor) -> StoreResult<RuleRecord> {
        let rule = validate::rule(
            &rule.user,
            &rule.name,
            i64::from(rule.local_port),
            &rule.target_host,
            i64::from(rule.target_port),
        )?;
        self.admin(|tx| {
            if get_user(tx, &rule.user)?.is_none() {
                return Err(no_user(&rule.user));
            }
            let sql = "SELECT name, local_port FROM rules \
                       WHERE user = ?1 AND (name = ?2 OR local_port = ?3) LIMIT 1";
            let p = vals![&rule.user, &rule.name, rule.local_port];
            let clash = tx.one(sql, p, |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)))?;
            if let Some((name, port)) = clash {
                return Err(RegistryError::Conflict(if name == rule.name {
                    format!("user {} already has a rule named {name}", rule.user)
                } else {
                    format!(
                        "user {} already uses local port {port} (rule {name})",
                        rule.user
                    )
                }));
            }
            let now = now();
            tx.execute(
                "INSERT INTO rules (user, name, local_port, target_host, target_port, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                vals![
                    &rule.user,
                    &rule.name,
                    rule.local_port,
                    &rule.target_host,
                    rule.target_port,
                    now
                ],
            )?;
            let mut e = event("rule.add", actor, Some(&rule.user), None);
            e.detail = rule_detail(&rule);
            admin_change(tx, now, e)?;
            Ok(rule)
        })
    }

    /// Rules, optionally of one user, by user then local port.
    pub fn list_rules(&self, user: Option<&str>) -> StoreResult<Vec<RuleRecord>> {
        let sql = format!(
            "SELECT {RULE_COLS} FROM rules WHERE CAST(?1 AS TEXT) IS NULL OR user = ?1 \
             ORDER BY user COLLATE \"C\", local_port"
        );
        self.read(|tx| tx.all(&sql, vals![user], rule_row))
    }

    /// Remove a rule. `NotFound` if missing.
    pub fn remove_rule(&self, user: &str, name: &str, actor: &Actor) -> StoreResult<()> {
        self.admin(|tx| {
            let sql =
                format!("DELETE FROM rules WHERE user = ?1 AND name = ?2 RETURNING {RULE_COLS}");
            let Some(rule) = tx.one(&sql, vals![user, name], rule_row)? else {
                return Err(RegistryError::NotFound(format!(
                    "user {user} has no rule named {name}"
                )));
            };
            let mut e = event("rule.remove", actor, Some(user), None);
            e.detail = rule_detail(&rule);
            admin_change(tx, now(), e)
        })
    }

    /// Store a token's hash under a unique name, valid until `expires_at`
    /// (`None`: until revoked). Audited (`token.create`).
    pub fn add_token(
        &self,
        name: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        actor: &Actor,
    ) -> StoreResult<TokenRecord> {
        validate::token_name(name)?;
        checks::hash("token hash", token_hash)?;
        self.admin(|tx| {
            let exists: bool = tx.value(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)",
                vals![name],
            )?;
            if exists {
                return Err(RegistryError::Conflict(format!(
                    "a token named {name} already exists"
                )));
            }
            let now = now();
            tx.execute(
                "INSERT INTO tokens (name, token_hash, created_at, created_by, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                vals![name, token_hash, now, actor.to_string(), expires_at],
            )?;
            let mut e = event("token.create", actor, None, None);
            // Its name and expiry, never its hash.
            e.detail = match expires_at {
                Some(at) => serde_json::json!({ "token": name, "expires_at": at }),
                None => serde_json::json!({ "token": name }),
            };
            admin_change(tx, now, e)?;
            Ok(TokenRecord {
                name: name.to_string(),
                created_at: now,
                last_used: None,
                expires_at,
            })
        })
    }

    /// Find the valid (not expired) token with this hash and mark it used.
    pub fn use_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!(
            "UPDATE tokens SET last_used = ?1 WHERE token_hash = ?2 \
             AND (expires_at IS NULL OR expires_at > ?1) RETURNING {TOKEN_COLS}"
        );
        self.write(|tx| tx.one(&sql, vals![now(), token_hash], token_row))
    }

    /// Every token (expired ones too), by name; never their hashes.
    pub fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY name COLLATE \"C\"");
        self.read(|tx| tx.all(&sql, &[], token_row))
    }

    /// Withdraw a token for good: the next request with it (API or a web
    /// session signed in with it) is refused. Audited (`token.revoke`).
    /// `NotFound` if there is no token of that name.
    pub fn revoke_token(&self, name: &str, actor: &Actor) -> StoreResult<TokenRecord> {
        let sql = format!("DELETE FROM tokens WHERE name = ?1 RETURNING {TOKEN_COLS}");
        self.admin(|tx| {
            let token = tx
                .one(&sql, vals![name], token_row)?
                .ok_or_else(|| RegistryError::NotFound(format!("no token named {name}")))?;
            let mut e = event("token.revoke", actor, None, None);
            e.detail = serde_json::json!({ "token": name });
            admin_change(tx, now(), e)?;
            Ok(token)
        })
    }

    /// Store an invite for an existing user (`NotFound` otherwise). Audited
    /// (`invite.create`; the detail names the id, expiry and `approve`).
    pub fn add_invite(&self, invite: &NewInvite, actor: &Actor) -> StoreResult<InviteRecord> {
        checks::invite(invite)?;
        self.admin(|tx| {
            if get_user(tx, &invite.user)?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "no user named {} (add it first: `pra-registry user add {}`)",
                    invite.user, invite.user
                )));
            }
            if get_invite(tx, &invite.id)?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "an invite with id {} already exists",
                    invite.id
                )));
            }
            let now = now();
            let gateways = serde_json::to_string(&invite.gateways)
                .map_err(|e| RegistryError::Database(e.to_string()))?;
            tx.execute(
                "INSERT INTO invites (id, user, secret_hash, gateways, approve, created_at, \
                 created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                vals![
                    &invite.id,
                    &invite.user,
                    &invite.secret_hash,
                    gateways,
                    invite.approve,
                    now,
                    actor.to_string(),
                    invite.expires_at
                ],
            )?;
            let mut e = event("invite.create", actor, Some(&invite.user), None);
            // Never its secret or hash.
            e.detail = serde_json::json!({
                "invite": invite.id,
                "expires_at": invite.expires_at,
                "approve": invite.approve,
                "gateways": invite.gateways,
            });
            admin_change(tx, now, e)?;
            get_invite(tx, &invite.id)?
                .ok_or_else(|| RegistryError::Database("the new invite vanished".into()))
        })
    }

    /// Every invite (used, revoked and expired ones too), newest first.
    pub fn list_invites(&self) -> StoreResult<Vec<InviteRecord>> {
        let sql =
            format!("SELECT {INVITE_COLS} FROM invites ORDER BY created_at DESC, id COLLATE \"C\"");
        self.read(|tx| tx.all(&sql, &[], invite_row))
    }

    /// Withdraw an invite: it is refused from now on. Audited
    /// (`invite.revoke`). `NotFound` if there is no such invite,
    /// `Conflict` if it was used or revoked already.
    pub fn revoke_invite(&self, id: &str, actor: &Actor) -> StoreResult<InviteRecord> {
        checks::invite_id(id)?;
        self.admin(|tx| {
            let invite = get_invite(tx, id)?
                .ok_or_else(|| RegistryError::NotFound(format!("no invite with id {id}")))?;
            checks::revocable(&invite)?;
            let now = now();
            tx.execute(
                "UPDATE invites SET revoked_at = ?1 WHERE id = ?2",
                vals![now, id],
            )?;
            let mut e = event("invite.revoke", actor, Some(&invite.user), None);
            e.detail = serde_json::json!({ "invite": id });
            admin_change(tx, now, e)?;
            Ok(InviteRecord {
                revoked_at: Some(now),
                ..invite
            })
        })
    }

    /// Use an invite: when `id` names an invite whose secret hashes to
    /// `secret_hash` and that is neither used, revoked nor expired, store
    /// `key` for the invite's user (approved if the invite says so,
    /// otherwise pending; `key.user` and `key.status` are ignored) and mark
    /// the invite used, in one transaction (audited `key.enroll`). Any
    /// refusal stores nothing. `Conflict` if the key is already registered.
    pub fn redeem_invite(
        &self,
        id: &str,
        secret_hash: &str,
        key: NewKey,
        actor: &Actor,
    ) -> StoreResult<Result<KeyRecord, InviteRefusal>> {
        if checks::invite_id(id).is_err() {
            return Ok(Err(InviteRefusal::Unknown));
        }
        self.admin(|tx| {
            let now = now();
            let sql = format!("SELECT {INVITE_COLS}, secret_hash FROM invites WHERE id = ?1");
            let found = tx.one(&sql, vals![id], |r| Ok((invite_row(r)?, r.get(10)?)))?;
            let invite = match checks::redeemable(found, secret_hash, now) {
                Ok(invite) => invite,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let key = NewKey {
                user: invite.user.clone(),
                status: if invite.approve {
                    KeyStatus::Approved
                } else {
                    KeyStatus::Pending
                },
                ..key
            };
            let (valid, device) = checks::new_key(&key)?;
            if get_key(tx, &key.fingerprint)?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "key {} is already registered",
                    key.fingerprint
                )));
            }
            let record = insert_key(tx, &key, &valid.line, &device, actor, now, "key.enroll")?;
            tx.execute(
                "UPDATE invites SET used_at = ?1, used_fingerprint = ?2 WHERE id = ?3",
                vals![now, &key.fingerprint, id],
            )?;
            Ok(Ok(record))
        })
    }

    /// Facts for a login decision (key by fingerprint, user by name).
    pub fn login_facts(&self, user: &str, fingerprint: &str) -> StoreResult<LoginFacts> {
        self.read(|tx| login_facts(tx, user, fingerprint))
    }

    /// [`Store::revision`] then [`Store::login_facts`], in one read: what
    /// a gateway looks up per login (one store call instead of two).
    pub fn login_lookup(&self, user: &str, fingerprint: &str) -> StoreResult<(i64, LoginFacts)> {
        self.read(|tx| {
            Ok((
                tx.value(REVISION, &[])?,
                login_facts(tx, user, fingerprint)?,
            ))
        })
    }

    /// Fingerprints of keys that may log in right now, with their user:
    /// approved keys of enabled users.
    pub fn allowed_keys(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|tx| {
            tx.all(
                "SELECT k.fingerprint, k.user FROM keys k JOIN users u ON u.name = k.user \
                 WHERE k.status = 'approved' AND u.enabled \
                 ORDER BY k.user COLLATE \"C\", k.fingerprint COLLATE \"C\"",
                &[],
                pair,
            )
        })
    }

    /// A counter that grows with every change that affects logins or rules
    /// (and with every disconnect request).
    pub fn revision(&self) -> StoreResult<i64> {
        self.read(|tx| tx.value(REVISION, &[]))
    }

    /// Follow the revision without asking: the receiver is updated when it
    /// moves (PostgreSQL: at once, by `NOTIFY`; SQLite: within 250 ms), and
    /// at least every few seconds with [`Change::confirmed`] refreshed, or
    /// [`Change::error`] set while the database does not answer.
    pub fn subscribe(&self) -> watch::Receiver<Change> {
        self.0.subscribe()
    }

    /// Register a session that just logged in; returns its id.
    pub fn session_open(&self, s: &NewSession) -> StoreResult<i64> {
        self.write(|tx| insert_session(tx, s))
    }

    /// Write byte counts and mark the sessions alive at `at` (one call for
    /// all of a gateway's sessions). Unknown or ended ids are ignored.
    pub fn session_progress(&self, at: Timestamp, updates: &[SessionProgress]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for u in updates {
                tx.execute(
                    "UPDATE sessions SET bytes_up = ?1, bytes_down = ?2, heartbeat_at = ?3 \
                     WHERE id = ?4 AND ended_at IS NULL",
                    vals![u.bytes_up, u.bytes_down, at, u.id],
                )?;
            }
            Ok(())
        })
    }

    /// A session ended: final counts and the reason. Ending an ended
    /// session changes nothing.
    pub fn session_close(
        &self,
        p: SessionProgress,
        at: Timestamp,
        reason: &str,
    ) -> StoreResult<()> {
        self.write(|tx| close_session(tx, p, at, reason))
    }

    /// Sessions not ended whose gateway reported them within
    /// [`SESSION_STALE_SECS`], oldest first.
    pub fn list_live_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions \
             WHERE ended_at IS NULL AND heartbeat_at >= ?1 ORDER BY started_at, id"
        );
        self.read(|tx| tx.all(&sql, vals![now() - SESSION_STALE_SECS], session_row))
    }

    /// One session, live or ended.
    pub fn get_session(&self, id: i64) -> StoreResult<Option<SessionRecord>> {
        self.read(|tx| get_session(tx, id))
    }

    /// Ask the session's gateway to disconnect it: audited
    /// (`session.disconnect`) and a revision bump, so every gateway looks.
    /// `NotFound` unless the session is live.
    pub fn request_disconnect(&self, id: i64, actor: &Actor) -> StoreResult<SessionRecord> {
        let missing = || RegistryError::NotFound(format!("no live session {id}"));
        self.admin(|tx| {
            let now = now();
            let session = get_session(tx, id)?
                .filter(|s| s.ended_at.is_none() && s.heartbeat_at >= now - SESSION_STALE_SECS)
                .ok_or_else(missing)?;
            if session.disconnect_requested_at.is_some() {
                return Ok(session);
            }
            tx.execute(
                "UPDATE sessions SET disconnect_requested_by = ?1, disconnect_requested_at = ?2 \
                 WHERE id = ?3",
                vals![actor.to_string(), now, id],
            )?;
            let mut e = event(
                "session.disconnect",
                actor,
                Some(&session.user),
                Some(&session.fingerprint),
            );
            e.source = Some(session.source.clone());
            e.detail = serde_json::json!({ "session": id, "gateway": session.gateway });
            admin_change(tx, now, e)?;
            get_session(tx, id)?.ok_or_else(missing)
        })
    }

    /// Ids of `gateway`'s open sessions whose disconnect was requested.
    pub fn disconnect_requests(&self, gateway: &str) -> StoreResult<Vec<i64>> {
        self.read(|tx| {
            tx.all(
                "SELECT id FROM sessions WHERE gateway = ?1 AND ended_at IS NULL \
                 AND disconnect_requested_at IS NOT NULL ORDER BY id",
                vals![gateway],
                |r| r.get(0),
            )
        })
    }

    /// A gateway (re)starts: its sessions still open from an earlier run
    /// are marked ended with `reason`; old ended sessions are pruned.
    /// Returns how many were ended.
    pub fn end_gateway_sessions(
        &self,
        gateway: &str,
        at: Timestamp,
        reason: &str,
    ) -> StoreResult<u64> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE sessions SET ended_at = ?1, end_reason = ?2 \
                 WHERE gateway = ?3 AND ended_at IS NULL",
                vals![at, reason, gateway],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1",
                vals![at - SESSION_KEEP_SECS],
            )?;
            Ok(n)
        })
    }

    /// Store a new session. First the sessions that have ended go (last
    /// seen at or before `seen_before`, or signed in at or before
    /// `created_before`), then, while `keep` or more remain, the least
    /// recently used ones.
    pub fn web_session_add(
        &self,
        s: &WebSession,
        seen_before: i64,
        created_before: i64,
        keep: usize,
    ) -> StoreResult<()> {
        checks::hash("session id hash", &s.id_hash)?;
        self.write(|tx| {
            tx.execute(
                "DELETE FROM web_sessions WHERE last_seen_ms <= ?1 OR created_ms <= ?2",
                vals![seen_before, created_before],
            )?;
            let held: i64 = tx.value("SELECT count(*) FROM web_sessions", &[])?;
            let over = held + 1 - i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
            if over > 0 {
                tx.execute(
                    "DELETE FROM web_sessions WHERE id_hash IN (SELECT id_hash FROM web_sessions \
                     ORDER BY last_seen_ms, id_hash LIMIT ?1)",
                    vals![over],
                )?;
            }
            let (error, text) = s.flash.clone().unzip();
            tx.execute(
                &format!("INSERT INTO web_sessions ({WEB_SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                vals![&s.id_hash, &s.token_name, &s.token_hash, &s.csrf, s.secure, s.created_ms, s.last_seen_ms, error, text],
            )?;
            Ok(())
        })
    }

    /// The session stored under this id hash.
    pub fn web_session(&self, id_hash: &str) -> StoreResult<Option<WebSession>> {
        let sql = format!("SELECT {WEB_SESSION_COLS} FROM web_sessions WHERE id_hash = ?1");
        self.read(|tx| tx.one(&sql, vals![id_hash], web_session_row))
    }

    /// Mark a session used at `at_ms`.
    pub fn web_session_seen(&self, id_hash: &str, at_ms: i64) -> StoreResult<()> {
        self.write(|tx| {
            let sql = "UPDATE web_sessions SET last_seen_ms = ?1 WHERE id_hash = ?2";
            tx.execute(sql, vals![at_ms, id_hash]).map(drop)
        })
    }

    /// Replace the session's one-time message (`None`: clear it); returns
    /// the one it had.
    pub fn web_session_flash(
        &self,
        id_hash: &str,
        flash: Option<(bool, String)>,
    ) -> StoreResult<Option<(bool, String)>> {
        self.write(|tx| {
            let sql = "SELECT flash_error, flash_text FROM web_sessions WHERE id_hash = ?1";
            let old = tx.one(sql, vals![id_hash], |r| flash_of(r, 0))?.flatten();
            let (error, text) = flash.unzip();
            tx.execute(
                "UPDATE web_sessions SET flash_error = ?1, flash_text = ?2 WHERE id_hash = ?3",
                vals![error, text, id_hash],
            )?;
            Ok(old)
        })
    }

    /// Delete a session (sign-out, or it ended); whether there was one.
    pub fn web_session_remove(&self, id_hash: &str) -> StoreResult<bool> {
        let sql = "DELETE FROM web_sessions WHERE id_hash = ?1";
        self.write(|tx| Ok(tx.execute(sql, vals![id_hash])? > 0))
    }

    /// Append an event (gateway events; admin changes record their own).
    pub fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        self.write(|tx| insert_audit(tx, now(), event))
    }

    /// Write a gateway's grouped background writes (audit events, last
    /// logins, live sessions opened and closed) in one transaction: all or
    /// nothing. Returns the ids of `writes.opened`, in order. An invalid
    /// event or session fails the whole group (the gateway checks them
    /// before).
    pub fn record_background(&self, writes: &BackgroundWrites) -> StoreResult<Vec<i64>> {
        self.write(|tx| {
            let mut ids = Vec::with_capacity(writes.opened.len());
            for s in &writes.opened {
                ids.push(insert_session(tx, s)?);
            }
            for (p, at, reason) in &writes.closed {
                close_session(tx, *p, *at, reason)?;
            }
            for e in &writes.events {
                insert_audit(tx, now(), e)?;
            }
            for (fingerprint, at) in &writes.last_seen {
                tx.execute(
                    "UPDATE keys SET last_seen = ?1 \
                     WHERE fingerprint = ?2 AND (last_seen IS NULL OR last_seen < ?1)",
                    vals![*at, fingerprint],
                )?;
            }
            Ok(ids)
        })
    }

    /// Delete at most `batch` events older than `before` (oldest first) in
    /// one short transaction; returns how many went. Retention calls it
    /// repeatedly, so no single call holds the database for long.
    pub fn prune_audit(&self, before: Timestamp, batch: u32) -> StoreResult<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM audit WHERE id IN \
                 (SELECT id FROM audit WHERE at < ?1 ORDER BY at, id LIMIT ?2)",
                vals![before, batch],
            )
        })
    }

    /// Read events, newest first.
    pub fn audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = match q.limit {
            0 => AUDIT_DEFAULT_LIMIT,
            n => n.min(AUDIT_MAX_LIMIT),
        };
        self.read(|tx| {
            tx.all(
                "SELECT id, at, kind, actor, user, fingerprint, source, detail FROM audit \
                 WHERE (CAST(?1 AS TEXT) IS NULL OR user = ?1) \
                   AND (CAST(?2 AS TEXT) IS NULL OR substr(kind, 1, length(?2)) = ?2) \
                   AND (CAST(?3 AS BIGINT) IS NULL OR id < ?3) \
                 ORDER BY id DESC LIMIT ?4",
                vals![
                    q.user.as_deref(),
                    q.kind_prefix.as_deref(),
                    q.before_id,
                    limit
                ],
                audit_row,
            )
        })
    }
}
