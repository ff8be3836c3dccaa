//! The GitHub REST client: octocrab for App authentication (JWT → installation token, cached
//! and refreshed before expiry) over our own HTTP stack ([`super::http`]: our `User-Agent`),
//! one method per endpoint, every call through [`GitHub::call`] for timeout, in-call retries
//! and rate-limit handling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use octocrab::Octocrab;
use octocrab::models::InstallationId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging;
use crate::forge::Forge;
use crate::forge::rate_limits::RateLimits;
use crate::forge::retry::{self, Answer, ForgeError};
use crate::release::{CommitSha, Login, Permission, PipelineRun, RepoName};
use crate::store::now_ms;

/// The rate-limit subject of calls made with the App's JWT (installations are keyed by id).
const APP_SUBJECT: &str = "app";

/// A GitHub App's view of the API.
#[derive(Clone)]
pub struct GitHub {
    app: Octocrab,
    /// The App's numeric id (`GITHUB_APP_ID`): check suites are per App, and only our own
    /// suite's "Re-run all checks" is ours to act on.
    app_id: u64,
    /// One client per installation: each caches its own installation token.
    /// Shared, not cloned: cloning an `Octocrab` copies its token cache, and every clone would
    /// mint its own installation token.
    installations: Arc<Mutex<HashMap<u64, Arc<Octocrab>>>>,
    /// Installations GitHub told to wait (`Retry-After`, an exhausted limit): no call goes out
    /// for them before the pause ends, whichever job (and, with a store, replica) makes it.
    /// GitHub's limits are per installation token, and calling on while limited can get the
    /// App banned.
    limits: RateLimits,
    /// Timeout of one request (connection to last byte).
    timeout: Duration,
    /// The App's own bot user, asked once per process ([`GitHub::bot`]).
    bot: Arc<tokio::sync::OnceCell<Bot>>,
}

/// The App's bot user: the author of every comment, check run, deployment and workflow run
/// the App makes. Known by its numeric id; the login (`<slug>[bot]`) is for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    pub id: u64,
    pub login: Login,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GitHub")
    }
}

pub use super::deployments::GateReview;
pub use crate::forge::client::{FileFetch, PullState};

/// A workflow run found in the runs list: in our words, and as GitHub wrote it (fed through
/// the inbox as the `workflow_run` webhook of its current state).
#[derive(Debug, Clone)]
pub struct ListedRun {
    pub run: PipelineRun,
    pub json: Value,
}

/// A workflow run started by a dispatch, when GitHub told us which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchedRun {
    pub id: u64,
    pub url: String,
}

impl GitHub {
    /// `private_key_pem` is the App's RSA key; `api_url` is `https://api.github.com` or a GitHub
    /// Enterprise Server's `https://HOST/api/v3`.
    pub fn new(app_id: u64, private_key_pem: &str, api_url: &str) -> anyhow::Result<Self> {
        Self::with_timeout(app_id, private_key_pem, api_url, retry::REQUEST_TIMEOUT)
    }

