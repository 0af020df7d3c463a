//! The HTML of the admin page. maud templates are compiled into the binary
//! and escape every interpolated value (`&`, `<`, `>`, `"`), so text from
//! employees (device descriptions, computer names) and from the audit log
//! cannot become markup; attributes are always double-quoted. Pure
//! functions from data to [`Markup`]; the handlers live in
//! [`super::pages`].

use super::dup::{self, Duplicate};
use super::session::Flash;
use super::text;
use crate::model::{
    AuditEntry, InviteRecord, KeyRecord, RuleRecord, SessionRecord, Timestamp, User,
};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use pra_proto::api::KeyStatus;
use pra_proto::invite::Invite;
use std::collections::{BTreeMap, HashMap};

/// An HTML answer.
#[derive(Debug)]
pub struct Html(pub StatusCode, pub Markup);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut resp = (self.0, self.1.into_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp
    }
}

/// The sections of the page, in menu order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Keys waiting for approval (the landing page).
    Pending,
    /// All keys.
    Keys,
    /// Accounts.
    Users,
    /// Forwarding rules.
    Rules,
    /// Enrollment invites.
    Invites,
    /// Live gateway sessions.
    Sessions,
    /// The audit log.
    Audit,
}

const TABS: [(Tab, &str, &str); 7] = [
    (Tab::Pending, "/admin", "Pending keys"),
    (Tab::Keys, "/admin/keys", "All keys"),
    (Tab::Users, "/admin/users", "Users"),
    (Tab::Rules, "/admin/rules", "Rules"),
    (Tab::Invites, "/admin/invites", "Invites"),
    (Tab::Sessions, "/admin/sessions", "Live sessions"),
    (Tab::Audit, "/admin/audit", "Audit log"),
];

/// What every signed-in page shows around its content.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Token name of the admin (shown as `web:NAME`).
    pub who: &'a str,
    /// The session's CSRF token, put into every form.
    pub csrf: &'a str,
    /// The current section.
    pub tab: Tab,
    /// The one-time message, if any.
    pub flash: Option<&'a Flash>,
    /// Keys waiting (a badge in the menu).
    pub pending: usize,
    /// Unix time now (for "5 min ago").
    pub now: Timestamp,
    /// Path and query of this page: where actions return to.
    pub back: &'a str,
}

