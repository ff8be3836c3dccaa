//! Runs learned after the fact: the run of a dispatch (or a GitLab pipeline creation) whose
//! answer was lost, or whose job died before the release saved it, found again by a retry or
//! a takeover. Its webhooks may all have come and gone while no release knew the run, so its
//! current state is read right away and fed through the inbox as the webhook the forge would
//! send now: it is worked exactly like one (same lease, same match, same once-only effects),
//! without waiting for the reconciler to notice a quiet release.
//!
//! The feed is stored *before* the release saves the run, and under a name of its own per
//! attempt: if the job dies in between, the feed is worked and finds nothing, and the retry
//! that learns the run again feeds it again (a duplicate report changes nothing twice).

use serde_json::Value;

use super::Ctx;
use crate::engine::db;
use crate::engine::reconcile::feed;
use crate::forge::vocab::Missed;
use crate::store::now_ms;
use crate::worker::JobError;

impl Ctx<'_> {
    /// Feeds the current state of run `run_id` (a GitHub workflow run, a GitLab pipeline)
    /// through the inbox, unless it has not started yet (then its own webhooks are still to
    /// come). `listed` is the run as a list the forge answered already describes it (GitHub);
    /// otherwise the forge is asked.
    pub(super) async fn learned_run(
        &self,
        run_id: u64,
        listed: Option<Value>,
    ) -> Result<(), JobError> {
        let Some(missed) = self
            .client
            .run_now(self.target(), run_id, listed, &self.default_branch)
            .await?
        else {
            return Ok(());
        };
        let missed = Missed {
            delivery_id: format!(
                "learned:{}:{}:{}",
                missed.delivery_id.trim_start_matches("reconcile:"),
                self.seq,
                now_ms()
            ),
            ..missed
        };
        let inserted = feed(self.store(), self.forge(), &missed)
            .await
            .map_err(db)?;
        tracing::info!(run = run_id, status = %missed.status, ?inserted, "a run learned after the fact; its current state fed through the inbox");
        Ok(())
    }
}
