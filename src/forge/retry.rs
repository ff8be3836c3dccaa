//! One place for how forge calls fail: classify an HTTP answer, retry transient failures a
//! couple of times in-call, and turn rate limits into a "come back later" for the job queue
//! instead of hammering the forge. Shared by the GitHub and GitLab clients.

use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::store::now_ms;

/// A forge call that did not give us what we asked for.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// Primary or secondary rate limit: retry the job after this long.
    #[error("rate limited by the forge; retrying in {}s", .0.as_secs())]
    RateLimited(Duration),
    /// Not even tried: an earlier answer told this installation to wait, for this much longer.
    #[error("waiting out the forge's rate limit for another {}ms", .0.as_millis())]
    Paused(Duration),
    /// Network trouble, timeouts, 5xx: worth retrying.
    #[error("forge unavailable: {0}")]
    Transient(String),
    /// The resource does not exist (or the installation cannot see it).
    #[error("not found")]
    NotFound,
    /// The forge refused the request (4xx): retrying the same request will not help.
    #[error("forge refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
}

/// Timeout for one forge request, connection to last byte. Forge APIs answer in well under a
/// second; ten seconds means the request is stuck.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// In-call retries of transient failures before the job itself is retried with backoff.
pub const IN_CALL_RETRIES: u32 = 2;

/// Pause before in-call retry `n` (1-based): 250 ms, then 1 s.
pub fn in_call_pause(n: u32) -> Duration {
    Duration::from_millis(250 * 4u64.pow(n.saturating_sub(1)))
}

/// A forge answer that succeeded: 2xx, or 304 to a conditional request.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status (200, 201, 204, 304…).
    pub status: StatusCode,
    /// Its headers (`etag`, pagination…).
    pub headers: HeaderMap,
    /// Its body, as text.
    pub body: String,
}

impl Answer {
    /// The body as `T`; an answer of another shape is a transient failure (a proxy's error
    /// page, a forge mid-deploy), worth a retry.
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ForgeError> {
        serde_json::from_str(&self.body)
            .map_err(|e| ForgeError::Transient(format!("unexpected answer: {e}")))
    }
}

/// An answer received in full: a success ([`Answer`]) or its failure, [classified](classify).
pub fn answer(status: StatusCode, headers: HeaderMap, body: String) -> Result<Answer, ForgeError> {
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        Ok(Answer {
            status,
            headers,
            body,
        })
    } else {
        Err(classify(status, &headers, &body, now_ms() / 1000))
    }
}

/// One forge call, `once` being a single request: transient failures retried
/// [`IN_CALL_RETRIES`] times after [`in_call_pause`], except a POST's. A POST that failed may
/// still have been carried out (the answer was lost): repeating it here could post twice or
/// start a second deploy; the job retries it instead, first looking for what an earlier
/// attempt may have created. Rate limits and refusals come back at once, for the job queue.
pub async fn with_retries<T, F, Fut>(
    forge: &'static str,
    method: &Method,
    path: &str,
    mut once: F,
) -> Result<T, ForgeError>
where
    T: CallStatus,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ForgeError>>,
{
    let retries = if method == Method::POST {
        0
    } else {
        IN_CALL_RETRIES
    };
    let mut attempt = 0;
    loop {
        let started = std::time::Instant::now();
        let result = once().await;
        let status = match &result {
            Ok(answer) => Some(answer.status().to_string()),
            Err(ForgeError::Paused(_)) => None,
            Err(ForgeError::RateLimited(_)) => Some("rate_limited".to_owned()),
            Err(ForgeError::NotFound) => Some("404".to_owned()),
            Err(ForgeError::Rejected { status, .. }) => Some(status.to_string()),
            Err(ForgeError::Transient(_)) => Some("error".to_owned()),
        };
        if let Some(status) = status {
            crate::metrics::record(|m| {
                m.forge_call(
                    forge,
                    crate::metrics::route_template(method.as_str(), path),
                    status,
                    started.elapsed(),
                );
            });
        }
        match result {
            Err(ForgeError::Transient(reason)) if attempt < retries => {
                attempt += 1;
                tracing::debug!(forge, %method, path, attempt, %reason, "retrying forge call");
                tokio::time::sleep(in_call_pause(attempt)).await;
            }
            other => return other,
        }
    }
}

