//! What each template is given. Plain data: the engine fills it, the templates read it.

use serde::Serialize;

/// Where a release candidate is, as the card tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    PipelinePending,
    PipelineRunning,
    PipelineFailed,
    Ready,
    Queued,
    Deploying,
    Deployed,
    DeployFailed,
    Superseded,
    Closed,
}

/// The release card.
#[derive(Debug, Clone, Serialize)]
pub struct CardView {
    pub forge: String,
    pub repo: String,
    pub pr: u64,
    pub sha: String,
    pub short_sha: String,
    pub stage: Stage,
    pub pipeline_url: Option<String>,
    pub environment: String,
    /// Who approved so far, in order.
    pub approvals: Vec<String>,
    pub required: u32,
    /// Who may approve, in words.
    pub approvers: String,
    /// The exact command to type.
    pub command: String,
    /// 1-based place in the deploy queue, while queued.
    pub queue_position: Option<u32>,
    pub deploy_url: Option<String>,
    pub superseded_by: Option<String>,
    /// Why it failed or stopped, when it did.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Pipeline,
    Release,
    Config,
}

/// A check run's text.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// `github` or `gitlab`: what the text calls a pull request.
    pub forge: String,
    pub check: CheckKind,
    /// Pipeline: queued, in_progress, success, failure, cancelled. Release: awaiting_approval,
    /// approved, deploying, deployed, deploy_failed, superseded. Config: config_error.
    pub stage: String,
    pub sha_short: String,
    pub run_url: Option<String>,
    pub environment: Option<String>,
    pub approvals: Vec<String>,
    pub required: u32,
    pub message: Option<String>,
    pub line: Option<u32>,
    pub path: Option<String>,
}

/// A check run's title and summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckText {
    pub title: String,
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    PrClosed,
    PipelineNotGreen,
    AlreadyReleased,
    StaleCommit,
    ShaMismatch,
    NotAllowed,
    SelfApproval,
    Frozen,
    AlreadyApproved,
    ForkNotAllowed,
}

/// A refused `/approve-release` (or `/retry`).
#[derive(Debug, Clone, Serialize)]
pub struct RefusalView {
    pub forge: String,
    pub actor: String,
    pub reason: RefusalReason,
    pub head_short: Option<String>,
    pub prefix: Option<String>,
    pub permission: Option<String>,
    pub required_permission: Option<String>,
    pub pipeline_stage: Option<String>,
    pub freeze_reason: Option<String>,
    pub environment: Option<String>,
    /// For `self_approval`: `author` (wrote the pull request) or `pusher` (pushed its head).
    pub self_role: Option<String>,
}

/// `/help`, also when the repository has no policy yet.
#[derive(Debug, Clone, Serialize)]
pub struct HelpView {
    pub forge: String,
    /// The commands as a Markdown list.
    pub commands: String,
    /// The repository has a valid policy.
    pub enabled: bool,
    pub policy_path: String,
}

/// The answer to unknown commands. It holds no text of the comment: what someone typed is
/// never repeated (a crafted word could mention a team or show an image).
#[derive(Debug, Clone, Serialize)]
pub struct UnknownCommandView {
    pub forge: String,
    /// The commands as a Markdown list.
    pub commands: String,
}
