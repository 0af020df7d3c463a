//! Handlers of the admin page: pages (GET, read only) and actions (POST,
//! CSRF-checked, answered `303 See Other` with a one-time message, or the
//! form again with messages next to its fields; a new invite is answered
//! with the page itself, its string shown that once).

use super::WebState;
use super::dup;
use super::form::{Act, Admin, FormData, PageQuery, Peer, see_other};
use super::guard::{self, CookieScheme};
use super::session::{Flash, random_token};
use super::view::{
    self, Ctx, FieldErrors, Html, InviteForm, InvitesView, RuleForm, Tab, UserForm, UserRow,
};
use crate::blocking::blocking;
use crate::error::RegistryError;
use crate::invite::{self, InviteRequest};
use crate::model::{Actor, AuditEntry, AuditEvent, AuditQuery, KeyRecord, RuleRecord, now};
use crate::store::{Store, StoreResult};
use crate::token::token_hash;
use crate::validate;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use pra_proto::api::KeyStatus;
use pra_proto::invite::Invite;
use serde::Deserialize;

/// The stylesheet, compiled in.
pub const CSS: &str = include_str!("static/admin.css");

/// Rows of the audit log per page.
pub const AUDIT_PAGE: u32 = 50;
/// Audit entries examined per page at most when searching text.
pub const AUDIT_SCAN: usize = 5000;

/// A page that failed: 500 without details (they go to the log), or the
/// refusal's own status and message.
fn failed(e: RegistryError) -> Response {
    let (status, text) = match &e {
        RegistryError::Invalid { .. } => (StatusCode::BAD_REQUEST, e.to_string()),
        RegistryError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        RegistryError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        _ => {
            tracing::error!(err = %e, "admin page: store failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The registry failed internally; nothing was changed. The registry's log says why."
                    .to_string(),
            )
        }
    };
    view::error_page(status, "Something went wrong", &text).into_response()
}

/// A refusal or failure as a one-line message for the next page.
fn message(e: &RegistryError) -> String {
    match e {
        RegistryError::Invalid { reason, field, .. } => format!("Invalid {field}: {reason}"),
        RegistryError::Conflict(m) | RegistryError::NotFound(m) => m.clone(),
        _ => {
            tracing::error!(err = %e, "admin page: store failed");
            "The registry failed internally; nothing was changed. The registry's log says why."
                .to_string()
        }
    }
}

/// The reason of a validation error, for a message next to its field.
fn reason(e: &RegistryError) -> String {
    match e {
        RegistryError::Invalid { reason, .. } => reason.clone(),
        other => message(other),
    }
}

