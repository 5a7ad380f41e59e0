//! Paging `/v1/keys`: newest first, cursors both ways, offsets, bad parameters.

use std::collections::HashSet;

use serde_json::json;

use super::{start, Store};
use crate::support::AdminClient;

on_both_stores!(
    paging_visits_every_key_once_in_both_directions,
    offsets_skip_from_the_cursor_and_saturate,
    bad_list_parameters_give_422_naming_them,
);

/// Follows `nextUrl` from the first page, then `previousUrl` back; both walks.
async fn walk(admin: &AdminClient, status: &str, limit: usize) -> (Vec<String>, Vec<String>) {
    let mut forward = Vec::new();
    let mut url = format!("/v1/keys?status={status}&limit={limit}");
    let mut pages = Vec::new();
    loop {
        let page = admin.api_keys(&url).await.unwrap();
        assert_eq!((page.status, page.count), (200, page.data.len()));
        assert!(page.data.len() <= limit);
        forward.extend(page.ids());
        let next = page.next_url.clone();
        pages.push(page);
        match next {
            Some(next) => {
                assert!(!next.contains("offset"));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages[0].previous_url, None);
    let last = pages.last().unwrap();
    let mut backward = Vec::new();
    let mut ids = last.ids();
    let mut previous = last.previous_url.clone();
    loop {
        ids.reverse();
        backward.extend(ids);
        let Some(url) = previous else { break };
        let page = admin.api_keys(&url).await.unwrap();
        assert!(
            page.next_url.is_some(),
            "a page walked back to has a next page"
        );
        ids = page.ids();
        previous = page.previous_url;
    }
    backward.reverse();
    (forward, backward)
}

/// A fresh company with `n` keys; its owner's client and the ids, newest first.
async fn company_with_keys(admin: &AdminClient, n: usize) -> (AdminClient, Vec<String>) {
    let company = admin.create_company("Paged").await.unwrap();
    let owner = company.api_key.unwrap();
    let owner_admin = admin.as_key(&owner.key);
    let mut created = vec![owner.id];
    while created.len() < n {
        let key = owner_admin
            .create_api_key(json!({"userId": format!("u{}", created.len())}))
            .await
            .unwrap();
        created.push(key.id);
    }
    created.reverse();
    (owner_admin, created)
}

async fn paging_visits_every_key_once_in_both_directions(store: Store) {
    let app = start(store).await;
    let (owner, _) = company_with_keys(&app.admin(), 1).await;
    let (forward, backward) = walk(&owner, "inactive", 25).await;
    assert!(forward.is_empty() && backward.is_empty());
    for total in [1usize, 26, 120] {
        let (owner, newest_first) = company_with_keys(&app.admin(), total).await;
        for limit in [1, 25, 100] {
            let (forward, backward) = walk(&owner, "active", limit).await;
            assert_eq!(forward, newest_first, "total {total} limit {limit}");
            assert_eq!(backward, newest_first, "total {total} limit {limit}");
            assert_eq!(forward.iter().collect::<HashSet<_>>().len(), total);
        }
        let page = owner.api_keys("/v1/keys").await.unwrap();
        assert_eq!((page.total, page.count), (total, total.min(25)));
    }
}

async fn offsets_skip_from_the_cursor_and_saturate(store: Store) {
    let app = start(store).await;
    let (owner, all) = company_with_keys(&app.admin(), 30).await;
    let ids = |url: String| async move { owner.api_keys(&url).await.unwrap().ids() };
    assert_eq!(ids("/v1/keys?limit=5&offset=3".into()).await, all[3..8]);
    let after = format!("/v1/keys?limit=5&offset=2&startingAfter={}", all[10]);
    assert_eq!(ids(after).await, all[13..18]);
    let before = format!("/v1/keys?limit=5&offset=2&endingBefore={}", all[20]);
    assert_eq!(ids(before).await, all[13..18]);
    // endingBefore wins over startingAfter.
    let both = format!(
        "/v1/keys?limit=2&startingAfter={}&endingBefore={}",
        all[0], all[5]
    );
    assert_eq!(ids(both).await, all[3..5]);
    // Past the end, from the start or from a cursor, with the largest offset: empty.
    for url in [
        "/v1/keys?offset=1000".to_string(),
        format!(
            "/v1/keys?limit=3&startingAfter={}&offset=9223372036854775807",
            all[4]
        ),
        format!(
            "/v1/keys?limit=3&endingBefore={}&offset=9223372036854775807",
            all[4]
        ),
    ] {
        let page = owner.api_keys(&url).await.unwrap();
        assert_eq!((page.count, page.total), (0, 30), "{url}");
        assert_eq!((page.next_url, page.previous_url), (None, None));
    }
}

async fn bad_list_parameters_give_422_naming_them(store: Store) {
    let app = start(store).await;
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=18446744073709551615", "offset"),
        ("offset=9223372036854775808", "offset"),
        ("status=deleted", "status"),
        ("startingAfter=nope", "startingAfter"),
        ("endingBefore=nope", "endingBefore"),
    ] {
        let error = app
            .admin()
            .api_keys(&format!("/v1/keys?{query}"))
            .await
            .unwrap_err();
        assert!(error.is(422, "InvalidValue").contains(name), "{query}");
    }
}
