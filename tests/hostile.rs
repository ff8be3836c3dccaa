//! Hostile input against both webhook endpoints: every request gets its documented status,
//! nothing is stored unless the request was valid, and the server stays up.

mod common;

use std::sync::Arc;

use common::NoopProcessor;
use common::*;
use greenlight::config::Secrets;
use greenlight::server::signature::{github_signature, standard_webhook_signature};
use greenlight::store::now_ms;

const SIGNING_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const COMMENT: &str = r#"{"action":"created","issue":{"number":1,"pull_request":{}},"comment":{"id":1,"body":"/approve-release","user":{"login":"a"}}}"#;

/// One request and what it must get.
struct Case {
    name: &'static str,
    path: &'static str,
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// A delivery row is added by this request.
    stored: bool,
}

/// A valid GitHub request for `body`, to be spoilt by the case.
fn github(name: &'static str, delivery: &str, body: &[u8]) -> Case {
    Case {
        name,
        path: "/webhooks/github",
        method: "POST",
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-github-event", "issue_comment".into()),
            ("x-github-delivery", delivery.into()),
            ("x-hub-signature-256", github_signature(GITHUB_SECRET, body)),
        ],
        body: body.to_vec(),
        status: 202,
        stored: true,
    }
}

/// A valid GitLab request (token and Standard Webhooks signature) for `body`.
fn gitlab(name: &'static str, id: &str, body: &[u8]) -> Case {
    gitlab_at(name, id, body, now_ms() / 1000)
}

fn gitlab_at(name: &'static str, id: &str, body: &[u8], ts: i64) -> Case {
    Case {
        name,
        path: "/webhooks/gitlab",
        method: "POST",
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-gitlab-event", "Note Hook".into()),
            ("x-gitlab-token", GITLAB_TOKEN.into()),
            ("idempotency-key", id.into()),
            ("webhook-id", id.into()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                standard_webhook_signature(SIGNING_KEY, id, ts, body),
            ),
        ],
        body: body.to_vec(),
        status: 202,
        stored: true,
    }
}

impl Case {
    fn set(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }
    fn without(mut self, name: &'static str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self
    }
    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
    fn expect(mut self, status: u16) -> Self {
        self.status = status;
        self.stored = status == 202;
        self
    }
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
}

