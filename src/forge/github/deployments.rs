//! Deployments and their statuses, and the environment's gate (custom deployment protection
//! rules) Greenlight answers.

use http::Method;
use serde_json::{Value, json};

use super::client::{GitHub, encode, id_of};
use super::paging;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::DeployReport;
use crate::release::{CommitSha, RepoName};

impl GitHub {
    /// [Create a deployment](https://docs.github.com/en/rest/deployments/deployments#create-a-deployment).
    /// The deployment of `sha` to `environment` for pull request `pr`, approved by
    /// `approvers`: no required contexts (Greenlight gated it already), no auto-merge.
    pub async fn create_deployment(
        &self,
        inst: u64,
        repo: &RepoName,
        sha: &CommitSha,
        environment: &str,
        pr: u64,
        approvers: &[String],
    ) -> Result<u64, ForgeError> {
        let body = json!({
            "ref": sha.as_str(),
            "environment": environment,
            "auto_merge": false,
            "required_contexts": [],
            "description": format!("Greenlight: #{pr} approved by {}", approvers.join(", ")),
            "payload": { "pr": pr, "approvers": approvers },
        });
        let a = self
            .call(
                inst,
                Method::POST,
                &format!("/repos/{repo}/deployments"),
                Some(&body),
                &[],
            )
            .await?;
        id_of(&a)
    }

    /// [List deployments](https://docs.github.com/en/rest/deployments/deployments#list-deployments)
    /// for one commit and environment, every page: finds a deployment the App created just
    /// before a crash.
    pub async fn find_deployment(
        &self,
        inst: u64,
        repo: &RepoName,
        sha: &CommitSha,
        environment: &str,
    ) -> Result<Option<u64>, ForgeError> {
        let bot = self.bot(inst).await?;
        let uri = paging::first_page(&format!(
            "/repos/{repo}/deployments?sha={sha}&environment={}",
            encode(environment)
        ));
        let mut found = None;
        self.scan(inst, &uri, None, |d| {
            // Only a deployment the App created is ours to carry on.
            let ours = d.pointer("/creator/id").and_then(Value::as_u64) == Some(bot.id);
            found = ours.then(|| d.get("id").and_then(Value::as_u64)).flatten();
            found.is_some()
        })
        .await?;
        Ok(found)
    }

    /// [List deployment statuses](https://docs.github.com/en/rest/deployments/statuses#list-deployment-statuses):
    /// their states, newest first.
    pub async fn deployment_states(
        &self,
        inst: u64,
        repo: &RepoName,
        deployment: u64,
    ) -> Result<Vec<String>, ForgeError> {
        let uri = paging::first_page(&format!("/repos/{repo}/deployments/{deployment}/statuses"));
        let list = self.list_all(inst, &uri, None).await?;
        Ok(list
            .iter()
            .filter_map(|s| s.get("state").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// [Review custom deployment protection rules for a workflow run](https://docs.github.com/en/rest/actions/workflow-runs#review-custom-deployment-protection-rules-for-a-workflow-run):
    /// Greenlight's answer (`approved` or `rejected`, with a comment) to the gate of
    /// `environment` in run `run_id`. GitHub takes one review per pending gate and answers
    /// 422 when none is pending, which is how a repeated review shows.
    pub async fn review_deployment_gate(
        &self,
        inst: u64,
        repo: &RepoName,
        run_id: u64,
        environment: &str,
        state: &str,
        comment: &str,
    ) -> Result<GateReview, ForgeError> {
        let uri = format!("/repos/{repo}/actions/runs/{run_id}/deployment_protection_rule");
        let body = json!({ "environment_name": environment, "state": state, "comment": comment });
        match self.call(inst, Method::POST, &uri, Some(&body), &[]).await {
            Ok(_) => Ok(GateReview::Taken),
            Err(ForgeError::Rejected { status: 422, .. }) => Ok(GateReview::NothingPending),
            Err(e) => Err(e),
        }
    }

    /// [Create a deployment status](https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status).
    pub async fn deployment_status(
        &self,
        inst: u64,
        repo: &RepoName,
        deployment: u64,
        report: &DeployReport<'_>,
    ) -> Result<(), ForgeError> {
        let mut body = json!({
            "state": report.state.as_str(),
            "environment": report.environment,
            "description": report.description,
        });
        if let Some(url) = report.log_url {
            body["log_url"] = json!(url);
            body["auto_inactive"] = json!(true);
        }
        let uri = format!("/repos/{repo}/deployments/{deployment}/statuses");
        self.call(inst, Method::POST, &uri, Some(&body), &[])
            .await?;
        Ok(())
    }
}

/// What the environment's gate made of Greenlight's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateReview {
    /// The review was taken (204).
    Taken,
    /// Nothing was waiting for a review from this App in that run and environment (422): it
    /// was answered already (a retry after a lost answer, a redelivered webhook), or the run
    /// was cancelled.
    NothingPending,
}