/// This page's path with its query: where its actions return to.
fn here(path: &str, uri: &Uri) -> String {
    match uri.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// What every signed-in page needs around its content.
struct Frame {
    flash: Option<Flash>,
    pending: usize,
    back: String,
    now: i64,
}

impl Frame {
    async fn load(state: &WebState, admin: &Admin, back: String) -> Result<Frame, Response> {
        let pending = blocking(&state.store, |s| s.list_keys(Some(KeyStatus::Pending)))
            .await
            .map_err(failed)?
            .len();
        Ok(Frame {
            flash: admin.take_flash(state),
            pending,
            back,
            now: now(),
        })
    }

    fn ctx<'a>(&'a self, admin: &'a Admin, tab: Tab) -> Ctx<'a> {
        Ctx {
            who: &admin.session.token_name,
            csrf: &admin.session.csrf,
            tab,
            flash: self.flash.as_ref(),
            pending: self.pending,
            now: self.now,
            back: &self.back,
        }
    }
}

// --- sign-in ----------------------------------------------------------------

fn set_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The sign-in form with a fresh double-submit token (cookie + hidden field).
fn login_page(scheme: CookieScheme, message: Option<Flash>, status: StatusCode) -> Response {
    let Ok(token) = random_token(24) else {
        return failed(RegistryError::Database(
            "the system random generator failed".into(),
        ));
    };
    let mut resp = view::login(&token, message.as_ref(), status).into_response();
    set_cookie(
        &mut resp,
        &scheme.set_cookie(scheme.login_name(), &token, "/admin/login", Some(3600)),
    );
    resp
}

/// `GET /admin/login`.
pub async fn login_form(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let message = match q.as_deref() {
        Some("m=ended") => Some(Flash::error(
            "Your session has ended (signed out elsewhere, idle too long, or the registry restarted). Sign in again.",
        )),
        Some("m=out") => Some(Flash::ok("Signed out.")),
        _ => None,
    };
    login_page(CookieScheme::of(&headers), message, StatusCode::OK)
}

fn login_event(kind: &str, actor: String, peer: &Peer, detail: serde_json::Value) -> AuditEvent {
    AuditEvent {
        kind: kind.to_string(),
        actor,
        user: None,
        fingerprint: None,
        source: peer.0.map(|p| p.to_string()),
        detail,
    }
}

/// `POST /admin/login`: rate limit, the form's double-submit token, then
/// the admin token.
pub async fn login(
    State(state): State<WebState>,
    peer: Peer,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let scheme = CookieScheme::of(&headers);
    let ip = peer
        .0
        .map(|p| p.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    if !state.login_limiter.allow(ip, state.now()) {
        tracing::warn!(%ip, "admin page: sign-in rate limited");
        let mut resp = login_page(
            scheme,
            Some(Flash::error(
                "Too many sign-in attempts from this address. Wait a minute and try again.",
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return resp;
    }
    let cookie = guard::cookie(&headers, scheme.login_name()).unwrap_or("");
    if cookie.is_empty() || !guard::same(cookie, form.get("csrf")) {
        return login_page(
            scheme,
            Some(Flash::error(
                "The sign-in form had expired or did not come from this page. Try again.",
            )),
            StatusCode::FORBIDDEN,
        );
    }
    let token = form.get("token").trim();
    let well_formed =
        !token.is_empty() && token.len() <= 512 && token.bytes().all(|b| b.is_ascii_graphic());
    let hash = token_hash(token);
    let record = if well_formed {
        match blocking(&state.store, move |s| s.use_token(&hash)).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        }
    } else {
        None
    };
    let Some(record) = record else {
        tracing::warn!(%ip, "admin page: sign-in with an unknown token refused");
        let event = login_event(
            "web.login.refused",
            "web:?".into(),
            &peer,
            serde_json::json!({"reason": "unknown token"}),
        );
        if let Err(e) = blocking(&state.store, move |s| s.record(&event)).await {
            return failed(e);
        }
        return login_page(
            scheme,
            Some(Flash::error(
                "That token is not valid. Check that it was copied whole, or create a new one with `pra-registry token create`.",
            )),
            StatusCode::UNAUTHORIZED,
        );
    };
    // A new sign-in in this browser replaces its old session.
    if let Some(old) = guard::cookie(&headers, scheme.session_name()) {
        state
            .sessions
            .remove(&super::session::SessionId::from_cookie(old));
    }
    let id =
        match state
            .sessions
            .create(&record.name, &token_hash(token), scheme.secure, state.now())
        {
            Ok(id) => id,
            Err(e) => return failed(RegistryError::Database(e.to_string())),
        };
    let event = login_event(
        "web.login",
        Actor::Web(record.name.clone()).to_string(),
        &peer,
        serde_json::json!({}),
    );
    if let Err(e) = blocking(&state.store, move |s| s.record(&event)).await {
        state.sessions.remove(&id);
        return failed(e);
    }
    tracing::info!(token = %record.name, %ip, "admin page: signed in");
    let mut resp = see_other("/admin");
    set_cookie(
        &mut resp,
        &scheme.set_cookie(scheme.session_name(), id.expose(), "/admin", None),
    );
    set_cookie(
        &mut resp,
        &scheme.set_cookie(scheme.login_name(), "", "/admin/login", Some(0)),
    );
    resp
}

/// `POST /admin/logout`.
pub async fn logout(State(state): State<WebState>, peer: Peer, act: Act) -> Response {
    let admin = &act.admin;
    state.sessions.remove(&admin.id);
    let event = login_event(
        "web.logout",
        admin.actor().to_string(),
        &peer,
        serde_json::json!({}),
    );
    if let Err(e) = blocking(&state.store, move |s| s.record(&event)).await {
        return failed(e);
    }
    let mut resp = see_other("/admin/login?m=out");
    set_cookie(
        &mut resp,
        &admin
            .scheme
            .set_cookie(admin.scheme.session_name(), "", "/admin", Some(0)),
    );
    resp
}

// --- keys -------------------------------------------------------------------

/// `GET /admin`: keys waiting for approval.
pub async fn pending(
    State(state): State<WebState>,
    admin: Admin,
    uri: Uri,
) -> Result<Html, Response> {
    let all = blocking(&state.store, |s| s.list_keys(None))
        .await
        .map_err(failed)?;
    let dups = dup::duplicates(&all);
    let waiting: Vec<KeyRecord> = all
        .into_iter()
        .filter(|k| k.status == KeyStatus::Pending)
        .collect();
    let mut frame = Frame::load(&state, &admin, here("/admin", &uri)).await?;
    frame.pending = waiting.len();
    Ok(view::pending(
        &frame.ctx(&admin, Tab::Pending),
        &waiting,
        &dups,
    ))
}

/// Filters of `GET /admin/keys`.
#[derive(Debug, Deserialize)]
pub struct KeysParams {
    status: Option<String>,
    user: Option<String>,
}

/// `GET /admin/keys?status=&user=`: all keys.
pub async fn keys(
    State(state): State<WebState>,
    admin: Admin,
    uri: Uri,
    PageQuery(p): PageQuery<KeysParams>,
) -> Result<Html, Response> {
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(KeyStatus::parse(s).ok_or_else(|| {
            view::error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "status must be one of pending, approved, revoked",
            )
            .into_response()
        })?),
    };
    let user = p.user.filter(|u| !u.is_empty());
    let (all, users) = blocking(&state.store, |s| Ok((s.list_keys(None)?, s.list_users()?)))
        .await
        .map_err(failed)?;
    let dups = dup::duplicates(&all);
    let shown: Vec<KeyRecord> = all
        .into_iter()
        .filter(|k| status.is_none_or(|s| k.status == s))
        .filter(|k| user.as_deref().is_none_or(|u| k.user == u))
        .collect();
    let frame = Frame::load(&state, &admin, here("/admin/keys", &uri)).await?;
    let filter = view::KeyFilter { status, user };
    Ok(view::keys(
        &frame.ctx(&admin, Tab::Keys),
        &shown,
        &filter,
        &users,
        &dups,
    ))
}

async fn set_key_status(state: WebState, act: Act, status: KeyStatus) -> Response {
    let back = act.back("/admin").to_string();
    let fp = match validate::fingerprint(act.form.get("fingerprint")) {
        Ok(fp) => fp.to_string(),
        Err(e) => {
            act.admin.flash(&state, Flash::error(message(&e)));
            return see_other(&back);
        }
    };
    let actor = act.admin.actor();
    let flash = match blocking(&state.store, move |s| s.set_key_status(&fp, status, &actor)).await {
        Ok(k) => {
            tracing::info!(fingerprint = %k.fingerprint, status = %k.status, token = %act.admin.session.token_name, "admin page: key status set");
            let verb = match (status, k.approved_at.is_some()) {
                (KeyStatus::Approved, _) => "approved",
                (KeyStatus::Revoked, false) => "rejected",
                _ => "revoked",
            };
            Flash::ok(format!("Key {} of {} {verb}.", k.fingerprint, k.user))
        }
        Err(e) => Flash::error(message(&e)),
    };
    act.admin.flash(&state, flash);
    see_other(&back)
}

/// `POST /admin/keys/approve` (`fingerprint`).
pub async fn approve_key(State(state): State<WebState>, act: Act) -> Response {
    set_key_status(state, act, KeyStatus::Approved).await
}

/// `POST /admin/keys/revoke` (`fingerprint`): Reject (pending) or Revoke.
pub async fn revoke_key(State(state): State<WebState>, act: Act) -> Response {
    set_key_status(state, act, KeyStatus::Revoked).await
}

// --- users ------------------------------------------------------------------

async fn users_page(
    state: &WebState,
    admin: &Admin,
    form: &UserForm,
    status: StatusCode,
) -> Result<Html, Response> {
    let (users, keys, rules) = blocking(&state.store, |s| {
        Ok((s.list_users()?, s.list_keys(None)?, s.list_rules(None)?))
    })
    .await
    .map_err(failed)?;
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|user| {
            let mine = keys.iter().filter(|k| k.user == user.name);
            let (mut p, mut a) = (0, 0);
            for k in mine {
                match k.status {
                    KeyStatus::Pending => p += 1,
                    KeyStatus::Approved => a += 1,
                    KeyStatus::Revoked => {}
                }
            }
            let rules = rules.iter().filter(|r| r.user == user.name).count();
            UserRow {
                user,
                keys: (p, a),
                rules,
            }
        })
        .collect();
    let frame = Frame::load(state, admin, "/admin/users".into()).await?;
    let mut page = view::users(&frame.ctx(admin, Tab::Users), &rows, form);
    page.0 = status;
    Ok(page)
}

/// `GET /admin/users`.
pub async fn users(State(state): State<WebState>, admin: Admin) -> Result<Html, Response> {
    users_page(&state, &admin, &UserForm::default(), StatusCode::OK).await
}

/// `POST /admin/users` (`name`): add an enabled user.
pub async fn add_user(State(state): State<WebState>, act: Act) -> Result<Response, Response> {
    let name = act.form.get("name").trim().to_string();
    let mut form = UserForm {
        name: name.clone(),
        errors: FieldErrors::default(),
    };
    if let Err(e) = validate::user_name(&name) {
        form.errors.add("name", reason(&e));
    } else {
        let actor = act.admin.actor();
        let n = name.clone();
        match blocking(&state.store, move |s| s.add_user(&n, &actor)).await {
            Ok(u) => {
                act.admin.flash(
                    &state,
                    Flash::ok(format!(
                        "User {} added. Next: add rules for them, and approve their key when it arrives.",
                        u.name
                    )),
                );
                return Ok(see_other("/admin/users"));
            }
            Err(RegistryError::Conflict(_)) => {
                form.errors
                    .add("name", format!("a user named {name} already exists"));
            }
            Err(e) => form.errors.add("name", message(&e)),
        }
    }
    users_page(&state, &act.admin, &form, StatusCode::BAD_REQUEST)
        .await
        .map(IntoResponse::into_response)
}

async fn set_enabled(state: WebState, act: Act, enabled: bool) -> Response {
    let back = act.back("/admin/users").to_string();
    let name = act.form.get("name").to_string();
    let actor = act.admin.actor();
    let flash = match validate::user_name(&name) {
        Err(e) => Flash::error(message(&e)),
        Ok(()) => match blocking(&state.store, move |s| {
            s.set_user_enabled(&name, enabled, &actor)
        })
        .await
        {
            Ok(u) if u.enabled => Flash::ok(format!("User {} enabled.", u.name)),
            Ok(u) => Flash::ok(format!(
                "User {} disabled: they cannot log in, and their live sessions end within seconds.",
                u.name
            )),
            Err(e) => Flash::error(message(&e)),
        },
    };
    act.admin.flash(&state, flash);
    see_other(&back)
}

/// `POST /admin/users/enable` (`name`).
pub async fn enable_user(State(state): State<WebState>, act: Act) -> Response {
    set_enabled(state, act, true).await
}

/// `POST /admin/users/disable` (`name`).
pub async fn disable_user(State(state): State<WebState>, act: Act) -> Response {
    set_enabled(state, act, false).await
}

// --- rules ------------------------------------------------------------------

/// Filter of `GET /admin/rules`.
#[derive(Debug, Deserialize)]
pub struct RulesParams {
    user: Option<String>,
}

async fn rules_page(
    state: &WebState,
    admin: &Admin,
    selected: Option<String>,
    form: &RuleForm,
    status: StatusCode,
) -> Result<Html, Response> {
    let sel = selected.clone();
    let (rules, users) = blocking(&state.store, move |s| {
        Ok((s.list_rules(sel.as_deref())?, s.list_users()?))
    })
    .await
    .map_err(failed)?;
    let names: Vec<String> = users.into_iter().map(|u| u.name).collect();
    let back = match &selected {
        Some(u) => format!("/admin/rules?user={}", view::url_encode(u)),
        None => "/admin/rules".to_string(),
    };
    let frame = Frame::load(state, admin, back).await?;
    let mut page = view::rules(
        &frame.ctx(admin, Tab::Rules),
        &rules,
        &names,
        selected.as_deref(),
        form,
    );
    page.0 = status;
    Ok(page)
}

/// `GET /admin/rules?user=`.
pub async fn rules(
    State(state): State<WebState>,
    admin: Admin,
    PageQuery(p): PageQuery<RulesParams>,
) -> Result<Html, Response> {
    let selected = p.user.filter(|u| !u.is_empty());
    let form = RuleForm {
        user: selected.clone().unwrap_or_default(),
        ..RuleForm::default()
    };
    rules_page(&state, &admin, selected, &form, StatusCode::OK).await
}

/// Check an add-rule form: every field at once, each message next to its
/// field; duplicates of the user's existing rules are named. Pure.
pub fn check_rule(
    form: &RuleForm,
    users: &[String],
    existing: &[RuleRecord],
) -> Result<RuleRecord, FieldErrors> {
    let mut errors = FieldErrors::default();
    let user = form.user.trim();
    if user.is_empty() {
        errors.add("user", "choose whose rule it is");
    } else if !users.iter().any(|u| u == user) {
        errors.add(
            "user",
            "there is no such user; add them on the Users page first",
        );
    }
    let name = form.name.trim();
    if let Err(e) = validate::rule_name(name) {
        errors.add("name", reason(&e));
    }
    let local = validate::port_text("local port", &form.local_port)
        .map_err(|e| errors.add("local_port", reason(&e)))
        .ok();
    let target = match form.target.trim() {
        "" => {
            errors.add("target", "it is empty; write HOST:PORT, e.g. mail.corp:25");
            None
        }
        t => validate::target(t)
            .map_err(|e| errors.add("target", reason(&e)))
            .ok(),
    };
    for r in existing.iter().filter(|r| r.user == user) {
        if r.name == name {
            errors.add("name", format!("{user} already has a rule named {name}"));
        }
        if Some(r.local_port) == local {
            errors.add(
                "local_port",
                format!(
                    "port {} is already used by {user}'s rule {}",
                    r.local_port, r.name
                ),
            );
        }
    }
    match (local, target) {
        (Some(local_port), Some((target_host, target_port))) if errors.is_empty() => {
            Ok(RuleRecord {
                user: user.to_string(),
                name: name.to_string(),
                local_port,
                target_host,
                target_port,
            })
        }
        _ => Err(errors),
    }
}

/// `POST /admin/rules` (`user`, `name`, `local_port`, `target`).
pub async fn add_rule(State(state): State<WebState>, act: Act) -> Result<Response, Response> {
    let mut form = RuleForm {
        user: act.form.get("user").trim().to_string(),
        name: act.form.get("name").trim().to_string(),
        local_port: act.form.get("local_port").trim().to_string(),
        target: act.form.get("target").trim().to_string(),
        errors: FieldErrors::default(),
    };
    let (users, existing) = blocking(&state.store, |s| Ok((s.list_users()?, s.list_rules(None)?)))
        .await
        .map_err(failed)?;
    let names: Vec<String> = users.into_iter().map(|u| u.name).collect();
    match check_rule(&form, &names, &existing) {
        Err(errors) => form.errors = errors,
        Ok(rule) => {
            let actor = act.admin.actor();
            match blocking(&state.store, move |s| s.add_rule(rule, &actor)).await {
                Ok(r) => {
                    act.admin.flash(
                        &state,
                        Flash::ok(format!(
                            "Rule {} added for {}: 127.0.0.1:{} → {}. It is used at their next connect.",
                            r.name,
                            r.user,
                            r.local_port,
                            form.target
                        )),
                    );
                    return Ok(see_other(&format!(
                        "/admin/rules?user={}",
                        view::url_encode(&r.user)
                    )));
                }
                Err(e @ RegistryError::NotFound(_)) => form.errors.add("user", message(&e)),
                Err(e @ RegistryError::Invalid { .. }) => form.errors.add("target", reason(&e)),
                Err(e) => form.errors.add("name", message(&e)),
            }
        }
    }
    let selected = names.contains(&form.user).then(|| form.user.clone());
    rules_page(&state, &act.admin, selected, &form, StatusCode::BAD_REQUEST)
        .await
        .map(IntoResponse::into_response)
}

/// `POST /admin/rules/remove` (`user`, `name`).
pub async fn remove_rule(State(state): State<WebState>, act: Act) -> Response {
    let back = act.back("/admin/rules").to_string();
    let user = act.form.get("user").to_string();
    let name = act.form.get("name").to_string();
    let actor = act.admin.actor();
    let (u, n) = (user.clone(), name.clone());
    let flash = match blocking(&state.store, move |s| s.remove_rule(&u, &n, &actor)).await {
        Ok(()) => Flash::ok(format!("Rule {name} of {user} removed.")),
        Err(e) => Flash::error(message(&e)),
    };
    act.admin.flash(&state, flash);
    see_other(&back)
}

// --- invites ----------------------------------------------------------------

/// Why the page cannot make invites: it does not know the gateway's host key.
const NO_HOST_KEY: &str = "This registry serves no SSH gateway here, so the page cannot make \
    invites (an invite names the gateway's host key). Run `pra-registry invite create` on the \
    registry host instead.";

async fn invites_page(
    state: &WebState,
    admin: &Admin,
    form: &InviteForm,
    created: Option<(&Invite, bool)>,
    status: StatusCode,
) -> Result<Html, Response> {
    let (invites, users) = blocking(&state.store, |s| Ok((s.list_invites()?, s.list_users()?)))
        .await
        .map_err(failed)?;
    let names: Vec<String> = users.into_iter().map(|u| u.name).collect();
    let default_gateway = invite::this_host()
        .and_then(|h| invite::gateway_address(&h))
        .ok();
    let frame = Frame::load(state, admin, "/admin/invites".into()).await?;
    let mut page = view::invites(
        &frame.ctx(admin, Tab::Invites),
        &InvitesView {
            invites: &invites,
            user_names: &names,
            form,
            default_gateway: default_gateway.as_deref(),
            cannot_create: state.config.host_key.is_none().then_some(NO_HOST_KEY),
            created,
        },
    );
    page.0 = status;
    Ok(page)
}

/// `GET /admin/invites`: every invite (never a secret) and the create form.
pub async fn invites(State(state): State<WebState>, admin: Admin) -> Result<Html, Response> {
    invites_page(&state, &admin, &InviteForm::default(), None, StatusCode::OK).await
}

/// The form field of a part of an invite request.
fn invite_field(f: invite::Field) -> &'static str {
    match f {
        invite::Field::User => "user",
        invite::Field::Gateways => "gateways",
        invite::Field::Expires => "expires",
    }
}

