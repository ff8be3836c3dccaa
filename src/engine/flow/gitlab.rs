//! GitLab's own parts of the flow: commit statuses where GitHub has check runs, pipelines
//! created through the API where GitHub dispatches workflows, and deploys as pipelines on the
//! default branch with `GREENLIGHT_*` variables where GitHub has Deployments.
//!
//! Commit statuses need no stored ids: GitLab keys them by (name, SHA) while they are pending
//! or running, so posting again updates the same status. A finished status is kept and a post
//! makes a new one, so each post is said once through the effect ledger, and a post whose
//! answer was lost is looked for before it is made again.

use super::Ctx;
use super::effects::{CommitStatus, DeployPipeline, PipelineStart, Started};
use super::runs::RunKind;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::engine::ledger::once;
use crate::forge::Client;
use crate::forge::gitlab::GitLab;
use crate::forge::gitlab::events::{VAR_ENVIRONMENT, VAR_MR, VAR_SHA};
use crate::forge::gitlab::statuses::StatusState;
use crate::forge::retry::ForgeError;
use crate::release::{CommitSha, PipelineRun, Stage};
use crate::render::CheckText;
use crate::store::{ReleaseRow, now_ms};
use crate::worker::JobError;

/// What to tell people when GitLab refuses the deploy pipeline's variables. The setting's
/// name comes first: the `greenlight/release` description is cut at
/// [`STATUS_DESCRIPTION_MAX`](crate::forge::gitlab::statuses::STATUS_DESCRIPTION_MAX) characters and must still name it.
pub const VARIABLES_REFUSED: &str = "GitLab refused the deploy pipeline's variables. Allow pipeline variables for the role of Greenlight's token: Settings → CI/CD → Variables → \"Minimum role to use pipeline variables\" (Developer or Maintainer, no higher than the token's role), then approve again";

/// The commit status for a stage of the pipeline check (`queued`, `in_progress`, `success`,
/// `failure`, `cancelled`).
fn pipeline_state(stage: &str) -> StatusState {
    match stage {
        "queued" => StatusState::Pending,
        "in_progress" => StatusState::Running,
        "success" => StatusState::Success,
        "failure" => StatusState::Failed,
        _ => StatusState::Canceled,
    }
}

/// The `greenlight/release` commit status for a candidate's stage.
fn release_state(stage: Stage) -> StatusState {
    match stage {
        Stage::PipelinePending
        | Stage::PipelineRunning
        | Stage::PipelineFailed
        | Stage::Ready
        | Stage::Queued => StatusState::Pending,
        Stage::Deploying => StatusState::Running,
        Stage::Deployed => StatusState::Success,
        Stage::DeployFailed => StatusState::Failed,
        Stage::Superseded | Stage::Closed => StatusState::Canceled,
    }
}

