//! What a page request carries: a form body, the query, the peer address,
//! and the proof of who sends it ([`Admin`]: a live session whose token is
//! still valid; [`Act`]: that plus the session's CSRF token in the form).

use super::WebState;
use super::guard::{self, CookieScheme};
use super::session::{Flash, Lookup, Session, SessionId};
use super::view::{self, Html};
use axum::extract::{ConnectInfo, Form, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// A URL-encoded form body, its fields in order. A body that is not a form
/// is answered with a 400 page.
#[derive(Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Html;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map(|Form(pairs)| FormData(pairs))
            .map_err(|rej| {
                view::error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    &format!(
                        "The form could not be read ({}). Reload the page and try again.",
                        pra_proto::sanitize::sanitize(&rej.body_text(), 200)
                    ),
                )
            })
    }
}

/// Query parameters of a page; bad ones are answered with a 400 page.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = Html;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| PageQuery(q))
            .map_err(|rej| {
                view::error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    &format!(
                        "The address has parameters this page does not understand ({}).",
                        pra_proto::sanitize::sanitize(&rej.body_text(), 200)
                    ),
                )
            })
    }
}

/// The client's address, when the server recorded it.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A local page to return to after an action: a path under `/admin` with
/// an optional query, nothing that could leave the site.
pub fn safe_back(back: &str) -> Option<&str> {
    let rest = back.strip_prefix(super::PREFIX)?;
    let shape_ok = rest.is_empty() || rest.starts_with('/') || rest.starts_with('?');
    let chars_ok = back.len() <= 1024
        && !back.contains("//")
        && !back.contains('\\')
        && back.bytes().all(|b| b.is_ascii_graphic());
    (shape_ok && chars_ok).then_some(back)
}

/// `303 See Other` to a page of the site.
pub fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A signed-in admin: a live session whose token the store still knows.
/// Without one, the browser is sent to the sign-in page (`303`), and a
/// stale cookie is deleted.
#[derive(Debug)]
pub struct Admin {
    /// The session id (for its flash message and for signing out).
    pub id: SessionId,
    /// The session.
    pub session: Session,
    /// How cookies are set for this request.
    pub scheme: CookieScheme,
}

impl Admin {
    /// The actor of changes made by this admin.
    pub fn actor(&self) -> crate::model::Actor {
        crate::model::Actor::Web(self.session.token_name.clone())
    }

    /// Take the one-time message for this page.
    pub fn take_flash(&self, state: &WebState) -> Option<Flash> {
        state.sessions.take_flash(&self.id)
    }

    /// Leave a message for the next page.
    pub fn flash(&self, state: &WebState, flash: Flash) {
        state.sessions.set_flash(&self.id, flash);
    }
}

/// Why a request has no admin behind it.
#[derive(Debug)]
pub struct SignInRequired {
    /// A session cookie came, but its session has ended.
    pub ended: bool,
    scheme: CookieScheme,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        let mut resp = see_other(if self.ended {
            "/admin/login?m=ended"
        } else {
            "/admin/login"
        });
        if self.ended {
            let clear = self
                .scheme
                .set_cookie(self.scheme.session_name(), "", "/admin", Some(0));
            if let Ok(v) = HeaderValue::from_str(&clear) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
        resp
    }
}

impl FromRequestParts<WebState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let scheme = CookieScheme::of(&parts.headers);
        let Some(value) = guard::cookie(&parts.headers, scheme.session_name()) else {
            return Err(SignInRequired {
                ended: false,
                scheme,
            }
            .into_response());
        };
        let id = SessionId::from_cookie(value);
        let ended = SignInRequired {
            ended: true,
            scheme,
        };
        let session = match state.sessions.touch(&id, state.now()) {
            // A session signed in over HTTPS is not used over plain HTTP.
            Lookup::Live(s) if s.secure == scheme.secure => s,
            Lookup::Unavailable(e) => return Err(unavailable(&e)),
            Lookup::Live(_) | Lookup::Expired | Lookup::Unknown => {
                return Err(ended.into_response());
            }
        };
        // The token must still be valid (and its use is recorded). A store
        // that does not answer is an error page, not a sign-out.
        let hash = session.token_hash.clone();
        let found = crate::blocking::blocking(&state.store, move |s| s.use_token(&hash)).await;
        match found {
            Ok(Some(t)) if t.name == session.token_name => {}
            Ok(_) => {
                tracing::warn!(token = %session.token_name, "admin page: session's token is no longer valid; session ended");
                state.sessions.remove(&id);
                return Err(ended.into_response());
            }
            Err(e) => return Err(unavailable(&e)),
        }
        Ok(Admin {
            id,
            session,
            scheme,
        })
    }
}

/// The session or its token cannot be checked: a store that does not
/// answer is an error page, not a sign-out.
fn unavailable(e: &crate::error::RegistryError) -> Response {
    tracing::error!(err = %e, "admin page: cannot check the session's token");
    view::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Registry unavailable",
        "The registry's database does not answer right now; nothing was changed. \
         Try again in a moment.",
    )
    .into_response()
}

/// A signed-in admin's form whose CSRF token (`csrf` field) is the
/// session's. A missing or wrong token is answered 403 and changes nothing.
#[derive(Debug)]
pub struct Act {
    /// Who.
    pub admin: Admin,
    /// The form.
    pub form: FormData,
}

impl Act {
    /// Where to go after the action: the form's `back` if it is a page of
    /// the site, else `default`.
    pub fn back<'a>(&'a self, default: &'a str) -> &'a str {
        safe_back(self.form.get("back")).unwrap_or(default)
    }
}

impl FromRequest<WebState> for Act {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let form = FormData::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !guard::same(form.get("csrf"), &admin.session.csrf) {
            tracing::warn!(token = %admin.session.token_name, "admin page: form without the session's CSRF token refused");
            return Err(view::error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form is out of date or did not come from this admin page, so nothing \
                 was changed. Reload the page and try again.",
            )
            .into_response());
        }
        Ok(Act { admin, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_stays_on_the_admin_page() {
        for (back, ok) in [
            ("/admin", true),
            ("/admin/keys?status=pending&user=alice", true),
            ("/admin?x=1", true),
            ("/adminx", false),
            ("/administrator", false),
            ("/admin//evil.example", false),
            ("//evil.example/admin", false),
            ("https://evil.example/admin", false),
            ("/admin/\\evil", false),
            ("/admin/\nSet-Cookie: x", false),
            ("/admin/ x", false),
            ("", false),
            ("/api/v1/admin/keys", false),
        ] {
            assert_eq!(safe_back(back).is_some(), ok, "{back:?}");
        }
    }

    #[test]
    fn form_fields() {
        let f = FormData(vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "".into()),
        ]);
        assert_eq!((f.get("a"), f.get("b"), f.get("c")), ("1", "", ""));
    }
}