/// `POST /admin/invites` (`user`, `gateways`, `expires`, `approve`): make
/// an invite as `pra-registry invite create` does. The answer is the page
/// itself with the new invite string, once: no redirect (its URL would be
/// in the history), nothing kept in the session, `no-store`.
pub async fn create_invite(State(state): State<WebState>, act: Act) -> Result<Response, Response> {
    let mut form = InviteForm {
        user: act.form.get("user").trim().to_string(),
        gateways: act.form.get("gateways").trim().to_string(),
        expires: act.form.get("expires").trim().to_string(),
        approve: !act.form.get("approve").is_empty(),
        errors: FieldErrors::default(),
    };
    let Some(host_key) = state.config.host_key.clone() else {
        return Err(
            view::error_page(StatusCode::CONFLICT, "Cannot make invites", NO_HOST_KEY)
                .into_response(),
        );
    };
    let request = InviteRequest {
        user: form.user.clone(),
        gateways: form
            .gateways
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        expires: form.expires.clone(),
        approve: form.approve,
    };
    match request.check() {
        Err(problems) => {
            for (f, e) in problems {
                form.errors.add(invite_field(f), reason(&e));
            }
        }
        Ok(plan) => {
            let actor = act.admin.actor();
            let approve = plan.approve;
            let now = now();
            match blocking(&state.store, move |s| {
                invite::create(s, &host_key, &plan, &actor, now)
            })
            .await
            {
                Ok(new) => {
                    tracing::info!(invite = %new.id, user = %new.user, token = %act.admin.session.token_name, "admin page: invite created");
                    // `no-store`, like every admin page (`guard::security_headers`).
                    let page = invites_page(
                        &state,
                        &act.admin,
                        &InviteForm::default(),
                        Some((&new, approve)),
                        StatusCode::OK,
                    )
                    .await?;
                    return Ok(page.into_response());
                }
                Err(RegistryError::NotFound(_)) => form.errors.add(
                    "user",
                    format!(
                        "there is no user named {}; add them on the Users page first",
                        form.user
                    ),
                ),
                Err(e) => form.errors.add("user", message(&e)),
            }
        }
    }
    invites_page(&state, &act.admin, &form, None, StatusCode::BAD_REQUEST)
        .await
        .map(IntoResponse::into_response)
}

