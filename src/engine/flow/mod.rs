//! The release flow, shared by both forges: one job, one event, in the repository's lease.
//! Forge-neutral operations go through [`Client`]; what only one forge has (GitHub check runs
//! and deployments, GitLab commit statuses and pipelines) is asked of the concrete client where
//! the flow needs it, GitLab's in [`gitlab`].

mod audit;
mod checks;
mod comments;
mod deploy;
mod dispatch;
mod effects;
mod forks;
mod gitlab;
mod gitlab_approvals;
mod learned;
mod present;
mod protection;
mod pulls;
mod runs;
mod unapproved;

pub use unapproved::UNAPPROVED_DEPLOYMENT;

use std::time::Instant;

use super::ledger::{self, Effect};
use super::policy_cache::Cached;
use super::{Engine, PolicyState, db, with_lease};
use crate::config::policy::Policy;
use crate::forge::Client;
use crate::forge::client::{FileFetch, Target};
use crate::forge::github::GitHub;
use crate::forge::vocab::{Annotation, CheckReport, CheckState, Shown};
use crate::release::{CommitSha, Event, RepoName};
use crate::store::Claimed;
use crate::worker::JobError;

/// Works one parsed event of a delivery, in its repository's lease.
pub(crate) async fn handle(
    engine: &Engine,
    client: Client<'_>,
    job: &Claimed,
    event: Event,
) -> Result<(), JobError> {
    let repo = event.repo().clone();
    let span = tracing::Span::current();
    span.record("repo", repo.name.as_str());
    let ctx = Ctx {
        engine,
        client,
        inst: repo.forge_id,
        repo: repo.name.clone(),
        default_branch: repo.default_branch.clone(),
        seq: job.id,
    };
    let lease = format!("repo:{}:{}", client.forge().as_str(), repo.name);
    let holder = format!("job:{}:{}", job.id, job.lease_token);
    with_lease(
        &engine.store,
        &lease,
        &holder,
        engine.repo_lease,
        ctx.on_event(event),
    )
    .await
}

/// What every handler needs to know about the repository it works on.
pub(crate) struct Ctx<'a> {
    pub engine: &'a Engine,
    pub client: Client<'a>,
    /// GitHub: the App installation that acts on the repository. GitLab: the project id.
    pub inst: u64,
    pub repo: RepoName,
    pub default_branch: String,
    /// The delivery's row id: orders pull request updates that arrive out of order.
    pub seq: i64,
}

impl<'a> Ctx<'a> {
    /// The GitHub client, for what only GitHub has (check runs, deployments). Reaching this on
    /// GitLab is a bug in the flow, not a forge failure.
    fn gh(&self) -> Result<&'a GitHub, JobError> {
        match self.client {
            Client::GitHub(gh) => Ok(gh),
            Client::GitLab(_) => Err(JobError::Fatal(
                "internal error: a GitHub-only step was reached for GitLab".into(),
            )),
        }
    }
}

