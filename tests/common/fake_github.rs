//! A small in-memory GitHub behind wiremock: enough of the REST API for Greenlight's flow, with
//! state (comments, check runs, deployments, dispatches) so tests can assert the outcome as
//! well as the exact requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

pub use super::fake_http::Call;
use super::fake_http::{Page, Recording, created, handle, ok, page_url};
use super::faults::{FaultPlan, Faults, ResetProxy};
use super::scripted::Script;

pub const REPO: &str = "acme/widgets";
pub const INSTALLATION: u64 = 4242;
/// The App's slug (`GET /app`); its bot user is `<slug>[bot]`.
pub const APP_SLUG: &str = "greenlight-test";
/// The App's bot user: the author of what the App makes.
pub const BOT_LOGIN: &str = "greenlight-test[bot]";
pub const BOT_ID: u64 = 9_900_001;

/// The numeric id of the account `login`: stable per account (logins are case-insensitive),
/// as GitHub's are. A test that renames an account sends its old id under the new login.
pub fn user_id(login: &str) -> u64 {
    // FNV-1a, kept clear of the App's bot id.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in login.to_ascii_lowercase().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    1_000_000 + h % 1_000_000_000
}

#[derive(Debug, Default)]
pub struct Model {
    pub policy: Option<String>,
    pub policy_etag: String,
    pub pulls: HashMap<u64, Value>,
    pub permissions: HashMap<String, String>,
    pub team_members: HashMap<String, Vec<String>>,
    pub comments: BTreeMap<u64, (u64, String)>,
    /// Who wrote a comment, by comment id: (user id, login). A comment not listed was posted
    /// through the API, so by the App's bot.
    pub comment_authors: HashMap<u64, (u64, String)>,
    pub check_runs: BTreeMap<u64, Value>,
    pub deployments: BTreeMap<u64, Value>,
    pub deployment_statuses: Vec<(u64, Value)>,
    pub dispatches: Vec<(String, Value)>,
    /// Runs created by dispatches: (workflow file, run id).
    pub runs: Vec<(String, u64)>,
    pub reactions: Vec<(u64, String)>,
    pub next_id: u64,
    pub calls: Vec<Call>,
    /// Scripted failures and lost answers.
    pub script: Script,
    /// The state (`status`, `conclusion`) of a dispatched run as the API answers it
    /// (`GET /actions/runs/{id}`, the runs list), per run id; queued when absent.
    pub run_states: HashMap<u64, Value>,
    /// Runs of the repository's workflows that no dispatch of Greenlight's made (a pull
    /// request's own copy of `ci.yml`, a run by hand), as the API describes them.
    pub foreign_runs: Vec<Value>,
    /// Whether dispatches return run details (github.com) or 204 (older GHES).
    pub no_run_details: bool,
    /// Inputs of each dispatched run: run id → (workflow file, inputs, created at).
    pub run_inputs: BTreeMap<u64, (String, Value, String)>,
    /// Injected faults (see [`FakeGitHub::start_with_faults`]).
    pub injector: Option<Arc<Faults>>,
    /// Woken by every call ([`FakeGitHub::wait_for`]).
    pub arrived: Arc<tokio::sync::Notify>,
    /// Custom deployment protection rule gates waiting for the App: (run id, environment).
    pub pending_gates: Vec<(u64, String)>,
    /// Reviews the App gave at a gate, as GitHub took them: (run id, body).
    pub gate_reviews: Vec<(u64, Value)>,
    /// Woken by every dispatch carried out (the crash test kills Greenlight right after).
    pub dispatched: Arc<tokio::sync::Notify>,
    /// Dispatched runs finish at once, successfully, as the API tells (their webhooks are the
    /// test's to send).
    pub runs_pass_at_once: bool,
    /// Dispatches are carried out at once but answered this much later (GitHub under load):
    /// a process killed meanwhile has made a dispatch it never heard of.
    pub slow_dispatch_answers: Option<std::time::Duration>,
    /// Apps created through the manifest flow ([`super::fake_github_apps`]).
    pub apps: super::fake_github_apps::Apps,
    /// The App webhook's deliveries as GitHub recorded them, newest first
    /// ([`super::fake_hook_deliveries`]).
    pub hook_deliveries: Vec<Value>,
    /// Delivery ids the App asked to redeliver, in order.
    pub redelivery_requests: Vec<u64>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub server: Arc<MockServer>,
    pub model: Arc<Mutex<Model>>,
    /// In front of the server when faults are injected (connection resets).
    proxy: Option<Arc<ResetProxy>>,
}

