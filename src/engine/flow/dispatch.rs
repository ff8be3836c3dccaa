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
//!
//! The protocol is the [ledger](crate::engine::ledger)'s; the effects (their keys, their
//! look-ups) are [`Dispatch`] and [`DeploymentStatus`].

use super::Ctx;
use super::effects::{DeploymentStatus, Dispatch, Dispatched};
use super::runs::GITHUB_DISPATCH_LOOKUP_SLACK_MS;
use crate::forge::github::client::DispatchedRun;
use crate::forge::vocab::DeployReport;
use crate::release::{CommitSha, RepoRef};
use crate::worker::JobError;

impl Ctx<'_> {
    /// Dispatches `workflow` on the default branch with `inputs`, unless the dispatch for
    /// `purpose` (unique per release and attempt) was already made.
    pub(super) async fn dispatch_once(
        &self,
        release: i64,
        purpose: &str,
        workflow: &str,
        sha: &CommitSha,
        inputs: &[(&str, &str)],
    ) -> Result<Dispatched, JobError> {
        let dispatch = Dispatch {
            ctx: self,
            release,
            purpose,
            workflow,
            sha,
            inputs,
        };
        self.once(&dispatch).await
    }

    /// The run of a dispatch of `workflow` for `sha` made at `since` whose answer is unknown:
    /// only a dispatch by the App's own bot user on the default branch can be it. Found, its
    /// current state is fed through the inbox ([`Ctx::learned_run`]).
    pub(super) async fn find_run(
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
                since - GITHUB_DISPATCH_LOOKUP_SLACK_MS,
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
        report: DeployReport<'_>,
    ) -> Result<(), JobError> {
        let status = DeploymentStatus {
            ctx: self,
            deployment,
            report,
        };
        self.once(&status).await
    }
}