impl Ctx<'_> {
    async fn on_event(&self, event: Event) -> Result<(), JobError> {
        match event {
            Event::PullRequestUpdated(pr) => self.on_pull_updated(pr).await,
            Event::PullRequestClosed { pr, .. } => self.on_pull_closed(pr.0).await,
            Event::CommentCreated(comment) => self.on_comment(comment).await,
            Event::PipelineUpdated(run) => {
                let waiting_on = run.waiting_on.clone();
                self.on_run(run).await?;
                match waiting_on {
                    Some(env) => self.on_deployments_blocked(&env).await,
                    None => Ok(()),
                }
            }
            Event::RerunRequested {
                head, check_name, ..
            } => self.on_rerun(&head, &check_name).await,
            Event::DefaultBranchMoved { head, .. } => self.on_default_branch_moved(&head).await,
            Event::DeploymentGateRequested(req) => self.on_gate_requested(req).await,
            Event::DeploymentSeen(d) => self.on_deployment_seen(d).await,
            Event::DeploymentsBlocked { environment, .. } => {
                self.on_deployments_blocked(&environment).await
            }
        }
    }

    /// The forge's name, as stored with every row and key.
    fn forge(&self) -> &'static str {
        self.client.forge().as_str()
    }

    /// How the forge addresses this repository.
    fn target(&self) -> Target<'_> {
        Target {
            forge_id: self.inst,
            repo: &self.repo,
        }
    }

    fn store(&self) -> &crate::store::Store {
        &self.engine.store
    }

    /// The release's time now ([`crate::clock`]).
    fn now(&self) -> i64 {
        self.engine.now_ms()
    }

    /// Makes `effect` once, through the [ledger](crate::engine::ledger).
    async fn once<E: Effect>(&self, effect: &E) -> Result<E::Done, JobError> {
        ledger::once(self.store(), self.engine.clock.as_ref(), effect).await
    }

    fn repo_str(&self) -> &str {
        self.repo.as_str()
    }

    /// Where the policy lives: (forge, repository, default branch).
    fn policy_key(&self) -> String {
        format!("{}:{}@{}", self.forge(), self.repo, self.default_branch)
    }

    /// The effect-ledger key of the default branch's generation, bumped by each push to it.
    fn branch_generation_key(&self) -> String {
        format!("branch-generation:{}", self.policy_key())
    }

    /// A push to the default branch: cached policies of it, on every replica, are read again,
    /// and the deploy queue is looked at under the policy as it is now (a freeze lifted, a
    /// quorum lowered lets a held release go; a new hold is shown).
    async fn on_default_branch_moved(&self, head: &CommitSha) -> Result<(), JobError> {
        tracing::debug!(%head, "default branch moved; policy cache invalidated");
        self.store()
            .put_effect(
                &self.branch_generation_key(),
                &format!("{}:{head}", self.seq),
            )
            .await
            .map_err(db)?;
        let queued = self
            .store()
            .releases_in_stage(self.forge(), self.repo_str(), crate::release::Stage::Queued)
            .await
            .map_err(db)?;
        if queued.is_empty() {
            return Ok(());
        }
        match self.policy().await?.valid() {
            Some(policy) => self.advance_queue(&policy).await,
            None => Ok(()),
        }
    }

    /// The repository policy from the default branch (never from the pull request): cached
    /// while no push to the branch was seen since ([`policy_cache`](super::policy_cache)).
    async fn policy(&self) -> Result<PolicyState, JobError> {
        let key = self.policy_key();
        // Read before the file: a push landing while it is fetched makes it stale at once.
        let generation = self
            .store()
            .effect(&self.branch_generation_key())
            .await
            .map_err(db)?;
        let cached = self.engine.policies.get(&key);
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.current(generation.as_deref(), Instant::now()))
        {
            return Ok(c.state.clone());
        }
        let etag = cached.as_ref().and_then(|c| c.etag.as_deref());
        let (etag, state) = match self
            .client
            .policy_file(self.target(), &self.default_branch, etag)
            .await?
        {
            FileFetch::NotModified => match cached {
                Some(c) => (c.etag, c.state),
                None => (None, PolicyState::Missing),
            },
            FileFetch::NotFound => (None, PolicyState::Missing),
            FileFetch::Found { text, etag } => {
                (etag, PolicyState::from_text(&text, self.client.forge()))
            }
        };
        let read = Cached {
            etag,
            state: state.clone(),
            generation,
            read_at: Instant::now(),
        };
        self.engine.policies.put(key, read);
        Ok(state)
    }

    /// Policy when valid; otherwise a failing `greenlight/config` check on `sha` (once per
    /// commit) and `None`: nothing else happens for this pull request.
    async fn valid_policy(&self, sha: &CommitSha) -> Result<Option<Policy>, JobError> {
        match self.policy().await? {
            PolicyState::Missing => Ok(None),
            PolicyState::Valid(p) => Ok(Some(*p)),
            PolicyState::Invalid(error) => {
                let key = format!(
                    "{}:config-check:{}:{sha}:{}:{}",
                    self.forge(),
                    self.repo,
                    error.line,
                    error.message
                );
                if self.store().effect(&key).await.map_err(db)?.is_none() {
                    let text = self.config_check_text(&error)?;
                    let report = CheckReport {
                        name: "greenlight/config",
                        state: CheckState::Failure,
                        title: &text.title,
                        summary: &text.summary,
                        line: &text.title,
                        url: None,
                        annotation: Some(Annotation {
                            path: self.client.policy_path(),
                            line: error.line,
                            message: &error.message,
                        }),
                    };
                    let external_id = format!("config-{sha}-{}", error.line);
                    let shown = self.show_check_once(sha, &external_id, &report).await?;
                    self.store()
                        .record_effect(&key, &shown_record(shown))
                        .await
                        .map_err(db)?;
                }
                Ok(None)
            }
        }
    }
}

/// Moves `release` to `next`, as [`Stage`](crate::release::Stage)'s pure transitions decided
/// for `what` happened. `None` (the stage does not allow it) is a bug in the flow: the job
/// fails loudly rather than put a release where no transition leads.
fn transit(
    release: &mut crate::store::ReleaseRow,
    next: Option<crate::release::Stage>,
    what: &str,
) -> Result<(), JobError> {
    match next {
        Some(next) => {
            release.stage = next;
            Ok(())
        }
        None => Err(JobError::Fatal(format!(
            "internal error: {what} for a release in stage {}",
            release.stage.as_str()
        ))),
    }
}

/// What the ledger records of a check shown once for good (an invalid policy, a fork not
/// built): the edited check's id, or `status` for a posted one.
fn shown_record(shown: Shown) -> String {
    shown
        .id()
        .map_or_else(|| "status".to_owned(), |id| id.to_string())
}
