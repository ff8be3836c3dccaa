//! Test harness shared by the integration tests: databases on both backends, a real server on
//! a loopback port, and signed webhook requests.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod app;
pub mod clock;
pub mod fake_github;
pub mod fake_github_apps;
pub mod fake_gitlab;
pub mod fake_gitlab_approvals;
pub mod fake_gitlab_hooks;
pub mod fake_hook_deliveries;
pub mod fake_http;
pub mod fake_protection;
pub mod fault_round;
pub mod faults;
pub mod flow;
pub mod flow_gitlab;

pub mod github_events;
pub mod gitlab_events;
pub mod scripted;
pub mod serve;
pub mod world;
pub mod world_github;
pub mod world_gitlab;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use greenlight::config::Secrets;
use greenlight::server::signature::github_signature;
use greenlight::server::{self, Intake};
use greenlight::store::Claimed;
use greenlight::store::Store;
use greenlight::worker::{JobError, Processor, WorkerConfig};
use sqlx::Connection as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const GITHUB_SECRET: &str = "test-github-secret";
pub const GITLAB_TOKEN: &str = "test-gitlab-token";

/// A database for one test: a fresh SQLite file, or a fresh PostgreSQL database created on the
/// server named by `TEST_DATABASE_URL` (dropped again by [`TestDb::cleanup`]).
pub struct TestDb {
    pub url: String,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("greenlight.db").display());
        Self {
            url,
            label: "sqlite",
            _dir: Some(dir),
            pg_admin: None,
        }
    }

    /// None when `TEST_DATABASE_URL` is not set.
    pub async fn postgres() -> Option<Self> {
        let admin = std::env::var("TEST_DATABASE_URL").ok()?;
        let name = format!("greenlight_t_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create db");
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(Self {
            url,
            label: "postgres",
            _dir: None,
            pg_admin: Some((admin, name)),
        })
    }

    /// SQLite always, PostgreSQL too when `TEST_DATABASE_URL` is set.
    pub async fn all() -> Vec<Self> {
        let mut dbs = vec![Self::sqlite().await];
        if let Some(pg) = Self::postgres().await {
            dbs.push(pg);
        }
        dbs
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    pub async fn cleanup(self) {
        if let Some((admin, name)) = &self.pg_admin
            && let Ok(mut conn) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

pub fn intake() -> Intake {
    Intake {
        github_secrets: Some(Secrets::from(vec![GITHUB_SECRET.to_owned()])).into(),
        gitlab_tokens: Some(Secrets::from(vec![GITLAB_TOKEN.to_owned()])),
        gitlab_signing_keys: None,
        limits: Default::default(),
    }
}

/// Fast retries and short leases, so the queue tests take milliseconds.
pub fn fast_workers(workers: u16) -> WorkerConfig {
    WorkerConfig {
        workers,
        max_attempts: 3,
        lease: Duration::from_secs(30),
        retry_base: Duration::from_millis(20),
    }
}

/// A real server (router + workers) on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start<P: Processor>(
        store: Store,
        intake: Intake,
        workers: WorkerConfig,
        processor: Arc<P>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(server::run(
            store,
            listener,
            intake,
            workers,
            processor,
            shutdown.clone(),
        ));
        Self {
            addr,
            shutdown,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Graceful stop; fails the test if the server ended with an error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("server task")
            .expect("server result");
    }
}

/// A GitHub delivery with a valid signature.
pub fn github_request(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", github_signature(GITHUB_SECRET, body))
        .body(body.to_vec())
}

/// Waits until a `greenlight serve` process on this loopback port answers `/readyz` (30 s).
pub async fn wait_ready(port: u16) {
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), || async {
        let r = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// Polls `check` every few milliseconds until it returns Some, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until no delivery is queued or running (retries included).
pub async fn settle(store: &Store) {
    settle_within(store, Duration::from_secs(20)).await;
}

/// [`settle`] with a deadline of one's own. Asks through the queue's partial index (as the
/// metrics do), so waiting costs little however long the history.
pub async fn settle_within(store: &Store, within: Duration) {
    // A loop, not `eventually`: a closure borrowing the store makes callers' futures fail
    // `tokio::spawn`'s `Send` check.
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (live, _dead) = store.queue_gauges().await.expect("gauges");
        if live == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries still queued or running after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Deliveries that ended dead, as `event id: last error` (a test expecting none asserts this
/// is empty).
pub async fn dead(store: &Store) -> Vec<String> {
    let rows = store.list_deliveries(1000, true).await.expect("list");
    rows.into_iter()
        .map(|d| {
            format!(
                "{} {}: {}",
                d.event,
                d.delivery_id,
                d.last_error.unwrap_or_default()
            )
        })
        .collect()
}

/// A processor that accepts every job without acting on it: for tests of the intake and the
/// queue, where what the engine would do is beside the point.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopProcessor;

impl Processor for NoopProcessor {
    async fn process(&self, _job: &Claimed) -> Result<(), JobError> {
        Ok(())
    }
}
