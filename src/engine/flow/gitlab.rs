//! GitLab's own parts of the flow: pipelines created through the API where GitHub dispatches
//! workflows, and deploys as pipelines on the default branch with `GREENLIGHT_*` variables
//! where GitHub has Deployments. (Its commit statuses are shown like every forge's checks, in
//! [`checks`](super::checks).)

use super::Ctx;
use super::effects::{DeployPipeline, PipelineStart, Started};
use super::runs::RunKind;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::forge::Client;
use crate::forge::gitlab::GitLab;
use crate::forge::gitlab::events::{VAR_ENVIRONMENT, VAR_MR, VAR_SHA};
use crate::forge::retry::ForgeError;
use crate::release::{PipelineRun, Stage};
use crate::store::ReleaseRow;
use crate::worker::JobError;

/// What to tell people when GitLab refuses the deploy pipeline's variables. The setting's
/// name comes first: the `greenlight/release` description is cut at
/// [`STATUS_DESCRIPTION_MAX`](crate::forge::gitlab::statuses::STATUS_DESCRIPTION_MAX) characters and must still name it.
pub const VARIABLES_REFUSED: &str = "GitLab refused the deploy pipeline's variables. Allow pipeline variables for the role of Greenlight's token: Settings → CI/CD → Variables → \"Minimum role to use pipeline variables\" (Developer or Maintainer, no higher than the token's role), then approve again";

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
        let created = self.once(&start).await?;
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
                release.pipeline_dispatched = Some(self.now());
                release.pipeline_run_id = Some(p.id);
                release.pipeline_url = Some(p.url);
                self.store().save_release(release).await.map_err(db)?;
                tracing::info!(sha = %release.sha, pipeline = p.id, "pipeline created");
                self.update_pipeline_check(release, "queued").await
            }
            Started::Refused(ForgeError::Rejected { status, message }) => {
                let detail = format!(
                    "GitLab refused to create the pipeline for `{}` ({status}): {message}",
                    mr.source_branch
                );
                self.pipeline_not_started(release, detail).await
            }
            Started::Refused(_) => {
                let detail = format!("GitLab found no branch `{}` to build", mr.source_branch);
                self.pipeline_not_started(release, detail).await
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
            release.deploy_dispatched = Some(self.now());
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
        match self.once(&deploy).await? {
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
    /// its `GREENLIGHT_SHA` and Greenlight's own user, a candidate's pipeline by its commit,
    /// both created after we asked.
    pub(super) async fn gitlab_match_run(
        &self,
        run: &PipelineRun,
    ) -> Result<Option<(ReleaseRow, RunKind)>, JobError> {
        let (stage, kind, sha) = match &run.sha_input {
            Some(sha) => (Stage::Deploying, RunKind::Deploy, sha),
            None => (Stage::PipelinePending, RunKind::Pipeline, &run.run_head),
        };
        let started_by = run.origin.as_ref().and_then(|o| o.actor_id);
        if matches!(kind, RunKind::Deploy)
            && started_by != Some(self.client.own_user_id(self.target()).await?)
        {
            // Anyone who may run pipelines on the default branch can set `GREENLIGHT_SHA`:
            // only a pipeline Greenlight's own user created can be the deploy it asked for.
            tracing::info!(
                run = run.run_id,
                ?started_by,
                "a deploy pipeline Greenlight did not create; not adopted"
            );
            return Ok(None);
        }
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
}