    /// Like [`GitHub::new`], with another request timeout than [`retry::REQUEST_TIMEOUT`]
    /// (tests use a short one to exercise slow answers quickly).
    pub fn with_timeout(
        app_id: u64,
        private_key_pem: &str,
        api_url: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let key = octocrab::EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
            anyhow::anyhow!("GITHUB_PRIVATE_KEY is not an RSA private key in PEM form: {e}")
        })?;
        let app = super::http::app_client(app_id, key, api_url)?;
        Ok(Self {
            app,
            app_id,
            installations: Arc::default(),
            limits: RateLimits::local(Forge::GitHub),
            timeout,
            bot: Arc::default(),
        })
    }

    /// The App's numeric id.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// Shares rate-limit pauses through `limits` (with a store: across replicas) instead of
    /// this process only.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The App's bot user, asked once per process: the App's slug from
    /// [Get the authenticated app](https://docs.github.com/en/rest/apps/apps#get-the-authenticated-app)
    /// (with the App's JWT), then the bot's id from
    /// [Get a user](https://docs.github.com/en/rest/users/users#get-a-user)
    /// (`<slug>[bot]`, with the installation's token). Runs, comments and deployments the App
    /// made carry this user; anything else was made by someone else.
    pub async fn bot(&self, inst: u64) -> Result<Bot, ForgeError> {
        self.bot
            .get_or_try_init(|| async {
                let app = self.app().await?;
                let slug = app.get("slug").and_then(Value::as_str).ok_or_else(|| {
                    ForgeError::Transient("GET /app answered without a slug".into())
                })?;
                let login = format!("{slug}[bot]");
                let user: Value = self
                    .call(
                        inst,
                        Method::GET,
                        &format!("/users/{}", encode(&login)),
                        None,
                        &[],
                    )
                    .await?
                    .json()?;
                let id = user.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    ForgeError::Transient(format!("GET /users/{login} answered without an id"))
                })?;
                Ok(Bot {
                    id,
                    login: Login(login),
                })
            })
            .await
            .cloned()
    }

    /// [Get the authenticated app](https://docs.github.com/en/rest/apps/apps#get-the-authenticated-app)
    /// with the App's JWT: its slug, `permissions` and `events` (what `doctor` checks).
    pub async fn app(&self) -> Result<Value, ForgeError> {
        self.app_call(Method::GET, "/app", None).await?.json()
    }

    /// A call as the App itself (its JWT), not as an installation: the App's own endpoints
    /// (`/app`, its webhook's deliveries). Retried and rate limited like [`Self::call`]; the
    /// App's JWT has a rate limit of its own, apart from the installations'.
    pub(super) async fn app_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ForgeError> {
        retry::with_retries("github", &method, path, || async {
            if let Some(wait) = self.limits.wait_for(APP_SUBJECT).await {
                return Err(ForgeError::Paused(wait));
            }
            let result = self
                .call_once(&self.app, method.clone(), path, body, &[])
                .await;
            if let Err(ForgeError::RateLimited(wait)) = &result {
                self.limits.limit(APP_SUBJECT, *wait).await;
            }
            result
        })
        .await
    }

    fn installation(&self, id: u64) -> Result<Arc<Octocrab>, ForgeError> {
        let mut map = self
            .installations
            .lock()
            .map_err(|_| ForgeError::Transient("client cache poisoned".into()))?;
        if let Some(crab) = map.get(&id) {
            return Ok(crab.clone());
        }
        let crab = Arc::new(
            self.app
                .installation(InstallationId(id))
                .map_err(|e| ForgeError::Transient(format!("installation client: {e}")))?,
        );
        map.insert(id, crab.clone());
        Ok(crab)
    }

    /// Every request goes through here: timeout, two quick retries of transient failures
    /// (not for POST: a lost answer may hide a creation; [`retry::with_retries`]), rate limits
    /// classified for the job queue (never retried in-call) and remembered for the
    /// installation, so no other job calls GitHub for it before the limit is over.
    pub(super) async fn call(
        &self,
        installation: u64,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<Answer, ForgeError> {
        let crab = self.installation(installation)?;
        retry::with_retries("github", &method, path, || async {
            if let Some(wait) = self.limits.wait_for(&installation.to_string()).await {
                tracing::debug!(%method, path, wait_ms = wait.as_millis() as u64, "installation rate limited; not calling");
                return Err(ForgeError::Paused(wait));
            }
            let result = self
                .call_once(&crab, method.clone(), path, body, headers)
                .await;
            if let Err(ForgeError::RateLimited(wait)) = &result {
                self.limits.limit(&installation.to_string(), *wait).await;
            }
            result
        })
        .await
    }

    async fn call_once(
        &self,
        crab: &Octocrab,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<Answer, ForgeError> {
        let mut builder = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let request = crab
            .build_request(builder, body)
            .map_err(|e| ForgeError::Transient(format!("building request: {e}")))?;
        let response = tokio::time::timeout(self.timeout, crab.execute(request))
            .await
            .map_err(|_| ForgeError::Transient("request timed out".into()))?
            .map_err(octocrab_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(self.timeout, crab.body_to_string(response))
            .await
            .map_err(|_| ForgeError::Transient("reading the answer timed out".into()))?
            .map_err(|e| ForgeError::Transient(format!("reading the answer: {e}")))?;
        retry::answer(status, headers, body)
    }

    /// Every item of a list endpoint, page after page ([`paging`]): `uri` is the first page
    /// (it asks for `per_page=100`), `key` the field holding the items (`None`: the answer is
    /// the array). `visit` sees each item in order and returns true to stop early.
    pub(super) async fn scan(
        &self,
        inst: u64,
        uri: &str,
        key: Option<&str>,
        mut visit: impl FnMut(&Value) -> bool,
    ) -> Result<(), ForgeError> {
        let mut next = Some(uri.to_owned());
        let mut pages = 0;
        while let Some(page) = next.take() {
            if pages == paging::MAX_PAGES {
                return Err(ForgeError::Transient(format!(
                    "{uri}: more than {} pages",
                    paging::MAX_PAGES
                )));
            }
            pages += 1;
            let a = self.call(inst, Method::GET, &page, None, &[]).await?;
            let body: Value = a.json()?;
            let items = match key {
                Some(k) => body.get(k),
                None => Some(&body),
            }
            .and_then(Value::as_array)
            .ok_or_else(|| ForgeError::Transient(format!("{uri}: the answer is not a list")))?;
            if items.iter().any(&mut visit) {
                return Ok(());
            }
            next = paging::next_path(&a.headers);
        }
        Ok(())
    }

    /// Every item of a list endpoint ([`Self::scan`] to the end).
    pub(super) async fn list_all(
        &self,
        inst: u64,
        uri: &str,
        key: Option<&str>,
    ) -> Result<Vec<Value>, ForgeError> {
        let mut all = Vec::new();
        self.scan(inst, uri, key, |item| {
            all.push(item.clone());
            false
        })
        .await?;
        Ok(all)
    }

    /// [Get repository content](https://docs.github.com/en/rest/repos/contents#get-repository-content),
    /// raw, on `git_ref`, conditional on `etag` (a 304 costs no rate limit).
    pub async fn file(
        &self,
        inst: u64,
        repo: &RepoName,
        path: &str,
        git_ref: &str,
        etag: Option<&str>,
    ) -> Result<FileFetch, ForgeError> {
        let mut headers = vec![("accept", "application/vnd.github.raw+json".to_owned())];
        if let Some(tag) = etag {
            headers.push(("if-none-match", tag.to_owned()));
        }
        let uri = format!("/repos/{repo}/contents/{path}?ref={}", encode(git_ref));
        match self.call(inst, Method::GET, &uri, None, &headers).await {
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

    /// [Get a pull request](https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request).
    pub async fn pull(&self, inst: u64, repo: &RepoName, pr: u64) -> Result<PullState, ForgeError> {
        #[derive(Deserialize)]
        struct Pull {
            state: String,
            head: Head,
            base: Base,
            user: User,
            #[serde(default)]
            updated_at: Option<String>,
        }
        #[derive(Deserialize)]
        struct Head {
            sha: String,
            repo: Option<Repo>,
        }
        #[derive(Deserialize)]
        struct Base {
            repo: Repo,
        }
        #[derive(Deserialize)]
        struct Repo {
            full_name: String,
        }
        #[derive(Deserialize)]
        struct User {
            login: String,
            id: u64,
        }
        let a = self
            .call(
                inst,
                Method::GET,
                &format!("/repos/{repo}/pulls/{pr}"),
                None,
                &[],
            )
            .await?;
        let p: Pull = a.json()?;
        Ok(PullState {
            open: p.state == "open",
            head: CommitSha::parse(&p.head.sha).ok_or_else(|| {
                ForgeError::Transient("pull request head is not a commit id".into())
            })?,
            author: Login(p.user.login),
            author_id: p.user.id,
            from_fork: p
                .head
                .repo
                .is_none_or(|r| r.full_name != p.base.repo.full_name),
            updated_at: p
                .updated_at
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.timestamp_millis()),
        })
    }

    /// [Get repository permissions for a user](https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user).
    /// Uses `role_name` when present (it knows `maintain` and `triage`), else `permission`.
    pub async fn permission(
        &self,
        inst: u64,
        repo: &RepoName,
        user: &Login,
    ) -> Result<Permission, ForgeError> {
        #[derive(Deserialize)]
        struct Perm {
            permission: String,
            role_name: Option<String>,
        }
        let uri = format!(
            "/repos/{repo}/collaborators/{}/permission",
            encode(user.as_str())
        );
        match self.call(inst, Method::GET, &uri, None, &[]).await {
            Ok(a) => {
                let p: Perm = a.json()?;
                Ok(Permission::from_github(
                    p.role_name.as_deref().unwrap_or(&p.permission),
                ))
            }
            Err(ForgeError::NotFound) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }

    /// [Get team membership for a user](https://docs.github.com/en/rest/teams/members#get-team-membership-for-a-user):
    /// true only for an `active` membership.
    pub async fn team_member(
        &self,
        inst: u64,
        team: &str,
        user: &Login,
    ) -> Result<bool, ForgeError> {
        let Some((org, slug)) = team.split_once('/') else {
            return Ok(false);
        };
        let uri = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            encode(org),
            encode(slug),
            encode(user.as_str())
        );
        match self.call(inst, Method::GET, &uri, None, &[]).await {
            Ok(a) => Ok(a.json::<Value>()?.get("state").and_then(Value::as_str) == Some("active")),
            Err(ForgeError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [Get a repository](https://docs.github.com/en/rest/repos/repos#get-a-repository): its
    /// default branch.
    pub async fn default_branch(&self, inst: u64, repo: &RepoName) -> Result<String, ForgeError> {
        let v: Value = self
            .call(inst, Method::GET, &format!("/repos/{repo}"), None, &[])
            .await?
            .json()?;
        v.get("default_branch")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ForgeError::Transient("repository without a default branch".into()))
    }

    /// [Create an issue comment](https://docs.github.com/en/rest/issues/comments#create-an-issue-comment).
    pub async fn create_comment(
        &self,
        inst: u64,
        repo: &RepoName,
        pr: u64,
        body: &str,
    ) -> Result<u64, ForgeError> {
        let uri = format!("/repos/{repo}/issues/{pr}/comments");
        let a = self
            .call(
                inst,
                Method::POST,
                &uri,
                Some(&json!({ "body": body })),
                &[],
            )
            .await?;
        id_of(&a)
    }

    /// [Update an issue comment](https://docs.github.com/en/rest/issues/comments#update-an-issue-comment).
    pub async fn update_comment(
        &self,
        inst: u64,
        repo: &RepoName,
        id: u64,
        body: &str,
    ) -> Result<(), ForgeError> {
        let uri = format!("/repos/{repo}/issues/comments/{id}");
        self.call(
            inst,
            Method::PATCH,
            &uri,
            Some(&json!({ "body": body })),
            &[],
        )
        .await?;
        Ok(())
    }

    /// [List issue comments](https://docs.github.com/en/rest/issues/comments#list-issue-comments),
    /// every page: the id of the first comment *the App's bot wrote* containing `marker`
    /// (finding our card or reply after a crash or a lost answer). Anyone can paste a marker
    /// into a comment of their own; only ours is ever adopted.
    pub async fn find_comment(
        &self,
        inst: u64,
        repo: &RepoName,
        pr: u64,
        marker: &str,
    ) -> Result<Option<u64>, ForgeError> {
        let bot = self.bot(inst).await?;
        let uri = paging::first_page(&format!("/repos/{repo}/issues/{pr}/comments"));
        let mut found = None;
        self.scan(inst, &uri, None, |c| {
            let ours = c.pointer("/user/id").and_then(Value::as_u64) == Some(bot.id);
            let marked = c
                .get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(marker));
            found = (ours && marked)
                .then(|| c.get("id").and_then(Value::as_u64))
                .flatten();
            found.is_some()
        })
        .await?;
        Ok(found)
    }

    /// [Create reaction for an issue comment](https://docs.github.com/en/rest/reactions/reactions#create-reaction-for-an-issue-comment).
    /// Idempotent on GitHub's side: an existing reaction answers 200.
    pub async fn react(
        &self,
        inst: u64,
        repo: &RepoName,
        comment_id: u64,
        content: &str,
    ) -> Result<(), ForgeError> {
        let uri = format!("/repos/{repo}/issues/comments/{comment_id}/reactions");
        self.call(
            inst,
            Method::POST,
            &uri,
            Some(&json!({ "content": content })),
            &[],
        )
        .await?;
        Ok(())
    }
}

/// An error octocrab raised itself — minting the installation token, before our request went
/// out — classified like any answer, so a rate limit on the token endpoint is honoured too.
fn octocrab_error(e: octocrab::Error) -> ForgeError {
    match e {
        octocrab::Error::GitHub { source, .. } => retry::classify(
            source.status_code,
            &source.headers.unwrap_or_default(),
            &serde_json::json!({ "message": source.message }).to_string(),
            now_ms() / 1000,
        ),
        other => ForgeError::Transient(format!("request failed: {other}")),
    }
}

pub(super) fn id_of(a: &Answer) -> Result<u64, ForgeError> {
    a.json::<Value>()?
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| ForgeError::Transient("answer has no id".into()))
}

/// Percent-encodes a path segment or query value (logins, refs and file names are nearly always
/// safe; branch names may hold `/` or `#`).
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
