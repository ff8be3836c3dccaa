//! The GitLab REST client (API v4): reqwest with a `PRIVATE-TOKEN` (project, group or bot user
//! access token with the `api` scope), one method per endpoint, every call through
//! [`GitLab::call`] for timeout, in-call retries and rate-limit handling (the same
//! classification as GitHub's, [`crate::forge::retry`]: `Retry-After`, `RateLimit-Reset`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::forge::Forge;
use crate::forge::rate_limits::RateLimits;
use crate::forge::retry::{self, Answer, ForgeError};
use crate::release::{CommitSha, Login};

use crate::forge::client::FileFetch;
use crate::forge::gitlab::events::VAR_SHA;

/// A GitLab instance as seen through one access token.
#[derive(Clone)]
pub struct GitLab {
    http: reqwest::Client,
    /// `https://gitlab.example.com/api/v4`, without a trailing slash.
    api: String,
    token: SecretString,
    /// The token's own user id, asked once: notes Greenlight wrote never command it.
    me: Arc<OnceLock<u64>>,
    /// When GitLab told the token to wait (`Retry-After`, an exhausted limit), no call goes
    /// out before the pause ends, whichever job (and, with a store, replica) makes it:
    /// GitLab's limits are per user/token. Keyed by [`RateLimits::token_subject`].
    limits: RateLimits,
    limit_subject: Arc<str>,
    /// Greenlight answers GitLab's deployment approvals ([`super::approvals`]).
    pub(super) deployment_approvals: bool,
}

impl std::fmt::Debug for GitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLab").field("api", &self.api).finish()
    }
}

/// A merge request as the API reports it now (the note payload may be stale).
#[derive(Debug, Clone)]
pub struct MergeRequestState {
    pub open: bool,
    pub head: CommitSha,
    pub author: Login,
    /// The author's user id.
    pub author_id: u64,
    /// `source_project_id != target_project_id`.
    pub from_fork: bool,
    pub source_branch: String,
    /// When the merge request last changed (Unix ms, GitLab's clock).
    pub updated_at: Option<i64>,
}

/// A pipeline GitLab created for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPipeline {
    pub id: u64,
    pub url: String,
}

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

/// At most this many pages (of 100) are read from one list: 10,000 notes, pipelines or
/// groups, far beyond a real merge request, and a bound on what one job asks of GitLab.
pub const MAX_PAGES: u32 = 100;

/// A status description as GitLab keeps it: at most [`STATUS_DESCRIPTION_MAX`] characters.
fn status_description(description: &str) -> String {
    description.chars().take(STATUS_DESCRIPTION_MAX).collect()
}

impl GitLab {
    /// `base_url` is the instance (`https://gitlab.com`, or a self-managed host); the API lives
    /// under `/api/v4`.
    pub fn new(base_url: &str, token: SecretString) -> anyhow::Result<Self> {
        Self::with_timeout(base_url, token, retry::REQUEST_TIMEOUT)
    }

