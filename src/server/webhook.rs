//! Webhook intake: authenticate the raw bytes, check the envelope, store, answer.
//!
//! No business logic runs here. The order of checks is part of the contract (README,
//! "Endpoints"): size (413, by `Content-Length` before reading) → buffer budget (503 with
//! `Retry-After`) → body in time (408) → authenticity (401) → content type (415) → headers
//! (400) → JSON well-formedness, an object at the top (400) → store (202 new, 200 duplicate;
//! 503 if storage is down).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;

use super::AppState;
use super::body::{self, Refused};
use super::signature::{self, StandardHeaders};
use crate::forge::{Forge, github, gitlab};
use crate::store::{Inserted, PendingDelivery, now_ms};

/// A webhook answer: status, the outcome label for metrics, and a short plain-text reason
/// (never a secret).
struct Answer {
    status: StatusCode,
    outcome: &'static str,
    reason: String,
    /// Seconds for `Retry-After`, when coming back later will help.
    retry_after: Option<u64>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut body = self.reason;
        body.push('\n');
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

/// A body that was not read: its answer. Nothing of it is kept.
fn refused(why: Refused) -> Answer {
    let (status, outcome, reason, retry_after) = match why {
        Refused::TooLarge(limit) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body larger than {limit} bytes"),
            None,
        ),
        Refused::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many bodies being received; retry later".to_owned(),
            Some(body::BUSY_RETRY_AFTER_SECS),
        ),
        Refused::TooSlow => (
            StatusCode::REQUEST_TIMEOUT,
            "too_slow",
            "the body did not arrive in time".to_owned(),
            None,
        ),
        Refused::Broken => (
            StatusCode::BAD_REQUEST,
            "malformed",
            "the body could not be read".to_owned(),
            None,
        ),
    };
    Answer {
        status,
        outcome,
        reason,
        retry_after,
    }
}

fn answer(status: StatusCode, reason: impl Into<String>) -> Answer {
    let outcome = match status {
        StatusCode::ACCEPTED => "queued",
        StatusCode::OK => "duplicate",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::BAD_REQUEST => "malformed",
        _ => "error",
    };
    Answer {
        status,
        outcome,
        reason: reason.into(),
        retry_after: None,
    }
}

/// `POST /webhooks/github`
pub async fn github(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // Held until the answer is made: the body's bytes stay charged to the budget until then.
    let (body, _charge) = match body::read(&state.intake.limits, &headers, body).await {
        Ok(read) => read,
        Err(why) => {
            return finish(
                &state,
                Forge::GitHub,
                &headers,
                "x-github-event",
                Err(refused(why)),
            );
        }
    };
    let forge = Forge::GitHub;
    let result = async {
        let secrets = state.intake.github_secrets.get().ok_or_else(|| {
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "GitHub webhooks are not enabled on this server: set GITHUB_WEBHOOK_SECRET",
            )
        })?;
        signature::verify_github(
            secrets.as_slice(),
            header_str(&headers, "x-hub-signature-256"),
            &body,
        )
        .map_err(|e| answer(StatusCode::UNAUTHORIZED, e.to_string()))?;
        require_json(&headers)?;
        let event = required_header(&headers, "x-github-event")?;
        let delivery_id = required_header(&headers, "x-github-delivery")?;
        require_well_formed(&body)?;
        store(
            &state,
            forge,
            event,
            delivery_id,
            &body,
            github::acts_on(event),
        )
        .await
    }
    .await;
    finish(&state, forge, &headers, "x-github-event", result)
}

/// `POST /webhooks/gitlab`
pub async fn gitlab(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // Held until the answer is made: the body's bytes stay charged to the budget until then.
    let (body, _charge) = match body::read(&state.intake.limits, &headers, body).await {
        Ok(read) => read,
        Err(why) => {
            return finish(
                &state,
                Forge::GitLab,
                &headers,
                "x-gitlab-event",
                Err(refused(why)),
            );
        }
    };
    let forge = Forge::GitLab;
    let result = async {
        let intake = &state.intake;
        if intake.gitlab_tokens.is_none() && intake.gitlab_signing_keys.is_none() {
            return Err(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "GitLab webhooks are not enabled on this server: set GITLAB_WEBHOOK_SECRET",
            ));
        }
        if let Some(tokens) = &intake.gitlab_tokens {
            signature::verify_gitlab_token(
                tokens.as_slice(),
                header_str(&headers, "x-gitlab-token"),
            )
            .map_err(|e| answer(StatusCode::UNAUTHORIZED, e.to_string()))?;
        }
        if let Some(keys) = &intake.gitlab_signing_keys {
            let std_headers = StandardHeaders {
                id: header_str(&headers, "webhook-id"),
                timestamp: header_str(&headers, "webhook-timestamp"),
                signature: header_str(&headers, "webhook-signature"),
            };
            signature::verify_standard_webhook(
                keys.as_slice(),
                std_headers,
                &body,
                now_ms() / 1000,
            )
            .map_err(|e| answer(StatusCode::UNAUTHORIZED, e.to_string()))?;
        }
        require_json(&headers)?;
        let event = required_header(&headers, "x-gitlab-event")?;
        // GitLab sends the same Idempotency-Key (and webhook-id) on every retry of one event;
        // versions before 17.4 send neither, and then the body itself identifies the delivery.
        let body_hash;
        let delivery_id = match header_str(&headers, "idempotency-key")
            .or_else(|| header_str(&headers, "webhook-id"))
        {
            Some(id) if !id.is_empty() => id,
            _ => {
                body_hash = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
                body_hash.as_str()
            }
        };
        require_well_formed(&body)?;
        store(
            &state,
            forge,
            event,
            delivery_id,
            &body,
            gitlab::acts_on(event),
        )
        .await
    }
    .await;
    finish(&state, forge, &headers, "x-gitlab-event", result)
}

