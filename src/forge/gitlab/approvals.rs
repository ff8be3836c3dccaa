//! GitLab's deployment approvals (Premium and Ultimate): a job that deploys to a protected
//! environment with approval rules waits as a `manual` job whose deployment is `blocked`
//! until the rules' approvers answer. Greenlight, as the approver, reads the blocked
//! deployments, answers each once, and starts the job it approved (GitLab does not run an
//! approved job by itself: [Deployment approvals](https://docs.gitlab.com/ci/environments/deployment_approvals/)).
//!
//! Opt-in ([`GitLab::with_deployment_approvals`], `GITLAB_DEPLOYMENT_APPROVALS`): the API
//! exists on Premium and Ultimate only, and a project without approval rules has nothing
//! blocked to answer.

use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GitLab;
use super::client::encode;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::Missed;
use crate::release::{CommitSha, Creator, Login};

/// A deployment waiting for approvals, as
/// [List project deployments](https://docs.gitlab.com/api/deployments/#list-project-deployments)
/// (`status=blocked`) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedDeployment {
    pub id: u64,
    pub environment: String,
    /// The commit the deployment's pipeline runs on (the default branch's head for a deploy
    /// pipeline; the commit it deploys is its `GREENLIGHT_SHA`).
    pub sha: CommitSha,
    /// The deployment's user: who triggered the pipeline (or retried the job).
    pub user: Creator,
    /// The job that waits (`deployable.id`).
    pub job_id: Option<u64>,
    /// The pipeline of that job (`deployable.pipeline.id`).
    pub pipeline_id: Option<u64>,
}

/// How GitLab took an approval or a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewTaken {
    /// Recorded (a second answer of the same user is taken as the same approval).
    Taken,
    /// "This deployment is not waiting for approvals.": answered before, or no longer
    /// blocked (the job was canceled, or other approvers answered).
    NotWaiting,
}

#[derive(Deserialize)]
struct WireDeployment {
    id: u64,
    sha: String,
    #[serde(default)]
    status: String,
    user: Option<WireUser>,
    environment: Option<WireEnvironment>,
    deployable: Option<WireJob>,
    /// Unified approval setting: every approval and rejection so far.
    #[serde(default)]
    approvals: Vec<WireApproval>,
    /// Multiple approval rules: the approvals given under each rule.
    #[serde(default)]
    approval_summary: Option<WireSummary>,
}

#[derive(Deserialize)]
struct WireUser {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct WireEnvironment {
    name: String,
}

#[derive(Deserialize)]
struct WireJob {
    id: u64,
    pipeline: Option<WirePipeline>,
}

#[derive(Deserialize)]
struct WirePipeline {
    id: u64,
}

#[derive(Deserialize)]
struct WireApproval {
    user: WireUser,
    status: String,
}

#[derive(Deserialize)]
struct WireSummary {
    #[serde(default)]
    rules: Vec<WireRule>,
}

#[derive(Deserialize)]
struct WireRule {
    #[serde(default)]
    deployment_approvals: Vec<WireApproval>,
}

impl WireDeployment {
    fn blocked(self) -> Option<BlockedDeployment> {
        let user = self.user?;
        Some(BlockedDeployment {
            id: self.id,
            environment: self.environment.map(|e| e.name).unwrap_or_default(),
            sha: CommitSha::parse(&self.sha)?,
            user: Creator {
                id: user.id,
                login: Login(user.username),
            },
            job_id: self.deployable.as_ref().map(|j| j.id),
            pipeline_id: self
                .deployable
                .as_ref()
                .and_then(|j| j.pipeline.as_ref().map(|p| p.id)),
        })
    }

    /// The answer `user` gave, under either approval setting.
    fn answer_of(&self, user: u64) -> Option<String> {
        let rules = self
            .approval_summary
            .iter()
            .flat_map(|s| s.rules.iter())
            .flat_map(|r| r.deployment_approvals.iter());
        self.approvals
            .iter()
            .chain(rules)
            .find(|a| a.user.id == user)
            .map(|a| a.status.clone())
    }
}

impl GitLab {
    /// Makes Greenlight the approver of blocked deployments (see the module docs).
    #[must_use]
    pub fn with_deployment_approvals(mut self, on: bool) -> Self {
        self.deployment_approvals = on;
        self
    }

    /// True when Greenlight answers GitLab's deployment approvals.
    pub fn approves_deployments(&self) -> bool {
        self.deployment_approvals
    }

    /// [List project deployments](https://docs.gitlab.com/api/deployments/#list-project-deployments)
    /// with `status=blocked`, of `environment` when given.
    pub async fn blocked_deployments(
        &self,
        project: u64,
        environment: Option<&str>,
    ) -> Result<Vec<BlockedDeployment>, ForgeError> {
        let mut uri = format!("/projects/{project}/deployments?status=blocked&per_page=100");
        if let Some(env) = environment {
            uri.push_str(&format!("&environment={}", encode(env)));
        }
        let list = self.list(&uri).await?;
        Ok(list
            .into_iter()
            .filter_map(|v| serde_json::from_value::<WireDeployment>(v).ok())
            .filter(|d| d.status == "blocked")
            .filter_map(WireDeployment::blocked)
            .collect())
    }