/// `POST /admin/invites/revoke` (`id`): withdraw an invite not used yet.
pub async fn revoke_invite(State(state): State<WebState>, act: Act) -> Response {
    let back = act.back("/admin/invites").to_string();
    let id = act.form.get("id").trim().to_string();
    let actor = act.admin.actor();
    let flash = match blocking(&state.store, move |s| s.revoke_invite(&id, &actor)).await {
        Ok(i) => {
            tracing::info!(invite = %i.id, user = %i.user, token = %act.admin.session.token_name, "admin page: invite revoked");
            Flash::ok(format!(
                "Invite {} of {} revoked: it is refused from now on.",
                i.id, i.user
            ))
        }
        Err(e) => Flash::error(message(&e)),
    };
    act.admin.flash(&state, flash);
    see_other(&back)
}

// --- live sessions ----------------------------------------------------------

/// `GET /admin/sessions`.
pub async fn sessions(State(state): State<WebState>, admin: Admin) -> Result<Html, Response> {
    let live = blocking(&state.store, |s| s.list_live_sessions())
        .await
        .map_err(failed)?;
    let frame = Frame::load(&state, &admin, "/admin/sessions".into()).await?;
    Ok(view::sessions(&frame.ctx(&admin, Tab::Sessions), &live))
}

/// `POST /admin/sessions/disconnect` (`id`): ask the session's gateway to
/// end it.
pub async fn disconnect_session(State(state): State<WebState>, act: Act) -> Response {
    let back = act.back("/admin/sessions").to_string();
    let flash = match act.form.get("id").trim().parse::<i64>() {
        Err(_) => Flash::error("Invalid session: not a session number."),
        Ok(id) => {
            let actor = act.admin.actor();
            match blocking(&state.store, move |s| s.request_disconnect(id, &actor)).await {
                Ok(s) => {
                    tracing::info!(session = s.id, user = %s.user, token = %act.admin.session.token_name, "admin page: disconnect requested");
                    Flash::ok(format!(
                        "Disconnect of {}'s session from {} requested: gateway {} ends it within seconds.",
                        s.user, s.source, s.gateway
                    ))
                }
                Err(RegistryError::NotFound(_)) => Flash::error(format!(
                    "Session {id} is no longer live; nothing to disconnect."
                )),
                Err(e) => Flash::error(message(&e)),
            }
        }
    };
    act.admin.flash(&state, flash);
    see_other(&back)
}

