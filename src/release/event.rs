//! What happened, in our words. Both forges' payloads are converted into [`Event`]; the engine
//! never reads a forge payload itself.

use super::types::{CommitSha, Login, PrNumber, RepoName};

/// Where a repository lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// `owner/name` (GitHub) or the project path (GitLab).
    pub name: RepoName,
    /// GitHub: the App installation that can act on the repository. GitLab: the project id.
    pub forge_id: u64,
    /// Where the policy is read from and pipelines are dispatched on.
    pub default_branch: String,
}

/// A change the release engine may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pull/merge request was opened, reopened, got new commits, or left draft.
    PullRequestUpdated(PullRequest),
    /// A pull/merge request was closed (merged or not).
    PullRequestClosed { repo: RepoRef, pr: PrNumber },
    /// A new comment on a pull/merge request. Edited and deleted comments never become events.
    CommentCreated(Comment),
    /// A pipeline (workflow run) for some commit changed status.
    PipelineUpdated(PipelineRun),
    /// Someone pressed "Re-run" on one of our check runs.
    RerunRequested {
        repo: RepoRef,
        head: CommitSha,
        check_name: String,
    },
    /// The default branch moved (a push, a merge): the policy on it may have changed.
    DefaultBranchMoved { repo: RepoRef, head: CommitSha },
}

impl Event {
    pub fn repo(&self) -> &RepoRef {
        match self {
            Self::PullRequestUpdated(pr) => &pr.repo,
            Self::PullRequestClosed { repo, .. } => repo,
            Self::CommentCreated(c) => &c.repo,
            Self::PipelineUpdated(run) => &run.repo,
            Self::RerunRequested { repo, .. } => repo,
            Self::DefaultBranchMoved { repo, .. } => repo,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub repo: RepoRef,
    pub number: PrNumber,
    pub head: CommitSha,
    /// The branch the commits are on (GitLab creates pipelines for it).
    pub head_ref: String,
    pub author: Login,
    pub draft: bool,
    /// The head branch lives in another repository (a fork).
    pub from_fork: bool,
    pub title: String,
    /// Who caused this event (GitHub `sender`, GitLab `user`), by forge user id.
    pub sender_id: u64,
    /// This event brought `head` (GitHub `opened`/`synchronize`; GitLab `open`, or `update`
    /// with `oldrev`): its sender is the head's pusher, whom `allow_self_approval = false` bars
    /// from approving it.
    pub pushed: bool,
    /// When the forge last updated the pull request, on its clock (Unix ms; GitHub
    /// `pull_request.updated_at`, GitLab `object_attributes.updated_at`). For the event that
    /// brought a head, or reopened the pull request, that is when the head (re)arrived.
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub repo: RepoRef,
    pub pr: PrNumber,
    pub id: u64,
    pub author: Login,
    /// The author's numeric user id (GitLab's member APIs take it; GitHub's do not need it).
    pub author_id: u64,
    /// Bot and app accounts never command Greenlight.
    pub author_is_bot: bool,
    pub body: String,
    /// When the forge says the comment was written (Unix milliseconds, the forge's clock). An
    /// approval binds to the head that existed then, not to the head when it is processed.
    pub created_at: i64,
}

/// Status of a pipeline run as the forge reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    /// Cancelled or skipped: not a pass, not the code's fault.
    Cancelled,
}

impl RunStatus {
    pub fn is_final(self) -> bool {
        match self {
            Self::Queued | Self::InProgress => false,
            Self::Succeeded | Self::Failed | Self::Cancelled => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRun {
    pub repo: RepoRef,
    pub run_id: u64,
    /// GitHub: the workflow file path (`.github/workflows/ci.yml`). GitLab: empty.
    pub workflow_path: String,
    /// The commit the run was started on (for a dispatched workflow: the default branch head).
    pub run_head: CommitSha,
    /// GitHub `display_title` (our `run-name` carries the tested SHA); GitLab: pipeline name.
    pub title: String,
    pub status: RunStatus,
    pub url: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The commit the run was asked to deploy, when the run carries it itself (GitLab: the
    /// `GREENLIGHT_SHA` pipeline variable). GitHub: `None` (the `run-name` in `title` says it).
    pub sha_input: Option<CommitSha>,
}
