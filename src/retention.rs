//! Retention: processed deliveries (done or ignored) older than `GREENLIGHT_RETENTION_DAYS`
//! are deleted in small batches, so the inbox does not grow without end. Queued, running and
//! dead-lettered deliveries are never pruned: they are work or evidence.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Store, now_ms};

/// Time between two prunes. Retention is counted in days; hourly keeps the excess small.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Rows deleted per statement: a few milliseconds of write lock, so intake never waits long.
pub const PRUNE_BATCH: u32 = 1_000;

/// Pause between two batches, leaving the write lock to intake and the workers.
pub const PRUNE_PAUSE: Duration = Duration::from_millis(20);

/// One day in milliseconds.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Deletes processed deliveries received before `before_ms`, batch by batch; returns how many.
pub async fn prune_before(store: &Store, before_ms: i64) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let n = store.prune_processed(before_ms, PRUNE_BATCH).await?;
        total += n;
        if n < u64::from(PRUNE_BATCH) {
            return Ok(total);
        }
        tokio::time::sleep(PRUNE_PAUSE).await;
    }
}

/// Prunes deliveries older than `days` now and every [`PRUNE_EVERY`] until `shutdown`.
/// `days == 0` keeps everything (the loop is not started).
pub async fn run(store: Store, days: u32, shutdown: CancellationToken) {
    if days == 0 {
        return;
    }
    loop {
        let before = now_ms() - i64::from(days) * DAY_MS;
        match prune_before(&store, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, days, "pruned processed deliveries"),
            Err(e) => tracing::warn!(error = %e, "retention: cannot prune deliveries"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}
