//! A small in-memory GitLab behind wiremock: enough of the REST API v4 for Greenlight's flow,
//! with state (commit statuses, notes, award emoji, pipelines, members) so tests can assert
//! the outcome as well as the exact requests. It behaves as GitLab's source does, not as
//! Greenlight hopes:
//! - a commit status joins a pipeline as a job of its "external" stage: the pipeline named by
//!   `pipeline_id`, else the newest pipeline of the commit (on `ref` when given), and a new
//!   pipeline of source `external` only when none matches (`Ci::CreateCommitStatusService`);
//! - a pipeline's status is the composite of its CI jobs and its generic statuses
//!   (`Gitlab::Ci::Status::Composite`): a `running` status keeps a passed pipeline `running`;
//! - one status per (pipeline, ref, name) while pending or running, a same-state
//!   "transition" refused with 400;
//! - lists are paged as the REST API documents (`per_page` 20 by default, at most 100,
//!   `X-Next-Page`, `X-Total`, `Link`), and notes carry their author and `system` flag;
//! - group members: `/members/:user` is direct membership only, `/members/all/:user` adds the
//!   members inherited from parent groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

pub use super::fake_http::Call;
use super::fake_http::{Page, Recording, created, handle, ok, page_url, query};
use super::faults::{FaultPlan, Faults, ResetProxy};
use super::scripted::Script;

pub const PROJECT: u64 = 15;
pub const PATH: &str = "acme/widgets";
pub const WEB: &str = "https://gitlab.example.com/acme/widgets";
/// The token the tests configure; the fake refuses any other with 401.
pub const TOKEN: &str = "glpat-test-token-0123456789";
/// The default branch's head (where deploy pipelines run).
pub const MAIN_SHA: &str = "9049f1265b7d61be4a8904a9a27120d2064dab3b";

/// The id of the fake instance's account `username`: the ids the suites' hooks give these
/// accounts (tests/gitlab_wire.rs `AUTHOR`, `MONA`, `DEV`, `HUBOT`), a stable one of its own
/// for any other.
pub fn user_id(username: &str) -> u64 {
    match username {
        "octocat" => 1,
        "mona" => 5,
        "dev" => 6,
        "hubot" => 8,
        other => {
            1_000
                + other
                    .bytes()
                    .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                    % 1_000_000
        }
    }
}

#[derive(Debug, Default)]
pub struct Model {
    pub policy: Option<String>,
    /// Merge requests by iid: state, sha, author username, fork, source branch.
    pub mrs: HashMap<u64, Value>,
    /// Access levels by user id.
    pub members: HashMap<u64, u64>,
    /// Group path → its direct member user ids (subgroups are paths below it).
    pub groups: HashMap<String, Vec<u64>>,
    /// Commit statuses in creation order (each with its `pipeline_id` and `ref`).
    pub statuses: Vec<Value>,
    pub notes: BTreeMap<u64, Note>,
    pub awards: Vec<(u64, String)>,
    pub pipelines: BTreeMap<u64, Value>,
    /// CI jobs: job id → the id of the pipeline it runs in (`GET /jobs/:id`).
    pub jobs: HashMap<u64, u64>,
    /// When set, pipelines with variables are refused as GitLab does when the project does
    /// not allow pipeline variables for the token's role.
    pub variables_forbidden: bool,
    /// Deployments by id (see [`super::fake_gitlab_approvals`]).
    pub deployments: BTreeMap<u64, Value>,
    /// "Allow pipeline triggerer to approve deployment" (off by default, as on GitLab).
    pub allow_triggerer_approval: bool,
    /// The token's own user: (id, username).
    pub me: (u64, String),
    pub next_id: u64,
    pub calls: Vec<Call>,
    /// Scripted failures (not carried out) and lost answers.
    pub script: Script,
    /// Injected faults (see [`FakeGitLab::start_with_faults`]).
    pub injector: Option<Arc<Faults>>,
    /// Webhooks and the token's description ([`super::fake_gitlab_hooks`]).
    pub setup: super::fake_gitlab_hooks::Setup,
}

/// A merge request note as GitLab keeps it.
#[derive(Debug, Clone)]
pub struct Note {
    pub mr: u64,
    pub body: String,
    pub author: (u64, String),
    pub system: bool,
    pub created_at: String,
}

#[derive(Clone)]
pub struct FakeGitLab {
    pub server: Arc<MockServer>,
    pub model: Arc<Mutex<Model>>,
    /// In front of the server when faults are injected (connection resets).
    proxy: Option<Arc<ResetProxy>>,
}

