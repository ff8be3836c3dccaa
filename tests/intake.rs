//! Webhook intake over real HTTP: every documented status, stored exactly once, nothing stored
//! for a rejected request.

mod common;

use std::sync::Arc;

use common::NoopProcessor;
use common::*;
use greenlight::config::Secrets;
use greenlight::server::Intake;
use greenlight::server::signature::{github_signature, standard_webhook_signature};
use greenlight::store::{DeliveryState, Store, now_ms};
use reqwest::StatusCode;

const PR_BODY: &[u8] = br#"{"action":"opened","number":1}"#;

async fn start(store: Store, intake: Intake) -> TestServer {
    TestServer::start(store, intake, fast_workers(1), Arc::new(NoopProcessor)).await
}

async fn stored(store: &Store) -> usize {
    store
        .list_deliveries(1000, false)
        .await
        .expect("list")
        .len()
}

#[tokio::test]
async fn github_valid_delivery_is_accepted_then_duplicate_is_200_on_every_backend() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let server = start(store.clone(), intake()).await;
        let client = reqwest::Client::new();
        let url = server.url("/webhooks/github");

        let first = github_request(&client, &url, "pull_request", "d-1", PR_BODY)
            .send()
            .await
            .expect("send");
        assert_eq!(first.status(), StatusCode::ACCEPTED, "{}", db.label);
        let again = github_request(&client, &url, "pull_request", "d-1", PR_BODY)
            .send()
            .await
            .expect("send");
        assert_eq!(again.status(), StatusCode::OK, "{}", db.label);
        assert!(again.text().await.expect("body").contains("duplicate"));

        let rows = store.list_deliveries(10, false).await.expect("list");
        assert_eq!(rows.len(), 1, "{}: stored once", db.label);
        assert_eq!(rows[0].delivery_id, "d-1");
        assert_eq!(rows[0].event, "pull_request");
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn unknown_event_is_stored_as_ignored_and_answered_202() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = start(store.clone(), intake()).await;
    let client = reqwest::Client::new();
    let res = github_request(
        &client,
        &server.url("/webhooks/github"),
        "star",
        "d-star",
        b"{}",
    )
    .send()
    .await
    .expect("send");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert!(res.text().await.expect("body").starts_with("ignored"));
    let rows = store.list_deliveries(10, false).await.expect("list");
    assert_eq!(rows[0].state, DeliveryState::Ignored);
    server.stop().await;
}

