//! A whole Greenlight (real router, real workers, real reqwest client) wired to a fake
//! GitLab, for the GitLab scenario tests. Every delivery carries the secret token and a
//! Standard Webhooks signature, as a GitLab with a signing token sends them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clock::TestClock;
use greenlight::config::Secrets;
use greenlight::engine::Engine;
use greenlight::forge::gitlab::GitLab;
use greenlight::render::Renderer;
use greenlight::server::signature::standard_webhook_signature;
use greenlight::store::{Store, now_ms};
use greenlight::worker::WorkerConfig;
use secrecy::SecretString;
use serde_json::Value;

use super::fake_gitlab::{FakeGitLab, TOKEN};
use super::{GITLAB_TOKEN, TestDb, TestServer, fast_workers, intake};

/// The webhook signing token the harness configures and signs with.
pub const SIGNING_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The policy most scenarios use: one approval from a maintainer (access level 40).
pub const POLICY: &str = r#"
[deploy]
environment = "production"

[approvals]
required = 1
min_permission = "maintain"
"#;

pub struct GitLabFlow {
    pub gl: FakeGitLab,
    pub engine: Engine,
    /// The release's time: a test moves it instead of waiting.
    pub clock: Arc<TestClock>,
    pub store: Store,
    pub db: TestDb,
    server: TestServer,
    http: reqwest::Client,
    next_delivery: AtomicU64,
}

impl GitLabFlow {
    pub async fn start(policy: Option<&str>) -> Self {
        Self::start_on(TestDb::sqlite().await, policy).await
    }

    pub async fn start_on(db: TestDb, policy: Option<&str>) -> Self {
        let gl = FakeGitLab::start(policy).await;
        let mut workers = fast_workers(2);
        workers.max_attempts = 6;
        Self::start_with(db, gl, workers, greenlight::forge::retry::REQUEST_TIMEOUT).await
    }

    /// Like [`Self::start_on`], with Greenlight as GitLab's deployment approver
    /// (`GITLAB_DEPLOYMENT_APPROVALS=true`).
    pub async fn start_approver_on(db: TestDb, policy: Option<&str>) -> Self {
        let gl = FakeGitLab::start(policy).await;
        let mut workers = fast_workers(2);
        workers.max_attempts = 6;
        let timeout = greenlight::forge::retry::REQUEST_TIMEOUT;
        Self::start_full(db, gl, workers, timeout, true).await
    }

    /// A Greenlight on `db` talking to `gl` with these workers and GitLab request timeout.
    pub async fn start_with(
        db: TestDb,
        gl: FakeGitLab,
        workers: WorkerConfig,
        request_timeout: Duration,
    ) -> Self {
        Self::start_full(db, gl, workers, request_timeout, false).await
    }

    async fn start_full(
        db: TestDb,
        gl: FakeGitLab,
        workers: WorkerConfig,
        request_timeout: Duration,
        approver: bool,
    ) -> Self {
        let store = db.store().await;
        let clock = TestClock::new();
        let client = GitLab::with_timeout(&gl.url(), SecretString::from(TOKEN), request_timeout)
            .expect("client")
            .with_deployment_approvals(approver);
        let engine = Engine::new(store.clone(), Renderer::built_in())
            .with_gitlab(Some(client))
            .with_clock(clock.clone());
        let mut intake = intake();
        intake.gitlab_signing_keys = Some(Secrets::from(vec![SIGNING_KEY.to_owned()]));
        let server =
            TestServer::start(store.clone(), intake, workers, Arc::new(engine.clone())).await;
        Self {
            gl,
            engine,
            clock,
            store,
            db,
            server,
            http: reqwest::Client::new(),
            next_delivery: AtomicU64::new(1),
        }
    }

    /// Delivers a webhook (fresh delivery id) and waits until every queued job has finished.
    /// The URL of `path` on this Greenlight (`/metrics`, ...).
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub async fn send(&self, event: &str, payload: Value) -> u16 {
        let n = self.next_delivery.fetch_add(1, Ordering::Relaxed);
        let status = self
            .deliver(event, &format!("delivery-{n}"), &payload)
            .await;
        self.settle().await;
        status
    }

    /// Delivers without waiting, with a valid token and signature.
    pub async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> u16 {
        self.deliver_with(event, delivery, payload, GITLAB_TOKEN, SIGNING_KEY)
            .await
    }

    /// Delivers with the given secret token and signing key (to test rejections).
    pub async fn deliver_with(
        &self,
        event: &str,
        delivery: &str,
        payload: &Value,
        token: &str,
        signing_key: &str,
    ) -> u16 {
        let body = serde_json::to_vec(payload).expect("encode");
        let ts = now_ms() / 1000;
        let resp = self
            .http
            .post(self.server.url("/webhooks/gitlab"))
            .header("content-type", "application/json")
            .header("x-gitlab-event", event)
            .header("x-gitlab-token", token)
            .header("idempotency-key", delivery)
            .header("webhook-id", delivery)
            .header("webhook-timestamp", ts.to_string())
            .header(
                "webhook-signature",
                standard_webhook_signature(signing_key, delivery, ts, &body),
            )
            .body(body)
            .send()
            .await
            .expect("send");
        resp.status().as_u16()
    }

    /// Waits until no delivery is queued or running (retries included).
    pub async fn settle(&self) {
        super::settle(&self.store).await;
    }

    /// Deliveries that ended dead (a test expecting none asserts this is empty).
    pub async fn dead(&self) -> Vec<String> {
        super::dead(&self.store).await
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.db.cleanup().await;
    }
}