impl FakeGitLab {
    pub async fn start(policy: Option<&str>) -> Self {
        let server = MockServer::start().await;
        let model = Arc::new(Mutex::new(Model {
            policy: policy.map(str::to_owned),
            me: (42, "project_15_bot_0f1e2d3c".into()),
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

    /// A fake GitLab that fails calls as `plan` says, behind a proxy that can reset
    /// connections; [`FakeGitLab::url`] is the proxy's.
    pub async fn start_with_faults(policy: Option<&str>, plan: FaultPlan) -> (Self, Arc<Faults>) {
        let mut gl = Self::start(policy).await;
        let faults = Faults::new(plan);
        gl.with(|m| m.injector = Some(faults.clone()));
        gl.proxy = Some(Arc::new(ResetProxy::start(*gl.server.address()).await));
        (gl, faults)
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

    pub fn set_policy(&self, text: &str) {
        self.with(|m| m.policy = Some(text.to_owned()));
    }

    /// Merge request `iid` at `sha` by `author` (as [`user_id`] knows the account); `state`
    /// is opened, closed or merged.
    pub fn set_mr(&self, iid: u64, sha: &str, author: &str, state: &str, fork: bool) {
        self.with(|m| {
            m.mrs.insert(
                iid,
                json!({
                    "iid": iid,
                    "state": state,
                    "sha": sha,
                    "author": { "id": user_id(author), "username": author },
                    "updated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "source_project_id": if fork { 99 } else { PROJECT },
                    "target_project_id": PROJECT,
                    "source_branch": format!("feature-{iid}"),
                }),
            );
        });
    }

    pub fn set_access(&self, user_id: u64, level: u64) {
        self.with(|m| {
            m.members.insert(user_id, level);
        });
    }

    /// The next call matching method and path prefix (below the project) gets this answer,
    /// and is not carried out.
    pub fn fail_next(&self, method: &str, path_prefix: &str, answer: ResponseTemplate) {
        self.fail_next_when(method, path_prefix, None, answer);
    }

    /// As [`Self::fail_next`], for the next such call whose JSON body contains `body_has`
    /// (e.g. `"state":"failed"`).
    pub fn fail_next_when(
        &self,
        method: &str,
        path_prefix: &str,
        body_has: Option<&str>,
        answer: ResponseTemplate,
    ) {
        self.with(|m| m.script.fail_next(method, path_prefix, body_has, answer));
    }

    /// The next matching call is carried out, but its answer is lost (502).
    pub fn lose_next_answer(&self, method: &str, path_prefix: &str) {
        self.with(|m| m.script.lose_next_answer(method, path_prefix));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|m| m.calls.clone())
    }

    /// Calls other than reads, i.e. the effects.
    pub fn writes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != "GET")
            .collect()
    }

    /// Greenlight's own notes (written with its token): (merge request, body).
    pub fn own_notes(&self) -> Vec<(u64, String)> {
        self.with(|m| {
            m.notes
                .values()
                .filter(|n| n.author.0 == m.me.0)
                .map(|n| (n.mr, n.body.clone()))
                .collect()
        })
    }

    /// The body of the release card (Greenlight's note carrying the marker), if posted.
    pub fn card(&self) -> Option<String> {
        self.own_notes()
            .into_iter()
            .map(|(_, b)| b)
            .find(|b| b.contains("<!-- greenlight:card"))
    }

    /// Greenlight's cards on merge request `iid`.
    pub fn cards_of(&self, iid: u64) -> Vec<String> {
        self.own_notes()
            .into_iter()
            .filter(|(mr, b)| *mr == iid && b.contains("<!-- greenlight:card"))
            .map(|(_, b)| b)
            .collect()
    }

    /// Replies as people read them (the hidden reply marker removed).
    pub fn replies(&self) -> Vec<String> {
        {
            self.own_notes()
                .into_iter()
                .map(|(_, b)| b)
                .filter(|b| !b.contains("<!-- greenlight:card"))
                .map(|b| match b.rfind("\n\n<!-- greenlight:reply:") {
                    Some(i) => b[..i].to_owned(),
                    None => b,
                })
                .collect()
        }
    }

    /// How many notes Greenlight wrote.
    pub fn notes(&self) -> usize {
        self.own_notes().len()
    }

    /// A person writes note `id` on merge request `iid` (GitLab stores it, then sends its Note
    /// Hook): the hook's payload.
    pub fn note_hook(&self, iid: u64, id: u64, who: (u64, &str), body: &str) -> Value {
        self.with(|m| {
            m.notes.insert(
                id,
                Note {
                    mr: iid,
                    body: body.to_owned(),
                    author: (who.0, who.1.to_owned()),
                    system: false,
                    created_at: chrono::Utc::now().to_rfc3339(),
                },
            );
        });
        super::gitlab_events::note(iid, id, who, body)
    }

    /// `n` notes on merge request `iid` that are not Greenlight's: system notes ("added 1
    /// commit") when `system`, else people talking.
    pub fn add_notes(&self, iid: u64, n: usize, system: bool) {
        self.with(|m| {
            for i in 0..n {
                m.next_id += 1;
                let id = m.next_id;
                let body = if system {
                    format!("added {i} commit")
                } else {
                    format!("comment {i}")
                };
                let author = (3, "dev3".to_owned());
                m.notes.insert(
                    id,
                    Note {
                        mr: iid,
                        body,
                        author,
                        system,
                        created_at: chrono::Utc::now().to_rfc3339(),
                    },
                );
            }
        });
    }

    /// The pipeline's CI jobs reach `jobs` (GitLab then recomputes the pipeline's status from
    /// its jobs and generic statuses, and sends a Pipeline Hook): the hook's payload, with the
    /// pipeline's composite status.
    pub fn pipeline_hook(&self, p: &Value, jobs: &str) -> Value {
        let id = p["id"].as_u64().expect("pipeline id");
        self.set_pipeline_status(id, jobs);
        let now = self
            .with(|m| m.pipelines.get(&id).cloned())
            .expect("pipeline");
        let status = now["status"].as_str().unwrap_or_default().to_owned();
        super::gitlab_events::pipeline(&now, &status)
    }

    /// The pipeline the merge request widget shows (GitLab's `head_pipeline`): the newest
    /// pipeline of the source branch or the merge request's refs, for its head commit.
    pub fn head_pipeline(&self, iid: u64) -> Option<Value> {
        self.with(|m| {
            let mr = m.mrs.get(&iid)?;
            let refs = [
                mr["source_branch"].as_str().unwrap_or_default().to_owned(),
                format!("refs/merge-requests/{iid}/head"),
            ];
            m.pipelines
                .values()
                .rev()
                .find(|p| p["sha"] == mr["sha"] && refs.iter().any(|r| p["ref"] == r.as_str()))
                .cloned()
        })
    }

    /// A pipeline as GitLab reports it now.
    pub fn pipeline_now(&self, id: u64) -> Value {
        self.with(|m| m.pipelines.get(&id).cloned())
            .expect("pipeline")
    }

    /// The states a status went through on a commit, oldest first (all of its instances).
    pub fn status_history(&self, name: &str, sha: &str) -> Vec<String> {
        self.with(|m| {
            m.statuses
                .iter()
                .filter(|s| s["name"] == name && s["sha"] == sha)
                .flat_map(|s| {
                    s["history"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|v| v.as_str().unwrap_or("").to_owned())
                })
                .collect()
        })
    }

    /// The current state of a status (its latest instance), if posted.
    pub fn status(&self, name: &str, sha: &str) -> Option<Value> {
        self.with(|m| {
            m.statuses
                .iter()
                .rev()
                .find(|s| s["name"] == name && s["sha"] == sha)
                .cloned()
        })
    }

    /// CI pipelines (not the external ones GitLab makes to hold commit statuses).
    pub fn pipelines(&self) -> Vec<Value> {
        self.with(|m| {
            m.pipelines
                .values()
                .filter(|p| p["source"] != "external")
                .cloned()
                .collect()
        })
    }

    /// The pipelines GitLab made to hold commit statuses (source `external`).
    pub fn external_pipelines(&self) -> Vec<Value> {
        self.with(|m| {
            m.pipelines
                .values()
                .filter(|p| p["source"] == "external")
                .cloned()
                .collect()
        })
    }

    /// The latest pipeline created for `git_ref`.
    pub fn last_pipeline(&self, git_ref: &str) -> Value {
        self.with(|m| {
            m.pipelines
                .values()
                .rev()
                .find(|p| p["ref"] == git_ref)
                .cloned()
        })
        .expect("a pipeline")
    }

    /// Deploy pipelines: the ones carrying `GREENLIGHT_ENVIRONMENT`.
    /// A pipeline someone else made through the API on `git_ref` with `variables`, as
    /// GitLab would record it (`user` is who triggered it).
    pub fn pipeline_by(&self, user: (u64, &str), git_ref: &str, variables: Value) -> Value {
        let sha = if git_ref == "main" { MAIN_SHA } else { git_ref };
        self.with(|m| api_pipeline(m, git_ref, sha, variables, user))
    }

    pub fn deploys(&self) -> Vec<Value> {
        self.pipelines()
            .into_iter()
            .filter(|p| {
                p["variables"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v["key"] == "GREENLIGHT_ENVIRONMENT"))
            })
            .collect()
    }

    pub fn awards(&self) -> Vec<(u64, String)> {
        self.with(|m| m.awards.clone())
    }

    /// Sets the status of a pipeline's CI jobs in the model; the pipeline's own status is
    /// their composite with its generic statuses (what the reconciler will see).
    pub fn set_pipeline_status(&self, id: u64, jobs: &str) {
        self.with(|m| {
            if let Some(p) = m.pipelines.get_mut(&id) {
                p["jobs"] = json!(jobs);
            }
            recompute(m, id);
        });
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
        let full = req.url.path().to_owned();
        let prefix = format!("/api/v4/projects/{PROJECT}");
        let path = full
            .strip_prefix(&prefix)
            .map_or_else(|| full.clone(), str::to_owned);
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let token = req
            .headers
            .get("private-token")
            .and_then(|v| v.to_str().ok());
        let unauthorized = |_: &Model| {
            (token != Some(TOKEN)).then(|| {
                ResponseTemplate::new(401).set_body_json(json!({ "message": "401 Unauthorized" }))
            })
        };
        handle(
            &mut *m,
            req,
            &method,
            &path,
            body,
            unauthorized,
            |m, body| answer(m, &method, &path, req, body),
        )
    }
}

fn not_found(what: &str) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({ "message": format!("404 {what} Not Found") }))
}