// --- audit ------------------------------------------------------------------

/// Filters and position of `GET /admin/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditParams {
    user: Option<String>,
    kind: Option<String>,
    q: Option<String>,
    before: Option<String>,
}

/// Does an entry contain `needle` (lower case) anywhere a person would look?
pub fn entry_matches(e: &AuditEntry, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let ev = &e.event;
    [
        Some(ev.kind.as_str()),
        Some(ev.actor.as_str()),
        ev.user.as_deref(),
        ev.fingerprint.as_deref(),
        ev.source.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|f| f.to_lowercase().contains(needle))
        || ev.detail.to_string().to_lowercase().contains(needle)
}

/// One page of matches below `before`, and the id to continue below (when
/// there may be more). Reads in batches; with a text search it stops after
/// [`AUDIT_SCAN`] entries (`true`: cut short, more may match further on).
pub fn audit_search(
    store: &Store,
    base: &AuditQuery,
    needle: &str,
    before: Option<i64>,
    page: u32,
) -> StoreResult<(Vec<AuditEntry>, Option<i64>, bool)> {
    let batch = if needle.is_empty() { page + 1 } else { 500 };
    let mut out = Vec::new();
    let mut cursor = before;
    let mut scanned = 0usize;
    loop {
        let q = AuditQuery {
            before_id: cursor,
            limit: batch,
            ..base.clone()
        };
        let got = store.audit(&q)?;
        let exhausted = (got.len() as u32) < batch;
        for e in got {
            scanned += 1;
            cursor = Some(e.id);
            if entry_matches(&e, needle) {
                if out.len() as u32 == page {
                    // one more exists: continue below the last shown
                    let next = out.last().map(|l: &AuditEntry| l.id);
                    return Ok((out, next, false));
                }
                out.push(e);
            }
        }
        if exhausted {
            return Ok((out, None, false));
        }
        if scanned >= AUDIT_SCAN {
            return Ok((out, cursor, true));
        }
    }
}

