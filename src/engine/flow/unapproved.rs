//! Detecting what slipped past: a deployment to a governed environment (the policy's deploy
//! environment) that Greenlight did not start — a hand-dispatched workflow, a deployment made
//! through the API, an environment whose gate was switched off. It cannot be undone from
//! here; it is made visible: one `unapproved_deployment` audit entry per deployment, a
//! warning naming who and which commit, and `greenlight_unapproved_deployments_total`.

use super::Ctx;
use crate::engine::db;
use crate::release::DeploymentSeen;
use crate::store::AuditEntry;
use crate::worker::JobError;

/// The audit action of a deployment Greenlight did not start (counted on `/metrics`).
pub const UNAPPROVED_DEPLOYMENT: &str = "unapproved_deployment";

impl Ctx<'_> {
    /// Records `d` when it went to a governed environment without Greenlight: not its own
    /// deployment, not made by its own user (a job of a deploy run Greenlight dispatched is
    /// made by Greenlight's user).
    pub(super) async fn on_deployment_seen(&self, d: DeploymentSeen) -> Result<(), JobError> {
        let Some(policy) = self.policy().await?.valid() else {
            return Ok(());
        };
        if d.environment != policy.deploy.environment {
            return Ok(());
        }
        let ours = self
            .store()
            .release_by_deployment(self.forge(), self.repo_str(), d.deployment_id)
            .await
            .map_err(db)?
            .is_some()
            || self.made_by_own_deploy_run(&d).await?;
        if ours || d.creator.id == self.client.own_user_id(self.target()).await? {
            return Ok(());
        }
        let entry = AuditEntry {
            at: self.now(),
            forge: self.forge().into(),
            repo: self.repo_str().into(),
            pr: 0,
            sha: d.sha.to_string(),
            actor: format!("{} ({})", d.creator.login, d.creator.id),
            action: UNAPPROVED_DEPLOYMENT.into(),
            outcome: "detected".into(),
            reason: format!(
                "deployment {} to {} was not started by Greenlight",
                d.deployment_id, d.environment
            ),
        };
        let key = format!(
            "{}:unapproved:{}:{}",
            self.forge(),
            self.repo,
            d.deployment_id
        );
        if self.store().audit_once(&key, &entry).await.map_err(db)? {
            tracing::warn!(
                deployment = d.deployment_id,
                environment = %d.environment,
                sha = %d.sha,
                creator = %d.creator.login,
                creator_id = d.creator.id,
                "unapproved deployment: {} (id {}) deployed {} to {} without Greenlight",
                d.creator.login,
                d.creator.id,
                d.sha,
                d.environment
            );
        }
        Ok(())
    }

    /// True when the job that made `d` ran in a release's deploy run (the pipeline Greenlight
    /// created for it), whoever started or retried the job.
    async fn made_by_own_deploy_run(&self, d: &DeploymentSeen) -> Result<bool, JobError> {
        let Some(job) = d.job_id else {
            return Ok(false);
        };
        let Some(run) = self.client.job_run(self.target(), job).await? else {
            return Ok(false);
        };
        let release = self
            .store()
            .release_by_run(self.forge(), self.repo_str(), run)
            .await
            .map_err(db)?;
        Ok(release.is_some_and(|r| r.deploy_run_id == Some(run)))
    }
}
