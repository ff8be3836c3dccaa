//! Greenlight as GitLab's deployment approver (protected environments with approval rules,
//! Premium and Ultimate). A job deploying to such an environment waits (`manual`) and its
//! deployment is `blocked` until approved. Greenlight approves only the deployment of the
//! deploy pipeline it created for the release it is deploying — the pipeline id recorded with
//! the release, `GREENLIGHT_SHA` equal to the release's commit, triggered by Greenlight's own
//! user — with the policy's gates (freeze, quorum) read again now: the same pure decision that
//! answers GitHub's deployment protection rule ([`protection::decide`]). Every other blocked
//! deployment of the governed environment is rejected, with a comment saying how to deploy,
//! and audited as `unapproved_deployment`. An approved job is then started: GitLab does not
//! run it by itself.
//!
//! When: on the Pipeline Hook of a pipeline with a `manual` job that names an environment
//! (the pipeline turns `manual`; GitLab sends no Job Hook nor Deployment Hook when a job
//! becomes blocked), on a Job Hook of such a job should one come, and from the reconciler,
//! which lists blocked deployments while a release deploys.
//!
//! Exactly once per deployment: the answer is an intent on disk before it is posted. After a
//! lost answer (or a crash, or a refusal), the deployment's approvals are read before anything
//! is posted again: an answer of Greenlight's user already there is the answer; with none,
//! GitLab took nothing, and the deployment is judged again under the gates as they are then.

use super::Ctx;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::forge::gitlab::approvals::{BlockedDeployment, ReviewTaken};
use crate::forge::gitlab::events::VAR_SHA;
use crate::forge::retry::ForgeError;
use crate::release::protection::{self, GateAnswer, GateFacts, Ours, ReleaseFacts};
use crate::release::{CommitSha, Stage};
use crate::store::{AuditEntry, ReleaseRow};
use crate::worker::JobError;

use super::unapproved::UNAPPROVED_DEPLOYMENT;

/// What to change when GitLab refuses Greenlight's approval of its own pipeline's deployment
/// (GitLab forbids the pipeline's triggerer to approve by default).
pub const TRIGGERER_MAY_APPROVE: &str = "Allow Greenlight's user to approve the deployments of the pipelines it starts: Settings → CI/CD → Protected environments → Approval options → \"Allow pipeline triggerer to approve deployment\"";

/// The comment that goes with GitLab's review: what was approved, or why not and how to
/// deploy.
fn review_comment(answer: &GateAnswer, release: Option<&ReleaseRow>) -> String {
    match answer {
        GateAnswer::Approve => {
            let what =
                release.map_or_else(String::new, |r| format!(" !{} at {}", r.pr, r.sha.short()));
            format!("Greenlight: approved{what}, as approved in the merge request.")
        }
        GateAnswer::Reject(why) => format!(
            "Greenlight: rejected, {}. To deploy, comment /approve-release on the merge request \
             once its pipeline passed; Greenlight starts the deploy pipeline itself.",
            why.describe()
        ),
    }
}

impl<'a> Ctx<'a> {
    /// A job waits on `waiting_on` (as the hook names it; a hook may name it unexpanded):
    /// every blocked deployment of the governed environment (the policy's) is reviewed once,
    /// when Greenlight is the approver.
    pub(super) async fn on_deployments_blocked(&self, waiting_on: &str) -> Result<(), JobError> {
        let gl = self.gl()?;
        if !gl.approves_deployments() {
            tracing::debug!("not GitLab's deployment approver (GITLAB_DEPLOYMENT_APPROVALS)");
            return Ok(());
        }
        let Some(policy) = self.policy().await?.valid() else {
            return Ok(());
        };
        let environment = policy.deploy.environment.as_str();
        tracing::debug!(
            waiting_on,
            environment,
            "a job waits; reviewing blocked deployments"
        );
        let blocked = gl.blocked_deployments(self.inst, Some(environment)).await?;
        for d in &blocked {
            if d.environment == environment {
                self.review_blocked(d, &policy).await?;
            }
        }
        // Reviews posted whose answer never came: the approval may have unblocked the
        // deployment (it is no longer listed) while its job still waits to be started.
        for id in self.reviews_in_doubt().await? {
            if blocked.iter().any(|d| d.id == id) {
                continue;
            }
            match gl.deployment(self.inst, id).await? {
                Some(d) => self.review_blocked(&d, &policy).await?,
                None => self.review_settled(id).await?,
            }
        }
        Ok(())
    }