/// Each case: what is wrong, the request, the status expected. None is stored.
#[tokio::test]
async fn github_rejections_have_their_status_and_store_nothing() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = start(store.clone(), intake()).await;
    let client = reqwest::Client::new();
    let url = server.url("/webhooks/github");
    let good_sig = github_signature(GITHUB_SECRET, PR_BODY);

    let base = || {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", "d-bad")
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "missing signature",
            base().body(PR_BODY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong secret",
            base()
                .header("x-hub-signature-256", github_signature("wrong", PR_BODY))
                .body(PR_BODY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "truncated signature",
            base()
                .header("x-hub-signature-256", &good_sig[..good_sig.len() - 4])
                .body(PR_BODY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "non-hex signature",
            base()
                .header("x-hub-signature-256", format!("sha256={}", "g".repeat(64)))
                .body(PR_BODY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "signature of another body",
            base()
                .header(
                    "x-hub-signature-256",
                    github_signature(GITHUB_SECRET, b"{}"),
                )
                .body(PR_BODY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "sha1 signature only",
            base()
                .header(
                    "x-hub-signature",
                    "sha1=0000000000000000000000000000000000000000",
                )
                .body(PR_BODY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "form-encoded",
            client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", "d-bad")
                .header(
                    "x-hub-signature-256",
                    github_signature(GITHUB_SECRET, b"payload=%7B%7D"),
                )
                .body("payload=%7B%7D"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "missing event header",
            client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-delivery", "d-bad")
                .header("x-hub-signature-256", &good_sig)
                .body(PR_BODY),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing delivery header",
            client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-event", "pull_request")
                .header("x-hub-signature-256", &good_sig)
                .body(PR_BODY),
            StatusCode::BAD_REQUEST,
        ),
        (
            "malformed JSON",
            base()
                .header(
                    "x-hub-signature-256",
                    github_signature(GITHUB_SECRET, b"{\"a\":"),
                )
                .body("{\"a\":"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, request, expected) in cases {
        let res = request.send().await.expect("send");
        assert_eq!(res.status(), expected, "{what}");
        let text = res.text().await.expect("body");
        assert!(!text.trim().is_empty(), "{what}: a reason is given");
        assert!(
            !text.contains(GITHUB_SECRET),
            "{what}: no secret in the answer"
        );
    }
    assert_eq!(stored(&store).await, 0, "nothing stored");
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_and_not_stored() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = start(store.clone(), intake()).await;
    let client = reqwest::Client::new();
    let mut body = b"{\"x\":\"".to_vec();
    body.resize(26 * 1024 * 1024, b'a');
    body.extend_from_slice(b"\"}");
    let res = github_request(
        &client,
        &server.url("/webhooks/github"),
        "pull_request",
        "big",
        &body,
    )
    .send()
    .await
    .expect("send");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stored(&store).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn forge_not_configured_is_refused_with_what_to_set() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = start(store.clone(), Intake::default()).await;
    let client = reqwest::Client::new();
    let res = github_request(
        &client,
        &server.url("/webhooks/github"),
        "pull_request",
        "d",
        PR_BODY,
    )
    .send()
    .await
    .expect("send");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("GITHUB_WEBHOOK_SECRET")
    );
    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(stored(&store).await, 0);
    server.stop().await;
}

fn gitlab_post(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-gitlab-event", "Merge Request Hook")
}

#[tokio::test]
async fn gitlab_token_idempotency_key_and_body_hash() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = start(store.clone(), intake()).await;
    let client = reqwest::Client::new();
    let url = server.url("/webhooks/gitlab");
    let body = br#"{"object_kind":"merge_request"}"#;

    let ok = gitlab_post(&client, &url)
        .header("x-gitlab-token", GITLAB_TOKEN)
        .header("idempotency-key", "key-1")
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    let dup = gitlab_post(&client, &url)
        .header("x-gitlab-token", GITLAB_TOKEN)
        .header("idempotency-key", "key-1")
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(dup.status(), StatusCode::OK);

    // No Idempotency-Key (GitLab before 17.4): the body's hash identifies the delivery.
    for expected in [StatusCode::ACCEPTED, StatusCode::OK] {
        let res = gitlab_post(&client, &url)
            .header("x-gitlab-token", GITLAB_TOKEN)
            .body(br#"{"object_kind":"merge_request","n":2}"#.to_vec())
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), expected);
    }

    for (what, token) in [
        ("wrong token", Some("nope")),
        ("missing token", None),
        ("prefix", Some("test-gitlab")),
    ] {
        let mut req = gitlab_post(&client, &url)
            .header("idempotency-key", "key-x")
            .body(body.to_vec());
        if let Some(t) = token {
            req = req.header("x-gitlab-token", t);
        }
        let res = req.send().await.expect("send");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    let rows = store.list_deliveries(10, false).await.expect("list");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r.delivery_id.starts_with("sha256:")));
    server.stop().await;
}

#[tokio::test]
async fn gitlab_standard_webhooks_signature() {
    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let mut with_signing = intake();
    with_signing.gitlab_signing_keys = Some(Secrets::from(vec![KEY.to_owned()]));
    let server = start(store.clone(), with_signing).await;
    let client = reqwest::Client::new();
    let url = server.url("/webhooks/gitlab");
    let body = br#"{"object_kind":"note"}"#;
    let now = now_ms() / 1000;

    let signed = |id: &str, ts: i64, sig: String| {
        gitlab_post(&client, &url)
            .header("x-gitlab-token", GITLAB_TOKEN)
            .header("idempotency-key", id)
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.to_vec())
    };
    let ok = signed(
        "w-1",
        now,
        standard_webhook_signature(KEY, "w-1", now, body),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(ok.status(), StatusCode::ACCEPTED);

    let past = now - 301;
    let old = signed(
        "w-2",
        past,
        standard_webhook_signature(KEY, "w-2", past, body),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let future = now + 400;
    let ahead = signed(
        "w-3",
        future,
        standard_webhook_signature(KEY, "w-3", future, body),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(ahead.status(), StatusCode::UNAUTHORIZED);
    let wrong_key = signed(
        "w-4",
        now,
        standard_webhook_signature("whsec_AAAA", "w-4", now, body),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);
    let unsigned = gitlab_post(&client, &url)
        .header("x-gitlab-token", GITLAB_TOKEN)
        .header("idempotency-key", "w-5")
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(
        unsigned.status(),
        StatusCode::UNAUTHORIZED,
        "signing configured: signature required"
    );
    assert_eq!(stored(&store).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = start(store.clone(), intake()).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    github_request(
        &client,
        &server.url("/webhooks/github"),
        "pull_request",
        "m-1",
        PR_BODY,
    )
    .send()
    .await
    .expect("send");
    let text = client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains(r#"greenlight_webhook_deliveries_total{forge="github",event="pull_request",outcome="queued"} 1"#),
        "{text}"
    );
    assert!(text.contains("greenlight_queue_depth"), "{text}");
    assert!(text.contains("greenlight_dead_letters"), "{text}");
    assert!(
        text.contains("greenlight_http_request_duration_seconds"),
        "{text}"
    );
    server.stop().await;
}