/// `GET /admin/audit?user=&kind=&q=&before=`.
pub async fn audit(
    State(state): State<WebState>,
    admin: Admin,
    uri: Uri,
    PageQuery(p): PageQuery<AuditParams>,
) -> Result<Html, Response> {
    let before = match p.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            view::error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "before must be an event number",
            )
            .into_response()
        })?),
    };
    let filter = view::AuditFilter {
        user: p.user.unwrap_or_default().trim().to_string(),
        kind: p.kind.unwrap_or_default().trim().to_string(),
        q: p.q.unwrap_or_default().trim().to_string(),
        before,
    };
    let base = AuditQuery {
        user: Some(filter.user.clone()).filter(|u| !u.is_empty()),
        kind_prefix: Some(filter.kind.clone()).filter(|k| !k.is_empty()),
        before_id: None,
        limit: 0,
    };
    let needle = filter.q.to_lowercase();
    let (entries, older, cut) = blocking(&state.store, move |s| {
        audit_search(s, &base, &needle, before, AUDIT_PAGE)
    })
    .await
    .map_err(failed)?;
    let frame = Frame::load(&state, &admin, here("/admin/audit", &uri)).await?;
    Ok(view::audit(
        &frame.ctx(&admin, Tab::Audit),
        &entries,
        &filter,
        older,
        cut,
    ))
}

