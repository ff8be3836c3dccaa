//! Pipelines: created for a merge request's branch (or as a merge request pipeline for a
//! fork) and for a deploy, found again when their creation was in doubt, and polled.

use http::Method;
use serde_json::{Value, json};

use super::client::{GitLab, encode};
use super::events::VAR_SHA;
use crate::forge::retry::{Answer, ForgeError};
use crate::release::CommitSha;

/// A pipeline GitLab created for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPipeline {
    pub id: u64,
    pub url: String,
}

impl GitLab {
    /// [Create a new pipeline](https://docs.gitlab.com/api/pipelines/#create-a-new-pipeline)
    /// for `git_ref` with `variables`.
    pub async fn create_pipeline(
        &self,
        project: u64,
        git_ref: &str,
        variables: &[(&str, &str)],
    ) -> Result<CreatedPipeline, ForgeError> {
        let vars: Vec<Value> = variables
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let mut body = json!({ "ref": git_ref });
        if !vars.is_empty() {
            body["variables"] = Value::Array(vars);
        }
        let uri = format!("/projects/{project}/pipeline");
        let a = self.call(Method::POST, &uri, Some(&body), &[]).await?;
        created_pipeline(&a)
    }

    /// [Create merge request pipeline](https://docs.gitlab.com/api/merge_requests/#create-merge-request-pipeline):
    /// for merge requests from forks, whose source branch is not in this project.
    pub async fn create_merge_request_pipeline(
        &self,
        project: u64,
        iid: u64,
    ) -> Result<CreatedPipeline, ForgeError> {
        let uri = format!("/projects/{project}/merge_requests/{iid}/pipelines");
        let a = self.call(Method::POST, &uri, None, &[]).await?;
        created_pipeline(&a)
    }

    /// [List project pipelines](https://docs.gitlab.com/api/pipelines/#list-project-pipelines)
    /// on `git_ref` created through the API by the token's own user since `since_ms`, each
    /// asked for its
    /// [variables](https://docs.gitlab.com/api/pipelines/#get-variables-of-a-pipeline): the
    /// deploy pipeline whose `GREENLIGHT_SHA` is `sha`, if GitLab has one (finding a deploy
    /// whose creation was in doubt).
    pub async fn find_deploy_pipeline(
        &self,
        project: u64,
        git_ref: &str,
        sha: &CommitSha,
        since_ms: i64,
    ) -> Result<Option<CreatedPipeline>, ForgeError> {
        let since = chrono::DateTime::from_timestamp_millis(since_ms).unwrap_or_default();
        // Only Greenlight's own user's: anyone who may run pipelines can set GREENLIGHT_SHA.
        let (_, me) = self.own_user().await?;
        let uri = format!(
            "/projects/{project}/pipelines?ref={}&source=api&username={}&updated_after={}&per_page=100",
            encode(git_ref),
            encode(me),
            encode(&since.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        );
        let list = self.list(&uri).await?;
        for p in &list {
            // `updated_after` also lists older pipelines that changed since: only one
            // created after the dispatch can be it.
            let created = p
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if created.is_some_and(|t| t.timestamp_millis() < since_ms) {
                continue;
            }
            let Some(id) = p.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let uri = format!("/projects/{project}/pipelines/{id}/variables");
            let vars: Vec<Value> = self.call(Method::GET, &uri, None, &[]).await?.json()?;
            let ours = vars.iter().any(|v| {
                v.get("key").and_then(Value::as_str) == Some(VAR_SHA)
                    && v.get("value").and_then(Value::as_str) == Some(sha.as_str())
            });
            if ours {
                let url = p
                    .get("web_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                return Ok(Some(CreatedPipeline { id, url }));
            }
        }
        Ok(None)
    }

    /// [List project pipelines](https://docs.gitlab.com/api/pipelines/#list-project-pipelines)
    /// on `git_ref` of commit `sha` created through the API since `since_ms`: the branch
    /// pipeline whose creation was in doubt, if GitLab made it.
    pub async fn find_branch_pipeline(
        &self,
        project: u64,
        git_ref: &str,
        sha: &CommitSha,
        since_ms: i64,
    ) -> Result<Option<CreatedPipeline>, ForgeError> {
        let since = chrono::DateTime::from_timestamp_millis(since_ms).unwrap_or_default();
        let uri = format!(
            "/projects/{project}/pipelines?ref={}&sha={}&source=api&updated_after={}&per_page=100",
            encode(git_ref),
            sha.as_str(),
            encode(&since.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        );
        let list = self.list(&uri).await?;
        Ok(list.iter().find_map(|p| {
            let created = p
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let ours = p.get("sha").and_then(Value::as_str) == Some(sha.as_str())
                && created.is_some_and(|t| t.timestamp_millis() >= since_ms);
            let id = p.get("id").and_then(Value::as_u64)?;
            ours.then(|| CreatedPipeline {
                id,
                url: p
                    .get("web_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            })
        }))
    }

    /// [Get a single pipeline](https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline)
    /// (the reconciler's poll).
    pub async fn pipeline(&self, project: u64, pipeline: u64) -> Result<Value, ForgeError> {
        self.call(
            Method::GET,
            &format!("/projects/{project}/pipelines/{pipeline}"),
            None,
            &[],
        )
        .await?
        .json()
    }

    /// [Get a single job](https://docs.gitlab.com/api/jobs/#get-a-single-job): the id of the
    /// pipeline job `job` ran in (a Deployment Hook names the job, not the pipeline); `None`
    /// for a job GitLab does not know.
    pub async fn job_pipeline(&self, project: u64, job: u64) -> Result<Option<u64>, ForgeError> {
        let v: Value = match self
            .call(
                Method::GET,
                &format!("/projects/{project}/jobs/{job}"),
                None,
                &[],
            )
            .await
        {
            Ok(r) => r.json()?,
            Err(ForgeError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(v.pointer("/pipeline/id").and_then(Value::as_u64))
    }
}

fn created_pipeline(a: &Answer) -> Result<CreatedPipeline, ForgeError> {
    let v: Value = a.json()?;
    let id = v
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| ForgeError::Transient("pipeline answer has no id".into()))?;
    let url = v
        .get("web_url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(CreatedPipeline { id, url })
}