/// Longest delivery id or event name accepted; real ones are a few dozen bytes.
const MAX_HEADER_VALUE: usize = 200;

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn required_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Answer> {
    match header_str(headers, name).map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= MAX_HEADER_VALUE => Ok(v),
        Some(v) if !v.is_empty() => Err(answer(
            StatusCode::BAD_REQUEST,
            format!("{name} header is too long"),
        )),
        _ => Err(answer(
            StatusCode::BAD_REQUEST,
            format!("missing {name} header"),
        )),
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), Answer> {
    let content_type = header_str(headers, "content-type").unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json (set the webhook's content type to JSON)",
        ))
    }
}

/// Well-formed JSON, in one pass: UTF-8 (checked first: a borrowed string is not re-checked),
/// syntactically valid, an object at the top (every forge event is one: an array, a string, a
/// number or `null` is not a delivery, and storing it would only dead-letter it), and nested
/// less than 128 levels deep (serde_json's recursion limit, which [`WellFormed`] walks into;
/// skipping a value with `IgnoredAny` has no depth limit).
fn require_well_formed(body: &[u8]) -> Result<(), Answer> {
    let bad = |why: String| answer(StatusCode::BAD_REQUEST, format!("malformed JSON: {why}"));
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
    serde_json::from_str::<TopObject>(text)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

/// The top of a delivery: a JSON object, walked like [`WellFormed`]; anything else is refused.
struct TopObject;

impl<'de> serde::Deserialize<'de> for TopObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TopObject)
    }
}

impl<'de> serde::de::Visitor<'de> for TopObject {
    type Value = TopObject;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object (a webhook event)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self, A::Error> {
        WellFormed.visit_map(map).map(|_| TopObject)
    }
}

/// Any JSON value, walked and not kept: arrays and objects are entered (so the parser's
/// recursion limit applies), everything else is parsed and dropped.
struct WellFormed;

impl<'de> serde::Deserialize<'de> for WellFormed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WellFormed)
    }
}

impl<'de> serde::de::Visitor<'de> for WellFormed {
    type Value = WellFormed;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<WellFormed>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, WellFormed>()?
            .is_some()
        {}
        Ok(self)
    }
}

async fn store(
    state: &AppState,
    forge: Forge,
    event: &str,
    delivery_id: &str,
    body: &Bytes,
    actionable: bool,
) -> Result<Answer, Answer> {
    let new = PendingDelivery {
        forge: forge.as_str(),
        delivery_id: delivery_id.to_owned(),
        event: event.to_owned(),
        payload: body.clone(),
        actionable,
    };
    match state.writer.insert(new).await {
        Ok(Inserted::New(id)) => {
            if actionable {
                state.wake.notify_one();
                tracing::info!(id, delivery = delivery_id, event, "delivery queued");
                Ok(answer(StatusCode::ACCEPTED, "queued"))
            } else {
                tracing::debug!(
                    id,
                    delivery = delivery_id,
                    event,
                    "delivery stored as ignored"
                );
                Ok(Answer {
                    status: StatusCode::ACCEPTED,
                    outcome: "ignored",
                    reason: "ignored: Greenlight does not act on this event".into(),
                    retry_after: None,
                })
            }
        }
        Ok(Inserted::Duplicate) => Ok(answer(StatusCode::OK, "duplicate delivery: already stored")),
        Err(e) => {
            tracing::error!(error = %e, delivery = delivery_id, "cannot store delivery");
            Err(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; retry the delivery",
            ))
        }
    }
}

fn finish(
    state: &AppState,
    forge: Forge,
    headers: &HeaderMap,
    event_header: &str,
    result: Result<Answer, Answer>,
) -> Response {
    let answer = match result {
        Ok(a) | Err(a) => a,
    };
    // Label by event only for events we know, so unauthenticated callers cannot mint series.
    let event = header_str(headers, event_header).unwrap_or("");
    let known = match forge {
        Forge::GitHub => github::acts_on(event),
        Forge::GitLab => gitlab::acts_on(event),
    };
    state.metrics.delivery(
        forge.as_str(),
        if known { event } else { "other" },
        answer.outcome,
    );
    if !answer.status.is_success() {
        tracing::info!(forge = forge.as_str(), status = answer.status.as_u16(), reason = %answer.reason, "webhook rejected");
    }
    answer.into_response()
}

#[cfg(test)]
mod tests {
    use super::require_well_formed;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn well_formed_json_is_checked_in_one_pass_with_a_depth_limit() {
        for ok in [
            r#"{"a":[1,{"b":"[[[["}],"c":-1.5e3,"d":null,"e":true}"#,
            r#"{"a":["\"[[[", [], "\u00e9"]}"#,
            " { } ",
        ] {
            assert!(require_well_formed(ok.as_bytes()).is_ok(), "{ok}");
        }
        assert!(require_well_formed(format!("{{\"a\":{}}}", nested(126)).as_bytes()).is_ok());
        for bad in [
            format!("{{\"a\":{}}}", nested(127)),
            nested(128),
            "[]".to_owned(),
            "\"x\"".to_owned(),
            "3".to_owned(),
            "null".to_owned(),
            "true".to_owned(),
            nested(100_000),
            r#"{"a":1"#.to_owned(),
            r#"{"a":1}}"#.to_owned(),
            r#"{"a":"\x"}"#.to_owned(),
            r#"{a:1}"#.to_owned(),
            String::new(),
        ] {
            let refused = require_well_formed(bad.as_bytes()).expect_err(&bad);
            assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(require_well_formed(b"\"\xff\"").is_err(), "not UTF-8");
    }
}