fn bad_request(message: Value) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "message": message }))
}

/// One page of `list` as GitLab's REST API pages it: `per_page` 20 unless asked, at most 100;
/// `X-Total`, `X-Total-Pages`, `X-Per-Page`, `X-Page`, `X-Next-Page`/`X-Prev-Page` (empty
/// when there is none) and a `Link` header with `next`, `first` and `last`.
pub(super) fn paged(req: &Request, list: Vec<Value>) -> ResponseTemplate {
    let p = Page::of(req, list, 20);
    let mut links = Vec::new();
    if p.has_next() {
        links.push(format!("<{}>; rel=\"next\"", page_url(req, p.page + 1)));
    }
    if p.page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", page_url(req, p.page - 1)));
    }
    links.push(format!("<{}>; rel=\"first\"", page_url(req, 1)));
    links.push(format!("<{}>; rel=\"last\"", page_url(req, p.pages)));
    let some = |cond: bool, n: usize| if cond { n.to_string() } else { String::new() };
    ResponseTemplate::new(200)
        .insert_header("x-total", p.total.to_string())
        .insert_header("x-total-pages", p.pages.to_string())
        .insert_header("x-per-page", p.per_page.to_string())
        .insert_header("x-page", p.page.to_string())
        .insert_header("x-next-page", some(p.has_next(), p.page + 1))
        .insert_header("x-prev-page", some(p.page > 1, p.page.saturating_sub(1)))
        .insert_header("link", links.join(", "))
        .set_body_json(Value::Array(p.items))
}

