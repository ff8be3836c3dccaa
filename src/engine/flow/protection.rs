//! Greenlight as the environment's own gate (GitHub's custom deployment protection rule).
//!
//! A job that names a protected environment waits until every rule of it answers. Greenlight
//! approves only a deploy it started — its own deployment, or the job of the deploy run it
//! dispatched, made by its own user — for the release that is deploying, at that commit, with
//! the policy's gates (freeze, quorum) read again now. Anything else, a hand-dispatched run
//! above all, is rejected with a comment saying how to deploy.
//!
//! Exactly once: the answer is an intent on disk before it is sent; a retry (a lost answer)
//! or a redelivered webhook sends the recorded answer again rather than deciding anew, and
//! GitHub takes one review per pending gate (a second is answered 422, nothing pending).

use super::Ctx;
use super::runs::RUN_MATCH_SLACK_MS;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::forge::github::client::GateReview;
use crate::release::protection::{self, GateAnswer, GateFacts, Ours, ReleaseFacts};
use crate::release::{GateRequest, Stage};
use crate::store::{AuditEntry, ReleaseRow};
use crate::worker::JobError;

impl Ctx<'_> {
    /// Answers the gate of `req`'s run and environment, once.
    pub(super) async fn on_gate_requested(&self, req: GateRequest) -> Result<(), JobError> {
        let key = format!(
            "{}:gate:{}:{}:{}:{}",
            self.forge(),
            self.repo,
            req.run_id,
            req.environment,
            req.deployment_id.unwrap_or(0)
        );
        let answered = format!("{key}:answered");
        let store = self.store();
        if store.effect(&answered).await.map_err(db)?.is_some() {
            tracing::debug!(run = req.run_id, "gate already answered");
            return Ok(());
        }
        let (state, comment) = match store.effect(&key).await.map_err(db)? {
            // Decided by an earlier attempt whose answer may have gone out: the same answer
            // again, never a new decision (a freeze pushed since must not turn an approval
            // GitHub may already hold into a second, contrary review).
            Some(recorded) => match recorded.split_once('\n') {
                Some((state, comment)) => (state.to_owned(), comment.to_owned()),
                None => (recorded, String::new()),
            },
            None => {
                let (answer, release) = self.judge_gate(&req).await?;
                let text = protection::comment(
                    &answer,
                    release.as_ref().map(|r| r.pr),
                    release.as_ref().map(|r| &r.sha),
                );
                let reason = match &answer {
                    GateAnswer::Approve => String::new(),
                    GateAnswer::Reject(why) => format!("{}: {}", why.code(), why.describe()),
                };
                let entry = AuditEntry {
                    at: self.now(),
                    forge: self.forge().into(),
                    repo: self.repo_str().into(),
                    pr: release.as_ref().map_or(0, |r| r.pr),
                    sha: release.as_ref().map_or_else(
                        || req.sha.as_ref().map(|s| s.to_string()).unwrap_or_default(),
                        |r| r.sha.to_string(),
                    ),
                    actor: req
                        .creator
                        .as_ref()
                        .map(|c| format!("{} ({})", c.login, c.id))
                        .unwrap_or_default(),
                    action: "environment_gate".into(),
                    outcome: answer.state().into(),
                    reason,
                };
                self.audit_under(&format!("{key}:audit"), &entry).await?;
                tracing::info!(
                    run = req.run_id,
                    environment = %req.environment,
                    trigger = %req.trigger,
                    answer = answer.state(),
                    "environment gate"
                );
                store
                    .intend(&key, &format!("{}\n{text}", answer.state()))
                    .await
                    .map_err(db)?;
                (answer.state().to_owned(), text)
            }
        };
        let review = self
            .gh()?
            .review_deployment_gate(
                self.inst,
                &self.repo,
                req.run_id,
                &req.environment,
                &state,
                &comment,
            )
            .await?;
        match review {
            GateReview::Taken => {}
            GateReview::NothingPending => tracing::info!(
                run = req.run_id,
                "nothing pending at the gate: answered before, or the run is over"
            ),
        }
        store.record_effect(&answered, &state).await.map_err(db)
    }

    /// The gate's answer now, and the release the deployment belongs to (if any).
    async fn judge_gate(
        &self,
        req: &GateRequest,
    ) -> Result<(GateAnswer, Option<ReleaseRow>), JobError> {
        let policy = self.policy().await?.valid();
        let found = self.gate_release(req, policy.as_ref()).await?;
        let bot = self.gh()?.bot(self.inst).await?;
        let gates = match (&policy, &found) {
            (Some(p), Some((r, _))) => Some(self.gates_now(r, p).await?),
            (Some(_), None) => Some(Ok(())),
            (None, _) => None,
        };
        let facts = GateFacts {
            environment: &req.environment,
            sha: req.sha.as_ref(),
            creator: req.creator.as_ref().map(|c| c.login.as_str()),
            created_by_greenlight: req.creator.as_ref().is_some_and(|c| c.id == bot.id),
            release: found.as_ref().map(|(r, ours)| ReleaseFacts {
                ours: *ours,
                stage: r.stage,
                environment: &r.environment,
                sha: &r.sha,
            }),
            gates,
        };
        let answer = protection::decide(&facts);
        Ok((answer, found.map(|(r, _)| r)))
    }

    /// The release whose deploy asks: by Greenlight's deployment id, by its deploy run id, or
    /// (a dispatch whose answer was lost) by looking for the run of a deploying release the
    /// way a retry of its dispatch would.
    async fn gate_release(
        &self,
        req: &GateRequest,
        policy: Option<&Policy>,
    ) -> Result<Option<(ReleaseRow, Ours)>, JobError> {
        let store = self.store();
        if let Some(id) = req.deployment_id
            && let Some(r) = store
                .release_by_deployment(self.forge(), self.repo_str(), id)
                .await
                .map_err(db)?
        {
            return Ok(Some((r, Ours::Deployment)));
        }
        if let Some(r) = store
            .release_by_run(self.forge(), self.repo_str(), req.run_id)
            .await
            .map_err(db)?
            && r.deploy_run_id == Some(req.run_id)
        {
            return Ok(Some((r, Ours::Run)));
        }
        let Some(policy) = policy else {
            return Ok(None);
        };
        let in_doubt = store
            .releases_in_stage(self.forge(), self.repo_str(), Stage::Deploying)
            .await
            .map_err(db)?
            .into_iter()
            .filter(|r| r.deploy_run_id.is_none() && r.environment == req.environment);
        for r in in_doubt {
            let Some(at) = r.deploy_dispatched else {
                continue;
            };
            let gh = self.gh()?;
            let bot = gh.bot(self.inst).await?;
            let repo = crate::release::RepoRef {
                name: self.repo.clone(),
                forge_id: self.inst,
                default_branch: self.default_branch.clone(),
            };
            let run = gh
                .find_dispatched_run(
                    self.inst,
                    &repo,
                    &policy.deploy.workflow,
                    &r.sha,
                    at - RUN_MATCH_SLACK_MS,
                    bot.id,
                )
                .await?;
            if run.is_some_and(|found| found.run.run_id == req.run_id) {
                return Ok(Some((r, Ours::Run)));
            }
        }
        Ok(None)
    }
}