    /// [Get a specific deployment](https://docs.gitlab.com/api/deployments/#get-a-specific-deployment),
    /// whatever its status now; `None` for one GitLab no longer has.
    pub async fn deployment(
        &self,
        project: u64,
        deployment: u64,
    ) -> Result<Option<BlockedDeployment>, ForgeError> {
        let uri = format!("/projects/{project}/deployments/{deployment}");
        match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => Ok(a.json::<WireDeployment>()?.blocked()),
            Err(ForgeError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [Get a specific deployment](https://docs.gitlab.com/api/deployments/#get-a-specific-deployment):
    /// the answer the token's user already gave it (`approved`, `rejected`), if any; `None`
    /// too for a deployment GitLab no longer has.
    pub async fn own_deployment_answer(
        &self,
        project: u64,
        deployment: u64,
    ) -> Result<Option<String>, ForgeError> {
        let me = self.own_user_id().await?;
        let uri = format!("/projects/{project}/deployments/{deployment}");
        let d: WireDeployment = match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => a.json()?,
            Err(ForgeError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(d.answer_of(me))
    }

    /// [Approve or reject a blocked deployment](https://docs.gitlab.com/api/deployments/#approve-or-reject-a-blocked-deployment):
    /// `status` is `approved` or `rejected`. GitLab refuses an approval by the user who
    /// triggered the pipeline unless the project allows it ("Allow pipeline triggerer to
    /// approve deployment"); that refusal comes back as [`ForgeError::Rejected`].
    pub async fn review_deployment(
        &self,
        project: u64,
        deployment: u64,
        status: &str,
        comment: &str,
    ) -> Result<ReviewTaken, ForgeError> {
        let uri = format!("/projects/{project}/deployments/{deployment}/approval");
        let body = json!({ "status": status, "comment": comment });
        match self.call(Method::POST, &uri, Some(&body), &[]).await {
            Ok(_) => Ok(ReviewTaken::Taken),
            Err(ForgeError::Rejected { message, .. })
                if message
                    .to_ascii_lowercase()
                    .contains("not waiting for approvals") =>
            {
                Ok(ReviewTaken::NotWaiting)
            }
            Err(e) => Err(e),
        }
    }

    /// [Run a job](https://docs.gitlab.com/api/jobs/#run-a-job): starts the manual job an
    /// approval unblocked. False when GitLab says it cannot be played (already started, or
    /// started by GitLab itself under the unified approval setting).
    pub async fn play_job(&self, project: u64, job: u64) -> Result<bool, ForgeError> {
        let uri = format!("/projects/{project}/jobs/{job}/play");
        match self.call(Method::POST, &uri, None, &[]).await {
            Ok(_) => Ok(true),
            Err(ForgeError::Rejected { status: 400, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [Get variables of a pipeline](https://docs.gitlab.com/api/pipelines/#get-variables-of-a-pipeline):
    /// the value of `key`, if the pipeline was created with it.
    pub async fn pipeline_variable(
        &self,
        project: u64,
        pipeline: u64,
        key: &str,
    ) -> Result<Option<String>, ForgeError> {
        let uri = format!("/projects/{project}/pipelines/{pipeline}/variables");
        let vars: Vec<Value> = match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => a.json()?,
            Err(ForgeError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(vars
            .iter()
            .find(|v| v.get("key").and_then(Value::as_str) == Some(key))
            .and_then(|v| v.get("value").and_then(Value::as_str))
            .map(str::to_owned))
    }
}

/// The Job Hook of a job waiting (`manual`) on `environment` of `project`.
pub(crate) fn waiting_job_hook(
    project: u64,
    info: &Value,
    environment: &str,
    ids: &str,
    period: i64,
) -> Missed {
    let text = |k: &str| info.get(k).cloned().unwrap_or(Value::Null);
    let payload = json!({
        "object_kind": "build",
        "build_status": "manual",
        "environment": { "name": environment, "action": "start" },
        "project_id": project,
        "project": {
            "id": project,
            "path_with_namespace": text("path_with_namespace"),
            "default_branch": text("default_branch"),
            "web_url": text("web_url"),
        },
    });
    Missed {
        event: "Job Hook",
        delivery_id: format!("reconcile:blocked:{project}:{environment}:{ids}:{period}"),
        status: "manual".into(),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_found_under_either_approval_setting() {
        let unified: WireDeployment = serde_json::from_value(json!({
            "id": 1, "sha": "a".repeat(40), "status": "blocked",
            "approvals": [{ "user": { "id": 42, "username": "bot" }, "status": "approved" }],
        }))
        .expect("parse");
        assert_eq!(unified.answer_of(42).as_deref(), Some("approved"));
        assert_eq!(unified.answer_of(7), None);
        let rules: WireDeployment = serde_json::from_value(json!({
            "id": 1, "sha": "a".repeat(40), "status": "blocked",
            "approval_summary": { "rules": [
                { "deployment_approvals": [] },
                { "deployment_approvals": [
                    { "user": { "id": 42, "username": "bot" }, "status": "rejected" }] },
            ]},
        }))
        .expect("parse");
        assert_eq!(rules.answer_of(42).as_deref(), Some("rejected"));
    }

    #[test]
    fn a_blocked_deployment_names_its_job_and_pipeline() {
        let d: WireDeployment = serde_json::from_value(json!({
            "id": 41, "sha": "b".repeat(40), "status": "blocked",
            "user": { "id": 5, "username": "mona" },
            "environment": { "name": "production" },
            "deployable": { "id": 657, "pipeline": { "id": 36 } },
        }))
        .expect("parse");
        let b = d.blocked().expect("blocked");
        assert_eq!(
            (b.id, b.environment.as_str(), b.job_id, b.pipeline_id),
            (41, "production", Some(657), Some(36))
        );
        assert_eq!(b.user.id, 5);
    }
}
