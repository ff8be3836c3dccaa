//! GitHub's list endpoints answer one page at a time (`per_page` at most 100) and name the
//! next page in the `Link` header
//! ([Using pagination in the REST API](https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api)).
//! A lookup that reads only the first page misses what lies further on (a card in a thread
//! of 250 comments) and makes it again; every list Greenlight reads is paged through here.

use http::HeaderMap;

/// Items asked for per page: GitHub's maximum.
pub const PER_PAGE: u32 = 100;

/// At most this many pages of one list are read (10,000 items at [`PER_PAGE`]): a list
/// longer than that is an error, not a silent "not found" that would make something twice.
pub const MAX_PAGES: usize = 100;

/// `uri` with `per_page=100` added (its query kept).
pub fn first_page(uri: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}per_page={PER_PAGE}")
}

/// The path and query of the `rel="next"` link, if there is a next page. Only the path is
/// kept: requests always go to the configured API host (the client adds it), whatever host
/// a header names, so the installation's token is never sent elsewhere.
pub fn next_path(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
            if !is_next {
                return None;
            }
            let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let uri: http::Uri = url.parse().ok()?;
            uri.path_and_query().map(|pq| pq.as_str().to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(link: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::LINK, link.parse().expect("header"));
        h
    }

    #[test]
    fn finds_the_next_page_among_the_links() {
        // The example of GitHub's pagination guide.
        let h = headers(
            "<https://api.github.com/repositories/1300192/issues?page=2>; rel=\"prev\", <https://api.github.com/repositories/1300192/issues?page=4>; rel=\"next\", <https://api.github.com/repositories/1300192/issues?page=515>; rel=\"last\", <https://api.github.com/repositories/1300192/issues?page=1>; rel=\"first\"",
        );
        assert_eq!(
            next_path(&h).as_deref(),
            Some("/repositories/1300192/issues?page=4")
        );
    }

    #[test]
    fn the_last_page_has_no_next() {
        let h = headers(
            "<https://api.github.com/repositories/1/issues?page=1>; rel=\"first\", <https://api.github.com/repositories/1/issues?page=2>; rel=\"prev\"",
        );
        assert_eq!(next_path(&h), None);
        assert_eq!(next_path(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_path_is_kept_whatever_the_host() {
        let h = headers(
            "<https://evil.example/api/v3/repos/a/b/issues/1/comments?page=2&per_page=100>; rel=\"next\"",
        );
        assert_eq!(
            next_path(&h).as_deref(),
            Some("/api/v3/repos/a/b/issues/1/comments?page=2&per_page=100")
        );
    }

    #[test]
    fn per_page_joins_the_query() {
        assert_eq!(first_page("/a"), "/a?per_page=100");
        assert_eq!(first_page("/a?sha=1"), "/a?sha=1&per_page=100");
    }
}
