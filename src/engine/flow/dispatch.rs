//! Workflow dispatches and deployment statuses made at most once per purpose (a candidate's
//! pipeline attempt, its deploy, each state of its deployment), even when GitHub's answer is
//! lost.
//!
//! A dispatch cannot be made idempotent on GitHub's side, and a failed one may still have
//! started a run (a 502 from a proxy, a reset connection, a time-out after GitHub acted). So the
//! intent is written to the effect ledger before the call; a retry that finds an intent without
//! an outcome first asks GitHub for a dispatched run of that workflow, created since the intent,
//! whose title carries the commit (`run-name`), and dispatches again only when there is none.
//! Only a `workflow_dispatch` run on the default branch started by the App's own bot user can
//! be it: a pull request's own copy of the workflow can carry the same file name and title.
//!
//! The outcome is kept in the ledger (`run:<id>`, or `done:<ms>` when GitHub named no run) until
//! the release has saved it: a job that dies in between leaves its retry the run to adopt. A
//! run adopted this way is read for its current state, which is fed through the inbox
//! ([`learned`](super::learned)): its webhooks may have come while no release knew it.

use serde_json::Value;

use super::Ctx;
use crate::engine::db;
use crate::forge::github::client::DispatchedRun;
use crate::forge::retry::ForgeError;
use crate::release::{CommitSha, RepoRef};
use crate::store::now_ms;
use crate::worker::JobError;

/// How much earlier than our intent GitHub's clock may date the run we dispatched.
const CLOCK_SLACK_MS: i64 = 5_000;

/// Ledger value of a dispatch whose run is known: `run:<id>`.
const RUN: &str = "run:";

/// Ledger value of a dispatch GitHub took without naming its run (204): `done:<ms>`, when it
/// was made.
const DONE: &str = "done:";

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
        match self.store().effect(&key).await.map_err(db)?.as_deref() {
            // Recorded by an older version: the outcome was saved with it.
            Some("done") => return Ok(Dispatched::Run(None)),
            Some(v) if v.starts_with(RUN) => {
                // GitHub named the run, and the job died before the release saved it: its
                // webhooks may all have been worked while no release knew it.
                let id = v[RUN.len()..].parse::<u64>().unwrap_or_default();
                let run = self.gh()?.workflow_run(self.inst, &self.repo, id).await?;
                let url = run
                    .get("html_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.learned_run(id, Some(run)).await?;
                return Ok(Dispatched::Run(Some(DispatchedRun { id, url })));
            }
            Some(v) => {
                let (answered, since) = match v.strip_prefix(DONE) {
                    Some(ms) => (true, ms),
                    None => (false, v.strip_prefix("intent:").unwrap_or_default()),
                };
                let since = since.parse::<i64>().unwrap_or(0);
                if let Some(run) = self.find_run(workflow, sha, since).await? {
                    tracing::info!(
                        workflow,
                        run = run.id,
                        "found the run of an earlier dispatch"
                    );
                    self.store()
                        .put_effect(&key, &format!("{RUN}{}", run.id))
                        .await
                        .map_err(db)?;
                    return Ok(Dispatched::Run(Some(run)));
                }
                if answered {
                    // Dispatched for sure (a 204 without the run): not listed yet, so its
                    // webhooks are still to come and are matched by title.
                    return Ok(Dispatched::Run(None));
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
        let at = now_ms();
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
                // What the release will need if this job dies before it saves the outcome.
                let outcome = match &run {
                    Some(run) => format!("{RUN}{}", run.id),
                    None => format!("{DONE}{at}"),
                };
                self.store().put_effect(&key, &outcome).await.map_err(db)?;
                Ok(Dispatched::Run(run))
            }
            Err(e @ (ForgeError::Rejected { .. } | ForgeError::NotFound)) => {
                Ok(Dispatched::Refused(e))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The run of a dispatch of `workflow` for `sha` made at `since` whose answer is unknown:
    /// only a dispatch by the App's own bot user on the default branch can be it. Found, its
    /// current state is fed through the inbox ([`Ctx::learned_run`]).
    async fn find_run(
        &self,
        workflow: &str,
        sha: &CommitSha,
        since: i64,
    ) -> Result<Option<DispatchedRun>, JobError> {
        let gh = self.gh()?;
        let bot = gh.bot(self.inst).await?;
        let repo = RepoRef {
            name: self.repo.clone(),
            forge_id: self.inst,
            default_branch: self.default_branch.clone(),
        };
        let Some(found) = gh
            .find_dispatched_run(
                self.inst,
                &repo,
                workflow,
                sha,
                since - CLOCK_SLACK_MS,
                bot.id,
            )
            .await?
        else {
            return Ok(None);
        };
        let run = DispatchedRun {
            id: found.run.run_id,
            url: found.run.url.clone(),
        };
        self.learned_run(run.id, Some(found.json)).await?;
        Ok(Some(run))
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
