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
    /// The environment's own gate asks whether a deployment may go on (GitHub's custom
    /// deployment protection rule): Greenlight answers, approving only what it started.
    DeploymentGateRequested(GateRequest),
    /// A deployment to some environment was created or changed status: one Greenlight did not
    /// start is reported as unapproved.
    DeploymentSeen(DeploymentSeen),
    /// A job waits for an environment's deployment approvals (GitLab's protected
    /// environments): Greenlight, as the approver, reviews the blocked deployments of the
    /// governed environment.
    DeploymentsBlocked { repo: RepoRef, environment: String },
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
            Self::DeploymentGateRequested(g) => &g.repo,
            Self::DeploymentSeen(d) => &d.repo,
            Self::DeploymentsBlocked { repo, .. } => repo,
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
    /// How and by whom the run was started. GitHub: the run's event, branch and actors.
    /// GitLab: the pipeline's `source` as the event and its `user` as the actor (for an
    /// API-created pipeline, the token's user), when the hook names one.
    pub origin: Option<Box<RunOrigin>>,
    /// GitLab: the environment a job of the pipeline waits on (a `manual` job with an
    /// environment among the hook's `builds`: a deployment waiting for approvals, when the
    /// environment is protected with approval rules). GitHub: `None`.
    pub waiting_on: Option<String>,
}

/// How a run was started: what tells Greenlight's own run apart from one anyone else can
/// start with the same file name and title (a pull request's own copy of a GitHub workflow,
/// changed to `on: pull_request` with a `run-name` carrying its SHA), or with the same
/// `GREENLIGHT_*` variables (a GitLab pipeline run by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOrigin {
    /// GitHub's `event`: `workflow_dispatch` for a dispatch. GitLab: the pipeline's `source`.
    pub event: String,
    /// GitHub's `head_branch`: the branch whose copy of the workflow ran. GitLab: empty (the
    /// hook's `ref` is not kept).
    pub branch: String,
    /// Numeric id of the user who started the run (`actor`).
    pub actor_id: Option<u64>,
    /// Numeric id of the user who started this attempt (`triggering_actor`; differs from the
    /// actor on a re-run).
    pub triggering_actor_id: Option<u64>,
}

impl RunOrigin {
    /// Whether the run is a dispatch Greenlight made: `event == "workflow_dispatch"`, on the
    /// repository's `default_branch`, started (and, if re-run, re-run) by the App's bot user
    /// `bot_id`. A run whose id Greenlight did not learn from its own dispatch counts for a
    /// release only if this holds (and its workflow file, title and time match).
    pub fn is_dispatch_by(&self, default_branch: &str, bot_id: u64) -> bool {
        self.event == "workflow_dispatch"
            && self.branch == default_branch
            && self.actor_id == Some(bot_id)
            && self.triggering_actor_id.is_none_or(|id| id == bot_id)
    }
}

#[cfg(test)]
mod tests {
    use super::RunOrigin;

    const BOT: u64 = 77;

    fn dispatch() -> RunOrigin {
        RunOrigin {
            event: "workflow_dispatch".into(),
            branch: "main".into(),
            actor_id: Some(BOT),
            triggering_actor_id: Some(BOT),
        }
    }

    #[test]
    fn only_the_bots_dispatch_on_the_default_branch_is_ours() {
        assert!(dispatch().is_dispatch_by("main", BOT));
        let older = RunOrigin {
            triggering_actor_id: None,
            ..dispatch()
        };
        assert!(
            older.is_dispatch_by("main", BOT),
            "no triggering_actor on older servers"
        );
        let cases = [
            RunOrigin {
                event: "pull_request".into(),
                ..dispatch()
            },
            RunOrigin {
                event: "push".into(),
                ..dispatch()
            },
            RunOrigin {
                branch: "feature".into(),
                ..dispatch()
            },
            RunOrigin {
                actor_id: Some(1),
                ..dispatch()
            },
            RunOrigin {
                actor_id: None,
                ..dispatch()
            },
            RunOrigin {
                triggering_actor_id: Some(1),
                ..dispatch()
            },
        ];
        for origin in cases {
            assert!(!origin.is_dispatch_by("main", BOT), "{origin:?}");
        }
        assert!(!dispatch().is_dispatch_by("trunk", BOT));
    }
}

/// Who created a deployment, as the forge says: known by numeric user id, the login is for
/// display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    pub id: u64,
    pub login: Login,
}

/// The environment's gate waiting on Greenlight's answer for one job of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRequest {
    pub repo: RepoRef,
    /// The environment the job deploys to.
    pub environment: String,
    /// The workflow run waiting (the answer goes to this run).
    pub run_id: u64,
    /// The deployment the job would make, when the forge names it.
    pub deployment_id: Option<u64>,
    /// The commit the deployment is of (for a dispatched workflow: the default branch head).
    pub sha: Option<CommitSha>,
    /// Who created the deployment (for a workflow job: who started the run).
    pub creator: Option<Creator>,
    /// What started the run (`workflow_dispatch`, `push`, ...), for the logs.
    pub trigger: String,
}

/// A deployment the forge reports (created, or a new status of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSeen {
    pub repo: RepoRef,
    pub deployment_id: u64,
    pub environment: String,
    pub sha: CommitSha,
    pub creator: Creator,
    /// The CI job that made it, when the forge names one (GitLab's `deployable_id`): the
    /// forge client tells which run (pipeline) it belongs to.
    pub job_id: Option<u64>,
}