/// `Gitlab::Ci::Status::Composite` (without DAG): the status of a set of jobs.
pub fn composite(states: &[String]) -> &'static str {
    let set: std::collections::BTreeSet<&str> = states.iter().map(String::as_str).collect();
    let only = |names: &[&str]| set.iter().all(|s| names.contains(s));
    let any = |names: &[&str]| set.iter().any(|s| names.contains(s));
    if set.is_empty() {
        "created"
    } else if only(&["skipped"]) {
        "skipped"
    } else if only(&["success", "skipped"]) {
        "success"
    } else if only(&["created"]) {
        "created"
    } else if only(&["preparing"]) {
        "preparing"
    } else if only(&["canceled", "success", "skipped"]) {
        "canceled"
    } else if only(&["pending", "created", "skipped"]) {
        "pending"
    } else if any(&["running", "pending"]) {
        "running"
    } else if any(&["waiting_for_resource"]) {
        "waiting_for_resource"
    } else if any(&["manual"]) {
        "manual"
    } else if any(&["scheduled"]) {
        "scheduled"
    } else if any(&["preparing"]) {
        "preparing"
    } else if any(&["created"]) {
        "running"
    } else {
        "failed"
    }
}

/// A pipeline's status again: the composite of its CI jobs (one aggregate, `jobs`) and the
/// latest instance of each generic status attached to it.
fn recompute(m: &mut Model, id: u64) {
    let mut latest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for s in m.statuses.iter().filter(|s| s["pipeline_id"] == id) {
        let name = s["name"].as_str().unwrap_or_default().to_owned();
        let sid = s["id"].as_u64().unwrap_or(0);
        let state = s["state"].as_str().unwrap_or_default().to_owned();
        if latest.get(&name).is_none_or(|(i, _)| *i < sid) {
            latest.insert(name, (sid, state));
        }
    }
    let Some(p) = m.pipelines.get_mut(&id) else {
        return;
    };
    let mut states: Vec<String> = latest.into_values().map(|(_, s)| s).collect();
    if let Some(jobs) = p["jobs"].as_str() {
        states.push(jobs.to_owned());
    }
    p["status"] = json!(composite(&states));
}

