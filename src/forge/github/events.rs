//! GitHub webhook payloads → our [`Event`]. The only place that reads a GitHub payload.
//!
//! Only the fields Greenlight needs are declared; everything else in a payload is ignored, so
//! GitHub adding fields never breaks parsing. A payload missing a field we need is an error
//! (the job fails for good: retrying cannot fix a payload).

use serde::Deserialize;

use crate::release::{
    Comment, CommitSha, Event, Login, PipelineRun, PrNumber, PullRequest, RepoName, RepoRef,
    RunOrigin, RunStatus,
};

/// What a delivery means to Greenlight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Event(Event),
    Installation(InstallationChange),
    /// "Re-run all checks" on the check suite of the App `app_id`: GitHub's suites are per
    /// App, so it means a re-run of our pipeline only when `app_id` is ours (the client knows;
    /// [`crate::forge::Client::parse`]), and is ignored otherwise.
    SuiteRerequested {
        app_id: u64,
        event: Event,
    },
    /// Nothing to do, and why (for the logs).
    Ignored(&'static str),
}

/// The App was installed, removed, suspended, or got repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationChange {
    pub installation_id: u64,
    pub account: String,
    pub removed: bool,
}

pub use crate::forge::PayloadError;

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    action: String,
    repository: Option<Repository>,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default = "main_branch")]
    default_branch: String,
}

fn main_branch() -> String {
    "main".into()
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
    account: Option<User>,
}

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(default)]
    id: u64,
    #[serde(default, rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    number: u64,
    pull_request: Pull,
    /// Who caused the event: for `opened`/`synchronize`, who brought the head.
    sender: User,
}

#[derive(Deserialize)]
struct Pull {
    head: Branch,
    base: Branch,
    user: User,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    title: String,
    updated_at: String,
}

#[derive(Deserialize)]
struct Branch {
    sha: String,
    #[serde(rename = "ref")]
    name: String,
    /// `null` when the fork was deleted.
    repo: Option<BranchRepo>,
}

#[derive(Deserialize)]
struct BranchRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    issue: Issue,
    comment: IssueComment,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    /// Present only when the issue is a pull request.
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct IssueComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: User,
    created_at: String,
}

#[derive(Deserialize)]
struct WorkflowRunPayload {
    workflow_run: WorkflowRun,
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: u64,
    #[serde(default)]
    path: String,
    head_sha: String,
    #[serde(default)]
    display_title: String,
    status: Option<String>,
    conclusion: Option<String>,
    html_url: String,
    created_at: String,
    /// What started the run (`workflow_dispatch`, `pull_request`, `push`, ...).
    #[serde(default)]
    event: String,
    /// The branch whose copy of the workflow ran; `null` for some events.
    #[serde(default)]
    head_branch: Option<String>,
    actor: Option<Actor>,
    triggering_actor: Option<Actor>,
}

/// A user as a workflow run names them: only the numeric id counts.
#[derive(Deserialize)]
struct Actor {
    id: u64,
}

#[derive(Deserialize)]
struct CheckRunPayload {
    check_run: CheckRun,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    check_suite: CheckSuite,
}

/// A [check suite](https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_suite):
/// one App's checks on one commit.
#[derive(Deserialize)]
struct CheckSuite {
    head_sha: String,
    app: SuiteApp,
}

#[derive(Deserialize)]
struct SuiteApp {
    id: u64,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
}

#[derive(Deserialize)]
struct CheckRun {
    name: String,
    head_sha: String,
}