    /// Like [`GitLab::new`], with another request timeout than [`retry::REQUEST_TIMEOUT`]
    /// (tests use a short one to exercise slow answers quickly).
    pub fn with_timeout(
        base_url: &str,
        token: SecretString,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let base = base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| anyhow::anyhow!("GITLAB_URL is not a valid URL: {e}"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "GITLAB_URL must be an http(s) URL"
        );
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("greenlight/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the GitLab client: {e}"))?;
        Ok(Self {
            http,
            api: format!("{base}/api/v4"),
            limit_subject: RateLimits::token_subject(token.expose_secret()).into(),
            token,
            me: Arc::default(),
            limits: RateLimits::local(Forge::GitLab),
            deployment_approvals: false,
        })
    }

    /// Shares rate-limit pauses through `limits` (with a store: across replicas) instead of
    /// this process only.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Every request goes through here: timeout, two quick retries of transient failures
    /// (not for POST: a lost answer may hide a creation), rate limits classified for the job
    /// queue (never retried in-call) and remembered for the token, so no other job calls
    /// GitLab before the limit is over: [`retry::with_retries`].
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<Answer, ForgeError> {
        retry::with_retries("gitlab", &method, path, || async {
            if let Some(wait) = self.limits.wait_for(&self.limit_subject).await {
                tracing::debug!(%method, path, wait_ms = wait.as_millis() as u64, "token rate limited; not calling");
                return Err(ForgeError::Paused(wait));
            }
            let result = self.call_once(method.clone(), path, body, headers).await;
            if let Err(ForgeError::RateLimited(wait)) = &result {
                self.limits.limit(&self.limit_subject, *wait).await;
            }
            result
        })
        .await
    }

    /// Every page of a list endpoint, in order: GitLab pages with `page`/`per_page` and says
    /// the next page in `X-Next-Page` (empty on the last; kept for lists over 10,000 items,
    /// where `X-Total` is left out), or a `Link` header with `rel="next"`
    /// ([Pagination](https://docs.gitlab.com/api/rest/#pagination)). At most [`MAX_PAGES`].
    pub(super) async fn list(&self, uri: &str) -> Result<Vec<Value>, ForgeError> {
        let sep = if uri.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut page: u32 = 1;
        loop {
            let a = self
                .call(Method::GET, &format!("{uri}{sep}page={page}"), None, &[])
                .await?;
            let header = |name: &str| {
                a.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .map(str::to_owned)
            };
            let next = match header("x-next-page") {
                Some(n) => n.parse::<u32>().ok(),
                None => header("link")
                    .filter(|l| l.contains("rel=\"next\""))
                    .map(|_| page + 1),
            };
            let items: Vec<Value> = a.json()?;
            let empty = items.is_empty();
            out.extend(items);
            match next {
                Some(n) if n > page && page < MAX_PAGES && !empty => page = n,
                _ => return Ok(out),
            }
        }
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<Answer, ForgeError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .header("private-token", self.token.expose_secret());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ForgeError::Transient(format!("request failed: {}", without_url(&e))))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| {
            ForgeError::Transient(format!("reading the answer: {}", without_url(&e)))
        })?;
        retry::answer(status, headers, body)
    }

    /// [Get raw file from repository](https://docs.gitlab.com/api/repository_files/#get-raw-file-from-repository)
    /// on `git_ref`, conditional on `etag` when GitLab gave one.
    pub async fn file(
        &self,
        project: u64,
        path: &str,
        git_ref: &str,
        etag: Option<&str>,
    ) -> Result<FileFetch, ForgeError> {
        let mut headers = Vec::new();
        if let Some(tag) = etag {
            headers.push(("if-none-match", tag.to_owned()));
        }
        let uri = format!(
            "/projects/{project}/repository/files/{}/raw?ref={}",
            encode(path),
            encode(git_ref)
        );
        match self.call(Method::GET, &uri, None, &headers).await {
            Ok(a) if a.status == StatusCode::NOT_MODIFIED => Ok(FileFetch::NotModified),
            Ok(a) => Ok(FileFetch::Found {
                etag: a
                    .headers
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                text: a.body,
            }),
            Err(ForgeError::NotFound) => Ok(FileFetch::NotFound),
            Err(e) => Err(e),
        }
    }

    /// [Get single MR](https://docs.gitlab.com/api/merge_requests/#get-single-mr).
    pub async fn merge_request(
        &self,
        project: u64,
        iid: u64,
    ) -> Result<MergeRequestState, ForgeError> {
        #[derive(Deserialize)]
        struct Mr {
            state: String,
            sha: String,
            author: Author,
            source_project_id: u64,
            target_project_id: u64,
            source_branch: String,
            #[serde(default)]
            updated_at: Option<String>,
        }
        #[derive(Deserialize)]
        struct Author {
            id: u64,
            username: String,
        }
        let a = self
            .call(
                Method::GET,
                &format!("/projects/{project}/merge_requests/{iid}"),
                None,
                &[],
            )
            .await?;
        let mr: Mr = a.json()?;
        Ok(MergeRequestState {
            open: mr.state == "opened",
            head: CommitSha::parse(&mr.sha).ok_or_else(|| {
                ForgeError::Transient("merge request head is not a commit id".into())
            })?,
            author: Login(mr.author.username),
            author_id: mr.author.id,
            from_fork: mr.source_project_id != mr.target_project_id,
            source_branch: mr.source_branch,
            updated_at: mr
                .updated_at
                .and_then(|t| super::events::timestamp(&t).ok()),
        })
    }

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

    /// [Get the current user](https://docs.gitlab.com/api/users/#get-the-current-user): the
    /// token's own user id, asked once per process.
    pub async fn own_user_id(&self) -> Result<u64, ForgeError> {
        if let Some(id) = self.me.get() {
            return Ok(*id);
        }
        let v: Value = self.call(Method::GET, "/user", None, &[]).await?.json()?;
        let id = v
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| ForgeError::Transient("current user without an id".into()))?;
        Ok(*self.me.get_or_init(|| id))
    }

    /// [List project pipelines](https://docs.gitlab.com/api/pipelines/#list-project-pipelines)
    /// on `git_ref` created through the API since `since_ms`, each asked for its
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
        let uri = format!(
            "/projects/{project}/pipelines?ref={}&source=api&updated_after={}&per_page=100",
            encode(git_ref),
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

    /// [Get a single project](https://docs.gitlab.com/api/projects/#get-a-single-project):
    /// what the reconciler needs to describe it (path, default branch, web URL).
    pub async fn project(&self, project: u64) -> Result<Value, ForgeError> {
        self.call(Method::GET, &format!("/projects/{project}"), None, &[])
            .await?
            .json()
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

pub(super) fn id_of(a: &Answer) -> Result<u64, ForgeError> {
    a.json::<Value>()?
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| ForgeError::Transient("answer has no id".into()))
}

/// A reqwest error without its URL (which would repeat the host and path in every log line;
/// the token is a header, never in a URL, but the habit is cheap).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "bad body"
    } else {
        "error"
    };
    kind.to_owned()
}

/// Percent-encodes a path segment or query value: file paths (`.gitlab/greenlight.toml`) and
/// group paths (`acme/release`) are encoded whole, as the API wants.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_whole() {
        assert_eq!(
            encode(".gitlab/greenlight.toml"),
            ".gitlab%2Fgreenlight.toml"
        );
        assert_eq!(encode("acme/release team"), "acme%2Frelease%20team");
    }

    #[test]
    fn bad_urls_are_refused() {
        let token = SecretString::from("t");
        assert!(GitLab::new("not a url", token.clone()).is_err());
        assert!(GitLab::new("ftp://gitlab.example.com", token.clone()).is_err());
        let gl = GitLab::new("https://gitlab.example.com/", token).expect("valid");
        assert_eq!(gl.api, "https://gitlab.example.com/api/v4");
    }
}