    /// The ledger key listing the deployments of this project whose review was posted
    /// without an answer yet.
    fn in_doubt_key(&self) -> String {
        format!("gitlab:approval-in-doubt:{}", self.repo)
    }

    async fn reviews_in_doubt(&self) -> Result<Vec<u64>, JobError> {
        let listed = self
            .store()
            .effect(&self.in_doubt_key())
            .await
            .map_err(db)?
            .unwrap_or_default();
        Ok(listed.split(',').filter_map(|id| id.parse().ok()).collect())
    }

    /// Adds (`true`) or removes `id` from the reviews in doubt (in the repository's lease).
    async fn mark_in_doubt(&self, id: u64, in_doubt: bool) -> Result<(), JobError> {
        let mut ids = self.reviews_in_doubt().await?;
        ids.retain(|i| *i != id);
        if in_doubt {
            ids.push(id);
        }
        let listed: Vec<String> = ids.iter().map(u64::to_string).collect();
        self.store()
            .put_effect(&self.in_doubt_key(), &listed.join(","))
            .await
            .map_err(db)
    }

    /// A review in doubt of a deployment GitLab no longer has: nothing left to do.
    async fn review_settled(&self, id: u64) -> Result<(), JobError> {
        self.mark_in_doubt(id, false).await
    }