impl FakeGitHub {
    pub async fn start(policy: Option<&str>) -> Self {
        let server = MockServer::start().await;
        let model = Arc::new(Mutex::new(Model {
            policy: policy.map(str::to_owned),
            policy_etag: "\"v1\"".into(),
            next_id: 1000,
            ..Model::default()
        }));
        Mock::given(any())
            .respond_with(Responder(model.clone()))
            .mount(&server)
            .await;
        Self {
            server: Arc::new(server),
            model,
            proxy: None,
        }
    }

    /// A fake GitHub that fails calls as `plan` says, behind a proxy that can reset
    /// connections; [`FakeGitHub::url`] is the proxy's.
    pub async fn start_with_faults(policy: Option<&str>, plan: FaultPlan) -> (Self, Arc<Faults>) {
        let mut gh = Self::start(policy).await;
        let faults = Faults::new(plan);
        gh.with(|m| m.injector = Some(faults.clone()));
        gh.proxy = Some(Arc::new(ResetProxy::start(*gh.server.address()).await));
        (gh, faults)
    }

    pub fn url(&self) -> String {
        match &self.proxy {
            Some(proxy) => proxy.url(),
            None => self.server.uri(),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        f(&mut self.model.lock().expect("model"))
    }

    /// Waits (up to `within`) until `found` finds something in the fake's state, looking again
    /// at each call that arrives: no polling, nothing asked of Greenlight's database.
    pub async fn wait_for<T>(
        &self,
        within: std::time::Duration,
        mut found: impl FnMut(&Model) -> Option<T>,
    ) -> Option<T> {
        let arrived = self.with(|m| m.arrived.clone());
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = arrived.notified();
            tokio::pin!(next);
            next.as_mut().enable();
            if let Some(v) = self.with(|m| found(m)) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                return None;
            }
        }
    }

    pub fn set_policy(&self, text: &str) {
        self.with(|m| {
            m.policy = Some(text.to_owned());
            m.policy_etag = format!("\"v{}\"", m.next_id);
            m.next_id += 1;
        });
    }

    pub fn set_pull(&self, number: u64, head: &str, author: &str, state: &str) {
        self.with(|m| {
            m.pulls.insert(
                number,
                json!({
                    "number": number,
                    "state": state,
                    "head": { "sha": head, "ref": "feature", "repo": { "full_name": REPO } },
                    "base": { "ref": "main", "repo": { "full_name": REPO } },
                    "user": { "login": author, "id": user_id(author), "type": "User" },
                    "updated_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }),
            );
        });
    }

    pub fn set_permission(&self, user: &str, permission: &str) {
        self.with(|m| {
            m.permissions.insert(user.to_owned(), permission.to_owned());
        });
    }

    /// The next call matching method and path prefix gets this answer instead.
    pub fn fail_next(&self, method: &str, path_prefix: &str, answer: ResponseTemplate) {
        self.with(|m| m.script.fail_next(method, path_prefix, None, answer));
    }

    /// The next call matching method and path prefix is carried out, but its answer is lost
    /// (a 502 from a proxy, a connection reset after GitHub acted).
    pub fn lose_next_answer(&self, method: &str, path_prefix: &str) {
        self.with(|m| m.script.lose_next_answer(method, path_prefix));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|m| m.calls.clone())
    }

    /// Calls other than token minting and reads, i.e. the effects.
    pub fn writes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != "GET" && !c.path.ends_with("/access_tokens"))
            .collect()
    }

    /// Comments the App's bot wrote (planted comments of other people are left out).
    pub fn comments(&self) -> Vec<(u64, String)> {
        self.with(|m| {
            m.comments
                .iter()
                .filter(|(id, _)| !m.comment_authors.contains_key(id))
                .map(|(id, (_, body))| (*id, body.clone()))
                .collect()
        })
    }

    /// The body of the release card (the comment carrying the marker), if posted.
    pub fn card(&self) -> Option<String> {
        self.comments()
            .into_iter()
            .map(|(_, b)| b)
            .find(|b| b.contains("<!-- greenlight:card"))
    }

    /// Replies as people read them (the hidden reply marker removed).
    pub fn replies(&self) -> Vec<String> {
        self.comments()
            .into_iter()
            .map(|(_, b)| b)
            .filter(|b| !b.contains("<!-- greenlight:card"))
            .map(|b| match b.rfind("\n\n<!-- greenlight:reply:") {
                Some(i) => b[..i].to_owned(),
                None => b,
            })
            .collect()
    }

    /// A comment written by someone else than the App (planted in the thread, as a person
    /// would write it on GitHub's site); its id.
    pub fn plant_comment(&self, pr: u64, user_id: u64, login: &str, body: &str) -> u64 {
        self.with(|m| {
            m.next_id += 1;
            let id = m.next_id;
            m.comments.insert(id, (pr, body.to_owned()));
            m.comment_authors.insert(id, (user_id, login.to_owned()));
            id
        })
    }

    /// Comments the App's bot wrote on `pr` (the card and replies), as (id, body).
    pub fn bot_comments(&self, pr: u64) -> Vec<(u64, String)> {
        self.with(|m| {
            m.comments
                .iter()
                .filter(|(id, (n, _))| *n == pr && !m.comment_authors.contains_key(id))
                .map(|(id, (_, body))| (*id, body.clone()))
                .collect()
        })
    }

    pub fn check_runs(&self) -> Vec<Value> {
        self.with(|m| m.check_runs.values().cloned().collect())
    }

    pub fn check(&self, name: &str, sha: &str) -> Vec<Value> {
        self.check_runs()
            .into_iter()
            .filter(|c| c["name"] == name && c["head_sha"] == sha)
            .collect()
    }

    pub fn deployments(&self) -> Vec<Value> {
        self.with(|m| m.deployments.values().cloned().collect())
    }

    pub fn deployment_states(&self) -> Vec<String> {
        self.with(|m| {
            m.deployment_statuses
                .iter()
                .map(|(_, s)| s["state"].as_str().unwrap_or("").to_owned())
                .collect()
        })
    }

    pub fn dispatches(&self) -> Vec<(String, Value)> {
        self.with(|m| m.dispatches.clone())
    }

    /// The id of the latest run dispatched for a workflow file.
    pub fn last_run(&self, file: &str) -> u64 {
        self.with(|m| {
            m.runs
                .iter()
                .rev()
                .find(|(f, _)| f == file)
                .map(|(_, id)| *id)
        })
        .expect("a dispatched run")
    }

    pub fn reactions(&self) -> Vec<(u64, String)> {
        self.with(|m| m.reactions.clone())
    }
}

