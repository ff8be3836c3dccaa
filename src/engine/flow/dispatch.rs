//! Workflow dispatches and deployment statuses made at most once per purpose (a candidate's
//! pipeline attempt, its deploy, each state of its deployment), even when GitHub's answer is
//! lost.
//!
//! A dispatch cannot be made idempotent on GitHub's side, and a failed one may still have
//! started a run (a 502 from a proxy, a reset connection, a time-out after GitHub acted). So the
//! intent is written to the effect ledger before the call; a retry that finds an intent without
//! an outcome first asks GitHub for a dispatched run of that workflow, created since the intent,
//! whose title carries the commit (`run-name`), and dispatches again only when there is none.

use serde_json::Value;

use super::Ctx;
use crate::engine::db;
use crate::forge::github::client::DispatchedRun;
use crate::forge::retry::ForgeError;
use crate::release::CommitSha;
use crate::store::now_ms;
use crate::worker::JobError;

/// How much earlier than our intent GitHub's clock may date the run we dispatched.
const CLOCK_SLACK_MS: i64 = 5_000;

/// How long after a dispatch whose answer never came its run may still be missing from the
/// runs list before Greenlight concludes the dispatch did not happen and makes it again.
pub(super) const SETTLE_MS: i64 = 10_000;

/// What [`Ctx::dispatch_once`] did.
pub(super) enum Dispatched {
    /// The workflow runs (now or from an earlier attempt); the run when GitHub said which.
    Run(Option<DispatchedRun>),
    /// GitHub refused or does not know the workflow: nothing runs, retrying will not help.
    Refused(ForgeError),
}

impl Ctx<'_> {
    /// Dispatches `workflow` on the default branch with `inputs`, unless the dispatch for
    /// `purpose` (unique per release and attempt) was already made.
    pub(super) async fn dispatch_once(
        &self,
        release_id: i64,
        purpose: &str,
        workflow: &str,
        sha: &CommitSha,
        inputs: &Value,
    ) -> Result<Dispatched, JobError> {
        let key = format!("github:dispatch:{}:{release_id}:{purpose}", self.repo);
        match self.store().effect(&key).await.map_err(db)? {
            Some(v) if v == "done" => return Ok(Dispatched::Run(None)),
            Some(v) => {
                let since = v
                    .strip_prefix("intent:")
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .unwrap_or(0);
                if let Some(run) = self
                    .gh()?
                    .find_dispatched_run(
                        self.inst,
                        &self.repo,
                        workflow,
                        sha,
                        since - CLOCK_SLACK_MS,
                    )
                    .await?
                {
                    tracing::info!(
                        workflow,
                        run = run.id,
                        "found the run of an earlier dispatch"
                    );
                    self.store().put_effect(&key, "done").await.map_err(db)?;
                    return Ok(Dispatched::Run(Some(run)));
                }
                settled(since, &format!("a dispatch of {workflow}"))?;
                tracing::warn!(
                    workflow,
                    "no run for an earlier dispatch; dispatching again"
                );
                self.store()
                    .intend(&key, &format!("intent:{}", now_ms()))
                    .await
                    .map_err(db)?;
            }
            None => {
                self.store()
                    .intend(&key, &format!("intent:{}", now_ms()))
                    .await
                    .map_err(db)?;
            }
        }
        match self
            .gh()?
            .dispatch_workflow(
                self.inst,
                &self.repo,
                workflow,
                &self.default_branch,
                inputs,
            )
            .await
        {
            Ok(run) => {
                self.store().put_effect(&key, "done").await.map_err(db)?;
                Ok(Dispatched::Run(run))
            }
            Err(e @ (ForgeError::Rejected { .. } | ForgeError::NotFound)) => {
                Ok(Dispatched::Refused(e))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Posts the deployment status in `body` (its `state`) unless an earlier attempt did:
    /// statuses are appended, never replaced, so a retried post would show twice.
    pub(super) async fn deployment_status_once(
        &self,
        deployment: u64,
        body: &Value,
    ) -> Result<(), JobError> {
        let state = body["state"].as_str().unwrap_or_default();
        let key = format!(
            "github:deployment-status:{}:{deployment}:{state}",
            self.repo
        );
        match self.store().effect(&key).await.map_err(db)? {
            Some(v) if v == "done" => return Ok(()),
            Some(_) => {
                let states = self
                    .gh()?
                    .deployment_states(self.inst, &self.repo, deployment)
                    .await?;
                if states.iter().any(|s| s == state) {
                    return self.store().put_effect(&key, "done").await.map_err(db);
                }
            }
            None => self.store().intend(&key, "intent").await.map_err(db)?,
        }
        self.gh()?
            .deployment_status(self.inst, &self.repo, deployment, body)
            .await?;
        self.store().put_effect(&key, "done").await.map_err(db)
    }
}

/// A run can take a moment to be listed: a dispatch made at `at` whose run is not found is
/// only made again once [`SETTLE_MS`] have passed; until then the job is put back for the rest
/// of that time. One rule for both forges and both purposes.
pub(super) fn settled(at: i64, what: &str) -> Result<(), JobError> {
    let waited = now_ms() - at;
    if waited < SETTLE_MS {
        return Err(JobError::Retry {
            reason: format!("{what} is in doubt; its run may not be listed yet"),
            after: Some(std::time::Duration::from_millis(
                u64::try_from(SETTLE_MS - waited).unwrap_or(0),
            )),
        });
    }
    Ok(())
}