fn cases() -> Vec<Case> {
    let body = COMMENT.as_bytes();
    let good_sig = github_signature(GITHUB_SECRET, body);
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = vec![b' '; 30 * 1024 * 1024];
    let big_comment = format!(
        r#"{{"action":"created","issue":{{"number":1,"pull_request":{{}}}},"comment":{{"id":2,"body":"{}","user":{{"login":"a"}}}}}}"#,
        "/approve-release ".repeat(60_000)
    );
    let lookalikes = [
        "\u{ff0f}approve-release",
        "/approve\u{200d}-release",
        "/approve-release\u{200b}",
        "\u{2044}approve-release",
        "/\u{0430}pprove-release",
        "\u{0000}/approve-release\u{001b}[31m",
    ];
    let now = now_ms() / 1000;
    let mut all = vec![
        // GitHub: signatures
        github("github valid", "g-1", body),
        github("github replayed delivery id", "g-1", body).expect(200),
        github("github no signature", "g-2", body)
            .without("x-hub-signature-256")
            .expect(401),
        github("github empty signature", "g-3", body)
            .set("x-hub-signature-256", "")
            .expect(401),
        github("github bare prefix", "g-4", body)
            .set("x-hub-signature-256", "sha256=")
            .expect(401),
        github("github garbage signature", "g-5", body)
            .set("x-hub-signature-256", "hello world")
            .expect(401),
        github("github short signature", "g-6", body)
            .set("x-hub-signature-256", &good_sig[..good_sig.len() - 2])
            .expect(401),
        github("github long signature", "g-7", body)
            .set("x-hub-signature-256", &format!("{good_sig}00"))
            .expect(401),
        github("github non-hex signature", "g-8", body)
            .set(
                "x-hub-signature-256",
                &format!("sha256={}", "zz".repeat(32)),
            )
            .expect(401),
        github("github sha1 scheme", "g-9", body)
            .set("x-hub-signature-256", &good_sig.replace("sha256=", "sha1="))
            .expect(401),
        github("github wrong secret", "g-10", body)
            .set(
                "x-hub-signature-256",
                &github_signature("not-the-secret", body),
            )
            .expect(401),
        github("github signature of another body", "g-11", body)
            .body(br#"{"action":"created","issue":{"number":2}}"#)
            .expect(401),
        github("github legacy sha1 header only", "g-12", body)
            .without("x-hub-signature-256")
            .set(
                "x-hub-signature",
                "sha1=0000000000000000000000000000000000000000",
            )
            .expect(401),
        // GitHub: bodies
        github("github truncated json", "g-13", &body[..body.len() / 2]).expect(400),
        github("github deeply nested json", "g-14", nested.as_bytes()).expect(400),
        github("github empty body", "g-15", b"").expect(400),
        github("github invalid utf-8", "g-16", b"{\"a\":\"\xff\xfe\"}").expect(400),
        github("github 30 MB body", "g-17", &huge).expect(413),
        github("github huge comment body", "g-18", big_comment.as_bytes()),
        github(
            "github control characters",
            "g-19",
            br#"{"action":"created","x":"\u0000\u001b[2J\u202e"}"#,
        ),
        // GitHub: headers
        github("github text/plain", "g-20", body)
            .set("content-type", "text/plain")
            .expect(415),
        github("github form-encoded", "g-21", b"payload=%7B%7D")
            .set("content-type", "application/x-www-form-urlencoded")
            .expect(415),
        github("github no content type", "g-22", body)
            .without("content-type")
            .expect(415),
        github("github no event header", "g-23", body)
            .without("x-github-event")
            .expect(400),
        github("github no delivery header", "g-24", body)
            .without("x-github-delivery")
            .expect(400),
        github("github empty delivery header", "g-25", body)
            .set("x-github-delivery", "")
            .expect(400),
        github("github unknown event", "g-26", body).set("x-github-event", "star"),
        github("github GET", "g-27", body).method("GET").expect(405),
        // GitLab: token and signature
        gitlab("gitlab valid", "l-1", body),
        gitlab("gitlab replayed idempotency key", "l-1", body).expect(200),
        gitlab("gitlab no token", "l-2", body)
            .without("x-gitlab-token")
            .expect(401),
        gitlab("gitlab wrong token", "l-3", body)
            .set("x-gitlab-token", "nope")
            .expect(401),
        gitlab("gitlab empty token", "l-4", body)
            .set("x-gitlab-token", "")
            .expect(401),
        gitlab("gitlab token prefix", "l-5", body)
            .set("x-gitlab-token", &GITLAB_TOKEN[..4])
            .expect(401),
        gitlab("gitlab no signature", "l-6", body)
            .without("webhook-signature")
            .expect(401),
        gitlab("gitlab empty v1 signature", "l-7", body)
            .set("webhook-signature", "v1,")
            .expect(401),
        gitlab("gitlab v2 scheme", "l-8", body)
            .set(
                "webhook-signature",
                &standard_webhook_signature(SIGNING_KEY, "l-8", now, body).replace("v1,", "v2,"),
            )
            .expect(401),
        gitlab("gitlab wrong signing key", "l-9", body)
            .set(
                "webhook-signature",
                &standard_webhook_signature(
                    "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    "l-9",
                    now,
                    body,
                ),
            )
            .expect(401),
        gitlab("gitlab signature of another body", "l-10", body)
            .body(br#"{"object_kind":"note"}"#)
            .expect(401),
        gitlab("gitlab signature for another id", "l-11", body)
            .set("webhook-id", "l-other")
            .expect(401),
        gitlab_at("gitlab timestamp 10 minutes old", "l-12", body, now - 600).expect(401),
        gitlab_at("gitlab timestamp 10 minutes ahead", "l-13", body, now + 600).expect(401),
        gitlab("gitlab timestamp not a number", "l-14", body)
            .set("webhook-timestamp", "yesterday")
            .expect(401),
        // GitLab: bodies and headers
        gitlab("gitlab truncated json", "l-15", &body[..10]).expect(400),
        gitlab("gitlab deeply nested json", "l-16", nested.as_bytes()).expect(400),
        gitlab("gitlab 30 MB body", "l-17", &huge).expect(413),
        gitlab("gitlab no event header", "l-18", body)
            .without("x-gitlab-event")
            .expect(400),
        gitlab("gitlab form-encoded", "l-19", b"a=b")
            .set("content-type", "application/x-www-form-urlencoded")
            .expect(415),
        gitlab("gitlab unknown event", "l-20", body).set("x-gitlab-event", "Emoji Hook"),
    ];
    // Signed, well-formed JSON that is not an object is not an event: 400, nothing stored.
    for (i, json) in ["[]", "\"x\"", "3", "null", "[{\"action\":\"created\"}]"]
        .into_iter()
        .enumerate()
    {
        let g: &'static str = Box::leak(format!("g-not-object-{i}").into_boxed_str());
        all.push(
            github(
                "github signed JSON that is not an object",
                g,
                json.as_bytes(),
            )
            .expect(400),
        );
        let l: &'static str = Box::leak(format!("l-not-object-{i}").into_boxed_str());
        all.push(
            gitlab(
                "gitlab signed JSON that is not an object",
                l,
                json.as_bytes(),
            )
            .expect(400),
        );
    }
    // Look-alike commands are signed, valid deliveries: accepted and stored (whether they act
    // is the command parser's business, tested in the flow and parser tests).
    for (i, text) in lookalikes.iter().enumerate() {
        let payload = serde_json::json!({ "action": "created", "comment": { "body": text } });
        let bytes = serde_json::to_vec(&payload).expect("encode");
        let id: &'static str = Box::leak(format!("g-look-{i}").into_boxed_str());
        all.push(github("github look-alike command", id, &bytes));
    }
    all
}

#[tokio::test]
async fn hostile_requests_get_their_status_and_store_nothing() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let mut intake = intake();
    intake.gitlab_signing_keys = Some(Secrets::from(vec![SIGNING_KEY.to_owned()]));
    let server = TestServer::start(
        store.clone(),
        intake,
        fast_workers(1),
        Arc::new(NoopProcessor),
    )
    .await;
    let client = reqwest::Client::new();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut expected_rows = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let before = store
            .list_deliveries(10_000, false)
            .await
            .expect("list")
            .len();
        let mut req = client
            .request(case.method.parse().expect("method"), server.url(case.path))
            .body(case.body.clone());
        for (name, value) in &case.headers {
            req = req.header(*name, value.as_str());
        }
        let res = req.send().await;
        let status = match res {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                assert!(
                    !text.contains(GITHUB_SECRET)
                        && !text.contains(GITLAB_TOKEN)
                        && !text.contains(SIGNING_KEY)
                );
                if status >= 400 {
                    assert!(
                        !text.trim().is_empty(),
                        "{}: every refusal says why",
                        case.name
                    );
                }
                status
            }
            // The server may close the connection on a body it refuses before reading it all.
            Err(e) if case.status == 413 => {
                eprintln!("{}: connection closed ({e})", case.name);
                413
            }
            Err(e) => panic!("{}: {e}", case.name),
        };
        let after = store
            .list_deliveries(10_000, false)
            .await
            .expect("list")
            .len();
        if case.stored {
            expected_rows += 1;
        }
        if status != case.status || (after > before) != case.stored {
            failures.push(format!(
                "{}: got {status}, stored {}; want {}, stored {}",
                case.name,
                after > before,
                case.status,
                case.stored
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        store
            .list_deliveries(10_000, false)
            .await
            .expect("list")
            .len(),
        expected_rows
    );
    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("still up");
    assert_eq!(health.status().as_u16(), 200);
    server.stop().await;
}

/// A raw HTTP/1.1 request head for a webhook of `len` bytes, with no signature.
fn unsigned_head(path: &str, len: usize, i: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: greenlight\r\ncontent-type: application/json\r\n\
         x-github-event: push\r\nx-github-delivery: up-{i}\r\nx-gitlab-event: Push Hook\r\n\
         content-length: {len}\r\nconnection: close\r\n\r\n"
    )
}

/// The status and the `Retry-After` of a raw HTTP answer.
fn status_of(answer: &[u8]) -> (u16, Option<String>) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let retry_after = text.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after: ")
            .map(str::to_owned)
    });
    (status, retry_after)
}

