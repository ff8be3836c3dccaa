//! A whole Greenlight (real router, real workers, real octocrab) wired to a fake GitHub, for
//! the scenario tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clock::TestClock;
use greenlight::engine::Engine;
use greenlight::forge::github::GitHub;
use greenlight::render::Renderer;
use greenlight::store::Store;
use greenlight::worker::WorkerConfig;
use serde_json::Value;

use super::fake_github::FakeGitHub;
use super::{TestDb, TestServer, fast_workers, github_request, intake};

pub const APP_ID: u64 = 9999;

/// The policy most scenarios use: one approval from a maintainer.
pub const POLICY: &str = r#"
[pipeline]
workflow = "ci.yml"

[deploy]
workflow = "deploy.yml"
environment = "production"

[approvals]
required = 1
min_permission = "maintain"
"#;

pub struct Flow {
    pub gh: FakeGitHub,
    pub engine: Engine,
    /// The release's time: a test moves it instead of waiting.
    pub clock: Arc<TestClock>,
    pub store: Store,
    pub db: TestDb,
    server: TestServer,
    http: reqwest::Client,
    next_delivery: AtomicU64,
}

impl Flow {
    pub async fn start(policy: Option<&str>) -> Self {
        Self::start_on(TestDb::sqlite().await, policy).await
    }

    pub async fn start_on(db: TestDb, policy: Option<&str>) -> Self {
        let gh = FakeGitHub::start(policy).await;
        let mut workers = fast_workers(2);
        workers.max_attempts = 6;
        Self::start_with(db, gh, workers, greenlight::forge::retry::REQUEST_TIMEOUT).await
    }

    /// A Greenlight on `db` talking to `gh` with these workers and GitHub request timeout.
    pub async fn start_with(
        db: TestDb,
        gh: FakeGitHub,
        workers: WorkerConfig,
        request_timeout: Duration,
    ) -> Self {
        let store = db.store().await;
        let clock = TestClock::new();
        let key = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-app-key.pem"
        ))
        .expect("test key");
        let client =
            GitHub::with_timeout(APP_ID, &key, &gh.url(), request_timeout).expect("client");
        let engine = Engine::new(store.clone(), Renderer::built_in())
            .with_github(Some(client))
            .with_clock(clock.clone());
        let server =
            TestServer::start(store.clone(), intake(), workers, Arc::new(engine.clone())).await;
        Self {
            gh,
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
    pub async fn send(&self, event: &str, payload: Value) -> u16 {
        let n = self.next_delivery.fetch_add(1, Ordering::Relaxed);
        let status = self
            .deliver(event, &format!("delivery-{n}"), &payload)
            .await;
        self.settle().await;
        status
    }

    /// Delivers without waiting.
    pub async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> u16 {
        let body = serde_json::to_vec(payload).expect("encode");
        let resp = github_request(
            &self.http,
            &self.server.url("/webhooks/github"),
            event,
            delivery,
            &body,
        )
        .send()
        .await
        .expect("send");
        resp.status().as_u16()
    }

    /// The URL of `path` on Greenlight's server (`/metrics`, ...).
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Waits until no delivery is queued or running (retries included).
    pub async fn settle(&self) {
        self.settle_within(Duration::from_secs(20)).await;
    }

    /// [`Flow::settle`] with a deadline of one's own.
    pub async fn settle_within(&self, within: Duration) {
        super::settle_within(&self.store, within).await;
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