/// What a forge call's metrics record of a success: its HTTP status.
pub trait CallStatus {
    fn status(&self) -> u16;
}

impl CallStatus for Answer {
    fn status(&self) -> u16 {
        self.status.as_u16()
    }
}

/// When GitHub's secondary rate limit says nothing about when to come back, its docs say to
/// wait at least a minute.
pub const SECONDARY_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Classifies a non-success answer. `now_unix` is the current time in seconds (for
/// `x-ratelimit-reset` / `RateLimit-Reset`, which are absolute epoch seconds).
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str, now_unix: i64) -> ForgeError {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let remaining = header("x-ratelimit-remaining").or_else(|| header("ratelimit-remaining"));
    let reset = header("x-ratelimit-reset")
        .or_else(|| header("ratelimit-reset"))
        .and_then(|v| v.parse::<i64>().ok());

    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::FORBIDDEN {
        if let Some(secs) = retry_after {
            return ForgeError::RateLimited(Duration::from_secs(secs.max(1)));
        }
        if remaining == Some("0") {
            let wait = reset.map_or(60, |r| (r - now_unix).max(1));
            return ForgeError::RateLimited(Duration::from_secs(wait as u64));
        }
        let lower = body.to_ascii_lowercase();
        if status == StatusCode::TOO_MANY_REQUESTS || lower.contains("rate limit") {
            return ForgeError::RateLimited(SECONDARY_LIMIT_DEFAULT_WAIT);
        }
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return ForgeError::Transient(format!("HTTP {}", status.as_u16()));
    }
    if status == StatusCode::NOT_FOUND {
        return ForgeError::NotFound;
    }
    ForgeError::Rejected {
        status: status.as_u16(),
        message: short_message(body),
    }
}

/// The forge's `message` field, or the start of the body: enough to act on, never the whole
/// payload.
fn short_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    message.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn retry_after_is_honoured() {
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "30")]),
            "",
            0,
        );
        assert!(matches!(e, ForgeError::RateLimited(d) if d == Duration::from_secs(30)));
        let e = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "7")]),
            "",
            0,
        );
        assert!(matches!(e, ForgeError::RateLimited(d) if d == Duration::from_secs(7)));
    }

    #[test]
    fn exhausted_primary_limit_waits_until_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1100"),
        ]);
        let e = classify(StatusCode::FORBIDDEN, &h, "", 1000);
        assert!(matches!(e, ForgeError::RateLimited(d) if d == Duration::from_secs(100)));
        let gitlab = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "1010")]);
        let e = classify(StatusCode::TOO_MANY_REQUESTS, &gitlab, "", 1000);
        assert!(matches!(e, ForgeError::RateLimited(d) if d == Duration::from_secs(10)));
    }

    #[test]
    fn secondary_limit_without_headers_waits_a_minute() {
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        let e = classify(StatusCode::FORBIDDEN, &HeaderMap::new(), body, 0);
        assert!(matches!(e, ForgeError::RateLimited(d) if d == SECONDARY_LIMIT_DEFAULT_WAIT));
    }

    #[test]
    fn plain_forbidden_is_a_rejection() {
        let body = r#"{"message":"Resource not accessible by integration"}"#;
        let e = classify(StatusCode::FORBIDDEN, &HeaderMap::new(), body, 0);
        assert!(
            matches!(e, ForgeError::Rejected { status: 403, ref message } if message == "Resource not accessible by integration")
        );
    }

    #[test]
    fn server_errors_are_transient_and_404_is_not_found() {
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "", 0),
            ForgeError::Transient(_)
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &HeaderMap::new(), "", 0),
            ForgeError::NotFound
        ));
    }

    #[test]
    fn pauses_grow() {
        assert_eq!(in_call_pause(1), Duration::from_millis(250));
        assert_eq!(in_call_pause(2), Duration::from_millis(1000));
    }
}