/// Many large unsigned uploads at once, to both endpoints: the bytes buffered before any
/// signature is checked never exceed the budget; those that do not fit are answered 503 with
/// `Retry-After` at once (holding nothing), those that fit are read and refused 401; nothing
/// is stored, and every byte is given back.
#[tokio::test]
async fn concurrent_large_unsigned_uploads_stay_within_the_buffer_budget() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const CAP: usize = 1024 * 1024;
    const LEN: usize = 300 * 1024;
    const UPLOADS: usize = 12;
    const FIT: usize = CAP / LEN;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let budget = Arc::new(greenlight::server::BodyBudget::new(CAP));
    let mut intake = intake();
    intake.limits.budget = budget.clone();
    let server = TestServer::start(
        store.clone(),
        intake,
        fast_workers(1),
        Arc::new(NoopProcessor),
    )
    .await;

    let mut writers = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    for i in 0..UPLOADS {
        let path = if i % 2 == 0 {
            "/webhooks/github"
        } else {
            "/webhooks/gitlab"
        };
        let stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let (mut read, mut write) = stream.into_split();
        // Only the head: the body is announced and then held back.
        write
            .write_all(unsigned_head(path, LEN, i).as_bytes())
            .await
            .expect("head");
        writers.push((i, write));
        readers.spawn(async move {
            let mut answer = Vec::new();
            read.read_to_end(&mut answer).await.expect("answer");
            (i, status_of(&answer))
        });
    }
    // Those that do not fit are answered while the others still hold their bytes.
    let mut busy = Vec::new();
    while busy.len() < UPLOADS - FIT {
        let (i, (status, retry_after)) = readers.join_next().await.expect("reader").expect("task");
        assert_eq!(status, 503, "upload {i}");
        assert!(retry_after.is_some(), "503 says when to come back");
        busy.push(i);
    }
    assert_eq!(
        budget.held(),
        FIT * LEN,
        "the uploads that fit hold their bytes"
    );
    assert_eq!(budget.refused(), (UPLOADS - FIT) as u64);
    // The write halves stay open until the answers are in: a client's half-close is taken
    // for a hang-up.
    for (i, write) in &mut writers {
        if !busy.contains(i) {
            write.write_all(&vec![b'x'; LEN]).await.expect("body");
        }
    }
    while let Some(done) = readers.join_next().await {
        let (i, (status, _)) = done.expect("task");
        assert_eq!(status, 401, "upload {i} fitted, was read and is unsigned");
    }
    drop(writers);
    assert!(
        budget.peak() <= CAP,
        "peak {} over the cap {CAP}",
        budget.peak()
    );
    assert_eq!(budget.peak(), FIT * LEN);
    eventually(std::time::Duration::from_secs(5), || async {
        (budget.held() == 0).then_some(())
    })
    .await;
    assert!(
        store
            .list_deliveries(100, false)
            .await
            .expect("list")
            .is_empty()
    );
    // The budget is whole again: a genuine delivery gets in.
    let res = github_request(
        &reqwest::Client::new(),
        &server.url("/webhooks/github"),
        "issue_comment",
        "after-flood",
        COMMENT.as_bytes(),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(res.status().as_u16(), 202);
    server.stop().await;
}

