//! GitLab's [Deployment Hook](https://docs.gitlab.com/user/project/integrations/webhook_events/#deployment-events):
//! a deployment made or moving on (`running`, `success`, `failed`, `canceled`, ...), whoever
//! made it. Every status becomes the same [`DeploymentSeen`]; the handler records a
//! deployment once. The hook names the job (`deployable_id`), not the pipeline: whether the
//! job ran in Greenlight's deploy pipeline is asked of the jobs API by the handler.

use serde::Deserialize;

use super::{Project, User, missing, sha};
use crate::forge::PayloadError;
use crate::release::{Creator, DeploymentSeen, Event, Login};

#[derive(Deserialize)]
struct DeploymentPayload {
    deployment_id: Option<u64>,
    #[serde(default)]
    deployable_id: Option<u64>,
    environment: String,
    project: Project,
    user: User,
    /// `{web_url}/-/commit/{sha}`: the hook's only full SHA (`short_sha` is abbreviated).
    commit_url: String,
}

/// Parses a Deployment Hook into [`Event::DeploymentSeen`].
pub(super) fn parse(payload: &[u8]) -> Result<Event, PayloadError> {
    let p: DeploymentPayload = serde_json::from_slice(payload).map_err(|e| PayloadError::Json {
        event: "Deployment Hook".into(),
        source: e,
    })?;
    let commit = p
        .commit_url
        .rsplit_once("/-/commit/")
        .map(|(_, s)| s)
        .ok_or_else(|| missing("commit in commit_url"))?;
    Ok(Event::DeploymentSeen(DeploymentSeen {
        repo: p.project.repo(),
        deployment_id: p.deployment_id.ok_or_else(|| missing("deployment_id"))?,
        environment: p.environment,
        sha: sha(commit)?,
        creator: Creator {
            id: p.user.id,
            login: Login(p.user.username),
        },
        job_id: p.deployable_id,
    }))
}