// --- the rest ---------------------------------------------------------------

/// `GET /admin/static/admin.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Unknown page.
pub async fn not_found() -> Html {
    view::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page on the admin site.",
    )
}

/// A page asked with the wrong method (e.g. GET on an action).
pub async fn method_not_allowed() -> Html {
    view::error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed",
        "This address only takes the admin page's own forms; nothing was changed.",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn rule(user: &str, name: &str, port: u16) -> RuleRecord {
        RuleRecord {
            user: user.into(),
            name: name.into(),
            local_port: port,
            target_host: "mail.corp".into(),
            target_port: 25,
        }
    }

    fn form(user: &str, name: &str, local: &str, target: &str) -> RuleForm {
        RuleForm {
            user: user.into(),
            name: name.into(),
            local_port: local.into(),
            target: target.into(),
            errors: FieldErrors::default(),
        }
    }

    #[test]
    fn rule_form_checks_every_field() {
        let users = vec!["alice".to_string(), "bob".to_string()];
        let existing = vec![rule("alice", "mail", 2525), rule("bob", "web", 8080)];
        let ok = check_rule(&form("alice", "web", "8080", "[::1]:80"), &users, &existing).unwrap();
        assert_eq!(
            (ok.local_port, ok.target_host.as_str(), ok.target_port),
            (8080, "::1", 80)
        );
        // (form, fields with a message)
        for (f, fields) in [
            (
                form("", "", "", ""),
                vec!["local_port", "name", "target", "user"],
            ),
            (form("carol", "x", "1", "h:1"), vec!["user"]),
            (form("alice", "bad name", "1", "h:1"), vec!["name"]),
            (form("alice", "x", "0", "h:1"), vec!["local_port"]),
            (form("alice", "x", "70000", "h:1"), vec!["local_port"]),
            (form("alice", "x", "abc", "h:1"), vec!["local_port"]),
            (form("alice", "x", "1", "nohost"), vec!["target"]),
            (form("alice", "x", "1", "h:0"), vec!["target"]),
            (form("alice", "x", "1", "bad host:25"), vec!["target"]),
            (form("alice", "mail", "1", "h:1"), vec!["name"]),
            (form("alice", "x", "2525", "h:1"), vec!["local_port"]),
            (
                form("alice", "mail", "2525", "h:1"),
                vec!["local_port", "name"],
            ),
        ] {
            let errors = check_rule(&f, &users, &existing).unwrap_err();
            let got: Vec<&str> = errors.0.keys().copied().collect();
            assert_eq!(got, fields, "{f:?}");
        }
        let e = check_rule(&form("alice", "mail", "2525", "h:1"), &users, &existing).unwrap_err();
        assert_eq!(e.get("name"), Some("alice already has a rule named mail"));
        assert_eq!(
            e.get("local_port"),
            Some("port 2525 is already used by alice's rule mail")
        );
    }

    #[test]
    fn audit_entries_match_text_anywhere() {
        let e = AuditEntry {
            id: 1,
            at: 0,
            event: AuditEvent {
                kind: "forward.refused".into(),
                actor: "gateway:gw1".into(),
                user: Some("alice".into()),
                fingerprint: Some("SHA256:abc".into()),
                source: Some("10.1.2.3:5000".into()),
                detail: serde_json::json!({"target": "db.corp:5432"}),
            },
        };
        for (needle, want) in [
            ("", true),
            ("refused", true),
            ("gw1", true),
            ("alice", true),
            ("sha256:abc", true),
            ("10.1.2.3", true),
            ("db.corp", true),
            ("bob", false),
        ] {
            assert_eq!(entry_matches(&e, needle), want, "{needle}");
        }
    }
}
