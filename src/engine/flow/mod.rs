//! The release flow, shared by both forges: one job, one event, in the repository's lease.
//! Forge-neutral operations go through [`Client`]; what only one forge has (GitHub check runs
//! and deployments, GitLab commit statuses and pipelines) is asked of the concrete client where
//! the flow needs it, GitLab's in [`gitlab`].

mod comments;
mod deploy;
mod dispatch;
mod gitlab;
mod present;
mod pulls;
mod runs;

use serde_json::json;

use super::{Engine, PolicyState, db, with_lease};
use crate::config::policy::Policy;
use crate::forge::Client;
use crate::forge::client::{FileFetch, Target};
use crate::forge::github::GitHub;
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
            Event::PipelineUpdated(run) => self.on_run(run).await,
            Event::RerunRequested {
                head, check_name, ..
            } => self.on_rerun(&head, &check_name).await,
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

    fn repo_str(&self) -> &str {
        self.repo.as_str()
    }

    /// The repository policy from the default branch (never from the pull request).
    async fn policy(&self) -> Result<PolicyState, JobError> {
        let key = format!("{}:{}@{}", self.forge(), self.repo, self.default_branch);
        let cached = self.engine.policies.get(&key);
        let etag = cached.as_ref().map(|(tag, _)| tag.as_str());
        match self
            .client
            .policy_file(self.target(), &self.default_branch, etag)
            .await?
        {
            FileFetch::NotModified => match cached {
                Some((_, state)) => Ok(state),
                None => Ok(PolicyState::Missing),
            },
            FileFetch::NotFound => Ok(PolicyState::Missing),
            FileFetch::Found { text, etag } => {
                let state = PolicyState::from_text(&text, self.client.forge());
                if let Some(etag) = etag {
                    self.engine.policies.put(key, etag, state.clone());
                }
                Ok(state)
            }
        }
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
                    let Client::GitHub(_) = self.client else {
                        self.gitlab_config_status(sha, &text).await?;
                        self.store()
                            .record_effect(&key, "status")
                            .await
                            .map_err(db)?;
                        return Ok(None);
                    };
                    let body = json!({
                        "name": "greenlight/config",
                        "head_sha": sha.as_str(),
                        "status": "completed",
                        "conclusion": "failure",
                        "output": {
                            "title": text.title,
                            "summary": text.summary,
                            "annotations": [{
                                "path": self.client.policy_path(),
                                "start_line": error.line,
                                "end_line": error.line,
                                "annotation_level": "failure",
                                "message": error.message,
                            }],
                        },
                    });
                    let external_id = format!("config-{sha}-{}", error.line);
                    let id = self.create_check_once(sha, &external_id, body).await?;
                    self.store()
                        .record_effect(&key, &id.to_string())
                        .await
                        .map_err(db)?;
                }
                Ok(None)
            }
        }
    }
}
