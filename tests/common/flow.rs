//! A whole Greenlight (real router, real workers, real octocrab) wired to a fake GitHub, for
//! the scenario tests.

use std::time::Duration;

use greenlight::forge::github::GitHub;
use greenlight::worker::WorkerConfig;
use serde_json::Value;

use super::app::Greenlight;
use super::fake_github::FakeGitHub;
use super::{TestDb, fast_workers, github_request, intake};

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
    /// Greenlight itself (`flow.store`, `flow.engine`, `flow.clock` reach it through `Deref`).
    pub app: Greenlight,
}

impl std::ops::Deref for Flow {
    type Target = Greenlight;
    fn deref(&self) -> &Greenlight {
        &self.app
    }
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
        let key = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-app-key.pem"
        ))
        .expect("test key");
        let client =
            GitHub::with_timeout(APP_ID, &key, &gh.url(), request_timeout).expect("client");
        let app = Greenlight::start(db, intake(), workers, |e| e.with_github(Some(client))).await;
        Self { gh, app }
    }

    /// Delivers a webhook (fresh delivery id) and waits until every queued job has finished.
    pub async fn send(&self, event: &str, payload: Value) -> u16 {
        let status = self.deliver(event, &self.next_delivery(), &payload).await;
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

    pub async fn stop(self) {
        self.app.stop().await;
    }
}
