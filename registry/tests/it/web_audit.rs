//! Admin page audit log: 50 events a page, newest first, "Older" pages
//! back without gaps or repeats; filters by user and kind; text search in
//! actor, source, key and details, with paging over the matches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::web::Web;
use pra_registry::model::AuditEvent;

/// Ids of the rows shown, in order.
fn ids(html: &str) -> Vec<i64> {
    html.split("<tr data-id=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The "Older" link, unescaped.
fn older(html: &str) -> Option<String> {
    let end = html.find("\">Older →</a>")?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(html[start..end].replace("&amp;", "&"))
}

fn seed(web: &Web) -> Vec<i64> {
    for i in 0..120 {
        let user = ["alice", "bob", "carol"][i % 3];
        web.api
            .store
            .record(&AuditEvent {
                kind: if i % 2 == 0 {
                    "login.ok"
                } else {
                    "forward.refused"
                }
                .into(),
                actor: format!("gateway:gw{}", i % 4),
                user: Some(user.into()),
                fingerprint: None,
                source: Some(format!("10.0.{}.{}:5000", i / 100, i % 100)),
                detail: serde_json::json!({ "target": format!("host-{i}.corp:22") }),
            })
            .unwrap();
    }
    let mut all: Vec<i64> = web
        .api
        .store
        .audit(&pra_registry::model::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    all
}

#[tokio::test]
async fn pages_back_through_the_whole_log() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    let all = seed(&web); // 120 + the token's creation + the sign-in
    assert_eq!(all.len(), 122);

    let mut seen = Vec::new();
    let mut path = "/admin/audit".to_string();
    let mut pages = 0;
    loop {
        let html = b.page(&path).await;
        let got = ids(&html);
        assert!(got.len() <= 50);
        seen.extend(got);
        // later pages link back to the newest
        assert_eq!(html.contains("← Newest"), pages > 0, "{path}");
        pages += 1;
        match older(&html) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all, "newest first, no gaps, no repeats");
    web.api.stop().await;
}

#[tokio::test]
async fn filters_and_text_search() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    seed(&web);

    let html = b.page("/admin/audit?user=bob&kind=forward").await;
    let rows = ids(&html);
    // i % 3 == 1 and i odd: i = 1, 7, 13, … (20 of them)
    assert_eq!(rows.len(), 20);
    assert!(older(&html).is_none());
    assert!(html.contains("name=\"user\" value=\"bob\""));

    // text in the details
    let html = b.page("/admin/audit?q=HOST-7.corp").await;
    assert_eq!(ids(&html).len(), 1, "case-insensitive, exact host");
    assert!(html.contains("target=host-7.corp:22"));
    // text in the source, with paging over the matches
    let html = b.page("/admin/audit?q=10.0.0.").await;
    assert_eq!(ids(&html).len(), 50);
    let next = older(&html).unwrap();
    assert!(
        next.contains("q=10.0.0.") && next.contains("before="),
        "{next}"
    );
    let html = b.page(&next).await;
    assert_eq!(ids(&html).len(), 50);
    assert!(older(&html).is_none());
    // actor, combined with a kind filter
    let html = b.page("/admin/audit?q=gateway%3Agw3&kind=forward").await;
    assert_eq!(ids(&html).len(), 30);
    // the admin's own sign-in is there
    let html = b.page("/admin/audit?q=web%3Aops").await;
    assert_eq!(ids(&html).len(), 1);
    assert!(html.contains("web.login"));

    let html = b.page("/admin/audit?q=nothing-like-this").await;
    assert!(html.contains("No event matches."));
    assert_eq!(b.get("/admin/audit?before=abc").await.status, 400);
    web.api.stop().await;
}
