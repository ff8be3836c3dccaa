//! Operational endpoints: liveness, readiness, Prometheus metrics.

use axum::extract::State;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use super::AppState;
use crate::metrics::Format;
use crate::store::{DeliveryState, now_ms};

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

/// The metrics, in the format the `Accept` header asks for ([`Format::negotiate`]). Queue
/// gauges, releases, deploys and unapproved deployments are read from the database at scrape
/// time, so every replica reports the shared queue, releases and audit log.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match state.store.queue_gauges().await {
        Ok((depth, dead)) => state
            .metrics
            .set_queue(&[(DeliveryState::Queued, depth), (DeliveryState::Dead, dead)]),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count deliveries"),
    }
    match state.store.oldest_queued_ms().await {
        Ok(oldest) => state.metrics.set_oldest_queued(
            oldest.map(|at| Duration::from_millis(u64::try_from(now_ms() - at).unwrap_or(0))),
        ),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the oldest queued delivery"),
    }
    match state.store.release_counts().await {
        Ok(counts) => state.metrics.set_releases(&counts),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count releases"),
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
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.render(format),
    )
}
