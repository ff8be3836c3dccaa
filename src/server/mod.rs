//! The HTTP side: router, shared state, and the run loop that ties server and workers together.

pub mod body;
mod ops;
pub mod setup;
pub mod signature;
mod webhook;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::config::{Live, Secrets};
use crate::metrics::Metrics;
use crate::store::{IntakeWriter, Store};
use crate::worker::{self, Processor, WorkerConfig};

pub use body::{BodyBudget, DEFAULT_INTAKE_BUFFER_BYTES, IntakeLimits, MAX_BODY_BYTES};

/// Which webhook endpoints are enabled, with their secrets.
#[derive(Debug, Clone, Default)]
pub struct Intake {
    /// Live: the setup page sets them when it creates the App.
    pub github_secrets: Live<Secrets>,
    pub gitlab_tokens: Option<Secrets>,
    pub gitlab_signing_keys: Option<Secrets>,
    /// How much unauthenticated bodies may hold, and for how long ([`body`]).
    pub limits: IntakeLimits,
}

impl Intake {
    /// True when at least one forge can deliver.
    pub fn any_forge(&self) -> bool {
        self.github_secrets.is_some()
            || self.gitlab_tokens.is_some()
            || self.gitlab_signing_keys.is_some()
    }
}

/// State shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Writes deliveries in group commits (one fsync for all that arrive together).
    pub writer: IntakeWriter,
    pub intake: Arc<Intake>,
    pub metrics: Arc<Metrics>,
    /// Wakes an idle worker as soon as a delivery is stored.
    pub wake: Arc<Notify>,
    /// The GitHub App setup page, while the App is not configured.
    pub setup: setup::Shared,
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    public_router(state, true)
}

/// The public endpoints, with `/metrics` or without it (when a metrics listener serves it).
fn public_router(state: AppState, with_metrics: bool) -> Router {
    let routes = Router::new()
        .route("/webhooks/github", post(webhook::github))
        .route("/webhooks/gitlab", post(webhook::gitlab))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/setup", get(setup::show))
        .route("/setup/callback", get(setup::callback));
    let routes = if with_metrics {
        routes.route("/metrics", get(ops::metrics))
    } else {
        routes
    };
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The metrics listener's router (`GREENLIGHT_METRICS_LISTEN`): `/metrics` only.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> (axum::http::StatusCode, &'static str) {
    (axum::http::StatusCode::NOT_FOUND, "not found\n")
}

async fn method_not_allowed() -> (axum::http::StatusCode, &'static str) {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: webhooks are POSTed\n",
    )
}

async fn record_latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics.request(
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Where the HTTP server listens.
#[derive(Debug)]
pub struct Listeners {
    /// Webhooks, health and readiness (and `/metrics` when `metrics` is `None`).
    pub public: TcpListener,
    /// `/metrics` alone, kept off the public port (`GREENLIGHT_METRICS_LISTEN`).
    pub metrics: Option<TcpListener>,
}

/// Runs the HTTP server and the workers until `shutdown` is cancelled, then drains both:
/// in-flight requests finish, running jobs finish (or are given back), and the pool closes.
pub async fn run<P: Processor>(
    store: Store,
    listener: TcpListener,
    intake: Intake,
    worker_config: WorkerConfig,
    processor: Arc<P>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listeners = Listeners {
        public: listener,
        metrics: None,
    };
    let metrics = Arc::new(Metrics::new());
    run_with(
        store,
        listeners,
        metrics,
        intake,
        worker_config,
        processor,
        shutdown,
        None,
    )
    .await
}

/// [`run`] on `listeners`, recording into `metrics` (which the caller may share with tasks of
/// its own, such as the reconciler), with the GitHub App setup page when `setup` is given.
#[expect(
    clippy::too_many_arguments,
    reason = "called from two places, each naming every part; a struct would only rename them"
)]
pub async fn run_with<P: Processor>(
    store: Store,
    listeners: Listeners,
    metrics: Arc<Metrics>,
    intake: Intake,
    worker_config: WorkerConfig,
    processor: Arc<P>,
    shutdown: CancellationToken,
    setup: Option<setup::GitHubSetup>,
) -> anyhow::Result<()> {
    let wake = Arc::new(Notify::new());
    let state = AppState {
        store: store.clone(),
        writer: IntakeWriter::spawn(store.clone()),
        intake: Arc::new(intake),
        metrics: metrics.clone(),
        wake: wake.clone(),
        setup: setup.map(Arc::new),
    };
    let mut workers = worker::spawn(
        store.clone(),
        processor,
        worker_config,
        metrics,
        wake,
        shutdown.clone(),
    );
    let metrics_server = listeners.metrics.map(|listener| {
        let server = axum::serve(listener, metrics_router(state.clone()))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        tokio::spawn(async move { server.await })
    });
    let public = public_router(state, metrics_server.is_none());
    let server = axum::serve(listeners.public, public)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let served = server.await;
    shutdown.cancel();
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "worker task failed");
        }
    }
    let metrics_served = match metrics_server {
        Some(task) => task.await.map_err(anyhow::Error::from).and_then(|r| Ok(r?)),
        None => Ok(()),
    };
    store.close().await;
    served?;
    metrics_served?;
    Ok(())
}
