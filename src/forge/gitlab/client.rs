//! The GitLab REST client (API v4): reqwest with a `PRIVATE-TOKEN` (project, group or bot user
//! access token with the `api` scope), one method per endpoint, every call through
//! [`GitLab::call`] for timeout, in-call retries and rate-limit handling (the same
//! classification as GitHub's, [`crate::forge::retry`]: `Retry-After`, `RateLimit-Reset`).
//! The endpoints live by concern: commit statuses in [`super::statuses`], pipelines in
//! [`super::pipelines`], notes in [`super::notes`], members in [`super::members`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::forge::Forge;
use crate::forge::rate_limits::RateLimits;
use crate::forge::retry::{self, Answer, ForgeError};
use crate::release::{CommitSha, Login};

use crate::forge::client::FileFetch;

/// A GitLab instance as seen through one access token.
#[derive(Clone)]
pub struct GitLab {
    http: reqwest::Client,
    /// `https://gitlab.example.com/api/v4`, without a trailing slash.
    api: String,
    token: SecretString,
    /// The token's own user id, asked once: notes Greenlight wrote never command it.
    /// The token's own user: (id, username), asked once per process.
    me: Arc<OnceLock<(u64, String)>>,
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

/// At most this many pages (of 100) are read from one list: 10,000 notes, pipelines or
/// groups, far beyond a real merge request, and a bound on what one job asks of GitLab.
pub const MAX_PAGES: u32 = 100;

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
            .user_agent(crate::forge::USER_AGENT)
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

    /// [Get the current user](https://docs.gitlab.com/api/users/#get-the-current-user): the
    /// token's own user id, asked once per process.
    pub async fn own_user_id(&self) -> Result<u64, ForgeError> {
        Ok(self.own_user().await?.0)
    }

    /// The token's own user: (id, username), asked once per process.
    pub async fn own_user(&self) -> Result<&(u64, String), ForgeError> {
        if let Some(me) = self.me.get() {
            return Ok(me);
        }
        let v: Value = self.call(Method::GET, "/user", None, &[]).await?.json()?;
        let id = v
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| ForgeError::Transient("current user without an id".into()))?;
        let username = v
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(self.me.get_or_init(|| (id, username)))
    }

    /// [Get a single project](https://docs.gitlab.com/api/projects/#get-a-single-project):
    /// what the reconciler needs to describe it (path, default branch, web URL).
    pub async fn project(&self, project: u64) -> Result<Value, ForgeError> {
        self.call(Method::GET, &format!("/projects/{project}"), None, &[])
            .await?
            .json()
    }
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