/// The branch a commit is on, as `repository.branch_names_contains(sha).first`.
fn branch_of(m: &Model, sha: &str) -> Option<String> {
    if sha == MAIN_SHA {
        return Some("main".into());
    }
    m.mrs
        .values()
        .find(|mr| mr["sha"] == sha)
        .and_then(|mr| mr["source_branch"].as_str().map(str::to_owned))
}

/// A group path or id in a URL → its path, if the group exists.
fn group_path(m: &Model, segment: &str) -> Option<String> {
    let decoded = segment.replace("%2F", "/").replace("%2f", "/");
    if m.groups.contains_key(&decoded) {
        return Some(decoded);
    }
    let id: u64 = segment.parse().ok()?;
    m.groups.keys().find(|p| group_id(m, p) == id).cloned()
}

/// A group's id: stable, from its place among the groups' paths.
fn group_id(m: &Model, path: &str) -> u64 {
    let mut paths: Vec<&String> = m.groups.keys().collect();
    paths.sort();
    700 + paths.iter().position(|p| p.as_str() == path).unwrap_or(0) as u64
}

fn note_json(id: u64, n: &Note) -> Value {
    json!({
        "id": id, "body": n.body, "system": n.system, "created_at": n.created_at,
        "updated_at": n.created_at, "noteable_type": "MergeRequest", "noteable_iid": n.mr,
        "project_id": PROJECT,
        "author": { "id": n.author.0, "username": n.author.1, "name": n.author.1,
                    "state": "active" },
    })
}