/// Parses one delivery of type `event` (`X-GitHub-Event`).
pub fn parse(event: &str, payload: &[u8]) -> Result<Parsed, PayloadError> {
    let json = |e| PayloadError::Json {
        event: event.to_owned(),
        source: e,
    };
    let envelope: Envelope = serde_json::from_slice(payload).map_err(json)?;
    let action = envelope.action.as_str();
    match event {
        "installation" | "installation_repositories" => {
            let inst = envelope
                .installation
                .ok_or_else(|| missing("installation"))?;
            let removed = event == "installation" && matches!(action, "deleted" | "suspend");
            let account = inst.account.map(|a| a.login).unwrap_or_default();
            return Ok(Parsed::Installation(InstallationChange {
                installation_id: inst.id,
                account,
                removed,
            }));
        }
        "pull_request" | "issue_comment" | "workflow_run" | "check_run" | "check_suite"
        | "push" => {}
        "deployment_protection_rule" | "deployment" | "deployment_status" => {}
        _ => return Ok(Parsed::Ignored("event type not acted on")),
    }
    let Some(repository) = envelope.repository else {
        return Err(missing("repository"));
    };
    let Some(installation) = envelope.installation else {
        // Delivered by a repository webhook rather than the App: nothing to act with.
        return Ok(Parsed::Ignored("not delivered through the GitHub App"));
    };
    let repo = RepoRef {
        name: RepoName(repository.full_name.clone()),
        forge_id: installation.id,
        default_branch: repository.default_branch,
    };
    let event = match event {
        "deployment_protection_rule" | "deployment" | "deployment_status" => {
            return deployments::parse(event, action, payload, repo);
        }
        "pull_request" => {
            let (closed, pushed) = match action {
                "opened" | "synchronize" => (false, true),
                "reopened" | "ready_for_review" => (false, false),
                "closed" => (true, false),
                _ => return Ok(Parsed::Ignored("pull_request action not acted on")),
            };
            let p: PullRequestPayload = serde_json::from_slice(payload).map_err(json)?;
            if closed {
                Event::PullRequestClosed {
                    repo,
                    pr: PrNumber(p.number),
                }
            } else {
                let pull = p.pull_request;
                let updated_at = rfc3339("pull_request.updated_at", &pull.updated_at)?;
                let head_repo = pull.head.repo.as_ref().map(|r| r.full_name.as_str());
                let base_repo = pull
                    .base
                    .repo
                    .as_ref()
                    .map_or(repository.full_name.as_str(), |r| r.full_name.as_str());
                Event::PullRequestUpdated(PullRequest {
                    repo,
                    number: PrNumber(p.number),
                    head: sha(&pull.head.sha)?,
                    head_ref: pull.head.name,
                    author: Login(pull.user.login),
                    draft: pull.draft,
                    from_fork: head_repo != Some(base_repo),
                    title: pull.title,
                    sender_id: p.sender.id,
                    pushed,
                    updated_at,
                })
            }
        }
        "issue_comment" => {
            if action != "created" {
                return Ok(Parsed::Ignored("edited and deleted comments never act"));
            }
            let c: IssueCommentPayload = serde_json::from_slice(payload).map_err(json)?;
            if c.issue.pull_request.is_none() {
                return Ok(Parsed::Ignored("comment on an issue, not a pull request"));
            }
            let created_at = rfc3339("comment.created_at", &c.comment.created_at)?;
            let user = c.comment.user;
            Event::CommentCreated(Comment {
                repo,
                pr: PrNumber(c.issue.number),
                id: c.comment.id,
                author_is_bot: user.kind == "Bot" || user.login.ends_with("[bot]"),
                author_id: user.id,
                author: Login(user.login),
                body: c.comment.body.unwrap_or_default(),
                created_at,
            })
        }
        "workflow_run" => {
            if !matches!(action, "requested" | "in_progress" | "completed") {
                return Ok(Parsed::Ignored("workflow_run action not acted on"));
            }
            let w: WorkflowRunPayload = serde_json::from_slice(payload).map_err(json)?;
            Event::PipelineUpdated(pipeline_run(repo, action, w.workflow_run)?)
        }
        "push" => {
            let p: PushPayload = serde_json::from_slice(payload).map_err(json)?;
            if p.git_ref != format!("refs/heads/{}", repo.default_branch) {
                return Ok(Parsed::Ignored("push to a branch other than the default"));
            }
            Event::DefaultBranchMoved {
                repo,
                head: sha(&p.after)?,
            }
        }
        "check_suite" => {
            if action != "rerequested" {
                return Ok(Parsed::Ignored("check_suite action not acted on"));
            }
            let c: CheckSuitePayload = serde_json::from_slice(payload).map_err(json)?;
            // Re-running the whole suite re-runs its pipeline, as the pipeline check's own
            // Re-run button does; the release checks follow the pipeline.
            return Ok(Parsed::SuiteRerequested {
                app_id: c.check_suite.app.id,
                event: Event::RerunRequested {
                    repo,
                    head: sha(&c.check_suite.head_sha)?,
                    check_name: "greenlight/pipeline".to_owned(),
                },
            });
        }
        _ => {
            if action != "rerequested" {
                return Ok(Parsed::Ignored("check_run action not acted on"));
            }
            let c: CheckRunPayload = serde_json::from_slice(payload).map_err(json)?;
            Event::RerunRequested {
                repo,
                head: sha(&c.check_run.head_sha)?,
                check_name: c.check_run.name,
            }
        }
    };
    Ok(Parsed::Event(event))
}

