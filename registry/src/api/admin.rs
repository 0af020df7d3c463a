//! Admin endpoints under `/api/v1/admin/…`, each behind [`Admin`] (a bearer
//! token). Changes are made as actor `token:NAME`.
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | `/keys` | `?status=pending\|approved\|revoked` | `{"keys": [KeyRecord]}` |
//! | POST | `/keys/approve` | `{"fingerprint": "SHA256:…"}` | `KeyRecord` |
//! | POST | `/keys/revoke` | `{"fingerprint": "SHA256:…"}` | `KeyRecord` |
//! | GET | `/users` | | `{"users": [User]}` |
//! | POST | `/users` | `{"name": "alice"}` | `201 User` |
//! | POST | `/users/{name}/enable`, `/users/{name}/disable` | | `User` |
//! | GET | `/rules` | `?user=alice` | `{"rules": [RuleRecord]}` |
//! | POST | `/rules` | `{"user","name","local_port","target_host","target_port"}` | `201 RuleRecord` |
//! | DELETE | `/rules/{user}/{name}` | | `204` |
//! | GET | `/audit` | `?user=&kind=&limit=&before=` | `{"events": [AuditEntry]}` |
//! | GET | `/sessions` | | `{"sessions": [SessionRecord]}` (live, every gateway) |
//! | POST | `/sessions/disconnect` | `{"id": 42}` | `SessionRecord` (its gateway ends it within seconds) |
//! | GET | `/tokens` | | `{"tokens": [TokenRecord]}` (never the secrets) |
//! | POST | `/tokens/revoke` | `{"name": "ci"}` | `TokenRecord` (refused from the next request on) |

use super::AppState;
use super::error::ApiFailure;
use super::extract::{Admin, ApiPath, ApiQuery, JsonBody};
use crate::blocking::blocking;
use crate::model::{
    Actor, AuditEntry, AuditQuery, KeyRecord, RuleRecord, SessionRecord, TokenRecord, User,
};
use crate::validate;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use pra_proto::api::KeyStatus;
use serde::{Deserialize, Serialize};

/// The admin router (to be nested under `/api/v1/admin`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list_keys))
        .route("/keys/approve", post(approve_key))
        .route("/keys/revoke", post(revoke_key))
        .route("/users", get(list_users).post(add_user))
        .route("/users/{name}/enable", post(enable_user))
        .route("/users/{name}/disable", post(disable_user))
        .route("/rules", get(list_rules).post(add_rule))
        .route("/rules/{user}/{name}", delete(remove_rule))
        .route("/audit", get(audit))
        .route("/sessions", get(list_sessions))
        .route("/sessions/disconnect", post(disconnect_session))
        .route("/tokens", get(list_tokens))
        .route("/tokens/revoke", post(revoke_token))
}

fn actor(token: &TokenRecord) -> Actor {
    Actor::Token(token.name.clone())
}

/// `{"keys": [...]}`: also what `pra-registry key list --json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyList {
    /// The keys, newest first.
    pub keys: Vec<KeyRecord>,
}

/// `{"users": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserList {
    /// The users, by name.
    pub users: Vec<User>,
}

/// `{"rules": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RuleList {
    /// The rules, by user then local port.
    pub rules: Vec<RuleRecord>,
}

/// `{"events": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditList {
    /// The events, newest first.
    pub events: Vec<AuditEntry>,
}

/// `{"sessions": [...]}`: also what `pra-registry session list --json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionList {
    /// Live sessions of every gateway, oldest first.
    pub sessions: Vec<SessionRecord>,
}

/// `{"tokens": [...]}`: also what `pra-registry token list --json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenList {
    /// The admin tokens, by name (no secrets, no hashes).
    pub tokens: Vec<TokenRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysQuery {
    status: Option<String>,
}

/// Parse a `?status=` / `--status` value.
pub fn parse_status(s: &str) -> Result<KeyStatus, ApiFailure> {
    KeyStatus::parse(s)
        .ok_or_else(|| ApiFailure::invalid("status must be one of pending, approved, revoked"))
}

