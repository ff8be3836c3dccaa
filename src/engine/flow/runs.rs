//! Runs reported by the forge (GitHub workflow runs, GitLab pipelines): the pipeline of a
//! candidate, or its deploy.

use super::Ctx;
use crate::engine::db;
use crate::forge::Client;
use crate::forge::vocab::{DeployReport, DeployState};
use crate::release::{PipelineRun, RunStatus, Stage};
use crate::store::ReleaseRow;
use crate::worker::JobError;

/// How much earlier than our dispatch a run may be dated and still be ours, when the run is
/// matched against a dispatch we know we made (clocks differ between the forge and us): a run's
/// report claimed by the candidate waiting for it, a gated deploy run checked against our
/// dispatch, and GitLab's look-up of a pipeline created in doubt (GitLab keeps its own clock,
/// self-managed instances included).
pub(super) const RUN_MATCH_SLACK_MS: i64 = 60_000;

/// How much earlier than our intent GitHub's clock may date the run of a workflow dispatch in
/// doubt. Narrow on purpose: an earlier dispatch of the same workflow for the same commit (an
/// earlier attempt) carries the same `run-name`, and adopting it would skip the new run.
pub(super) const GITHUB_DISPATCH_LOOKUP_SLACK_MS: i64 = 5_000;

/// Which of a candidate's runs a report is about.
pub(super) enum RunKind {
    Pipeline,
    Deploy,
}