/// A run as the REST API lists it ([List workflow runs for a workflow](https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow),
/// [Get a workflow run](https://docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run)):
/// the same object a `workflow_run` webhook carries, in our words.
pub fn listed_run(repo: RepoRef, run: &serde_json::Value) -> Result<PipelineRun, PayloadError> {
    let run = WorkflowRun::deserialize(run).map_err(|e| PayloadError::Json {
        event: "workflow_run (listed)".to_owned(),
        source: e,
    })?;
    pipeline_run(repo, "", run)
}

fn pipeline_run(
    repo: RepoRef,
    action: &str,
    run: WorkflowRun,
) -> Result<PipelineRun, PayloadError> {
    let created_at = chrono::DateTime::parse_from_rfc3339(&run.created_at)
        .map_err(|e| {
            PayloadError::Invalid(format!("workflow_run.created_at {:?}: {e}", run.created_at))
        })?
        .timestamp_millis();
    let path = run.path.split('@').next().unwrap_or_default().to_owned();
    Ok(PipelineRun {
        repo,
        run_id: run.id,
        workflow_path: path,
        run_head: sha(&run.head_sha)?,
        title: run.display_title,
        status: run_status(action, run.status.as_deref(), run.conclusion.as_deref()),
        url: run.html_url,
        created_at,
        sha_input: None,
        waiting_on: None,
        origin: Some(Box::new(RunOrigin {
            event: run.event,
            branch: run.head_branch.unwrap_or_default(),
            actor_id: run.actor.map(|a| a.id),
            triggering_actor_id: run.triggering_actor.map(|a| a.id),
        })),
    })
}

/// A workflow run's state in our words. Only `success` passes; `cancelled`, `skipped`,
/// `neutral` and `stale` are not the code's fault but do not pass either.
fn run_status(action: &str, status: Option<&str>, conclusion: Option<&str>) -> RunStatus {
    if action == "completed" || status == Some("completed") {
        return match conclusion {
            Some("success") => RunStatus::Succeeded,
            Some("cancelled" | "skipped" | "neutral" | "stale") => RunStatus::Cancelled,
            _ => RunStatus::Failed,
        };
    }
    match status {
        Some("in_progress") => RunStatus::InProgress,
        _ => RunStatus::Queued,
    }
}

/// A GitHub timestamp (`2026-11-20T19:01:12Z`) in Unix milliseconds.
fn rfc3339(field: &str, s: &str) -> Result<i64, PayloadError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| PayloadError::Invalid(format!("{field} {s:?}: {e}")))
}

fn sha(s: &str) -> Result<CommitSha, PayloadError> {
    CommitSha::parse(s).ok_or_else(|| PayloadError::Invalid(format!("not a commit SHA: {s:?}")))
}

fn missing(field: &str) -> PayloadError {
    PayloadError::Invalid(format!("payload has no {field}"))
}

mod deployments;

#[cfg(test)]
mod tests;