async fn list_keys(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> Result<Json<KeyList>, ApiFailure> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let keys = blocking(&app.store, move |s| s.list_keys(status)).await?;
    Ok(Json(KeyList { keys }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintBody {
    fingerprint: String,
}

async fn set_status(
    app: AppState,
    admin: Admin,
    body: FingerprintBody,
    status: KeyStatus,
) -> Result<Json<KeyRecord>, ApiFailure> {
    let fp = validate::fingerprint(&body.fingerprint)?.to_string();
    let actor = actor(&admin.0);
    let key = blocking(&app.store, move |s| s.set_key_status(&fp, status, &actor)).await?;
    tracing::info!(fingerprint = %key.fingerprint, status = %key.status, token = %admin.0.name, "key status set");
    Ok(Json(key))
}

async fn approve_key(
    State(app): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<FingerprintBody>,
) -> Result<Json<KeyRecord>, ApiFailure> {
    set_status(app, admin, body, KeyStatus::Approved).await
}

async fn revoke_key(
    State(app): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<FingerprintBody>,
) -> Result<Json<KeyRecord>, ApiFailure> {
    set_status(app, admin, body, KeyStatus::Revoked).await
}

async fn list_users(
    State(app): State<AppState>,
    _admin: Admin,
) -> Result<Json<UserList>, ApiFailure> {
    let users = blocking(&app.store, |s| s.list_users()).await?;
    Ok(Json(UserList { users }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
}

async fn add_user(
    State(app): State<AppState>,
    Admin(token): Admin,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<User>), ApiFailure> {
    validate::user_name(&body.name)?;
    let actor = actor(&token);
    let user = blocking(&app.store, move |s| s.add_user(&body.name, &actor)).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn set_enabled(
    app: AppState,
    token: TokenRecord,
    name: String,
    enabled: bool,
) -> Result<Json<User>, ApiFailure> {
    validate::user_name(&name)?;
    let actor = actor(&token);
    let user = blocking(&app.store, move |s| {
        s.set_user_enabled(&name, enabled, &actor)
    })
    .await?;
    Ok(Json(user))
}

async fn enable_user(
    State(app): State<AppState>,
    Admin(token): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<User>, ApiFailure> {
    set_enabled(app, token, name, true).await
}

async fn disable_user(
    State(app): State<AppState>,
    Admin(token): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<User>, ApiFailure> {
    set_enabled(app, token, name, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesQuery {
    user: Option<String>,
}

async fn list_rules(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<RulesQuery>,
) -> Result<Json<RuleList>, ApiFailure> {
    let rules = blocking(&app.store, move |s| s.list_rules(q.user.as_deref())).await?;
    Ok(Json(RuleList { rules }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRuleBody {
    user: String,
    name: String,
    // Wide integers so that 0, 70000 or -1 are answered `invalid_field`
    // naming the port, not a generic JSON error.
    local_port: i64,
    target_host: String,
    target_port: i64,
}

async fn add_rule(
    State(app): State<AppState>,
    Admin(token): Admin,
    JsonBody(b): JsonBody<NewRuleBody>,
) -> Result<(StatusCode, Json<RuleRecord>), ApiFailure> {
    let rule = validate::rule(
        &b.user,
        &b.name,
        b.local_port,
        &b.target_host,
        b.target_port,
    )?;
    let actor = actor(&token);
    let rule = blocking(&app.store, move |s| s.add_rule(rule, &actor)).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

async fn remove_rule(
    State(app): State<AppState>,
    Admin(token): Admin,
    ApiPath((user, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiFailure> {
    let actor = actor(&token);
    blocking(&app.store, move |s| s.remove_rule(&user, &name, &actor)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    user: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
    before: Option<i64>,
}

async fn audit(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<AuditList>, ApiFailure> {
    let query = AuditQuery {
        user: p.user,
        kind_prefix: p.kind,
        before_id: p.before,
        limit: p.limit.unwrap_or(0),
    };
    let events = blocking(&app.store, move |s| s.audit(&query)).await?;
    Ok(Json(AuditList { events }))
}

async fn list_sessions(
    State(app): State<AppState>,
    _admin: Admin,
) -> Result<Json<SessionList>, ApiFailure> {
    let sessions = blocking(&app.store, |s| s.list_live_sessions()).await?;
    Ok(Json(SessionList { sessions }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionIdBody {
    id: i64,
}

async fn disconnect_session(
    State(app): State<AppState>,
    Admin(token): Admin,
    JsonBody(body): JsonBody<SessionIdBody>,
) -> Result<Json<SessionRecord>, ApiFailure> {
    let actor = actor(&token);
    let id = body.id;
    let session = blocking(&app.store, move |s| s.request_disconnect(id, &actor)).await?;
    tracing::info!(session = id, user = %session.user, gateway = %session.gateway, token = %token.name, "session disconnect requested");
    Ok(Json(session))
}

async fn list_tokens(
    State(app): State<AppState>,
    _admin: Admin,
) -> Result<Json<TokenList>, ApiFailure> {
    let tokens = blocking(&app.store, |s| s.list_tokens()).await?;
    Ok(Json(TokenList { tokens }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenNameBody {
    name: String,
}

async fn revoke_token(
    State(app): State<AppState>,
    Admin(token): Admin,
    JsonBody(body): JsonBody<TokenNameBody>,
) -> Result<Json<TokenRecord>, ApiFailure> {
    validate::token_name(&body.name)?;
    let actor = actor(&token);
    let revoked = blocking(&app.store, move |s| s.revoke_token(&body.name, &actor)).await?;
    tracing::info!(revoked = %revoked.name, token = %token.name, "admin token revoked");
    Ok(Json(revoked))
}
