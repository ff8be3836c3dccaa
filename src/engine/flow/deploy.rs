//! The deploy queue and the deploy itself: one deploy per repository and environment at a
//! time (a lease, so a lost deploy cannot hold it forever), others wait in approval order.

use super::Ctx;
use super::effects::{Deployment, Dispatched};
use crate::config::policy::Policy;
use crate::engine::{DEPLOY_LEASE_MS, db};
use crate::forge::Client;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::{DeployReport, DeployState};
use crate::release::Stage;
use crate::release::gates::{Hold, deploy_gate};
use crate::store::ReleaseRow;
use crate::worker::JobError;

impl Ctx<'_> {
    /// The deploy gates of `r` under `policy` as it is now (freeze, quorum of the votes
    /// counted now): the one place their facts are gathered, for the queue and for each
    /// forge's own gate (GitHub's protection rule, GitLab's deployment approval).
    pub(super) async fn gates_now(
        &self,
        r: &ReleaseRow,
        policy: &Policy,
    ) -> Result<Result<(), Hold>, JobError> {
        let frozen = policy
            .deploy
            .frozen
            .then_some(policy.deploy.freeze_reason.as_str());
        let votes = self.store().approvals(r.id).await.map_err(db)?.len();
        Ok(deploy_gate(frozen, votes, policy.approvals.required))
    }

    fn env_lease(&self, environment: &str) -> String {
        format!("env:{}:{}:{environment}", self.forge(), self.repo)
    }

    /// Starts the oldest queued release if its environment is free; refreshes the cards of the
    /// ones still waiting (their position may have changed).
    pub(super) async fn advance_queue(&self, policy: &Policy) -> Result<(), JobError> {
        // A deploy whose start was interrupted (crash, forge outage) holds its lock: finish
        // starting it before anything else.
        for mut r in self
            .store()
            .releases_in_stage(self.forge(), self.repo_str(), Stage::Deploying)
            .await
            .map_err(db)?
        {
            // Started means: its run is known, and its deployment record where Greenlight
            // keeps one; a dispatch in doubt is looked into again (a GHES dispatch answered
            // without a run id is recognised as answered there).
            let started = r.deploy_run_id.is_some()
                && (r.deployment_id.is_some() || !self.client.keeps_deployments());
            if !started {
                self.start_deploy(&mut r, policy).await?;
                self.refresh_card(r.pr, policy, true).await?;
            }
        }
        loop {
            let queued = self
                .store()
                .releases_in_stage(self.forge(), self.repo_str(), Stage::Queued)
                .await
                .map_err(db)?;
            // The gates of the policy as it is now (a freeze pushed, a quorum raised since the
            // votes were counted): the first release they let go leaves the queue; one they
            // hold waits, and its card and check say why.
            let mut first = None;
            let mut waiting = Vec::new();
            for mut r in queued {
                let held = self.queue_gate(&mut r, policy).await?;
                if held || first.is_some() {
                    waiting.push(r);
                } else {
                    first = Some(r);
                }
            }
            let Some(mut first) = first else {
                for r in &waiting {
                    self.refresh_card(r.pr, policy, false).await?;
                }
                return Ok(());
            };
            let lease = self.env_lease(&first.environment);
            if !self
                .store()
                .try_lease(&lease, &first.id.to_string(), DEPLOY_LEASE_MS)
                .await
                .map_err(db)?
            {
                if self.free_if_over(&lease).await? {
                    continue;
                }
                self.refresh_card(first.pr, policy, false).await?;
                for r in &waiting {
                    self.refresh_card(r.pr, policy, false).await?;
                }
                return Ok(());
            }
            self.start_deploy(&mut first, policy).await?;
            self.refresh_card(first.pr, policy, true).await?;
            if first.stage == Stage::Deploying {
                for r in &waiting {
                    self.refresh_card(r.pr, policy, false).await?;
                }
                return Ok(());
            }
            // The deploy could not even start; the environment is free again for the next one.
        }
    }

    /// Checks a queued release against the deploy gates of `policy` (the current one): true
    /// when a gate holds it. What holds it is kept in its `detail` (cleared when nothing
    /// does), and its release check says so when that changes.
    async fn queue_gate(&self, r: &mut ReleaseRow, policy: &Policy) -> Result<bool, JobError> {
        let hold = self.gates_now(r, policy).await?.err();
        let detail = hold.as_ref().map(Hold::describe);
        if r.detail != detail {
            if let Some(h) = &hold {
                tracing::info!(release = r.id, gate = h.code(), "queued release held");
            }
            r.detail = detail;
            self.store().save_release(r).await.map_err(db)?;
            self.update_release_check(r, policy).await?;
        }
        Ok(hold.is_some())
    }

    /// A job that saved a deploy's end (deployed, failed, never started) and died before
    /// freeing its environment leaves the lock to a release that no longer deploys: free it
    /// (true) rather than make the queue wait out the lease.
    async fn free_if_over(&self, lease: &str) -> Result<bool, JobError> {
        let store = self.store();
        let Some(holder) = store.lease_holder(lease).await.map_err(db)? else {
            return Ok(false);
        };
        let Ok(id) = holder.parse::<i64>() else {
            return Ok(false);
        };
        let over = match store.release(id).await.map_err(db)? {
            Some(r) => r.stage != Stage::Deploying,
            None => true,
        };
        if over {
            tracing::warn!(
                release = id,
                "environment held by a finished deploy; freeing it"
            );
            store.release_lease(lease, &holder).await.map_err(db)?;
        }
        Ok(over)
    }

    /// The release's GitHub Deployment: created once (its intent first; after a lost answer,
    /// found again rather than created twice), its id saved with the release.
    async fn ensure_deployment(
        &self,
        release: &mut ReleaseRow,
        approvers: &[String],
    ) -> Result<u64, JobError> {
        if let Some(id) = release.deployment_id {
            return Ok(id);
        }
        let store = self.store();
        let deployment = Deployment {
            ctx: self,
            release: release.id,
            sha: &release.sha,
            environment: &release.environment,
            pr: release.pr,
            approvers,
        };
        let id = self.once(&deployment).await?;
        release.deployment_id = Some(id);
        store.save_release(release).await.map_err(db)?;
        Ok(id)
    }

    /// Creates the GitHub Deployment (once), marks it in progress and dispatches the deploy
    /// workflow on the default branch. The dispatch is recorded *before* it is made: a retried
    /// job never dispatches a second deploy; a lost dispatch is found by the run's title.
    async fn start_deploy(
        &self,
        release: &mut ReleaseRow,
        policy: &Policy,
    ) -> Result<(), JobError> {
        super::transit(release, release.stage.on_deploy_start(), "a deploy start")?;
        if let Client::GitLab(_) = self.client {
            return self.gitlab_start_deploy(release, policy).await;
        }
        let store = self.store();
        let approvers = store.approvals(release.id).await.map_err(db)?;
        let deployment = self.ensure_deployment(release, &approvers).await?;
        self.audit_once(
            release,
            &approvers.join(","),
            "deploy_start",
            "ok",
            &format!("deployment {deployment}"),
        )
        .await?;
        // Once, also when an earlier attempt died right after creating the deployment.
        let environment = release.environment.clone();
        let status = DeployReport {
            state: DeployState::InProgress,
            environment: &environment,
            description: "Greenlight: deploying",
            log_url: None,
        };
        if release.deploy_run_id.is_none() {
            if release.deploy_dispatched.is_none() {
                // Before the call: a `workflow_run` webhook that comes before the answer (or
                // instead of it) is matched by its title and a creation time after this.
                release.deploy_dispatched = Some(self.now());
                store.save_release(release).await.map_err(db)?;
            }
            let workflow = policy.deploy.workflow.as_str();
            let sha = release.sha.clone();
            let deployment_id = deployment.to_string();
            let inputs = [
                ("sha", sha.as_str()),
                ("environment", environment.as_str()),
                ("deployment_id", deployment_id.as_str()),
            ];
            // The dispatch and the deployment's "in progress" do not wait for each other (each
            // is once, with its own intent); both are finished before either outcome counts.
            // The dispatch goes first: its intent is the first on the connection. A status
            // that failed is retried after the dispatch's outcome is saved, so its run id is
            // not lost with the attempt.
            let (dispatched, shown) = tokio::join!(
                self.dispatch_once(release.id, "deploy", workflow, &sha, &inputs),
                self.deployment_status_once(deployment, status),
            );
            match dispatched? {
                Dispatched::Run(Some(run)) => {
                    release.deploy_run_id = Some(run.id);
                    release.deploy_url = Some(run.url);
                }
                Dispatched::Run(None) => {}
                Dispatched::Refused(ForgeError::Rejected { status, message }) => {
                    return self
                        .deploy_not_started(
                            release,
                            policy,
                            format!("cannot dispatch {workflow} ({status}): {message}"),
                        )
                        .await;
                }
                Dispatched::Refused(_) => {
                    return self
                        .deploy_not_started(
                            release,
                            policy,
                            format!("workflow {workflow} not found on {}", self.default_branch),
                        )
                        .await;
                }
            }
            store.save_release(release).await.map_err(db)?;
            shown?;
        } else {
            self.deployment_status_once(deployment, status).await?;
            store.save_release(release).await.map_err(db)?;
        }
        self.update_release_check(release, policy).await
    }

    /// The deploy workflow could not be started: the deployment fails, the lock frees.
    pub(super) async fn deploy_not_started(
        &self,
        release: &mut ReleaseRow,
        policy: &Policy,
        detail: String,
    ) -> Result<(), JobError> {
        // Only a forge with deployments of its own (GitHub) has one to tell.
        if let Some(id) = release.deployment_id {
            let status = DeployReport {
                state: DeployState::Error,
                environment: &release.environment,
                description: "Greenlight: the deploy workflow could not be started",
                log_url: None,
            };
            self.deployment_status_once(id, status).await?;
        }
        // Audited before the stage is saved (once, the same ledger entry as a finished
        // deploy's): a retry after a crash in between still reaches here.
        self.audit_once(release, "greenlight", "deploy_end", "failed", &detail)
            .await?;
        super::transit(
            release,
            release.stage.on_deploy_refused(),
            "a deploy refused",
        )?;
        release.detail = Some(detail.clone());
        self.store().save_release(release).await.map_err(db)?;
        self.update_release_check(release, policy).await?;
        self.finish_deploy(release).await
    }

    /// Frees the environment for the next release.
    pub(super) async fn finish_deploy(&self, release: &ReleaseRow) -> Result<(), JobError> {
        self.store()
            .release_lease(
                &self.env_lease(&release.environment),
                &release.id.to_string(),
            )
            .await
            .map_err(db)
    }
}