    /// Reviews `d` once (see the module docs).
    async fn review_blocked(&self, d: &BlockedDeployment, policy: &Policy) -> Result<(), JobError> {
        let key = format!("gitlab:approval:{}:{}", self.repo, d.id);
        let answered = format!("{key}:answered");
        let store = self.store();
        if store.effect(&answered).await.map_err(db)?.is_some() {
            return Ok(());
        }
        let gl = self.gl()?;
        if store.effect(&key).await.map_err(db)?.is_some() {
            // Posted before, perhaps (a lost answer, a crash, a refusal): GitLab's record of
            // the deployment says whether it took the answer.
            if let Some(given) = gl.own_deployment_answer(self.inst, d.id).await? {
                tracing::info!(deployment = d.id, answer = %given, "review found at GitLab");
                if given == "approved" {
                    self.play_approved(d).await?;
                }
                store.record_effect(&answered, &given).await.map_err(db)?;
                return self.mark_in_doubt(d.id, false).await;
            }
        }
        // GitLab holds no answer of Greenlight's: decided now, under the gates as they are now
        // (a freeze pushed since an answer GitLab never took rejects).
        let Some((answer, release)) = self.judge_blocked(d, policy).await? else {
            return Ok(());
        };
        let state = answer.state().to_owned();
        let comment = review_comment(&answer, release.as_ref());
        self.audit_review(&key, d, &answer, release.as_ref())
            .await?;
        self.mark_in_doubt(d.id, true).await?;
        store
            .intend(&key, &format!("{state}\n{comment}"))
            .await
            .map_err(db)?;
        match gl
            .review_deployment(self.inst, d.id, &state, &comment)
            .await
        {
            Ok(ReviewTaken::Taken) => {
                if state == "approved" {
                    self.play_approved(d).await?;
                }
            }
            Ok(ReviewTaken::NotWaiting) => tracing::info!(
                deployment = d.id,
                "the deployment no longer waits for approvals"
            ),
            Err(ForgeError::Rejected { status, message }) => {
                return Err(JobError::Fatal(format!(
                    "GitLab refused Greenlight's review of deployment {} ({status}: {message}). {TRIGGERER_MAY_APPROVE}",
                    d.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        store.record_effect(&answered, &state).await.map_err(db)?;
        self.mark_in_doubt(d.id, false).await
    }

    /// Starts the job an approval unblocked (GitLab leaves it `manual`).
    async fn play_approved(&self, d: &BlockedDeployment) -> Result<(), JobError> {
        let Some(job) = d.job_id else {
            return Ok(());
        };
        let played = self.gl()?.play_job(self.inst, job).await?;
        tracing::info!(
            deployment = d.id,
            job,
            played,
            "approved deploy job started"
        );
        Ok(())
    }

    /// The answer for `d` now, and the release it belongs to; `None` while it may be the
    /// deploy pipeline of a release whose creation answer was lost (not known yet: the
    /// deploy's retry adopts it, and the reconciler comes back).
    async fn judge_blocked(
        &self,
        d: &BlockedDeployment,
        policy: &Policy,
    ) -> Result<Option<(GateAnswer, Option<ReleaseRow>)>, JobError> {
        let gl = self.gl()?;
        let store = self.store();
        let own = gl.own_user_id().await?;
        let release = match d.pipeline_id {
            Some(p) => store
                .release_by_run(self.forge(), self.repo_str(), p)
                .await
                .map_err(db)?
                .filter(|r| r.deploy_run_id == Some(p)),
            None => None,
        };
        if release.is_none() && d.user.id == own {
            let in_doubt = store
                .releases_in_stage(self.forge(), self.repo_str(), Stage::Deploying)
                .await
                .map_err(db)?
                .into_iter()
                .any(|r| r.deploy_run_id.is_none() && r.environment == d.environment);
            if in_doubt {
                tracing::info!(
                    deployment = d.id,
                    "a deploy pipeline in doubt may be this one; reviewed once it is known"
                );
                return Ok(None);
            }
        }
        let deploys = match d.pipeline_id {
            Some(p) => gl
                .pipeline_variable(self.inst, p, VAR_SHA)
                .await?
                .and_then(|s| CommitSha::parse(&s)),
            None => None,
        };
        let gates = match &release {
            Some(r) => self.gates_now(r, &policy).await?,
            None => Ok(()),
        };
        let facts = GateFacts {
            environment: &d.environment,
            sha: deploys.as_ref(),
            creator: Some(d.user.login.0.as_str()),
            created_by_greenlight: d.user.id == own,
            release: release.as_ref().map(|r| ReleaseFacts {
                ours: Ours::Pipeline,
                stage: r.stage,
                environment: &r.environment,
                sha: &r.sha,
            }),
            gates: Some(gates),
        };
        Ok(Some((protection::decide(&facts), release)))
    }

    /// One audit entry per answer given: Greenlight's own deploy as `environment_gate`; anything
    /// else as `unapproved_deployment` (under the key the Deployment Hook's detection uses,
    /// so the deployment is counted once), with a warning naming who and which commit.
    async fn audit_review(
        &self,
        key: &str,
        d: &BlockedDeployment,
        answer: &GateAnswer,
        release: Option<&ReleaseRow>,
    ) -> Result<(), JobError> {
        let reason = match answer {
            GateAnswer::Approve => String::new(),
            GateAnswer::Reject(why) => format!("{}: {}", why.code(), why.describe()),
        };
        let actor = format!("{} ({})", d.user.login, d.user.id);
        match release {
            Some(r) => {
                let entry = AuditEntry {
                    at: self.now(),
                    forge: self.forge().into(),
                    repo: self.repo_str().into(),
                    pr: r.pr,
                    sha: r.sha.to_string(),
                    actor,
                    action: "environment_gate".into(),
                    outcome: answer.state().into(),
                    reason,
                };
                self.audit_under(&format!("{key}:audit:{}", answer.state()), &entry)
                    .await
            }
            None => {
                let entry = AuditEntry {
                    at: self.now(),
                    forge: self.forge().into(),
                    repo: self.repo_str().into(),
                    pr: 0,
                    sha: d.sha.to_string(),
                    actor,
                    action: UNAPPROVED_DEPLOYMENT.into(),
                    outcome: answer.state().into(),
                    reason: format!(
                        "deployment {} to {} was not started by Greenlight ({reason})",
                        d.id, d.environment
                    ),
                };
                let once = format!("{}:unapproved:{}:{}", self.forge(), self.repo, d.id);
                if self.store().audit_once(&once, &entry).await.map_err(db)? {
                    tracing::warn!(
                        deployment = d.id,
                        environment = %d.environment,
                        sha = %d.sha,
                        creator = %d.user.login,
                        creator_id = d.user.id,
                        "unapproved deployment rejected: {} (id {}) tried to deploy {} to {} without Greenlight",
                        d.user.login,
                        d.user.id,
                        d.sha,
                        d.environment
                    );
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::protection::GateRefusal;

    #[test]
    fn a_rejection_says_how_to_deploy() {
        let text = review_comment(
            &GateAnswer::Reject(GateRefusal::NotStartedByGreenlight),
            None,
        );
        assert!(text.contains("/approve-release"), "{text}");
        assert!(text.contains("merge request"), "{text}");
    }
}
