//! GitLab webhook payloads → our [`Event`]. The only place that reads a GitLab payload.
//!
//! Merge Request Hook (open, reopen, new commits, draft → ready, close, merge), Note Hook on
//! merge requests (new notes only; system notes and bots never command), Pipeline Hook (status
//! changes), Deployment Hook (any deployment, see [`deployment`]), Job Hook (a job waiting for
//! deployment approvals, see [`job`]). Only the fields Greenlight needs are declared.

use serde::Deserialize;

use crate::forge::PayloadError;
use crate::release::{
    Comment, CommitSha, Event, Login, PipelineRun, PrNumber, PullRequest, RepoName, RepoRef,
    RunOrigin, RunStatus,
};

/// The pipeline variable that carries the commit a deploy pipeline deploys.
pub const VAR_SHA: &str = "GREENLIGHT_SHA";
/// The pipeline variable that names the environment of a deploy pipeline.
pub const VAR_ENVIRONMENT: &str = "GREENLIGHT_ENVIRONMENT";
/// The pipeline variable that carries the merge request's iid.
pub const VAR_MR: &str = "GREENLIGHT_MR";

/// What a delivery means to Greenlight.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one short-lived value per delivery, moved once into the handler: boxing buys nothing"
)]
pub enum Parsed {
    Event(Event),
    /// Nothing to do, and why (for the logs).
    Ignored(&'static str),
}

#[derive(Deserialize)]
struct Project {
    id: u64,
    path_with_namespace: String,
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    web_url: String,
}

impl Project {
    fn repo(&self) -> RepoRef {
        RepoRef {
            name: RepoName(self.path_with_namespace.clone()),
            forge_id: self.id,
            default_branch: self.default_branch.clone().unwrap_or_else(|| "main".into()),
        }
    }
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    id: u64,
    username: String,
    /// Present on newer GitLab versions for bot users (project/group access tokens, service
    /// accounts); absent on older ones.
    #[serde(default)]
    bot: Option<bool>,
}

impl User {
    fn is_bot(&self) -> bool {
        is_bot_user(&self.username, self.bot)
    }
}

/// GitLab's own `bot` flag when the answer has it; otherwise the usernames GitLab gives bot
/// users: `project_{id}_bot…`, `group_{id}_bot…`, `service_account…`, plus `…[bot]`.
pub(crate) fn is_bot_user(username: &str, bot: Option<bool>) -> bool {
    if let Some(flag) = bot {
        return flag;
    }
    {
        let name = username.to_ascii_lowercase();
        let scoped = |prefix: &str| {
            name.strip_prefix(prefix).is_some_and(|rest| {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && rest[digits..].starts_with("_bot")
            })
        };
        scoped("project_")
            || scoped("group_")
            || name.starts_with("service_account")
            || name.ends_with("[bot]")
    }
}

#[derive(Deserialize)]
struct MergeRequestPayload {
    user: User,
    project: Project,
    object_attributes: MergeRequestAttributes,
    #[serde(default)]
    changes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct MergeRequestAttributes {
    iid: u64,
    source_branch: String,
    source_project_id: u64,
    target_project_id: u64,
    #[serde(default)]
    author_id: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    work_in_progress: bool,
    last_commit: LastCommit,
    #[serde(default)]
    action: String,
    /// The previous head: present only when the update pushed new commits.
    #[serde(default)]
    oldrev: Option<String>,
    /// `2026-11-20 19:05:00 UTC`: when the merge request last changed (for an update with
    /// `oldrev`, when the new head arrived).
    updated_at: String,
}

#[derive(Deserialize)]
struct LastCommit {
    id: String,
}

#[derive(Deserialize)]
struct NotePayload {
    user: User,
    project: Project,
    object_attributes: NoteAttributes,
    merge_request: Option<NoteMergeRequest>,
}

#[derive(Deserialize)]
struct NoteAttributes {
    id: u64,
    #[serde(default)]
    note: String,
    noteable_type: String,
    #[serde(default)]
    system: bool,
    /// `create` or `update` on GitLab 16+; absent (a creation) on older versions.
    #[serde(default)]
    action: Option<String>,
    created_at: String,
}

#[derive(Deserialize)]
struct NoteMergeRequest {
    iid: u64,
}

#[derive(Deserialize)]
struct PipelinePayload {
    project: Project,
    object_attributes: PipelineAttributes,
    /// Who triggered the pipeline.
    #[serde(default)]
    user: Option<User>,
    /// The pipeline's jobs, each with its status and environment.
    #[serde(default)]
    builds: Vec<PipelineBuild>,
}

#[derive(Deserialize)]
struct PipelineBuild {
    #[serde(default)]
    status: String,
    #[serde(default)]
    environment: Option<BuildEnvironment>,
}

#[derive(Deserialize)]
struct BuildEnvironment {
    name: String,
}

#[derive(Deserialize)]
struct PipelineAttributes {
    id: u64,
    /// `api`, `merge_request_event`, `push`, … and `external` for the pipelines GitLab makes
    /// to hold commit statuses (Greenlight's own among them).
    #[serde(default)]
    source: Option<String>,
    sha: String,
    status: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    variables: Vec<Variable>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    project: Project,
}

#[derive(Deserialize)]
struct Variable {
    key: String,
    #[serde(default)]
    value: String,
}

/// Parses one delivery of type `event` (`X-Gitlab-Event`).
pub fn parse(event: &str, payload: &[u8]) -> Result<Parsed, PayloadError> {
    let json = |e| PayloadError::Json {
        event: event.to_owned(),
        source: e,
    };
    let event = match event {
        "Merge Request Hook" => {
            let p: MergeRequestPayload = serde_json::from_slice(payload).map_err(json)?;
            let a = p.object_attributes;
            let repo = p.project.repo();
            // The hook's user brought the head when it opened the merge request or pushed to
            // it (`oldrev`); a reopen or a draft change keeps the head someone else pushed.
            let pushed = a.action == "open" || (a.action == "update" && a.oldrev.is_some());
            let updated = match a.action.as_str() {
                "open" | "reopen" => true,
                // New commits (oldrev), or draft → ready (the `draft` change).
                "update" => a.oldrev.is_some() || p.changes.contains_key("draft"),
                "close" | "merge" => {
                    return Ok(Parsed::Event(Event::PullRequestClosed {
                        repo,
                        pr: PrNumber(a.iid),
                    }));
                }
                _ => return Ok(Parsed::Ignored("merge request action not acted on")),
            };
            if !updated {
                return Ok(Parsed::Ignored("merge request update without new commits"));
            }
            // The hook names the actor, not the author; the author is asked from the API
            // wherever it matters (self-approval).
            let sender_id = p.user.id;
            let author = if p.user.id == a.author_id {
                p.user.username
            } else {
                String::new()
            };
            Event::PullRequestUpdated(PullRequest {
                repo,
                number: PrNumber(a.iid),
                head: sha(&a.last_commit.id)?,
                head_ref: a.source_branch,
                author: Login(author),
                draft: a.draft || a.work_in_progress,
                from_fork: a.source_project_id != a.target_project_id,
                title: a.title,
                sender_id,
                pushed,
                updated_at: timestamp(&a.updated_at)?,
            })
        }
        "Note Hook" => {
            let p: NotePayload = serde_json::from_slice(payload).map_err(json)?;
            let a = p.object_attributes;
            if a.noteable_type != "MergeRequest" {
                return Ok(Parsed::Ignored(
                    "note on something else than a merge request",
                ));
            }
            if a.system {
                return Ok(Parsed::Ignored("system notes never act"));
            }
            if a.action.as_deref().is_some_and(|act| act != "create") {
                return Ok(Parsed::Ignored("edited notes never act"));
            }
            let mr = p.merge_request.ok_or_else(|| missing("merge_request"))?;
            Event::CommentCreated(Comment {
                repo: p.project.repo(),
                pr: PrNumber(mr.iid),
                id: a.id,
                author_is_bot: p.user.is_bot(),
                author_id: p.user.id,
                author: Login(p.user.username),
                body: a.note,
                created_at: timestamp(&a.created_at)?,
            })
        }
        "Pipeline Hook" => {
            let p: PipelinePayload = serde_json::from_slice(payload).map_err(json)?;
            let a = p.object_attributes;
            if a.source.as_deref() == Some("external") {
                return Ok(Parsed::Ignored(
                    "an external pipeline holds commit statuses, not CI jobs",
                ));
            }
            let created_at = match a.created_at.as_deref() {
                Some(t) => timestamp(t)?,
                None => 0,
            };
            let sha_input = a
                .variables
                .iter()
                .find(|v| v.key == VAR_SHA)
                .and_then(|v| CommitSha::parse(&v.value));
            Event::PipelineUpdated(PipelineRun {
                url: a
                    .url
                    .unwrap_or_else(|| format!("{}/-/pipelines/{}", p.project.web_url, a.id)),
                repo: p.project.repo(),
                run_id: a.id,
                workflow_path: String::new(),
                run_head: sha(&a.sha)?,
                title: a.name.unwrap_or_default(),
                status: run_status(&a.status),
                created_at,
                sha_input,
                origin: p.user.map(|u| {
                    Box::new(RunOrigin {
                        event: a.source.clone().unwrap_or_default(),
                        branch: String::new(),
                        actor_id: Some(u.id),
                        triggering_actor_id: None,
                    })
                }),
                // GitLab turns a pipeline `manual` (a hook) when a deploy job waits for
                // approvals; the job itself sends no Job Hook then (`created → manual`).
                waiting_on: p
                    .builds
                    .into_iter()
                    .filter(|b| b.status == "manual")
                    .find_map(|b| b.environment.map(|e| e.name)),
            })
        }
        "Deployment Hook" => deployment::parse(payload)?,
        "Job Hook" => return job::parse(payload),
        "Push Hook" => {
            let p: PushPayload = serde_json::from_slice(payload).map_err(json)?;
            let repo = p.project.repo();
            if p.git_ref != format!("refs/heads/{}", repo.default_branch) {
                return Ok(Parsed::Ignored("push to a branch other than the default"));
            }
            Event::DefaultBranchMoved {
                repo,
                head: sha(&p.after)?,
            }
        }
        _ => return Ok(Parsed::Ignored("event type not acted on")),
    };
    Ok(Parsed::Event(event))
}

/// A pipeline's status in our words. Only `success` passes; `canceled` and `skipped` are not
/// the code's fault but do not pass either; a pipeline waiting on a manual job is not done.
fn run_status(status: &str) -> RunStatus {
    match status {
        "running" => RunStatus::InProgress,
        "success" => RunStatus::Succeeded,
        "failed" => RunStatus::Failed,
        "canceled" | "canceling" | "skipped" => RunStatus::Cancelled,
        // created, waiting_for_resource, preparing, pending, scheduled, manual, and anything new
        _ => RunStatus::Queued,
    }
}

/// Hooks write `2026-11-20 19:05:00 UTC`; the API (and so the reconciler) writes RFC 3339.
pub(crate) fn timestamp(s: &str) -> Result<i64, PayloadError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z") {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S UTC")
        .map(|t| t.and_utc().timestamp_millis())
        .map_err(|e| PayloadError::Invalid(format!("created_at {s:?}: {e}")))
}

fn sha(s: &str) -> Result<CommitSha, PayloadError> {
    CommitSha::parse(s).ok_or_else(|| PayloadError::Invalid(format!("not a commit SHA: {s:?}")))
}

fn missing(field: &str) -> PayloadError {
    PayloadError::Invalid(format!("payload has no {field}"))
}

mod deployment;
mod job;
#[cfg(test)]
mod tests;