struct Responder(Arc<Mutex<Model>>);

impl Recording for Model {
    fn calls_mut(&mut self) -> &mut Vec<Call> {
        &mut self.calls
    }

    fn script_mut(&mut self) -> &mut Script {
        &mut self.script
    }

    fn injector(&self) -> Option<Arc<Faults>> {
        self.injector.clone()
    }
}

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut m = self.0.lock().expect("model");
        let method = req.method.to_string();
        let path = req.url.path().to_owned();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let woken = |m: &Model| {
            m.arrived.notify_waiters();
            None
        };
        handle(&mut *m, req, &method, &path, body, woken, |m, body| {
            let slow = m
                .slow_dispatch_answers
                .filter(|_| method == "POST" && path.ends_with("/dispatches"));
            let answered = answer(m, &method, &path, req, body);
            match slow {
                Some(delay) => answered.set_delay(delay),
                None => answered,
            }
        })
    }
}

/// A run as GitHub's REST API describes it now: a run someone else started
/// ([`Model::foreign_runs`]), or one a dispatch created, queued until a test says otherwise
/// in [`Model::run_states`]. Dispatched runs are GitHub's documented shape for a dispatch by
/// the App: `event` `workflow_dispatch` on `main`, `actor` and `triggering_actor` its bot
/// user, and the commit in the title, as the README's `run-name`s do.
fn run_json(m: &Model, id: u64) -> Option<Value> {
    if let Some(run) = m.foreign_runs.iter().find(|r| r["id"] == id) {
        return Some(run.clone());
    }
    let Some((file, inputs, created)) = m.run_inputs.get(&id) else {
        return m.run_states.get(&id).cloned();
    };
    let sha = inputs["sha"].as_str().unwrap_or_default();
    let title = match inputs["environment"].as_str() {
        Some(env) => format!("Greenlight deploy {sha} to {env}"),
        None => format!(
            "Greenlight {sha} (#{})",
            inputs["pr"].as_str().unwrap_or("")
        ),
    };
    let bot = json!({ "login": BOT_LOGIN, "id": BOT_ID, "type": "Bot" });
    let mut run = json!({
        "id": id,
        "path": format!(".github/workflows/{file}"),
        "head_branch": "main",
        "head_sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b",
        "display_title": title,
        "event": "workflow_dispatch",
        "status": "queued",
        "conclusion": null,
        "created_at": created,
        "html_url": format!("https://github.com/{REPO}/actions/runs/{id}"),
        "actor": bot,
        "triggering_actor": bot,
    });
    if let (Some(run), Some(state)) = (
        run.as_object_mut(),
        m.run_states.get(&id).and_then(Value::as_object),
    ) {
        for key in ["status", "conclusion"] {
            if let Some(v) = state.get(key) {
                run.insert(key.to_owned(), v.clone());
            }
        }
    }
    Some(run)
}