impl Ctx<'_> {
    pub(super) async fn on_run(&self, run: PipelineRun) -> Result<(), JobError> {
        let Some((mut release, kind)) = self.match_run(&run).await? else {
            tracing::debug!(run = run.run_id, "not a run of ours");
            return Ok(());
        };
        match kind {
            RunKind::Pipeline => self.on_pipeline_run(&mut release, &run).await,
            RunKind::Deploy => self.on_deploy_run(&mut release, &run).await,
        }
    }

    /// By run id when the dispatch told us; otherwise (GitHub Enterprise Server, or a crash
    /// between dispatch and save) only a `workflow_dispatch` run on the default branch started
    /// by the App's bot user, then by workflow file, a display title carrying the SHA, and a
    /// creation time after our dispatch.
    async fn match_run(
        &self,
        run: &PipelineRun,
    ) -> Result<Option<(ReleaseRow, RunKind)>, JobError> {
        let store = self.store();
        if let Some(r) = store
            .release_by_run(self.forge(), self.repo_str(), run.run_id)
            .await
            .map_err(db)?
        {
            let kind = if r.pipeline_run_id == Some(run.run_id) {
                RunKind::Pipeline
            } else {
                RunKind::Deploy
            };
            if matches!(kind, RunKind::Pipeline)
                && self.client.builds_the_branch()
                && run.run_head != r.sha
            {
                // The branch it builds may have moved on since: only a pipeline of exactly
                // the candidate's commit speaks for it.
                tracing::info!(run = run.run_id, sha = %run.run_head, "pipeline of another commit; ignored");
                return Ok(None);
            }
            return Ok(Some((r, kind)));
        }
        if let Client::GitLab(_) = self.client {
            return self.gitlab_match_run(run).await;
        }
        let Some(policy) = self.policy().await?.valid() else {
            return Ok(None);
        };
        let is = |workflow: &str| run.workflow_path.rsplit('/').next() == Some(workflow);
        let (stage, kind) = if is(policy.pipeline.workflow.as_str()) {
            (Stage::PipelinePending, RunKind::Pipeline)
        } else if is(policy.deploy.workflow.as_str()) {
            (Stage::Deploying, RunKind::Deploy)
        } else {
            return Ok(None);
        };
        // Anyone who can push a branch can make a run with our workflow's file name and a
        // title carrying the SHA (a pull request's own `ci.yml` on `pull_request`): without
        // its id, only the App's own dispatch on the default branch can be ours.
        let own = self.client.own_user_id(self.target()).await?;
        if !run
            .origin
            .as_ref()
            .is_some_and(|o| o.is_dispatch_by(&self.default_branch, own))
        {
            tracing::info!(
                run = run.run_id,
                origin = ?run.origin,
                "a run of our workflow that Greenlight did not dispatch; ignored"
            );
            return Ok(None);
        }
        self.claim_run(run, stage, kind, |r| run.title.contains(r.sha.as_str()))
            .await
    }

    /// A run whose id no release knows yet: the release in `stage`, still without its `kind`
    /// run, that `ours` recognises in it and that dispatched before the run was created
    /// (within the clocks' slack), learns it (saved).
    pub(super) async fn claim_run(
        &self,
        run: &PipelineRun,
        stage: Stage,
        kind: RunKind,
        ours: impl Fn(&ReleaseRow) -> bool,
    ) -> Result<Option<(ReleaseRow, RunKind)>, JobError> {
        let candidates = self
            .store()
            .releases_in_stage(self.forge(), self.repo_str(), stage)
            .await
            .map_err(db)?;
        let found = candidates.into_iter().find(|r| {
            let (run_id, dispatched) = match kind {
                RunKind::Pipeline => (r.pipeline_run_id, r.pipeline_dispatched),
                RunKind::Deploy => (r.deploy_run_id, r.deploy_dispatched),
            };
            run_id.is_none()
                && ours(r)
                && dispatched.is_some_and(|at| run.created_at + RUN_MATCH_SLACK_MS >= at)
        });
        let Some(mut r) = found else { return Ok(None) };
        match kind {
            RunKind::Pipeline => {
                r.pipeline_run_id = Some(run.run_id);
                r.pipeline_url = Some(run.url.clone());
            }
            RunKind::Deploy => {
                r.deploy_run_id = Some(run.run_id);
                r.deploy_url = Some(run.url.clone());
            }
        }
        self.store().save_release(&r).await.map_err(db)?;
        Ok(Some((r, kind)))
    }

    async fn on_pipeline_run(
        &self,
        release: &mut ReleaseRow,
        run: &PipelineRun,
    ) -> Result<(), JobError> {
        if release.pipeline_url.is_none() {
            release.pipeline_url = Some(run.url.clone());
        }
        let (next, replayed) = match release.stage.on_pipeline(run.status) {
            Some(next) => (next, false),
            // The same final report again: make sure its effects were all made.
            None if release.stage.reached_by_pipeline(run.status) => (release.stage, true),
            None => {
                tracing::debug!(
                    stage = release.stage.as_str(),
                    "late pipeline report; nothing to change"
                );
                return Ok(());
            }
        };
        let changed = replayed || next != release.stage;
        release.stage = next;
        if next == Stage::PipelineFailed {
            release.detail =
                (run.status == RunStatus::Cancelled).then(|| "it was cancelled".to_owned());
        }
        self.store().save_release(release).await.map_err(db)?;
        let check_stage = match run.status {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Succeeded => "success",
            RunStatus::Failed => "failure",
            RunStatus::Cancelled => "cancelled",
        };
        self.update_pipeline_check(release, check_stage).await?;
        if !changed {
            return Ok(());
        }
        let Some(policy) = self.policy().await?.valid() else {
            return Ok(());
        };
        match next {
            Stage::Ready => {
                self.update_release_check(release, &policy).await?;
                self.refresh_card(release.pr, &policy, true).await
            }
            Stage::PipelineFailed => self.refresh_card(release.pr, &policy, true).await,
            Stage::PipelinePending
            | Stage::PipelineRunning
            | Stage::Queued
            | Stage::Deploying
            | Stage::Deployed
            | Stage::DeployFailed
            | Stage::Superseded
            | Stage::Closed => self.refresh_card(release.pr, &policy, false).await,
        }
    }

    async fn on_deploy_run(
        &self,
        release: &mut ReleaseRow,
        run: &PipelineRun,
    ) -> Result<(), JobError> {
        if release.deploy_url.is_none() {
            release.deploy_url = Some(run.url.clone());
            self.store().save_release(release).await.map_err(db)?;
        }
        let next = match release.stage.on_deploy(run.status) {
            Some(next) => next,
            // The same final report again: finish what a crashed attempt left undone.
            None if release.stage.reached_by_deploy(run.status) => release.stage,
            None => return Ok(()),
        };
        let outcome = match next {
            Stage::Deployed => "deployed",
            _ => "failed",
        };
        if release.stage != next {
            release.stage = next;
            if next == Stage::DeployFailed {
                release.detail = Some(format!(
                    "the deploy {} failed",
                    self.client.deploy_run_noun()
                ));
            }
            self.store().save_release(release).await.map_err(db)?;
        }
        // Each once, across retries: the ledger says what a previous attempt already did.
        if self.client.keeps_deployments() {
            // The deployment record Greenlight keeps is told the outcome.
            let Some(deployment) = release.deployment_id else {
                return Err(JobError::Fatal(
                    "deploy run for a release without a deployment".into(),
                ));
            };
            let state = if next == Stage::Deployed {
                DeployState::Success
            } else {
                DeployState::Failure
            };
            let description = format!("Greenlight: deploy {outcome}");
            let report = DeployReport {
                state,
                environment: &release.environment,
                description: &description,
                log_url: Some(&run.url),
            };
            self.deployment_status_once(deployment, report).await?;
        }
        let actor = self.client.ci_actor();
        self.audit_once(release, actor, "deploy_end", outcome, &run.url)
            .await?;
        let policy = self.policy().await?.valid();
        if let Some(policy) = &policy {
            self.update_release_check(release, policy).await?;
        }
        self.finish_deploy(release).await?;
        if let Some(policy) = policy {
            self.refresh_card(release.pr, &policy, true).await?;
            self.advance_queue(&policy).await?;
        }
        Ok(())
    }
}
