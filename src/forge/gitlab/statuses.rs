//! Commit statuses: `greenlight/pipeline`, `greenlight/release[/<env>]` and `greenlight/config`
//! on a commit, posted and read back (GitLab's counterpart of GitHub's check runs).

use http::Method;
use serde_json::{Value, json};

use super::client::{GitLab, encode};
use crate::forge::retry::ForgeError;
use crate::forge::vocab::CheckState;
use crate::release::CommitSha;

/// States of a commit status (`POST /projects/:id/statuses/:sha`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Running,
    Success,
    Failed,
    Canceled,
}

impl StatusState {
    /// The status that shows a check's state: a check waiting for people is `pending` (GitLab
    /// has no "waiting"), one that will not ship is `canceled`.
    pub fn of(state: CheckState) -> Self {
        match state {
            CheckState::Queued | CheckState::Waiting => Self::Pending,
            CheckState::Running => Self::Running,
            CheckState::Success => Self::Success,
            CheckState::Failure => Self::Failed,
            CheckState::Neutral | CheckState::Cancelled => Self::Canceled,
        }
    }

    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// GitLab limits a commit status description to 255 characters
/// ([Set the pipeline status of a commit](https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit)).
pub const STATUS_DESCRIPTION_MAX: usize = 255;

/// The `ref` every Greenlight commit status names. A status without `ref` or `pipeline_id`
/// joins the newest pipeline of its commit as a job of its "external" stage, and counts in
/// that pipeline's status: a `running` `greenlight/pipeline` would keep the very pipeline it
/// waits for running, a pending `greenlight/release` the merge request's pipeline until a
/// deploy. With a `ref` no CI pipeline runs on, GitLab finds no matching pipeline and makes
/// one of source `external` for it (`Ci::CreateCommitStatusService`), found again by every
/// later status of the commit: Greenlight's statuses live in a pipeline of their own, never
/// in the project's, and the merge request widget (which shows the newest pipeline of the
/// source branch) keeps showing the project's real pipeline.
pub const STATUS_REF: &str = "greenlight/statuses";

/// A status description as GitLab keeps it: at most [`STATUS_DESCRIPTION_MAX`] characters.
fn status_description(description: &str) -> String {
    description.chars().take(STATUS_DESCRIPTION_MAX).collect()
}

impl GitLab {
    /// [Set the pipeline status of a commit](https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit).
    /// Idempotent by (name, SHA): a second call updates the same status. GitLab refuses to
    /// "transition" a status to the state it already has (400); that is success to us.
    pub async fn set_status(
        &self,
        project: u64,
        sha: &CommitSha,
        name: &str,
        state: StatusState,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), ForgeError> {
        let description = status_description(description);
        let mut body = json!({
            "name": name,
            "state": state.as_str(),
            "description": description,
            "ref": STATUS_REF,
        });
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        let uri = format!("/projects/{project}/statuses/{sha}");
        match self.call(Method::POST, &uri, Some(&body), &[]).await {
            Ok(_) => Ok(()),
            Err(ForgeError::Rejected {
                status: 400,
                message,
            }) if message.contains("Cannot transition status") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// [List the statuses of a commit](https://docs.gitlab.com/api/commits/#list-the-statuses-of-a-commit):
    /// whether the latest `name` status on `sha` already says `state`, `description` and
    /// `target_url` (finding a post whose answer was lost: GitLab keeps a finished status and
    /// makes a new one for each post, so posting again would show it twice).
    pub async fn has_status(
        &self,
        project: u64,
        sha: &CommitSha,
        name: &str,
        state: StatusState,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<bool, ForgeError> {
        let uri = format!(
            "/projects/{project}/repository/commits/{}/statuses?name={}&ref={}&per_page=100",
            sha.as_str(),
            encode(name),
            encode(STATUS_REF)
        );
        let list = self.list(&uri).await?;
        let latest = list
            .iter()
            .filter(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .max_by_key(|s| s.get("id").and_then(Value::as_u64).unwrap_or(0));
        let description = status_description(description);
        Ok(latest.is_some_and(|s| {
            let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
            text("status") == state.as_str()
                && text("description") == description
                && text("target_url") == target_url.unwrap_or_default()
        }))
    }
}
