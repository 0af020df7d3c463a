//! Sign-in attempts are rate limited per source: 5 at once, then one every
//! 12 s; while limited even the right token is refused (429, Retry-After).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::web::{Browser, Web, flash};
use std::time::Duration;

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_source() {
    let web = Web::start().await;
    let mut b = Browser::new(web.addr());
    for i in 0..5 {
        let r = b.sign_in(&format!("pra_guess_{i}")).await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = b.sign_in(&web.token).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(
        flash(&r.text())
            .unwrap()
            .contains("Too many sign-in attempts")
    );
    assert!(!b.cookies.contains_key("pra_admin"));
    // still limited a moment later
    web.clock.advance(Duration::from_secs(11));
    assert_eq!(b.sign_in(&web.token).await.status, 429);
    // one attempt comes back every 12 s
    web.clock.advance(Duration::from_secs(1));
    let r = b.sign_in(&web.token).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(b.cookies.contains_key("pra_admin"));
    assert_eq!(b.sign_in("pra_guess").await.status, 429);
    // pages of a signed-in admin are not limited
    for _ in 0..20 {
        b.page("/admin").await;
    }
    web.api.stop().await;
}