impl<'a> Ctx<'a> {
    /// The GitLab client, for GitLab's own steps.
    pub(super) fn gl(&self) -> Result<&'a GitLab, JobError> {
        match self.client {
            Client::GitLab(gl) => Ok(gl),
            Client::GitHub(_) => Err(JobError::Fatal(
                "internal error: a GitLab-only step was reached for GitHub".into(),
            )),
        }
    }

    pub(super) async fn gitlab_status(
        &self,
        sha: &CommitSha,
        name: &str,
        state: StatusState,
        description: &str,
        url: Option<&str>,
    ) -> Result<(), JobError> {
        let status = CommitStatus {
            ctx: self,
            sha,
            name,
            state,
            description,
            url,
        };
        once(self.store(), &status).await
    }

    /// An invalid policy: a failed `greenlight/config` status naming the file and line.
    pub(super) async fn gitlab_config_status(
        &self,
        sha: &CommitSha,
        text: &CheckText,
    ) -> Result<(), JobError> {
        self.gitlab_status(
            sha,
            "greenlight/config",
            StatusState::Failed,
            &text.title,
            None,
        )
        .await
    }

    /// A merge request from a fork under `allow_forks = false`: said once, nothing built.
    pub(super) async fn gitlab_fork_status(&self, sha: &CommitSha) -> Result<(), JobError> {
        self.gitlab_status(
            sha,
            "greenlight/pipeline",
            StatusState::Canceled,
            "Not built: merge request from a fork (allow_forks = false)",
            None,
        )
        .await
    }

    /// Mirrors the pipeline on the `greenlight/pipeline` status, linking the pipeline.
    pub(super) async fn gitlab_pipeline_status(
        &self,
        release: &ReleaseRow,
        stage: &str,
        text: &CheckText,
    ) -> Result<(), JobError> {
        self.gitlab_status(
            &release.sha,
            "greenlight/pipeline",
            pipeline_state(stage),
            &text.title,
            release.pipeline_url.as_deref(),
        )
        .await
    }

    /// Mirrors the release on the `greenlight/release` status, linking the deploy pipeline. A
    /// failed deploy says why in the description (a deploy refused for its variables names
    /// the setting to change), within GitLab's [`STATUS_DESCRIPTION_MAX`](crate::forge::gitlab::statuses::STATUS_DESCRIPTION_MAX).
    pub(super) async fn gitlab_release_status(
        &self,
        release: &ReleaseRow,
        text: &CheckText,
    ) -> Result<(), JobError> {
        let description = match (&release.detail, release.stage) {
            (Some(detail), Stage::DeployFailed) => format!("{}: {detail}", text.title),
            _ => text.title.clone(),
        };
        self.gitlab_status(
            &release.sha,
            "greenlight/release",
            release_state(release.stage),
            &description,
            release.deploy_url.as_deref(),
        )
        .await
    }

    /// A candidate that will not ship: its open statuses turn `canceled`.
    pub(super) async fn gitlab_close_statuses(
        &self,
        release: &ReleaseRow,
        was: Stage,
        text: &CheckText,
        why: &str,
    ) -> Result<(), JobError> {
        let description = format!("{} ({why})", text.title);
        if matches!(was, Stage::PipelinePending | Stage::PipelineRunning) {
            self.gitlab_status(
                &release.sha,
                "greenlight/pipeline",
                StatusState::Canceled,
                &description,
                release.pipeline_url.as_deref(),
            )
            .await?;
        }
        if matches!(was, Stage::Ready | Stage::Queued | Stage::Deploying) {
            self.gitlab_status(
                &release.sha,
                "greenlight/release",
                StatusState::Canceled,
                &description,
                None,
            )
            .await?;
        }
        Ok(())
    }

    /// Creates the pipeline for the merge request's source branch (a merge request pipeline
    /// for forks), then marks `greenlight/pipeline` pending with its link. The branch's own
    /// `.gitlab-ci.yml` runs: only a pipeline of exactly this commit will count (see
    /// [`Self::on_run`]), and if the branch already moved on, nothing is created for the old
    /// commit.
    pub(super) async fn gitlab_start_pipeline(
        &self,
        release: &mut ReleaseRow,
    ) -> Result<(), JobError> {
        let gl = self.gl()?;
        let mr = gl.merge_request(self.inst, release.pr).await?;
        if mr.head != release.sha {
            tracing::info!(head = %mr.head, "the branch moved on; its own update builds it");
            return Ok(());
        }
        let start = PipelineStart {
            ctx: self,
            release: release.id,
            attempt: release.pipeline_attempt,
            pr: release.pr,
            sha: &release.sha,
            source_branch: &mr.source_branch,
            from_fork: mr.from_fork,
        };
        let created = once(self.store(), &start).await?;
        match created {
            Started::Pipeline {
                pipeline: p,
                adopted,
            } => {
                if adopted {
                    // Its hooks may have come while no release knew it.
                    self.learned_run(p.id, None).await?;
                }
                release.pipeline_attempt += 1;
                release.pipeline_dispatched = Some(now_ms());
                release.pipeline_run_id = Some(p.id);
                release.pipeline_url = Some(p.url);
                self.store().save_release(release).await.map_err(db)?;
                tracing::info!(sha = %release.sha, pipeline = p.id, "pipeline created");
                let text = self.check_text(release, "pipeline", "queued")?;
                self.gitlab_pipeline_status(release, "queued", &text).await
            }
            Started::Refused(ForgeError::Rejected { status, message }) => {
                release.stage = Stage::PipelineFailed;
                release.detail = Some(format!(
                    "GitLab refused to create the pipeline for `{}` ({status}): {message}",
                    mr.source_branch
                ));
                self.store().save_release(release).await.map_err(db)?;
                self.update_pipeline_check(release, "failure").await
            }
            Started::Refused(_) => {
                release.stage = Stage::PipelineFailed;
                release.detail = Some(format!(
                    "GitLab found no branch `{}` to build",
                    mr.source_branch
                ));
                self.store().save_release(release).await.map_err(db)?;
                self.update_pipeline_check(release, "failure").await
            }
        }
    }

    /// Starts the deploy: a pipeline on the default branch with `GREENLIGHT_ENVIRONMENT`,
    /// `GREENLIGHT_SHA` and `GREENLIGHT_MR`. Recorded *before* it is created: a retried job
    /// never creates a second deploy blindly. A creation in doubt (lost answer, 5xx, timeout,
    /// crash) is looked for among the default branch's API pipelines by `GREENLIGHT_SHA`, and
    /// made again only when none shows up within the settle time (as GitHub's dispatch).
    pub(super) async fn gitlab_start_deploy(
        &self,
        release: &mut ReleaseRow,
        policy: &Policy,
    ) -> Result<(), JobError> {
        release.stage = Stage::Deploying;
        if release.deploy_run_id.is_some() {
            return self.update_release_check(release, policy).await;
        }
        // Said once, whatever the number of attempts to create the pipeline.
        let audit_key = format!("gitlab:deploy-start:{}", release.id);
        let approvers = self.store().approvals(release.id).await.map_err(db)?;
        let entry = self.audit_entry(
            release,
            &approvers.join(","),
            "deploy_start",
            "ok",
            &format!("pipeline on {}", self.default_branch),
        );
        self.audit_under(&audit_key, &entry).await?;
        let legacy_dispatched = release.deploy_dispatched;
        if legacy_dispatched.is_none() {
            // Before the call (the ledger's intent, written next, makes it durable): a
            // Pipeline Hook that comes before the answer (or instead of it) is matched by its
            // `GREENLIGHT_SHA` and a creation time after this.
            release.deploy_dispatched = Some(now_ms());
            self.store().save_release(release).await.map_err(db)?;
        }
        let pr = release.pr.to_string();
        let variables = [
            (VAR_ENVIRONMENT, release.environment.as_str()),
            (VAR_SHA, release.sha.as_str()),
            (VAR_MR, pr.as_str()),
        ];
        let deploy = DeployPipeline {
            ctx: self,
            release: release.id,
            sha: &release.sha,
            legacy_dispatched,
            variables: &variables,
        };
        match once(self.store(), &deploy).await? {
            Started::Pipeline { pipeline: p, .. } => {
                release.deploy_run_id = Some(p.id);
                release.deploy_url = Some(p.url);
            }
            Started::Refused(ForgeError::Rejected { status, message }) => {
                let detail = if message.to_ascii_lowercase().contains("variable") {
                    format!("{VARIABLES_REFUSED} ({status}: {message})")
                } else {
                    format!(
                        "GitLab refused the deploy pipeline on `{}` ({status}): {message}",
                        self.default_branch
                    )
                };
                return self.deploy_not_started(release, policy, detail).await;
            }
            Started::Refused(_) => {
                let detail = format!(
                    "GitLab found no branch `{}` to run the deploy pipeline on",
                    self.default_branch
                );
                return self.deploy_not_started(release, policy, detail).await;
            }
        }
        self.store().save_release(release).await.map_err(db)?;
        self.update_release_check(release, policy).await
    }

    /// A pipeline whose id we never learnt (the answer to its creation was lost): a deploy by
    /// its `GREENLIGHT_SHA`, a candidate's pipeline by its commit, both created after we asked.
    pub(super) async fn gitlab_match_run(
        &self,
        run: &PipelineRun,
    ) -> Result<Option<(ReleaseRow, RunKind)>, JobError> {
        let (stage, kind, sha) = match &run.sha_input {
            Some(sha) => (Stage::Deploying, RunKind::Deploy, sha),
            None => (Stage::PipelinePending, RunKind::Pipeline, &run.run_head),
        };
        let claimed = self.claim_run(run, stage, kind, |r| &r.sha == sha).await?;
        if let Some((release, RunKind::Deploy)) = &claimed
            && let Some(policy) = self.policy().await?.valid()
        {
            // A deploy whose creation answer was lost, reported before the retry found it:
            // the retry will find it adopted and have nothing left to say, so the status
            // and the card say now that it runs (said once, whichever comes first).
            let mut release = release.clone();
            self.update_release_check(&mut release, &policy).await?;
            self.refresh_card(release.pr, &policy, false).await?;
        }
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::gitlab::statuses::STATUS_DESCRIPTION_MAX;

    #[test]
    fn a_refused_deploy_names_the_setting_within_the_status_limit() {
        let said = format!(
            "Deploy to production-eu-west-1-canary failed: {VARIABLES_REFUSED} (400: {})",
            "x".repeat(300)
        );
        let kept: String = said.chars().take(STATUS_DESCRIPTION_MAX).collect();
        assert!(
            kept.contains("\"Minimum role to use pipeline variables\""),
            "{kept}"
        );
    }

    #[test]
    fn pipeline_stages_map_to_commit_status_states() {
        assert_eq!(pipeline_state("queued"), StatusState::Pending);
        assert_eq!(pipeline_state("in_progress"), StatusState::Running);
        assert_eq!(pipeline_state("success"), StatusState::Success);
        assert_eq!(pipeline_state("failure"), StatusState::Failed);
        assert_eq!(pipeline_state("cancelled"), StatusState::Canceled);
    }

    #[test]
    fn only_a_finished_deploy_completes_the_release_status() {
        assert_eq!(release_state(Stage::Ready), StatusState::Pending);
        assert_eq!(release_state(Stage::Queued), StatusState::Pending);
        assert_eq!(release_state(Stage::Deploying), StatusState::Running);
        assert_eq!(release_state(Stage::Deployed), StatusState::Success);
        assert_eq!(release_state(Stage::DeployFailed), StatusState::Failed);
        assert_eq!(release_state(Stage::Superseded), StatusState::Canceled);
        assert_eq!(release_state(Stage::Closed), StatusState::Canceled);
    }
}
