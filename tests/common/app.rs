//! The Greenlight half of a test harness, the same for both forges: the engine with its test
//! clock, the store, the real server with its workers, and what a test asks of them (the
//! server's URLs, settling, dead letters, a fresh delivery id). `flow.rs` and `flow_gitlab.rs`
//! add the fake forge and how it signs its webhooks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use greenlight::engine::Engine;
use greenlight::render::Renderer;
use greenlight::store::Store;
use greenlight::worker::WorkerConfig;

use super::clock::TestClock;
use super::{Intake, TestDb, TestServer};

pub struct Greenlight {
    pub engine: Engine,
    /// The release's time: a test moves it instead of waiting.
    pub clock: Arc<TestClock>,
    pub store: Store,
    pub db: TestDb,
    pub(super) server: TestServer,
    pub(super) http: reqwest::Client,
    next_delivery: AtomicU64,
}

impl Greenlight {
    /// Serves `intake` with `workers` on `db`, the engine made by `forges` from a bare engine
    /// on the test clock.
    pub async fn start(
        db: TestDb,
        intake: Intake,
        workers: WorkerConfig,
        forges: impl FnOnce(Engine) -> Engine,
    ) -> Self {
        let store = db.store().await;
        let clock = TestClock::new();
        let engine =
            forges(Engine::new(store.clone(), Renderer::built_in()).with_clock(clock.clone()));
        let server =
            TestServer::start(store.clone(), intake, workers, Arc::new(engine.clone())).await;
        Self {
            engine,
            clock,
            store,
            db,
            server,
            http: reqwest::Client::new(),
            next_delivery: AtomicU64::new(1),
        }
    }

    /// A delivery id not used before in this test.
    pub fn next_delivery(&self) -> String {
        let n = self.next_delivery.fetch_add(1, Ordering::Relaxed);
        format!("delivery-{n}")
    }

    /// The URL of `path` on Greenlight's server (`/metrics`, ...).
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Waits until no delivery is queued or running (retries included).
    pub async fn settle(&self) {
        self.settle_within(Duration::from_secs(20)).await;
    }

    /// [`Greenlight::settle`] with a deadline of one's own.
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