fn layout(title: &str, ctx: Option<&Ctx<'_>>, flash: Option<&Flash>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · PRA registry" }
                link rel="stylesheet" href="/admin/static/admin.css";
            }
            body {
                header.top {
                    a.brand href="/admin" { "PRA registry" }
                    @if let Some(c) = ctx {
                        nav {
                            @for (tab, href, label) in TABS {
                                a href=(href) aria-current=[(c.tab == tab).then_some("page")] {
                                    (label)
                                    @if tab == Tab::Pending && c.pending > 0 {
                                        " " span.badge { (c.pending) }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/admin/logout" {
                            (csrf_field(c.csrf))
                            span.who { "web:" (c.who) }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(f) = flash {
                        p.flash.error[f.error] role="status" { (f.text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A signed-in page.
pub fn page(title: &str, ctx: &Ctx<'_>, body: Markup) -> Html {
    Html(StatusCode::OK, layout(title, Some(ctx), ctx.flash, body))
}

/// A page for someone not signed in, or an error.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Html {
    Html(
        status,
        layout(
            title,
            None,
            None,
            html! {
                h1 { (title) }
                p { (message) }
                p { a href="/admin" { "Back to the admin page" } }
            },
        ),
    )
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A one-button form posting to `action` with hidden fields. `danger`
/// buttons sit behind a `<details>` ("Revoke…") so one click cannot do it.
fn action(
    ctx: &Ctx<'_>,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    danger: bool,
) -> Markup {
    let form = html! {
        form.inline method="post" action=(action) {
            (csrf_field(ctx.csrf))
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            input type="hidden" name="back" value=(ctx.back);
            button.danger[danger] type="submit" { (label) }
        }
    };
    if danger {
        html! {
            details.confirm {
                summary { (label) "…" }
                (form)
            }
        }
    } else {
        form
    }
}

fn when(ts: Timestamp, now: Timestamp) -> Markup {
    html! {
        span.when title=(text::utc(ts)) { (text::ago(ts, now)) }
        br;
        small.muted { (text::utc(ts)) }
    }
}

fn status(s: KeyStatus) -> Markup {
    html! { span.status.(s.as_str()) { (s.as_str()) } }
}

/// Put a long fingerprint on two lines at a sensible place.
fn fingerprint(fp: &str) -> Markup {
    html! { code.fp { (fp) } }
}

fn duplicates(flags: Option<&Vec<Duplicate>>) -> Markup {
    html! {
        @for d in flags.into_iter().flatten() {
            p.warn {
                strong {
                    "⚠ Same " (d.field.label())
                    @if d.other_users { " as another user's key" } @else { " as another key" }
                }
                // As the admin guide says: a shared tag is a cloned disk
                // image or a shared PC; a shared description alone is the
                // same OS and model, common in a uniform fleet.
                @match (d.field, d.other_users) {
                    (dup::Field::Tag, _) => " (a cloned disk image or a shared PC? ask before approving): ",
                    (dup::Field::Description, true) => " (same OS and model, common in a uniform fleet; under another account, ask before approving): ",
                    (dup::Field::Description, false) => " (same OS and model, common in a uniform fleet): ",
                }
                @for (i, o) in d.others.iter().enumerate() {
                    @if i > 0 { "; " }
                    (o.user) " on " (o.computer) " "
                    code.fp { (o.fingerprint) }
                }
            }
        }
    }
}

fn device(k: &KeyRecord, flags: Option<&Vec<Duplicate>>) -> Markup {
    html! {
        (k.device.description)
        @if !k.device.tag.is_empty() {
            br; small.muted { "tag " (k.device.tag) }
        }
        (duplicates(flags))
    }
}

fn computer(k: &KeyRecord) -> Markup {
    html! {
        (k.device.computer)
        @if !k.device.os_user.is_empty() {
            br; small.muted { "OS user " (k.device.os_user) }
        }
    }
}

fn key_actions(ctx: &Ctx<'_>, k: &KeyRecord) -> Markup {
    let fp = [("fingerprint", k.fingerprint.as_str())];
    html! {
        @match k.status {
            KeyStatus::Pending => {
                (action(ctx, "/admin/keys/approve", &fp, "Approve", false))
                (action(ctx, "/admin/keys/revoke", &fp, "Reject", true))
            }
            KeyStatus::Approved => {
                (action(ctx, "/admin/keys/revoke", &fp, "Revoke", true))
            }
            KeyStatus::Revoked => { span.muted { "—" } }
        }
    }
}

/// The landing page: keys waiting for approval, oldest first.
pub fn pending(ctx: &Ctx<'_>, keys: &[KeyRecord], dups: &HashMap<String, Vec<Duplicate>>) -> Html {
    let body = html! {
        h1 { "Pending keys" }
        p.hint {
            "Keys employees sent with " code { "pra key submit" } ", waiting for you. "
            "Before approving, compare the fingerprint with the one the employee sees with "
            code { "pra key show" } "."
        }
        @if keys.is_empty() {
            p.empty { "No key is waiting for approval." }
        } @else {
            table.keys {
                thead { tr {
                    th { "User" } th { "Computer" } th { "Device" } th { "Fingerprint" }
                    th { "Submitted" } th { "Decision" }
                } }
                tbody {
                    @for k in keys {
                        tr data-fingerprint=(k.fingerprint) {
                            td.user { (k.user) }
                            td { (computer(k)) }
                            td { (device(k, dups.get(&k.fingerprint))) }
                            td { (fingerprint(&k.fingerprint)) }
                            td { (when(k.submitted_at, ctx.now)) }
                            td.actions { (key_actions(ctx, k)) }
                        }
                    }
                }
            }
        }
    };
    page("Pending keys", ctx, body)
}

/// Filters of the key list.
#[derive(Debug, Default)]
pub struct KeyFilter {
    /// Only this status.
    pub status: Option<KeyStatus>,
    /// Only this user.
    pub user: Option<String>,
}

/// All keys, with filters.
pub fn keys(
    ctx: &Ctx<'_>,
    keys: &[KeyRecord],
    filter: &KeyFilter,
    users: &[User],
    dups: &HashMap<String, Vec<Duplicate>>,
) -> Html {
    let body = html! {
        h1 { "All keys" }
        form.filters method="get" action="/admin/keys" {
            label {
                "Status "
                select name="status" {
                    option value="" selected[filter.status.is_none()] { "any" }
                    @for s in [KeyStatus::Pending, KeyStatus::Approved, KeyStatus::Revoked] {
                        option value=(s.as_str()) selected[filter.status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            " "
            label {
                "User "
                select name="user" {
                    option value="" selected[filter.user.is_none()] { "any" }
                    @for u in users {
                        option value=(u.name) selected[filter.user.as_deref() == Some(u.name.as_str())] { (u.name) }
                    }
                }
            }
            " "
            button type="submit" { "Show" }
        }
        @if keys.is_empty() {
            p.empty { "No key matches." }
        } @else {
            table.keys {
                thead { tr {
                    th { "User" } th { "Computer" } th { "Device" } th { "Fingerprint" }
                    th { "Status" } th { "Submitted" } th { "Last login" } th { "Actions" }
                } }
                tbody {
                    @for k in keys {
                        tr data-fingerprint=(k.fingerprint) {
                            td.user { (k.user) }
                            td { (computer(k)) }
                            td { (device(k, dups.get(&k.fingerprint))) }
                            td { (fingerprint(&k.fingerprint)) }
                            td {
                                (status(k.status))
                                @if let (Some(by), Some(at)) = (&k.approved_by, k.approved_at) {
                                    br; small.muted { "approved by " (by) " " (text::ago(at, ctx.now)) }
                                }
                                @if let (Some(by), Some(at)) = (&k.revoked_by, k.revoked_at) {
                                    br; small.muted { "revoked by " (by) " " (text::ago(at, ctx.now)) }
                                }
                            }
                            td { (when(k.submitted_at, ctx.now)) }
                            td {
                                @match k.last_seen {
                                    Some(t) => (when(t, ctx.now)),
                                    None => span.muted { "never" },
                                }
                            }
                            td.actions { (key_actions(ctx, k)) }
                        }
                    }
                }
            }
            p.muted { (keys.len()) " key(s)" }
        }
    };
    page("All keys", ctx, body)
}

/// Messages next to form fields, by field name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<&'static str, String>);

impl FieldErrors {
    /// Note a problem with `field` (the first one per field is kept).
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    /// No problems.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message for `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// A labelled text field with its validation message next to it.
fn field(label: &str, name: &str, value: &str, errors: &FieldErrors, extra: FieldKind) -> Markup {
    let err = errors.get(name);
    let err_id = format!("err-{name}");
    html! {
        div.field.invalid[err.is_some()] {
            label for=(name) { (label) }
            @match extra {
                FieldKind::Text { placeholder } => {
                    input #(name) type="text" name=(name) value=(value) placeholder=(placeholder)
                        required autocomplete="off" spellcheck="false"
                        aria-invalid=[err.map(|_| "true")]
                        aria-describedby=[err.map(|_| err_id.as_str())];
                }
                FieldKind::Optional { placeholder } => {
                    input #(name) type="text" name=(name) value=(value) placeholder=(placeholder)
                        autocomplete="off" spellcheck="false"
                        aria-invalid=[err.map(|_| "true")]
                        aria-describedby=[err.map(|_| err_id.as_str())];
                }
                FieldKind::Port => {
                    input #(name) type="text" inputmode="numeric" name=(name) value=(value)
                        placeholder="1–65535" required autocomplete="off" size="7"
                        aria-invalid=[err.map(|_| "true")]
                        aria-describedby=[err.map(|_| err_id.as_str())];
                }
                FieldKind::Choice { options } => {
                    select #(name) name=(name) required
                        aria-invalid=[err.map(|_| "true")]
                        aria-describedby=[err.map(|_| err_id.as_str())] {
                        option value="" selected[value.is_empty()] { "choose…" }
                        @for o in options {
                            option value=(o) selected[value == o.as_str()] { (o) }
                        }
                    }
                }
            }
            @if let Some(e) = err {
                span.field-error id=(err_id) { (e) }
            }
        }
    }
}

enum FieldKind<'a> {
    Text { placeholder: &'a str },
    Optional { placeholder: &'a str },
    Port,
    Choice { options: &'a [String] },
}

/// The add-user form as sent (for showing it again with its errors).
#[derive(Debug, Default)]
pub struct UserForm {
    /// The name typed.
    pub name: String,
    /// Problems by field.
    pub errors: FieldErrors,
}

/// One row of the users page.
#[derive(Debug)]
pub struct UserRow {
    /// The account.
    pub user: User,
    /// Its keys by status: (pending, approved).
    pub keys: (usize, usize),
    /// Its rules.
    pub rules: usize,
}

/// Users: add, enable/disable.
pub fn users(ctx: &Ctx<'_>, rows: &[UserRow], form: &UserForm) -> Html {
    let body = html! {
        h1 { "Users" }
        p.hint {
            "Accounts allowed to connect. A disabled account cannot log in and "
            "loses its live sessions within seconds; its keys and rules stay."
        }
        form.add method="post" action="/admin/users" novalidate {
            (csrf_field(ctx.csrf))
            (field("New user", "name", &form.name, &form.errors, FieldKind::Text { placeholder: "alice" }))
            button type="submit" { "Add user" }
        }
        @if rows.is_empty() {
            p.empty { "No user yet." }
        } @else {
            table.users {
                thead { tr {
                    th { "User" } th { "Status" } th { "Keys" } th { "Rules" } th { "Created" } th { "Actions" }
                } }
                tbody {
                    @for r in rows {
                        tr data-user=(r.user.name) {
                            td.user { (r.user.name) }
                            td {
                                @if r.user.enabled { span.status.approved { "enabled" } }
                                @else { span.status.revoked { "disabled" } }
                            }
                            td {
                                a href={ "/admin/keys?user=" (url_encode(&r.user.name)) } {
                                    (r.keys.1) " approved"
                                    @if r.keys.0 > 0 { ", " (r.keys.0) " pending" }
                                }
                            }
                            td { a href={ "/admin/rules?user=" (url_encode(&r.user.name)) } { (r.rules) } }
                            td { (when(r.user.created_at, ctx.now)) }
                            td.actions {
                                @let name = [("name", r.user.name.as_str())];
                                @if r.user.enabled {
                                    (action(ctx, "/admin/users/disable", &name, "Disable", true))
                                } @else {
                                    (action(ctx, "/admin/users/enable", &name, "Enable", false))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Users", ctx, body)
}

/// The add-rule form as sent.
#[derive(Debug, Default)]
pub struct RuleForm {
    /// Account.
    pub user: String,
    /// Rule name.
    pub name: String,
    /// Local port as typed.
    pub local_port: String,
    /// `HOST:PORT` as typed.
    pub target: String,
    /// Problems by field (`user`, `name`, `local_port`, `target`).
    pub errors: FieldErrors,
}

fn target(r: &RuleRecord) -> String {
    if r.target_host.contains(':') {
        format!("[{}]:{}", r.target_host, r.target_port)
    } else {
        format!("{}:{}", r.target_host, r.target_port)
    }
}

/// Rules, optionally of one user, and the add form.
pub fn rules(
    ctx: &Ctx<'_>,
    rules: &[RuleRecord],
    user_names: &[String],
    selected: Option<&str>,
    form: &RuleForm,
) -> Html {
    let body = html! {
        h1 { "Rules" @if let Some(u) = selected { " of " (u) } }
        p.hint {
            "A rule is a fixed forward: the employee's " code { "127.0.0.1:LOCAL" }
            " → " code { "HOST:PORT" } " as seen from the gateway. A new rule is used at the next connect."
        }
        form.filters method="get" action="/admin/rules" {
            label {
                "User "
                select name="user" {
                    option value="" selected[selected.is_none()] { "all" }
                    @for u in user_names {
                        option value=(u) selected[selected == Some(u.as_str())] { (u) }
                    }
                }
            }
            " "
            button type="submit" { "Show" }
        }
        @if rules.is_empty() {
            p.empty { "No rule." }
        } @else {
            table.rules {
                thead { tr {
                    th { "User" } th { "Rule" } th { "Local port" } th { "Target" } th { "Actions" }
                } }
                tbody {
                    @for r in rules {
                        tr data-rule={ (r.user) "/" (r.name) } {
                            td.user { (r.user) }
                            td { (r.name) }
                            td { code { "127.0.0.1:" (r.local_port) } }
                            td { code { (target(r)) } }
                            td.actions {
                                (action(ctx, "/admin/rules/remove",
                                    &[("user", r.user.as_str()), ("name", r.name.as_str())],
                                    "Remove", true))
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a rule" }
        form.add.rule method="post" action="/admin/rules" novalidate {
            (csrf_field(ctx.csrf))
            (field("User", "user", &form.user, &form.errors, FieldKind::Choice { options: user_names }))
            (field("Rule name", "name", &form.name, &form.errors, FieldKind::Text { placeholder: "mail" }))
            (field("Local port", "local_port", &form.local_port, &form.errors, FieldKind::Port))
            (field("Target", "target", &form.target, &form.errors, FieldKind::Text { placeholder: "mail.corp:25" }))
            button type="submit" { "Add rule" }
        }
    };
    page("Rules", ctx, body)
}

/// The create-invite form as sent.
#[derive(Debug)]
pub struct InviteForm {
    /// Account.
    pub user: String,
    /// Gateway addresses as typed (spaces or commas between them).
    pub gateways: String,
    /// Lifetime as typed (`7d`).
    pub expires: String,
    /// Approve the enrolled key at once.
    pub approve: bool,
    /// Problems by field (`user`, `gateways`, `expires`).
    pub errors: FieldErrors,
}

impl Default for InviteForm {
    fn default() -> Self {
        InviteForm {
            user: String::new(),
            gateways: String::new(),
            expires: crate::invite::DEFAULT_EXPIRY.to_string(),
            approve: false,
            errors: FieldErrors::default(),
        }
    }
}

/// What the invites page shows besides the list.
#[derive(Debug)]
pub struct InvitesView<'a> {
    /// Every invite, newest first.
    pub invites: &'a [InviteRecord],
    /// Accounts to choose from.
    pub user_names: &'a [String],
    /// The form (empty, or as sent with its problems).
    pub form: &'a InviteForm,
    /// The address used when the gateway field is left empty, if known.
    pub default_gateway: Option<&'a str>,
    /// Why the page cannot make invites (no gateway host key), if it cannot.
    pub cannot_create: Option<&'a str>,
    /// The invite just made and whether its key is approved at once:
    /// shown this once, never again.
    pub created: Option<(&'a Invite, bool)>,
}

fn invite_state(i: &InviteRecord, now: Timestamp) -> Markup {
    let state = i.state(now);
    let class = match state {
        "outstanding" => "pending",
        "used" => "approved",
        _ => "revoked",
    };
    html! { span.status.(class) { (state) } }
}

fn until(ts: Timestamp, now: Timestamp) -> Markup {
    html! {
        @if ts > now { span.when title=(text::utc(ts)) { "in " (text::duration(ts - now)) } }
        @else { span.when title=(text::utc(ts)) { (text::ago(ts, now)) } }
        br;
        small.muted { (text::utc(ts)) }
    }
}

/// Invites: the one just made (once), the list with Revoke, the create form.
pub fn invites(ctx: &Ctx<'_>, v: &InvitesView<'_>) -> Html {
    let form = v.form;
    let body = html! {
        h1 { "Invites" }
        p.hint {
            "An invite is one line an employee pastes into " code { "pra enroll" }
            ": it names the account, the gateway address(es) and host key, and holds a "
            "one-time secret. The registry keeps only the secret's hash, so the line is shown "
            "once, right after it is made."
        }
        @if let Some((new, approve)) = v.created {
            section.created-invite aria-labelledby="new-invite-title" {
                h2 #new-invite-title { "New invite for " (new.user) }
                p {
                    strong { "Copy it now: it is shown only this once. " }
                    "Give it to the employee over a channel you trust; they run "
                    code { "pra enroll INVITE" } "."
                }
                pre.invite-string { code #new-invite { (new.encode()) } }
                p.muted {
                    "Invite " code { (new.id) } ", valid once until " (text::utc(new.expires_at)) "; "
                    @if approve { "the key enrolled with it is approved at once." }
                    @else { "the key enrolled with it then waits on the Pending keys page." }
                }
            }
        }
        @if v.invites.is_empty() {
            p.empty { "No invite yet." }
        } @else {
            table.invites {
                thead { tr {
                    th { "ID" } th { "User" } th { "Gateways" } th { "Approve" } th { "State" }
                    th { "Created" } th { "Expires" } th { "Actions" }
                } }
                tbody {
                    @for i in v.invites {
                        tr data-invite=(i.id) {
                            td { code { (i.id) } }
                            td.user { (i.user) }
                            td {
                                @for (n, g) in i.gateways.iter().enumerate() {
                                    @if n > 0 { br; }
                                    code { (g) }
                                }
                            }
                            td { @if i.approve { "yes" } @else { "no" } }
                            td {
                                (invite_state(i, ctx.now))
                                @if let (Some(at), Some(fp)) = (i.used_at, &i.used_fingerprint) {
                                    br; small.muted { "by key " (fingerprint(fp)) " " (text::ago(at, ctx.now)) }
                                }
                                @if let Some(at) = i.revoked_at {
                                    br; small.muted { "revoked " (text::ago(at, ctx.now)) }
                                }
                            }
                            td {
                                (when(i.created_at, ctx.now))
                                br; small.muted { "by " (i.created_by) }
                            }
                            td { (until(i.expires_at, ctx.now)) }
                            td.actions {
                                @if i.state(ctx.now) == "outstanding" {
                                    (action(ctx, "/admin/invites/revoke", &[("id", i.id.as_str())], "Revoke", true))
                                } @else {
                                    span.muted { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Create an invite" }
        @if let Some(why) = v.cannot_create {
            p.empty { (why) }
        } @else {
            form.add.invite method="post" action="/admin/invites" novalidate {
                (csrf_field(ctx.csrf))
                (field("User", "user", &form.user, &form.errors, FieldKind::Choice { options: v.user_names }))
                (field("Gateway address(es), HOST[:PORT]", "gateways", &form.gateways, &form.errors,
                    FieldKind::Optional { placeholder: v.default_gateway.unwrap_or("vpn.example.com") }))
                (field("Expires after", "expires", &form.expires, &form.errors, FieldKind::Text { placeholder: crate::invite::DEFAULT_EXPIRY }))
                div.field.check {
                    label for="approve" {
                        input #approve type="checkbox" name="approve" value="yes" checked[form.approve];
                        " Approve the key at once"
                    }
                }
                button type="submit" { "Create invite" }
            }
            p.hint {
                "Several gateways: separate them with spaces or commas, in the order to try them "
                "(port " (pra_proto::DEFAULT_GATEWAY_PORT) " if left out). Left empty: "
                @match v.default_gateway {
                    Some(h) => { code { (h) } }
                    None => { "this computer's host name" }
                }
                ". Expiry as " code { "30m" } ", " code { "12h" } ", " code { "2d" } ", " code { "2w" }
                ". Without “approve”, the key waits on the Pending keys page."
            }
        }
    };
    page("Invites", ctx, body)
}

/// Live gateway sessions, oldest first, each with a Disconnect button.
pub fn sessions(ctx: &Ctx<'_>, sessions: &[SessionRecord]) -> Html {
    let body = html! {
        h1 { "Live sessions" }
        p.hint {
            "Employees connected to a gateway right now, as their gateways last reported "
            "(every few seconds). Disconnect ends one session; to keep someone out, also "
            "revoke their key or disable their account: otherwise they can connect again."
        }
        @if sessions.is_empty() {
            p.empty { "Nobody is connected." }
        } @else {
            table.sessions {
                thead { tr {
                    th { "User" } th { "Source" } th { "Gateway" } th { "Since" }
                    th { "Bytes" } th { "Key" } th { "Actions" }
                } }
                tbody {
                    @for s in sessions {
                        tr data-session=(s.id) {
                            td.user { (s.user) }
                            td { code { (s.source) } }
                            td { (s.gateway) }
                            td {
                                (when(s.started_at, ctx.now))
                                br; small.muted { "connected for " (text::duration(ctx.now - s.started_at)) }
                            }
                            td {
                                "↑ " (text::bytes(s.bytes_up)) br; "↓ " (text::bytes(s.bytes_down))
                                br; small.muted { "reported " (text::ago(s.heartbeat_at, ctx.now)) }
                            }
                            td { (fingerprint(&s.fingerprint)) }
                            td.actions {
                                @match (&s.disconnect_requested_by, s.disconnect_requested_at) {
                                    (Some(by), Some(at)) => {
                                        span.muted { "disconnect asked by " (by) " " (text::ago(at, ctx.now)) }
                                    }
                                    _ => {
                                        @let id = s.id.to_string();
                                        (action(ctx, "/admin/sessions/disconnect", &[("id", id.as_str())], "Disconnect", true))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Live sessions", ctx, body)
}

/// Audit log filters and the page position.
#[derive(Debug, Default)]
pub struct AuditFilter {
    /// Only this user.
    pub user: String,
    /// Only kinds starting with this.
    pub kind: String,
    /// Free text (kind, actor, user, key, source, details).
    pub q: String,
    /// This page starts below this id (None = newest).
    pub before: Option<i64>,
}

impl AuditFilter {
    /// Query string of the filters (without the position), URL-encoded.
    pub fn query(&self) -> String {
        let mut out = String::new();
        for (k, v) in [("user", &self.user), ("kind", &self.kind), ("q", &self.q)] {
            if !v.is_empty() {
                out.push_str(if out.is_empty() { "?" } else { "&" });
                out.push_str(k);
                out.push('=');
                out.push_str(&url_encode(v));
            }
        }
        out
    }
}

/// Percent-encode a query value (everything but unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page of the audit log.
pub fn audit(
    ctx: &Ctx<'_>,
    entries: &[AuditEntry],
    filter: &AuditFilter,
    older: Option<i64>,
    scanned_out: bool,
) -> Html {
    let base = filter.query();
    let older_href = older.map(|id| {
        format!(
            "/admin/audit{}{}before={id}",
            base,
            if base.is_empty() { "?" } else { "&" }
        )
    });
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/admin/audit" {
            label { "User " input type="text" name="user" value=(filter.user) size="12" autocomplete="off"; }
            " "
            label { "Kind " input type="text" name="kind" value=(filter.kind) size="14" placeholder="e.g. login" autocomplete="off"; }
            " "
            label { "Search " input type="search" name="q" value=(filter.q) size="20" autocomplete="off"; }
            " "
            button type="submit" { "Search" }
        }
        @if entries.is_empty() {
            p.empty { "No event matches." }
        } @else {
            table.audit {
                thead { tr {
                    th { "When" } th { "Event" } th { "Actor" } th { "User" } th { "Key" }
                    th { "Source" } th { "Details" }
                } }
                tbody {
                    @for e in entries {
                        tr data-id=(e.id) {
                            td { (when(e.at, ctx.now)) }
                            td { code { (e.event.kind) } }
                            td { (e.event.actor) }
                            td { (e.event.user.as_deref().unwrap_or("")) }
                            td { @if let Some(fp) = &e.event.fingerprint { (fingerprint(fp)) } }
                            td { (e.event.source.as_deref().unwrap_or("")) }
                            td.detail { (detail(&e.event.detail)) }
                        }
                    }
                }
            }
        }
        nav.paging {
            @if filter.before.is_some() {
                a href={ "/admin/audit" (base) } { "← Newest" }
                " "
            }
            @if let Some(href) = &older_href {
                a href=(href) { "Older →" }
            }
            @if scanned_out {
                " " small.muted { "(searched a long stretch of the log without enough matches; “Older” goes on searching)" }
            }
        }
    };
    page("Audit log", ctx, body)
}

fn detail(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The sign-in page.
pub fn login(login_csrf: &str, message: Option<&Flash>, status: StatusCode) -> Html {
    let body = html! {
        h1 { "Sign in" }
        p.hint {
            "Paste an admin token. To make one, run on the registry host: "
            code { "pra-registry token create --name YOUR-NAME" } "."
        }
        form.login method="post" action="/admin/login" {
            input type="hidden" name="csrf" value=(login_csrf);
            div.field {
                label for="token" { "Admin token" }
                input #token type="password" name="token" required autofocus
                    autocomplete="off" spellcheck="false";
            }
            button type="submit" { "Sign in" }
        }
    };
    Html(status, layout("Sign in", None, message, body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::web::dup::tests::key;

    fn ctx<'a>(flash: Option<&'a Flash>) -> Ctx<'a> {
        Ctx {
            who: "ops",
            csrf: "CSRF123",
            tab: Tab::Pending,
            flash,
            pending: 1,
            now: 1000,
            back: "/admin",
        }
    }

    const HOSTILE: &str = "<script>alert(\"x\")</script>&'\"><img src=x onerror=alert(1)>";

    #[test]
    fn hostile_text_is_escaped_everywhere() {
        let mut k = key("SHA256:x", "alice", HOSTILE, HOSTILE, KeyStatus::Pending);
        k.device.computer = HOSTILE.into();
        k.device.os_user = HOSTILE.into();
        let flash = Flash::error(HOSTILE);
        let c = ctx(Some(&flash));
        let mut dups = HashMap::new();
        dups.insert(
            "SHA256:x".to_string(),
            vec![Duplicate {
                field: crate::web::dup::Field::Tag,
                others: vec![crate::web::dup::Other {
                    user: HOSTILE.into(),
                    fingerprint: HOSTILE.into(),
                    computer: HOSTILE.into(),
                }],
                other_users: true,
            }],
        );
        let entry = AuditEntry {
            id: 1,
            at: 0,
            event: crate::model::AuditEvent {
                kind: HOSTILE.into(),
                actor: HOSTILE.into(),
                user: Some(HOSTILE.into()),
                fingerprint: Some(HOSTILE.into()),
                source: Some(HOSTILE.into()),
                detail: serde_json::json!({ "reason": HOSTILE, HOSTILE: 1 }),
            },
        };
        let filter = AuditFilter {
            user: HOSTILE.into(),
            kind: HOSTILE.into(),
            q: HOSTILE.into(),
            before: Some(5),
        };
        let rule_form = RuleForm {
            user: HOSTILE.into(),
            name: HOSTILE.into(),
            local_port: HOSTILE.into(),
            target: HOSTILE.into(),
            errors: FieldErrors(BTreeMap::from([("name", HOSTILE.to_string())])),
        };
        let pages = [
            pending(&c, std::slice::from_ref(&k), &dups),
            keys(
                &c,
                std::slice::from_ref(&k),
                &KeyFilter::default(),
                &[],
                &dups,
            ),
            audit(&c, &[entry], &filter, Some(1), true),
            rules(&c, &[], &[HOSTILE.to_string()], Some(HOSTILE), &rule_form),
            error_page(StatusCode::BAD_REQUEST, HOSTILE, HOSTILE),
            login(HOSTILE, Some(&flash), StatusCode::OK),
            invites(
                &c,
                &InvitesView {
                    invites: &[invite_record(HOSTILE)],
                    user_names: &[HOSTILE.to_string()],
                    form: &InviteForm {
                        user: HOSTILE.into(),
                        gateways: HOSTILE.into(),
                        expires: HOSTILE.into(),
                        approve: true,
                        errors: FieldErrors(BTreeMap::from([("gateways", HOSTILE.to_string())])),
                    },
                    default_gateway: Some(HOSTILE),
                    cannot_create: None,
                    created: Some((&new_invite(HOSTILE), true)),
                },
            ),
        ];
        for Html(_, m) in pages {
            let s = m.into_string();
            assert!(!s.contains("<script"), "{s}");
            assert!(!s.contains("<img"), "{s}");
            assert!(s.contains("&lt;script&gt;"), "{s}");
        }
    }

    fn invite_record(text: &str) -> InviteRecord {
        InviteRecord {
            id: "0a1b2c3d".into(),
            user: text.into(),
            gateways: vec![text.into(), "vpn.example.com:10022".into()],
            approve: false,
            created_at: 0,
            created_by: text.into(),
            expires_at: 5000,
            used_at: None,
            used_fingerprint: None,
            revoked_at: None,
        }
    }

    fn new_invite(user: &str) -> Invite {
        Invite {
            version: pra_proto::invite::VERSION,
            gateways: vec!["vpn.example.com:10022".into()],
            host_key: "SHA256:hostkey".into(),
            user: user.into(),
            id: "0a1b2c3d".into(),
            secret: pra_proto::invite::InviteSecret::new("s3cret".into()),
            expires_at: 5000,
        }
    }

    #[test]
    fn the_new_invite_is_shown_once_and_the_list_holds_no_secret() {
        let c = ctx(None);
        let list = [invite_record("alice")];
        let new = new_invite("alice");
        let form = InviteForm::default();
        let view = |created| InvitesView {
            invites: &list,
            user_names: &[],
            form: &form,
            default_gateway: None,
            cannot_create: None,
            created,
        };
        let Html(_, with) = invites(&c, &view(Some((&new, true))));
        let with = with.into_string();
        assert_eq!(with.matches(&new.encode()).count(), 1, "{with}");
        assert!(
            with.contains("<code id=\"new-invite\">pra-invite:"),
            "{with}"
        );
        let Html(_, without) = invites(&c, &view(None));
        let without = without.into_string();
        assert!(!without.contains("pra-invite:") && !without.contains("s3cret"));
        assert!(without.contains("data-invite=\"0a1b2c3d\""), "{without}");
        assert!(without.contains("outstanding") && without.contains("Revoke"));
        // the default expiry is filled in
        assert!(
            without.contains("name=\"expires\" value=\"7d\""),
            "{without}"
        );
        // without a host key: no create form, the reason instead
        let Html(_, none) = invites(
            &c,
            &InvitesView {
                cannot_create: Some("no gateway here"),
                ..view(None)
            },
        );
        let none = none.into_string();
        assert!(none.contains("no gateway here") && !none.contains("action=\"/admin/invites\""));
    }

    #[test]
    fn every_form_carries_the_csrf_token() {
        let k = key("SHA256:x", "alice", "t", "d", KeyStatus::Pending);
        let c = ctx(None);
        let user = User {
            name: "alice".into(),
            enabled: true,
            created_at: 0,
        };
        let rows = [UserRow {
            user,
            keys: (1, 0),
            rules: 0,
        }];
        let rule = RuleRecord {
            user: "alice".into(),
            name: "mail".into(),
            local_port: 2525,
            target_host: "::1".into(),
            target_port: 25,
        };
        let pages = [
            pending(&c, std::slice::from_ref(&k), &HashMap::new()),
            keys(
                &c,
                std::slice::from_ref(&k),
                &KeyFilter::default(),
                &[],
                &HashMap::new(),
            ),
            users(&c, &rows, &UserForm::default()),
            rules(&c, &[rule], &["alice".into()], None, &RuleForm::default()),
            sessions(
                &c,
                &[SessionRecord {
                    id: 7,
                    gateway: "gw".into(),
                    user: "alice".into(),
                    fingerprint: "SHA256:x".into(),
                    source: "10.0.0.1:5000".into(),
                    started_at: 0,
                    heartbeat_at: 0,
                    bytes_up: 0,
                    bytes_down: 0,
                    ended_at: None,
                    end_reason: None,
                    disconnect_requested_by: None,
                    disconnect_requested_at: None,
                }],
            ),
            invites(
                &c,
                &InvitesView {
                    invites: &[invite_record("alice")],
                    user_names: &["alice".into()],
                    form: &InviteForm::default(),
                    default_gateway: None,
                    cannot_create: None,
                    created: None,
                },
            ),
        ];
        let mut posts = 0;
        for Html(_, m) in pages {
            let s = m.into_string();
            for form in s.split("<form").skip(1) {
                let form = &form[..form.find("</form>").unwrap()];
                if form.contains("method=\"post\"") {
                    posts += 1;
                    assert!(form.contains("name=\"csrf\" value=\"CSRF123\""), "{form}");
                }
            }
        }
        // sign-out ×6, approve ×2, reject ×2, disable, add user, remove rule, add rule,
        // disconnect, revoke invite, create invite
        assert_eq!(posts, 17);
    }

    #[test]
    fn audit_query_strings_are_encoded() {
        let f = AuditFilter {
            user: "a b".into(),
            kind: String::new(),
            q: "x&y=<z>".into(),
            before: None,
        };
        assert_eq!(f.query(), "?user=a%20b&q=x%26y%3D%3Cz%3E");
        assert_eq!(AuditFilter::default().query(), "");
        assert_eq!(url_encode("SHA256:a+b/c"), "SHA256%3Aa%2Bb%2Fc");
    }
}
