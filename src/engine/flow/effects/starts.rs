//! The ledger effects that start something or say how it went: a GitHub deployment and
//! its statuses, a workflow dispatch, a GitLab pipeline (a candidate's or a deploy's). Their
//! keys are in the table of [`effects`](super).

use serde_json::Value;

use super::super::Ctx;
use super::super::runs::RUN_MATCH_SLACK_MS;
use super::in_doubt_if_intended;
use crate::engine::ledger::{Effect, Entry, settled};
use crate::forge::github::client::DispatchedRun;
use crate::forge::gitlab::pipelines::CreatedPipeline;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::DeployReport;
use crate::release::CommitSha;
use crate::worker::JobError;

/// Ledger value of a dispatch whose run is known: `run:<id>`.
const RUN: &str = "run:";

/// Ledger value of a dispatch GitHub took without naming its run (204): `done:<ms>`, when it
/// was made.
const DONE: &str = "done:";

/// Ledger value of a dispatch asked for at `<ms>` whose outcome is not known yet.
const INTENT: &str = "intent:";
/// A release's GitHub Deployment, found again by commit and environment.
pub(in crate::engine::flow) struct Deployment<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub release: i64,
    pub sha: &'c CommitSha,
    pub environment: &'c str,
    pub pr: u64,
    pub approvers: &'c [String],
}

impl Effect for Deployment<'_, '_> {
    type Done = u64;
    fn intent_key(&self) -> String {
        format!("{}:deployment-intent:{}", self.ctx.forge(), self.release)
    }
    fn record_key(&self) -> Option<String> {
        None
    }
    fn read(&self, intent: Option<&str>, _record: Option<&str>) -> Entry<u64> {
        in_doubt_if_intended(intent)
    }
    fn intent(&self, _now: i64, doubt: Option<&str>) -> Option<String> {
        doubt.is_none().then(String::new)
    }
    fn encode(&self, _id: &u64, _at: i64, _found: bool) -> Option<String> {
        None
    }
    async fn look_up(&self, _doubt: &str) -> Result<Option<u64>, JobError> {
        let ctx = self.ctx;
        Ok(ctx
            .gh()?
            .find_deployment(ctx.inst, &ctx.repo, self.sha, self.environment)
            .await?)
    }
    async fn create(&self) -> Result<u64, JobError> {
        let ctx = self.ctx;
        Ok(ctx
            .gh()?
            .create_deployment(
                ctx.inst,
                &ctx.repo,
                self.sha,
                self.environment,
                self.pr,
                self.approvers,
            )
            .await?)
    }
}

/// What a [`Dispatch`] did.
pub(in crate::engine::flow) enum Dispatched {
    /// The workflow runs (now or from an earlier attempt); the run when GitHub said which.
    Run(Option<DispatchedRun>),
    /// GitHub refused or does not know the workflow: nothing runs, retrying will not help.
    Refused(ForgeError),
}

/// A `workflow_dispatch` of `workflow` on the default branch, once per release and
/// `purpose` (see [`dispatch`](super::super::dispatch) for why and how its run is found again).
pub(in crate::engine::flow) struct Dispatch<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub release: i64,
    pub purpose: &'c str,
    pub workflow: &'c str,
    pub sha: &'c CommitSha,
    pub inputs: &'c [(&'c str, &'c str)],
}