/// One page of `items` as GitHub's list endpoints answer it: `per_page` (default 30, at most
/// 100) and `page` (from 1) from the query, and a `Link` header naming the next and last
/// pages while there are more. `wrap` puts the page into the answer's shape (an array, or an
/// object such as `{"total_count", "check_runs"}`).
fn paged(
    req: &Request,
    items: Vec<Value>,
    wrap: impl FnOnce(Vec<Value>, usize) -> Value,
) -> ResponseTemplate {
    let page = Page::of(req, items, 30);
    let (more, next, last) = (page.has_next(), page.page + 1, page.pages);
    let mut answer = ok(wrap(page.items, page.total));
    if more {
        answer = answer.insert_header(
            "link",
            format!(
                "<{}>; rel=\"next\", <{}>; rel=\"last\"",
                page_url(req, next),
                page_url(req, last)
            )
            .as_str(),
        );
    }
    answer
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" }))
}

fn answer(m: &mut Model, method: &str, path: &str, req: &Request, body: Value) -> ResponseTemplate {
    let repo = format!("/repos/{REPO}");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |m: &mut Model| {
        m.next_id += 1;
        m.next_id
    };
    if let Some(answer) = super::fake_github_apps::answer(&mut m.apps, method, path, req) {
        return answer;
    }
    if method == "POST" && path == format!("/app/installations/{INSTALLATION}/access_tokens") {
        let expires = chrono::Utc::now() + chrono::Duration::hours(1);
        return created(json!({
            "token": "ghs_faketokenfaketokenfaketoken",
            "expires_at": expires.to_rfc3339(),
            "permissions": { "checks": "write", "contents": "read", "deployments": "write", "actions": "write",
                             "issues": "write", "pull_requests": "write", "metadata": "read" },
            "repository_selection": "all",
        }));
    }
    if method == "GET" && path == "/app/hook/deliveries" {
        return super::fake_hook_deliveries::list(m, req);
    }
    if let ("POST", ["app", "hook", "deliveries", id, "attempts"]) = (method, segments.as_slice()) {
        return super::fake_hook_deliveries::redeliver(m, req, id);
    }
    if method == "GET" && path == "/app" {
        let (permissions, events) = super::fake_github_apps::granted(&m.apps);
        return ok(json!({
            "id": 1, "slug": APP_SLUG, "name": "Greenlight (test)",
            "owner": { "login": "acme", "id": 1, "type": "Organization" },
            "html_url": format!("https://github.com/apps/{APP_SLUG}"),
            "permissions": permissions, "events": events,
        }));
    }
    if method == "GET"
        && (path == format!("/users/{BOT_LOGIN}") || path == "/users/greenlight-test%5Bbot%5D")
    {
        return ok(json!({ "login": BOT_LOGIN, "id": BOT_ID, "type": "Bot" }));
    }
    let Some(rest) = path.strip_prefix(&repo) else {
        // /orgs/{org}/teams/{slug}/memberships/{user}
        if method == "GET"
            && segments.len() == 6
            && segments[0] == "orgs"
            && segments[4] == "memberships"
        {
            let team = format!("{}/{}", segments[1], segments[3]);
            let member = m
                .team_members
                .get(&team)
                .is_some_and(|list| list.iter().any(|u| u == segments[5]));
            return if member {
                ok(json!({ "state": "active", "role": "member" }))
            } else {
                not_found()
            };
        }
        return not_found();
    };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["contents", ".github", "greenlight.toml"]) => {
            let Some(policy) = m.policy.clone() else {
                return not_found();
            };
            let sent = req
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok());
            if sent == Some(m.policy_etag.as_str()) {
                return ResponseTemplate::new(304);
            }
            ResponseTemplate::new(200)
                .insert_header("etag", m.policy_etag.as_str())
                .set_body_string(policy)
        }
        ("GET", ["pulls", n]) => match n.parse::<u64>().ok().and_then(|n| m.pulls.get(&n)) {
            Some(pr) => ok(pr.clone()),
            None => not_found(),
        },
        ("GET", ["collaborators", user, "permission"]) => {
            let perm = m
                .permissions
                .get(*user)
                .cloned()
                .unwrap_or_else(|| "none".into());
            let legacy = match perm.as_str() {
                "maintain" => "write",
                "triage" => "read",
                other => other,
            };
            ok(json!({ "permission": legacy, "role_name": perm, "user": { "login": user } }))
        }
        ("POST", ["check-runs"]) => {
            let id = id(m);
            let mut run = body.clone();
            run["id"] = json!(id);
            m.check_runs.insert(id, run.clone());
            created(run)
        }
        ("GET", [""]) => ok(json!({ "full_name": REPO, "default_branch": "main" })),
        ("GET", ["actions", "runs", n]) => match n.parse::<u64>().ok().and_then(|n| run_json(m, n))
        {
            Some(run) => ok(run),
            None => not_found(),
        },
        ("GET", ["commits", sha, "check-runs"]) => {
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let list: Vec<Value> = m
                .check_runs
                .values()
                .filter(|c| {
                    c["head_sha"] == *sha && q.get("check_name").is_none_or(|n| c["name"] == *n)
                })
                .cloned()
                .collect();
            paged(
                req,
                list,
                |page, total| json!({ "total_count": total, "check_runs": page }),
            )
        }
        ("PATCH", ["check-runs", n]) => {
            let Some(run) = n.parse::<u64>().ok().and_then(|n| m.check_runs.get_mut(&n)) else {
                return not_found();
            };
            if let (Some(run), Some(update)) = (run.as_object_mut(), body.as_object()) {
                for (k, v) in update {
                    run.insert(k.clone(), v.clone());
                }
            }
            ok(run.clone())
        }
        ("POST", ["actions", "workflows", file, "dispatches"]) => {
            m.dispatches.push(((*file).to_owned(), body.clone()));
            // The run exists either way; only the answer differs.
            let run = id(m);
            m.runs.push(((*file).to_owned(), run));
            m.run_inputs.insert(
                run,
                (
                    (*file).to_owned(),
                    body["inputs"].clone(),
                    chrono::Utc::now().to_rfc3339(),
                ),
            );
            if m.runs_pass_at_once {
                m.run_states.insert(
                    run,
                    json!({ "status": "completed", "conclusion": "success" }),
                );
            }
            m.dispatched.notify_waiters();
            if m.no_run_details {
                return ResponseTemplate::new(204);
            }
            ok(json!({
                "workflow_run_id": run,
                "run_url": format!("{}/repos/{REPO}/actions/runs/{run}", "https://api.github.com"),
                "html_url": format!("https://github.com/{REPO}/actions/runs/{run}"),
            }))
        }
        ("GET", ["actions", "workflows", file, "runs"]) => {
            // The documented filters Greenlight sends: `event`, `branch` (`created` is left
            // to the caller's own check of `created_at`).
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let ids: Vec<u64> = m
                .run_inputs
                .iter()
                .filter(|(_, (f, _, _))| f == file)
                .map(|(id, _)| *id)
                .chain(
                    m.foreign_runs
                        .iter()
                        .filter(|r| r["path"] == format!(".github/workflows/{file}"))
                        .filter_map(|r| r["id"].as_u64()),
                )
                .collect();
            let runs: Vec<Value> = ids
                .into_iter()
                .filter_map(|id| run_json(m, id))
                .filter(|r| q.get("event").is_none_or(|e| r["event"] == *e))
                .filter(|r| q.get("branch").is_none_or(|b| r["head_branch"] == *b))
                .collect();
            paged(
                req,
                runs,
                |page, total| json!({ "total_count": total, "workflow_runs": page }),
            )
        }
        ("GET", ["issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let list: Vec<Value> = m
                .comments
                .iter()
                .filter(|(_, (pr, _))| *pr == n)
                .map(|(id, (_, body))| {
                    let (user_id, login) = m
                        .comment_authors
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| (BOT_ID, BOT_LOGIN.to_owned()));
                    let kind = if login.ends_with("[bot]") {
                        "Bot"
                    } else {
                        "User"
                    };
                    json!({ "id": id, "body": body,
                            "user": { "login": login, "id": user_id, "type": kind } })
                })
                .collect();
            paged(req, list, |page, _| Value::Array(page))
        }
        ("POST", ["issues", n, "comments"]) => {
            let id = id(m);
            let text = body["body"].as_str().unwrap_or("").to_owned();
            m.comments
                .insert(id, (n.parse().unwrap_or(0), text.clone()));
            created(json!({ "id": id, "body": text,
                            "user": { "login": BOT_LOGIN, "id": BOT_ID, "type": "Bot" } }))
        }
        ("PATCH", ["issues", "comments", n]) => {
            let Some(c) = n.parse::<u64>().ok().and_then(|n| m.comments.get_mut(&n)) else {
                return not_found();
            };
            c.1 = body["body"].as_str().unwrap_or("").to_owned();
            ok(json!({ "id": n.parse::<u64>().unwrap_or(0), "body": c.1 }))
        }
        ("POST", ["issues", "comments", n, "reactions"]) => {
            let content = body["content"].as_str().unwrap_or("").to_owned();
            let n: u64 = n.parse().unwrap_or(0);
            let exists = m.reactions.iter().any(|(c, r)| *c == n && *r == content);
            if !exists {
                m.reactions.push((n, content.clone()));
            }
            ResponseTemplate::new(if exists { 200 } else { 201 })
                .set_body_json(json!({ "id": 1, "content": content }))
        }
        ("POST", ["actions", "runs", n, "deployment_protection_rule"]) => {
            super::fake_protection::review(m, n, &body)
        }
        ("POST", ["deployments"]) => {
            let id = id(m);
            let mut d = body.clone();
            d["id"] = json!(id);
            // The token's user made it; `sha` is what `ref` resolved to.
            d["sha"] = body["ref"].clone();
            d["creator"] = json!({ "login": BOT_LOGIN, "id": BOT_ID, "type": "Bot" });
            m.deployments.insert(id, d.clone());
            created(d)
        }
        ("GET", ["deployments"]) => {
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let list: Vec<Value> = m
                .deployments
                .values()
                .filter(|d| {
                    Some(d["ref"].as_str().unwrap_or("")) == q.get("sha").map(String::as_str)
                })
                .cloned()
                .collect();
            paged(req, list, |page, _| Value::Array(page))
        }
        ("GET", ["deployments", n, "statuses"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let list: Vec<Value> = m
                .deployment_statuses
                .iter()
                .rev()
                .filter(|(d, _)| *d == n)
                .map(|(_, s)| json!({ "state": s["state"] }))
                .collect();
            paged(req, list, |page, _| Value::Array(page))
        }
        ("POST", ["deployments", n, "statuses"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            if !m.deployments.contains_key(&n) {
                return not_found();
            }
            m.deployment_statuses.push((n, body.clone()));
            created(json!({ "id": 1, "state": body["state"] }))
        }
        _ => not_found(),
    }
}
