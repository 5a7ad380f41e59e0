//! Paging API keys: newest first (createdAt, then id, descending), as Stripe and Peach
//! list, with `startingAfter`/`endingBefore` cursors and an `offset` from the cursor.

use time::OffsetDateTime;

use super::{Caller, Control, ControlError};
use crate::model::{ApiKey, ApiKeyStatus};

/// Default page size.
pub(crate) const DEFAULT_LIMIT: usize = 25;
/// Largest page size.
pub(crate) const MAX_LIMIT: usize = 100;

/// A checked list request.
#[derive(Debug, Clone)]
pub(crate) struct PageRequest {
    pub(crate) status: ApiKeyStatus,
    /// 1..=100.
    pub(crate) limit: usize,
    /// Keys skipped from the cursor in the direction of travel.
    pub(crate) offset: u64,
    pub(crate) starting_after: Option<String>,
    /// Wins over `starting_after`.
    pub(crate) ending_before: Option<String>,
}

/// One page, with the cursors of its neighbours.
#[derive(Debug)]
pub(crate) struct Page {
    /// Keys with the requested status.
    pub(crate) total: usize,
    pub(crate) keys: Vec<ApiKey>,
    /// `startingAfter` for the next page, if there is one.
    pub(crate) next: Option<String>,
    /// `endingBefore` for the previous page, if there is one.
    pub(crate) previous: Option<String>,
}

type SortKey = (OffsetDateTime, String);

fn sort_key(key: &ApiKey) -> SortKey {
    (key.created_at, key.id.clone())
}

impl Control {
    /// One page of the caller's company's API keys.
    pub(crate) async fn api_key_page(
        &self,
        caller: &Caller,
        request: &PageRequest,
    ) -> Result<Page, ControlError> {
        caller.require_company_wide()?;
        let all = self.store.api_keys(caller.company).await?;
        page(all, request)
    }
}

/// Cuts the page out of a company's keys.
fn page(mut all: Vec<ApiKey>, request: &PageRequest) -> Result<Page, ControlError> {
    all.sort_by_key(|k| std::cmp::Reverse(sort_key(k)));
    let cursor = |id: &String, name: &str| {
        all.iter()
            .find(|k| &k.id == id)
            .map(sort_key)
            .ok_or_else(|| ControlError::Invalid(format!("{name}: no API key has the id `{id}`")))
    };
    let ending_before = request
        .ending_before
        .as_ref()
        .map(|id| cursor(id, "endingBefore"))
        .transpose()?;
    let starting_after = request
        .starting_after
        .as_ref()
        .map(|id| cursor(id, "startingAfter"))
        .transpose()?;
    let filtered: Vec<ApiKey> = all
        .into_iter()
        .filter(|k| k.status == request.status)
        .collect();
    let (start, end) = bounds(&filtered, request, ending_before, starting_after);
    let next = (end < filtered.len() && end > start).then(|| filtered[end - 1].id.clone());
    let previous = (start > 0 && end > start).then(|| filtered[start].id.clone());
    let total = filtered.len();
    let keys = filtered.into_iter().skip(start).take(end - start).collect();
    Ok(Page {
        total,
        keys,
        next,
        previous,
    })
}

/// The slice of the newest-first list a request asks for. `endingBefore` wins over
/// `startingAfter`; `offset` skips from the cursor in the direction of travel, and
/// saturates (an offset past either end gives an empty page).
fn bounds(
    list: &[ApiKey],
    request: &PageRequest,
    ending_before: Option<SortKey>,
    starting_after: Option<SortKey>,
) -> (usize, usize) {
    let offset = usize::try_from(request.offset).unwrap_or(usize::MAX);
    if let Some(cursor) = ending_before {
        let end = list
            .partition_point(|k| sort_key(k) > cursor)
            .saturating_sub(offset);
        return (end.saturating_sub(request.limit), end);
    }
    let start = match starting_after {
        Some(cursor) => list.partition_point(|k| sort_key(k) >= cursor),
        None => 0,
    };
    let start = start.saturating_add(offset).min(list.len());
    (start, start.saturating_add(request.limit).min(list.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::api_keys::new_api_key_record;

    fn keys(n: usize) -> Vec<ApiKey> {
        let start = crate::clock::now();
        (0..n)
            .map(|i| {
                let mut key = new_api_key_record("api_x", 1, None, format!("u{i}"));
                key.id = format!("{i:03}");
                key.created_at = start + time::Duration::seconds(i as i64);
                key
            })
            .collect()
    }

    fn request(
        offset: u64,
        starting_after: Option<&str>,
        ending_before: Option<&str>,
    ) -> PageRequest {
        PageRequest {
            status: ApiKeyStatus::Active,
            limit: 3,
            offset,
            starting_after: starting_after.map(String::from),
            ending_before: ending_before.map(String::from),
        }
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.keys.iter().map(|k| k.id.as_str()).collect()
    }

    #[test]
    fn pages_run_newest_first_with_cursors() {
        let first = page(keys(7), &request(0, None, None)).unwrap();
        assert_eq!(ids(&first), ["006", "005", "004"]);
        assert_eq!(first.next.as_deref(), Some("004"));
        assert_eq!(first.previous, None);
        let second = page(keys(7), &request(0, Some("004"), None)).unwrap();
        assert_eq!(ids(&second), ["003", "002", "001"]);
        let back = page(keys(7), &request(0, Some("000"), Some("003"))).unwrap();
        assert_eq!(ids(&back), ["006", "005", "004"]);
    }

    #[test]
    fn huge_offsets_saturate_into_an_empty_page() {
        for (after, before) in [(None, None), (Some("004"), None), (None, Some("003"))] {
            let page = page(keys(7), &request(u64::MAX, after, before)).unwrap();
            assert!(page.keys.is_empty());
            assert_eq!((page.next, page.previous), (None, None));
        }
    }

    #[test]
    fn unknown_cursors_name_the_parameter() {
        let error = page(keys(2), &request(0, Some("nope"), None)).unwrap_err();
        assert!(error.to_string().contains("startingAfter"));
    }
}