impl Effect for Dispatch<'_, '_> {
    type Done = Dispatched;
    fn intent_key(&self) -> String {
        format!(
            "github:dispatch:{}:{}:{}",
            self.ctx.repo, self.release, self.purpose
        )
    }
    fn record_key(&self) -> Option<String> {
        Some(self.intent_key())
    }
    fn read(&self, intent: Option<&str>, _record: Option<&str>) -> Entry<Dispatched> {
        match intent {
            None => Entry::Fresh,
            // Recorded by an older version: the outcome was saved with it.
            Some("done") => Entry::Done(Dispatched::Run(None)),
            // A run named (`run:`) or a dispatch answered without one (`done:`) is in doubt
            // too: the job may have died before the release saved it.
            Some(v) => Entry::InDoubt(v.to_owned()),
        }
    }
    fn intent(&self, now: i64, _doubt: Option<&str>) -> Option<String> {
        Some(format!("{INTENT}{now}"))
    }
    fn encode(&self, done: &Dispatched, at: i64, found: bool) -> Option<String> {
        match done {
            Dispatched::Run(Some(run)) => Some(format!("{RUN}{}", run.id)),
            // Found answered without a run: the time it was made stays.
            Dispatched::Run(None) if found => None,
            // What the release will need if this job dies before it saves the outcome.
            Dispatched::Run(None) => Some(format!("{DONE}{at}")),
            Dispatched::Refused(_) => None,
        }
    }
    async fn look_up(&self, doubt: &str) -> Result<Option<Dispatched>, JobError> {
        let ctx = self.ctx;
        if let Some(id) = doubt.strip_prefix(RUN) {
            // GitHub named the run, and the job died before the release saved it: its
            // webhooks may all have been worked while no release knew it.
            let id = id.parse::<u64>().unwrap_or_default();
            let run = ctx.gh()?.workflow_run(ctx.inst, &ctx.repo, id).await?;
            let url = run
                .get("html_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            ctx.learned_run(id, Some(run)).await?;
            return Ok(Some(Dispatched::Run(Some(DispatchedRun { id, url }))));
        }
        let (answered, since) = match doubt.strip_prefix(DONE) {
            Some(ms) => (true, ms),
            None => (false, doubt.strip_prefix(INTENT).unwrap_or_default()),
        };
        let since = since.parse::<i64>().unwrap_or(0);
        if let Some(run) = ctx.find_run(self.workflow, self.sha, since).await? {
            tracing::info!(
                workflow = self.workflow,
                run = run.id,
                "found the run of an earlier dispatch"
            );
            return Ok(Some(Dispatched::Run(Some(run))));
        }
        // Dispatched for sure (a 204 without the run): not listed yet, so its webhooks are
        // still to come and are matched by title.
        Ok(answered.then_some(Dispatched::Run(None)))
    }
    fn again(&self, doubt: &str, now: i64) -> Result<(), JobError> {
        let since = doubt
            .strip_prefix(INTENT)
            .unwrap_or_default()
            .parse::<i64>()
            .unwrap_or(0);
        settled(since, now, &format!("a dispatch of {}", self.workflow))?;
        tracing::warn!(
            workflow = self.workflow,
            "no run for an earlier dispatch; dispatching again"
        );
        Ok(())
    }
    async fn create(&self) -> Result<Dispatched, JobError> {
        let ctx = self.ctx;
        match ctx
            .gh()?
            .dispatch_workflow(
                ctx.inst,
                &ctx.repo,
                self.workflow,
                &ctx.default_branch,
                self.inputs,
            )
            .await
        {
            Ok(run) => Ok(Dispatched::Run(run)),
            Err(e @ (ForgeError::Rejected { .. } | ForgeError::NotFound)) => {
                Ok(Dispatched::Refused(e))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// One state of a GitHub deployment: statuses are appended, never replaced, so a retried post
/// would show twice. Found again among the deployment's statuses.
pub(in crate::engine::flow) struct DeploymentStatus<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub deployment: u64,
    pub report: DeployReport<'c>,
}

impl DeploymentStatus<'_, '_> {
    fn state(&self) -> &'static str {
        self.report.state.as_str()
    }
}

impl Effect for DeploymentStatus<'_, '_> {
    type Done = ();
    fn intent_key(&self) -> String {
        format!(
            "github:deployment-status:{}:{}:{}",
            self.ctx.repo,
            self.deployment,
            self.state()
        )
    }
    fn record_key(&self) -> Option<String> {
        Some(self.intent_key())
    }
    fn read(&self, intent: Option<&str>, _record: Option<&str>) -> Entry<()> {
        match intent {
            Some("done") => Entry::Done(()),
            other => in_doubt_if_intended(other),
        }
    }
    fn intent(&self, _now: i64, doubt: Option<&str>) -> Option<String> {
        doubt.is_none().then(|| "intent".to_owned())
    }
    fn encode(&self, _done: &(), _at: i64, _found: bool) -> Option<String> {
        Some("done".into())
    }
    async fn look_up(&self, _doubt: &str) -> Result<Option<()>, JobError> {
        let ctx = self.ctx;
        let states = ctx
            .gh()?
            .deployment_states(ctx.inst, &ctx.repo, self.deployment)
            .await?;
        Ok(states.iter().any(|s| s == self.state()).then_some(()))
    }
    async fn create(&self) -> Result<(), JobError> {
        let ctx = self.ctx;
        Ok(ctx
            .gh()?
            .deployment_status(ctx.inst, &ctx.repo, self.deployment, &self.report)
            .await?)
    }
}
/// What a GitLab pipeline creation ([`PipelineStart`], [`DeployPipeline`]) did.
pub(in crate::engine::flow) enum Started {
    /// The pipeline runs; `adopted` when it is an earlier attempt's, found again.
    Pipeline {
        pipeline: CreatedPipeline,
        adopted: bool,
    },
    /// GitLab refused it (`Rejected`) or has no such branch (`NotFound`).
    Refused(ForgeError),
}

fn started(created: Result<CreatedPipeline, ForgeError>) -> Result<Started, JobError> {
    match created {
        Ok(pipeline) => Ok(Started::Pipeline {
            pipeline,
            adopted: false,
        }),
        Err(e @ (ForgeError::Rejected { .. } | ForgeError::NotFound)) => Ok(Started::Refused(e)),
        Err(e) => Err(e.into()),
    }
}

/// The pipeline of a candidate's attempt, on the merge request's source branch (a merge
/// request pipeline for forks). A creation in doubt is looked for on the branch (not for
/// forks: their pipelines are not the branch's); the time of the first try is kept.
pub(in crate::engine::flow) struct PipelineStart<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub release: i64,
    pub attempt: i64,
    pub pr: u64,
    pub sha: &'c CommitSha,
    pub source_branch: &'c str,
    pub from_fork: bool,
}

impl Effect for PipelineStart<'_, '_> {
    type Done = Started;
    fn intent_key(&self) -> String {
        format!("gitlab:pipeline-start:{}:{}", self.release, self.attempt)
    }
    fn record_key(&self) -> Option<String> {
        None
    }
    fn read(&self, intent: Option<&str>, _record: Option<&str>) -> Entry<Started> {
        match intent {
            Some(v) if v.parse::<i64>().is_ok() => Entry::InDoubt(v.to_owned()),
            _ => Entry::Fresh,
        }
    }
    fn intent(&self, now: i64, doubt: Option<&str>) -> Option<String> {
        doubt.is_none().then(|| now.to_string())
    }
    fn encode(&self, _done: &Started, _at: i64, _found: bool) -> Option<String> {
        None
    }
    async fn look_up(&self, doubt: &str) -> Result<Option<Started>, JobError> {
        if self.from_fork {
            return Ok(None);
        }
        let ctx = self.ctx;
        let at = doubt.parse::<i64>().unwrap_or(0);
        let found = ctx
            .gl()?
            .find_branch_pipeline(
                ctx.inst,
                self.source_branch,
                self.sha,
                at - RUN_MATCH_SLACK_MS,
            )
            .await?;
        Ok(found.map(|pipeline| {
            tracing::info!(
                pipeline = pipeline.id,
                "the pipeline in doubt was created; adopting it"
            );
            Started::Pipeline {
                pipeline,
                adopted: true,
            }
        }))
    }
    async fn create(&self) -> Result<Started, JobError> {
        let ctx = self.ctx;
        let gl = ctx.gl()?;
        started(if self.from_fork {
            gl.create_merge_request_pipeline(ctx.inst, self.pr).await
        } else {
            gl.create_pipeline(ctx.inst, self.source_branch, &[]).await
        })
    }
}

/// The deploy: a pipeline on the default branch with `GREENLIGHT_*` variables. A creation in
/// doubt (lost answer, 5xx, timeout, crash) is looked for among the default branch's API
/// pipelines by `GREENLIGHT_SHA`, and made again only once it could have been listed.
pub(in crate::engine::flow) struct DeployPipeline<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub release: i64,
    pub sha: &'c CommitSha,
    /// When an older version asked for it (it kept that with the release, not in the ledger).
    pub legacy_dispatched: Option<i64>,
    pub variables: &'c [(&'c str, &'c str)],
}

impl Effect for DeployPipeline<'_, '_> {
    type Done = Started;
    fn intent_key(&self) -> String {
        format!("gitlab:deploy-pipeline:{}", self.release)
    }
    fn record_key(&self) -> Option<String> {
        None
    }
    fn read(&self, intent: Option<&str>, _record: Option<&str>) -> Entry<Started> {
        match (intent, self.legacy_dispatched) {
            (Some(v), _) => Entry::InDoubt(v.to_owned()),
            (None, Some(at)) => Entry::InDoubt(at.to_string()),
            (None, None) => Entry::Fresh,
        }
    }
    fn intent(&self, now: i64, _doubt: Option<&str>) -> Option<String> {
        Some(now.to_string())
    }
    fn encode(&self, _done: &Started, _at: i64, _found: bool) -> Option<String> {
        None
    }
    async fn look_up(&self, doubt: &str) -> Result<Option<Started>, JobError> {
        let ctx = self.ctx;
        let at = doubt.parse::<i64>().unwrap_or(0);
        let found = ctx
            .gl()?
            .find_deploy_pipeline(
                ctx.inst,
                &ctx.default_branch,
                self.sha,
                at - RUN_MATCH_SLACK_MS,
            )
            .await?;
        let Some(pipeline) = found else {
            return Ok(None);
        };
        // Its hooks may have come while no release knew it.
        ctx.learned_run(pipeline.id, None).await?;
        Ok(Some(Started::Pipeline {
            pipeline,
            adopted: true,
        }))
    }
    fn again(&self, doubt: &str, now: i64) -> Result<(), JobError> {
        settled(doubt.parse::<i64>().unwrap_or(0), now, "a deploy dispatch")?;
        tracing::warn!(sha = %self.sha, "no run for an earlier deploy dispatch; dispatching again");
        Ok(())
    }
    async fn create(&self) -> Result<Started, JobError> {
        let ctx = self.ctx;
        started(
            ctx.gl()?
                .create_pipeline(ctx.inst, &ctx.default_branch, self.variables)
                .await,
        )
    }
}