/// A body that stops coming is cut off with 408 after the body timeout, on both endpoints,
/// and gives its bytes back; nothing is stored.
#[tokio::test]
async fn a_slow_body_is_cut_off_with_408() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let mut intake = intake();
    intake.limits.body_timeout = std::time::Duration::from_millis(200);
    let budget = intake.limits.budget.clone();
    let server = TestServer::start(
        store.clone(),
        intake,
        fast_workers(1),
        Arc::new(NoopProcessor),
    )
    .await;
    for (i, path) in ["/webhooks/github", "/webhooks/gitlab"]
        .into_iter()
        .enumerate()
    {
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        stream
            .write_all(unsigned_head(path, 1000, i).as_bytes())
            .await
            .expect("head");
        stream.write_all(b"{\"a\":").await.expect("a little body");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("answer");
        assert_eq!(status_of(&answer).0, 408, "{path}");
    }
    assert_eq!(budget.held(), 0);
    assert!(
        store
            .list_deliveries(100, false)
            .await
            .expect("list")
            .is_empty()
    );
    server.stop().await;
}

/// A `Content-Length` over the limit is refused 413 before any of the body is sent.
#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let intake = intake();
    let budget = intake.limits.budget.clone();
    let server = TestServer::start(store, intake, fast_workers(1), Arc::new(NoopProcessor)).await;
    for (i, path) in ["/webhooks/github", "/webhooks/gitlab"]
        .into_iter()
        .enumerate()
    {
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let head = unsigned_head(path, greenlight::server::MAX_BODY_BYTES + 1, i);
        stream.write_all(head.as_bytes()).await.expect("head");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("answer");
        assert_eq!(status_of(&answer).0, 413, "{path}");
    }
    assert_eq!(
        (budget.held(), budget.peak()),
        (0, 0),
        "nothing was charged"
    );
    server.stop().await;
}
