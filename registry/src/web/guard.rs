//! The page's protections that do not depend on a session: cookies, the
//! cross-site refusal, response headers, constant-time comparison. The
//! decisions are pure functions of the request's headers.

use super::view;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every answer: nothing but this server's
/// stylesheet may load, forms only post here, no framing, no `<base>`.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Session cookie name on HTTPS (`__Host-`: Secure, Path=/, no Domain).
pub const SESSION_COOKIE_SECURE: &str = "__Host-pra_admin";
/// Session cookie name on plain HTTP.
pub const SESSION_COOKIE_PLAIN: &str = "pra_admin";
/// Sign-in form's double-submit cookie on HTTPS.
pub const LOGIN_COOKIE_SECURE: &str = "__Host-pra_login";
/// Sign-in form's double-submit cookie on plain HTTP.
pub const LOGIN_COOKIE_PLAIN: &str = "pra_login";

/// Did the browser reach us over HTTPS? True when a TLS-terminating proxy
/// says so (`X-Forwarded-Proto: https` or `Forwarded: proto=https`). A
/// client that claims it falsely only gets a cookie its own browser will
/// not send back over plain HTTP.
pub fn is_https(headers: &HeaderMap) -> bool {
    let xfp = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let fwd = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|kv| {
                kv.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("proto")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    xfp || fwd
}

/// Which cookie names and attributes apply to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieScheme {
    /// Reached over HTTPS: `Secure` cookies with the `__Host-` prefix.
    pub secure: bool,
}

impl CookieScheme {
    /// The scheme of this request.
    pub fn of(headers: &HeaderMap) -> CookieScheme {
        CookieScheme {
            secure: is_https(headers),
        }
    }

    /// Name of the session cookie.
    pub fn session_name(self) -> &'static str {
        if self.secure {
            SESSION_COOKIE_SECURE
        } else {
            SESSION_COOKIE_PLAIN
        }
    }

    /// Name of the sign-in form's cookie.
    pub fn login_name(self) -> &'static str {
        if self.secure {
            LOGIN_COOKIE_SECURE
        } else {
            LOGIN_COOKIE_PLAIN
        }
    }

    /// A `Set-Cookie` value. `path` is used on plain HTTP; `__Host-`
    /// cookies must have `Path=/`. `max_age` in seconds; `None` makes a
    /// cookie that ends with the browser session; `Some(0)` deletes it.
    pub fn set_cookie(self, name: &str, value: &str, path: &str, max_age: Option<u64>) -> String {
        let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict");
        if self.secure {
            c.push_str("; Secure; Path=/");
        } else {
            c.push_str("; Path=");
            c.push_str(path);
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        c
    }
}

/// The value of cookie `name` in the request's `Cookie` headers. Values
/// that are not plain cookie-octets are ignored.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 256
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Equal strings, compared in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Why a state-changing request is refused as cross-site, if it is.
///
/// - `Sec-Fetch-Site` (sent by every current browser) must be `same-origin`;
/// - without it, an `Origin` header must name this host (`Host`);
/// - without either (an old browser, a script), the CSRF token decides.
///
/// GET, HEAD and OPTIONS are never refused here (they change nothing).
pub fn cross_site(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return (!site.eq_ignore_ascii_case("same-origin"))
            .then_some("the request came from another site (Sec-Fetch-Site)");
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or_default();
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let ok = authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host));
        return (!ok).then_some("the request came from another site (Origin)");
    }
    None
}

/// Middleware: refuse cross-site state changes with 403 before any
/// extractor or handler runs.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if let Some(why) = cross_site(req.method(), req.headers()) {
        tracing::warn!(
            method = %req.method(),
            path = %pra_proto::sanitize::sanitize(req.uri().path(), 200),
            reason = why,
            "admin page: cross-site request refused"
        );
        return view::error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request came from another site or page, so nothing was changed. \
             Use the buttons of the admin page itself.",
        )
        .into_response();
    }
    next.run(req).await
}

/// Middleware: the security headers of every answer of the page.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cross_site_decisions() {
        let host = ("host", "127.0.0.1:10088");
        // (method, headers, refused?)
        type Case<'a> = (Method, Vec<(&'a str, &'a str)>, bool);
        #[rustfmt::skip]
        let cases: &[Case<'_>] = &[
            (Method::POST, vec![host], false),
            (Method::POST, vec![host, ("sec-fetch-site", "same-origin")], false),
            (Method::POST, vec![host, ("sec-fetch-site", "cross-site")], true),
            (Method::POST, vec![host, ("sec-fetch-site", "same-site")], true),
            (Method::POST, vec![host, ("sec-fetch-site", "none")], true),
            (Method::POST, vec![host, ("sec-fetch-site", "same-origin"), ("origin", "http://evil.example")], false),
            (Method::POST, vec![host, ("origin", "http://127.0.0.1:10088")], false),
            (Method::POST, vec![host, ("origin", "https://127.0.0.1:10088")], false),
            (Method::POST, vec![host, ("origin", "http://127.0.0.1:10089")], true),
            (Method::POST, vec![host, ("origin", "http://evil.example")], true),
            (Method::POST, vec![host, ("origin", "null")], true),
            (Method::POST, vec![("origin", "http://127.0.0.1:10088")], true),
            (Method::DELETE, vec![host, ("origin", "http://evil.example")], true),
            (Method::GET, vec![host, ("sec-fetch-site", "cross-site")], false),
            (Method::HEAD, vec![host, ("origin", "http://evil.example")], false),
        ];
        for (m, h, refused) in cases {
            assert_eq!(cross_site(m, &headers(h)).is_some(), *refused, "{m} {h:?}");
        }
    }

    #[test]
    fn cookies_parse_and_build() {
        let h = headers(&[
            ("cookie", "a=1; pra_admin=abc-_DEF; other=\"x\""),
            ("cookie", "b=2"),
        ]);
        assert_eq!(cookie(&h, "pra_admin"), Some("abc-_DEF"));
        assert_eq!(cookie(&h, "other"), Some("x"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "missing"), None);
        let h = headers(&[("cookie", "pra_admin=a<b")]);
        assert_eq!(cookie(&h, "pra_admin"), None);

        let plain = CookieScheme { secure: false };
        assert_eq!(
            plain.set_cookie("pra_admin", "v", "/admin", None),
            "pra_admin=v; HttpOnly; SameSite=Strict; Path=/admin"
        );
        let secure = CookieScheme { secure: true };
        assert_eq!(
            secure.set_cookie(secure.session_name(), "v", "/admin", Some(0)),
            "__Host-pra_admin=v; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=0"
        );
    }

    #[test]
    fn https_detection() {
        for (h, want) in [
            (vec![], false),
            (vec![("x-forwarded-proto", "https")], true),
            (vec![("x-forwarded-proto", "HTTPS, http")], true),
            (vec![("x-forwarded-proto", "http")], false),
            (vec![("forwarded", "for=1.2.3.4;proto=https")], true),
            (vec![("forwarded", "proto=\"https\";host=x")], true),
            (vec![("forwarded", "proto=http")], false),
        ] {
            assert_eq!(is_https(&headers(&h)), want, "{h:?}");
        }
    }

    #[test]
    fn constant_time_equality() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(same("", ""));
    }
}