fn answer(m: &mut Model, method: &str, path: &str, req: &Request, body: Value) -> ResponseTemplate {
    let id = |m: &mut Model| {
        m.next_id += 1;
        m.next_id
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let Some(a) = super::fake_gitlab_approvals::answer(m, method, &parts, req, &body) {
        return a;
    }
    if let Some(a) = super::fake_gitlab_hooks::answer(m, method, path, req, &body) {
        return a;
    }
    match (method, parts.as_slice()) {
        ("GET", ["repository", "files", file, "raw"]) => {
            let q = query(req);
            if *file != ".gitlab%2Fgreenlight.toml" && *file != ".gitlab/greenlight.toml" {
                return not_found("File");
            }
            assert_eq!(
                q.get("ref").map(String::as_str),
                Some("main"),
                "policy from main"
            );
            match &m.policy {
                Some(p) => ResponseTemplate::new(200).set_body_string(p.clone()),
                None => not_found("File"),
            }
        }
        ("GET", ["merge_requests", n]) => match n.parse::<u64>().ok().and_then(|n| m.mrs.get(&n)) {
            Some(mr) => ok(mr.clone()),
            None => not_found("Merge Request"),
        },
        ("GET", ["members", "all", user]) => {
            match user.parse::<u64>().ok().and_then(|u| m.members.get(&u)) {
                Some(level) => ok(
                    json!({ "id": user.parse::<u64>().unwrap_or(0), "access_level": level, "state": "active" }),
                ),
                None => not_found(""),
            }
        }
        ("GET", ["repository", "commits", sha, "statuses"]) => {
            // The latest status of each name unless `all`, filtered by ref, name and
            // pipeline_id, ordered by pipeline then id, paged: GitLab's field names.
            let q = query(req);
            let mut latest: BTreeMap<(u64, String), Value> = BTreeMap::new();
            for s in m.statuses.iter().filter(|s| s["sha"] == *sha) {
                let name = s["name"].as_str().unwrap_or_default().to_owned();
                let pipeline = s["pipeline_id"].as_u64().unwrap_or(0);
                if q.get("name").is_none_or(|n| *n == name)
                    && q.get("ref").is_none_or(|r| s["ref"] == r.as_str())
                    && q.get("pipeline_id")
                        .is_none_or(|p| p.parse::<u64>().ok() == Some(pipeline))
                {
                    latest.insert((pipeline, name), s.clone());
                }
            }
            let list: Vec<Value> = latest
                .into_values()
                .map(|s| {
                    json!({
                        "id": s["id"], "sha": s["sha"], "ref": s["ref"], "name": s["name"],
                        "status": s["state"], "description": s["description"],
                        "target_url": s["target_url"], "pipeline_id": s["pipeline_id"],
                    })
                })
                .collect();
            paged(req, list)
        }
        ("POST", ["statuses", sha]) => {
            let name = body["name"].as_str().unwrap_or("default").to_owned();
            let state = body["state"].as_str().unwrap_or("").to_owned();
            if state.is_empty() {
                return bad_request(json!("State is required"));
            }
            let want_ref = body["ref"].as_str().map(str::to_owned);
            let want_pipeline = body["pipeline_id"].as_u64();
            // The first matching pipeline, newest first.
            let matching = m
                .pipelines
                .values()
                .rev()
                .find(|p| {
                    p["sha"] == *sha
                        && want_ref.as_ref().is_none_or(|r| p["ref"] == r.as_str())
                        && want_pipeline.is_none_or(|id| p["id"] == id)
                })
                .cloned();
            let git_ref = want_ref
                .clone()
                .or_else(|| {
                    matching
                        .as_ref()
                        .and_then(|p| p["ref"].as_str().map(str::to_owned))
                })
                .or_else(|| branch_of(m, sha));
            let Some(git_ref) = git_ref else {
                return not_found("References for commit");
            };
            if want_pipeline.is_some() && matching.is_none() {
                return not_found("Pipeline for pipeline_id, sha and ref");
            }
            let pipeline_id = match matching {
                Some(p) => p["id"].as_u64().unwrap_or(0),
                None => {
                    let id = id(m);
                    m.pipelines.insert(
                        id,
                        json!({
                            "id": id, "ref": git_ref, "sha": sha, "status": "created",
                            "source": "external", "jobs": null,
                            "web_url": format!("{WEB}/-/pipelines/{id}"),
                            "created_at": chrono::Utc::now().to_rfc3339(), "variables": [],
                        }),
                    );
                    id
                }
            };
            let active = m.statuses.iter_mut().rev().find(|s| {
                s["pipeline_id"] == pipeline_id
                    && s["ref"] == git_ref.as_str()
                    && s["name"] == name.as_str()
                    && matches!(s["state"].as_str(), Some("pending" | "running"))
            });
            let status = match active {
                Some(s) => {
                    if s["state"] == state.as_str() {
                        let verb = if state == "pending" { "enqueue" } else { "run" };
                        return bad_request(json!(format!(
                            "Cannot transition status via :{verb} from :{state}"
                        )));
                    }
                    s["state"] = json!(state);
                    s["description"] = body["description"].clone();
                    if !body["target_url"].is_null() {
                        s["target_url"] = body["target_url"].clone();
                    }
                    s["history"]
                        .as_array_mut()
                        .expect("history")
                        .push(json!(state));
                    s.clone()
                }
                None => {
                    let id = id(m);
                    let s = json!({
                        "id": id, "sha": sha, "name": name, "state": state,
                        "ref": git_ref, "pipeline_id": pipeline_id,
                        "description": body["description"], "target_url": body["target_url"],
                        "history": [state],
                    });
                    m.statuses.push(s.clone());
                    s
                }
            };
            recompute(m, pipeline_id);
            created(status)
        }
        ("GET", ["merge_requests", n, "notes"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let q = query(req);
            let mut list: Vec<Value> = m
                .notes
                .iter()
                .filter(|(_, note)| note.mr == n)
                .map(|(id, note)| note_json(*id, note))
                .collect();
            // Newest first unless `sort=asc` (GitLab's default order is `created_at desc`).
            if q.get("sort").map(String::as_str) != Some("asc") {
                list.reverse();
            }
            paged(req, list)
        }
        ("GET", ["merge_requests", n, "notes", note]) => {
            let n: u64 = n.parse().unwrap_or(0);
            match note
                .parse::<u64>()
                .ok()
                .and_then(|id| m.notes.get(&id).map(|note| (id, note)))
            {
                Some((id, note)) if note.mr == n => ok(note_json(id, note)),
                _ => not_found("Note"),
            }
        }
        ("POST", ["merge_requests", n, "notes"]) => {
            let id = id(m);
            let text = body["body"].as_str().unwrap_or("").to_owned();
            let note = Note {
                mr: n.parse().unwrap_or(0),
                body: text,
                author: m.me.clone(),
                system: false,
                created_at: chrono::Utc::now().to_rfc3339(),
            };
            let answer = note_json(id, &note);
            m.notes.insert(id, note);
            created(answer)
        }
        ("PUT", ["merge_requests", n, "notes", note]) => {
            let mr: u64 = n.parse().unwrap_or(0);
            let me = m.me.0;
            let Some(c) = note.parse::<u64>().ok().and_then(|id| m.notes.get_mut(&id)) else {
                return not_found("Note");
            };
            if c.mr != mr {
                return not_found("Note");
            }
            if c.author.0 != me {
                return ResponseTemplate::new(403)
                    .set_body_json(json!({ "message": "403 Forbidden" }));
            }
            c.body = body["body"].as_str().unwrap_or("").to_owned();
            let c = c.clone();
            ok(note_json(note.parse::<u64>().unwrap_or(0), &c))
        }
        ("POST", ["merge_requests", _, "notes", note, "award_emoji"]) => {
            let name = body["name"].as_str().unwrap_or("").to_owned();
            let note: u64 = note.parse().unwrap_or(0);
            if m.awards.iter().any(|(n, e)| *n == note && *e == name) {
                return not_found("Award Emoji Name has already been taken");
            }
            m.awards.push((note, name.clone()));
            created(json!({ "id": 1, "name": name }))
        }
        ("POST", ["pipeline"]) => {
            let git_ref = body["ref"].as_str().unwrap_or("").to_owned();
            let variables = body["variables"].clone();
            if m.variables_forbidden && variables.as_array().is_some_and(|v| !v.is_empty()) {
                return bad_request(json!({
                    "base": ["Insufficient permissions to set pipeline variables"]
                }));
            }
            let sha = if git_ref == "main" {
                Some(MAIN_SHA.to_owned())
            } else {
                m.mrs
                    .values()
                    .find(|mr| mr["source_branch"] == git_ref.as_str())
                    .and_then(|mr| mr["sha"].as_str().map(str::to_owned))
            };
            let Some(sha) = sha else {
                return bad_request(json!({ "base": ["Reference not found"] }));
            };
            let variables = if variables.is_null() {
                json!([])
            } else {
                variables
            };
            let me = m.me.clone();
            created(api_pipeline(m, &git_ref, &sha, variables, (me.0, &me.1)))
        }
        ("POST", ["merge_requests", n, "pipelines"]) => {
            let Some(mr) = n.parse::<u64>().ok().and_then(|n| m.mrs.get(&n)).cloned() else {
                return not_found("Merge Request");
            };
            let id = id(m);
            let p = json!({
                "id": id, "ref": format!("refs/merge-requests/{n}/head"), "sha": mr["sha"],
                "status": "created", "source": "merge_request_event", "jobs": "created",
                "web_url": format!("{WEB}/-/pipelines/{id}"),
                "created_at": chrono::Utc::now().to_rfc3339(), "variables": [],
                "user": { "id": m.me.0, "username": m.me.1 },
            });
            m.pipelines.insert(id, p.clone());
            created(p)
        }
        ("GET", ["pipelines"]) => {
            // Filters Greenlight uses: ref, sha, source, updated_after (a pipeline of the fake is
            // never updated after its creation, so its creation time stands for it). Newest
            // first, paged.
            let q = query(req);
            let after = q
                .get("updated_after")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let list: Vec<Value> = m
                .pipelines
                .values()
                .rev()
                .filter(|p| q.get("ref").is_none_or(|r| p["ref"] == r.as_str()))
                .filter(|p| q.get("source").is_none_or(|s| p["source"] == s.as_str()))
                .filter(|p| q.get("sha").is_none_or(|s| p["sha"] == s.as_str()))
                .filter(|p| {
                    q.get("username")
                        .is_none_or(|u| p["user"]["username"] == u.as_str())
                })
                .filter(|p| {
                    let created = p["created_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                    after.is_none_or(|a| created.is_some_and(|c| c >= a))
                })
                .map(|p| {
                    let mut p = p.clone();
                    // The list, like GitLab's (`PipelineBasic`), carries neither the variables
                    // nor the user.
                    p.as_object_mut().map(|o| {
                        o.remove("variables");
                        o.remove("user");
                        o.remove("jobs")
                    });
                    p
                })
                .collect();
            paged(req, list)
        }
        ("GET", ["pipelines", n, "variables"]) => {
            match n.parse::<u64>().ok().and_then(|n| m.pipelines.get(&n)) {
                Some(p) => {
                    let vars: Vec<Value> = p["variables"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| json!({ "key": v["key"], "value": v["value"], "variable_type": "env_var" }))
                        .collect();
                    ok(Value::Array(vars))
                }
                None => not_found("Pipeline"),
            }
        }
        ("GET", ["jobs", n]) => {
            // Get a single job: the job with its `pipeline` (id, ref, sha, status).
            let Some((job, pipeline)) = n
                .parse::<u64>()
                .ok()
                .and_then(|n| m.jobs.get(&n).map(|p| (n, *p)))
            else {
                return not_found("");
            };
            let p = m.pipelines.get(&pipeline).cloned().unwrap_or(Value::Null);
            ok(json!({
                "id": job, "name": "deploy", "stage": "deploy", "status": "running",
                "ref": p["ref"], "web_url": format!("{WEB}/-/jobs/{job}"),
                "pipeline": { "id": pipeline, "project_id": PROJECT, "ref": p["ref"],
                              "sha": p["sha"], "status": p["status"] },
            }))
        }
        ("GET", ["pipelines", n]) => {
            match n.parse::<u64>().ok().and_then(|n| m.pipelines.get(&n)) {
                Some(p) => {
                    let mut p = p.clone();
                    p.as_object_mut().map(|o| {
                        o.remove("variables");
                        o.remove("jobs")
                    });
                    ok(p)
                }
                None => not_found("Pipeline"),
            }
        }
        ("GET", [""]) => ok(json!({
            "id": PROJECT, "path_with_namespace": PATH, "default_branch": "main", "web_url": WEB,
        })),
        _ => {
            if method == "GET" && path == "/api/v4/user" {
                return ok(json!({ "id": m.me.0, "username": m.me.1, "bot": true }));
            }
            let full: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match (method, full.as_slice()) {
                // Direct members only.
                ("GET", ["api", "v4", "groups", group, "members", user]) => {
                    let user: u64 = user.parse().unwrap_or(0);
                    let member = group_path(m, group)
                        .and_then(|g| m.groups.get(&g))
                        .is_some_and(|l| l.contains(&user));
                    if member {
                        ok(json!({ "id": user, "access_level": 30, "state": "active",
                                   "membership_state": "active" }))
                    } else {
                        not_found("Member")
                    }
                }
                // Direct members and those inherited from parent groups.
                ("GET", ["api", "v4", "groups", group, "members", "all", user]) => {
                    let user: u64 = user.parse().unwrap_or(0);
                    let Some(g) = group_path(m, group) else {
                        return not_found("Group");
                    };
                    let member = m.groups.iter().any(|(path, members)| {
                        (g == *path || g.starts_with(&format!("{path}/")))
                            && members.contains(&user)
                    });
                    if member {
                        ok(json!({ "id": user, "access_level": 30, "state": "active" }))
                    } else {
                        not_found("Member")
                    }
                }
                ("GET", ["api", "v4", "groups", group, "descendant_groups"]) => {
                    let Some(g) = group_path(m, group) else {
                        return not_found("Group");
                    };
                    let mut below: Vec<String> = m
                        .groups
                        .keys()
                        .filter(|p| p.starts_with(&format!("{g}/")))
                        .cloned()
                        .collect();
                    below.sort();
                    let list = below
                        .iter()
                        .map(|p| json!({ "id": group_id(m, p), "full_path": p }))
                        .collect();
                    paged(req, list)
                }
                _ => not_found(""),
            }
        }
    }
}

/// A pipeline created through the API (`source: api`) by `user`, stored and returned as
/// "Create a new pipeline" answers it.
fn api_pipeline(
    m: &mut Model,
    git_ref: &str,
    sha: &str,
    variables: Value,
    user: (u64, &str),
) -> Value {
    m.next_id += 1;
    let id = m.next_id;
    let p = json!({
        "id": id, "ref": git_ref, "sha": sha, "status": "created", "source": "api",
        "jobs": "created",
        "web_url": format!("{WEB}/-/pipelines/{id}"),
        "created_at": chrono::Utc::now().to_rfc3339(),
        "variables": variables,
        "user": { "id": user.0, "username": user.1 },
    });
    m.pipelines.insert(id, p.clone());
    p
}
