//! What the release flow tells a forge, in the release's words: a check on a commit (GitHub
//! check run, GitLab commit status), a deployment's state, a run's report as the webhook the
//! forge would send now. Each forge module turns these into its own wire bodies.

use serde_json::Value;

/// The state a check (GitHub check run, GitLab commit status) shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// Not started (GitHub `queued`, GitLab `pending`).
    Queued,
    /// Waiting for people: an approval, the deploy queue (GitHub `in_progress`, GitLab
    /// `pending`).
    Waiting,
    /// Running (GitHub `in_progress`, GitLab `running`).
    Running,
    Success,
    Failure,
    /// Will not run or ship (GitHub conclusion `neutral`, GitLab `canceled`).
    Neutral,
    /// Cancelled (GitHub conclusion `cancelled`, GitLab `canceled`).
    Cancelled,
}

/// How a forge keeps Greenlight's checks on a commit: what the release flow must remember
/// to say a check again, and what the [effect ledger](crate::engine) must guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckShape {
    /// Made once, then edited by its id (GitHub check runs): the creation is the one-shot
    /// effect, and the flow keeps the id with the release; an edit may be repeated.
    Edited,
    /// Each report is a post of its own, kept in the commit's history (GitLab commit
    /// statuses): every different report is a one-shot effect, and there is no id to keep.
    Posted,
}

/// A check shown on a commit, as the forge identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// An [`CheckShape::Edited`] check, by the forge's id of it.
    Edited(u64),
    /// A [`CheckShape::Posted`] report.
    Posted,
}

impl Shown {
    /// The id to edit the check by later, where the forge has one.
    pub fn id(self) -> Option<u64> {
        match self {
            Self::Edited(id) => Some(id),
            Self::Posted => None,
        }
    }
}

/// A line of the policy file a failing check points at.
#[derive(Debug, Clone, Copy)]
pub struct Annotation<'a> {
    pub path: &'a str,
    pub line: u32,
    pub message: &'a str,
}

/// What a check says.
#[derive(Debug, Clone, Copy)]
pub struct CheckReport<'a> {
    /// `greenlight/pipeline`, `greenlight/release`, `greenlight/config`.
    pub name: &'a str,
    pub state: CheckState,
    pub title: &'a str,
    pub summary: &'a str,
    /// The check in one line, for forges whose check is one line (a GitLab commit status's
    /// description): the title, with the reason where one matters (a failed deploy's, why a
    /// candidate was closed).
    pub line: &'a str,
    /// The run or pipeline it links to.
    pub url: Option<&'a str>,
    pub annotation: Option<Annotation<'a>>,
}

/// A state of a deployment (GitHub deployment statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployState {
    InProgress,
    Success,
    Failure,
    /// The deploy could not even start.
    Error,
}

impl DeployState {
    /// GitHub's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
        }
    }
}

/// A deployment status to post.
#[derive(Debug, Clone, Copy)]
pub struct DeployReport<'a> {
    pub state: DeployState,
    pub environment: &'a str,
    pub description: &'a str,
    /// The deploy run: a finished deploy links it and makes older deployments inactive.
    pub log_url: Option<&'a str>,
}

/// The webhook the forge would send now about a run whose webhooks Greenlight may have missed
/// (the reconciler's poll, a run learned after the fact), to be fed through the inbox.
#[derive(Debug, Clone)]
pub struct Missed {
    pub event: &'static str,
    /// Names the run and its state: replicas reconciling at once store it once.
    pub delivery_id: String,
    /// The forge's word for the run's state (`completed`, `in_progress`, `success`, ...).
    pub status: String,
    pub payload: Value,
}
