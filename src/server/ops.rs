//! Operational endpoints: liveness, readiness, Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::AppState;
use crate::store::DeliveryState;

/// Alive: the process answers. Nothing else is checked, so a slow database never gets the
/// process restarted.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database answers and its schema is current.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.store.is_ready().await {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable or migrations pending\n",
        )
    }
}

/// Prometheus text exposition. Queue gauges and unapproved deployments are read from the
/// database at scrape time, so every replica reports the shared queue and audit log.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.queue_gauges().await {
        Ok((depth, dead)) => state
            .metrics
            .set_queue(&[(DeliveryState::Queued, depth), (DeliveryState::Dead, dead)]),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count deliveries"),
    }
    match state
        .store
        .audit_counts(crate::engine::UNAPPROVED_DEPLOYMENT)
        .await
    {
        Ok(counts) => state.metrics.set_unapproved(&counts),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count unapproved deployments"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
