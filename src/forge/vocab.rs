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
