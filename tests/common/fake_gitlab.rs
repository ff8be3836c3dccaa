//! A small in-memory GitLab behind wiremock: enough of the REST API v4 for Greenlight's flow,
//! with state (commit statuses, notes, award emoji, pipelines, members) so tests can assert
//! the outcome as well as the exact requests. Commit statuses follow GitLab's rules: one per
//! (SHA, name) while pending or running, a same-state "transition" refused with 400.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

use super::faults::{FaultPlan, Faults, ResetProxy};
use super::scripted::Script;

pub const PROJECT: u64 = 15;
pub const PATH: &str = "acme/widgets";
pub const WEB: &str = "https://gitlab.example.com/acme/widgets";
/// The token the tests configure; the fake refuses any other with 401.
pub const TOKEN: &str = "glpat-test-token-0123456789";
/// The default branch's head (where deploy pipelines run).
pub const MAIN_SHA: &str = "9049f1265b7d61be4a8904a9a27120d2064dab3b";

/// A call the fake received, in order.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Below `/api/v4/projects/15` when it is a project call; the full path otherwise.
    pub path: String,
    pub body: Value,
    /// When the fake received it.
    pub at: std::time::Instant,
}

/// The id of the fake instance's account `username`: the ids the suites' hooks give these
/// accounts (tests/gitlab_flow.rs `AUTHOR`, `MONA`, `DEV`, `HUBOT`), a stable one of its own
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
    /// Group path → member user ids.
    pub groups: HashMap<String, Vec<u64>>,
    /// Commit statuses in creation order.
    pub statuses: Vec<Value>,
    pub notes: BTreeMap<u64, (u64, String)>,
    pub awards: Vec<(u64, String)>,
    pub pipelines: BTreeMap<u64, Value>,
    /// When set, pipelines with variables are refused as GitLab does when the project does
    /// not allow pipeline variables for the token's role.
    pub variables_forbidden: bool,
    /// The token's own user: (id, username).
    pub me: (u64, String),
    pub next_id: u64,
    pub calls: Vec<Call>,
    /// Scripted failures (not carried out) and lost answers.
    pub script: Script,
    /// Injected faults (see [`FakeGitLab::start_with_faults`]).
    pub injector: Option<Arc<Faults>>,
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

    /// The body of the release card (the note carrying the marker), if posted.
    pub fn card(&self) -> Option<String> {
        self.with(|m| {
            m.notes
                .values()
                .map(|(_, b)| b.clone())
                .find(|b| b.contains("<!-- greenlight:card"))
        })
    }

    /// Replies as people read them (the hidden reply marker removed).
    pub fn replies(&self) -> Vec<String> {
        self.with(|m| {
            m.notes
                .values()
                .map(|(_, b)| b.clone())
                .filter(|b| !b.contains("<!-- greenlight:card"))
                .map(|b| match b.rfind("\n\n<!-- greenlight:reply:") {
                    Some(i) => b[..i].to_owned(),
                    None => b,
                })
                .collect()
        })
    }

    pub fn notes(&self) -> usize {
        self.with(|m| m.notes.len())
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

    pub fn pipelines(&self) -> Vec<Value> {
        self.with(|m| m.pipelines.values().cloned().collect())
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

    /// Sets a pipeline's status in the model (what the reconciler will see).
    pub fn set_pipeline_status(&self, id: u64, status: &str) {
        self.with(|m| {
            if let Some(p) = m.pipelines.get_mut(&id) {
                p["status"] = json!(status);
            }
        });
    }
}

struct Responder(Arc<Mutex<Model>>);

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
        m.calls.push(Call {
            method: method.clone(),
            path: path.clone(),
            body: body.clone(),
            at: std::time::Instant::now(),
        });
        let token = req
            .headers
            .get("private-token")
            .and_then(|v| v.to_str().ok());
        if token != Some(TOKEN) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({ "message": "401 Unauthorized" }));
        }
        if let Some(answer) = m.script.fault(&method, &path, &body) {
            return answer;
        }
        let injector = m.injector.clone();
        let carry_out = || {
            let lost = m.script.lose_answer(&method, &path);
            let result = answer(&mut m, &method, &path, req, body);
            if lost {
                ResponseTemplate::new(502)
            } else {
                result
            }
        };
        match injector {
            Some(faults) => faults.answer(&method, &path, carry_out),
            None => carry_out(),
        }
    }
}

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

fn created(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(v)
}

fn not_found(what: &str) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({ "message": format!("404 {what} Not Found") }))
}

fn bad_request(message: Value) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "message": message }))
}

fn answer(m: &mut Model, method: &str, path: &str, req: &Request, body: Value) -> ResponseTemplate {
    let id = |m: &mut Model| {
        m.next_id += 1;
        m.next_id
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["repository", "files", file, "raw"]) => {
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
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
            // The latest status of each name (`all` is false), GitLab's field names.
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let mut latest: BTreeMap<String, Value> = BTreeMap::new();
            for s in m.statuses.iter().filter(|s| s["sha"] == *sha) {
                let name = s["name"].as_str().unwrap_or_default().to_owned();
                if q.get("name").is_none_or(|n| *n == name) {
                    latest.insert(name, s.clone());
                }
            }
            let list: Vec<Value> = latest
                .into_values()
                .map(|s| {
                    json!({
                        "id": s["id"], "sha": s["sha"], "name": s["name"], "status": s["state"],
                        "description": s["description"], "target_url": s["target_url"],
                    })
                })
                .collect();
            ok(Value::Array(list))
        }
        ("POST", ["statuses", sha]) => {
            let name = body["name"].as_str().unwrap_or("default").to_owned();
            let state = body["state"].as_str().unwrap_or("").to_owned();
            let active = m.statuses.iter_mut().rev().find(|s| {
                s["sha"] == *sha
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
                        "description": body["description"], "target_url": body["target_url"],
                        "history": [state],
                    });
                    m.statuses.push(s.clone());
                    s
                }
            };
            created(status)
        }
        ("GET", ["merge_requests", n, "notes"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let list: Vec<Value> = m
                .notes
                .iter()
                .filter(|(_, (mr, _))| *mr == n)
                .map(|(id, (_, body))| json!({ "id": id, "body": body, "system": false }))
                .collect();
            ok(Value::Array(list))
        }
        ("POST", ["merge_requests", n, "notes"]) => {
            let id = id(m);
            let text = body["body"].as_str().unwrap_or("").to_owned();
            m.notes.insert(id, (n.parse().unwrap_or(0), text.clone()));
            created(json!({ "id": id, "body": text }))
        }
        ("PUT", ["merge_requests", n, "notes", note]) => {
            let mr: u64 = n.parse().unwrap_or(0);
            let Some(c) = note.parse::<u64>().ok().and_then(|id| m.notes.get_mut(&id)) else {
                return not_found("Note");
            };
            if c.0 != mr {
                return not_found("Note");
            }
            c.1 = body["body"].as_str().unwrap_or("").to_owned();
            ok(json!({ "id": note.parse::<u64>().unwrap_or(0), "body": c.1 }))
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
            let id = id(m);
            let p = json!({
                "id": id, "ref": git_ref, "sha": sha, "status": "created", "source": "api",
                "web_url": format!("{WEB}/-/pipelines/{id}"),
                "created_at": chrono::Utc::now().to_rfc3339(),
                "variables": if variables.is_null() { json!([]) } else { variables },
            });
            m.pipelines.insert(id, p.clone());
            created(p)
        }
        ("POST", ["merge_requests", n, "pipelines"]) => {
            let Some(mr) = n.parse::<u64>().ok().and_then(|n| m.mrs.get(&n)).cloned() else {
                return not_found("Merge Request");
            };
            let id = id(m);
            let p = json!({
                "id": id, "ref": format!("refs/merge-requests/{n}/head"), "sha": mr["sha"],
                "status": "created", "source": "merge_request_event",
                "web_url": format!("{WEB}/-/pipelines/{id}"),
                "created_at": chrono::Utc::now().to_rfc3339(), "variables": [],
            });
            m.pipelines.insert(id, p.clone());
            created(p)
        }
        ("GET", ["pipelines"]) => {
            // Filters Greenlight uses: ref, sha, source, updated_after (a pipeline of the fake is
            // never updated after its creation, so its creation time stands for it).
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
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
                    let created = p["created_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                    after.is_none_or(|a| created.is_some_and(|c| c >= a))
                })
                .map(|p| {
                    let mut p = p.clone();
                    // The list, like GitLab's, does not carry the variables.
                    p.as_object_mut().map(|o| o.remove("variables"));
                    p
                })
                .collect();
            ok(Value::Array(list))
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
        ("GET", ["pipelines", n]) => {
            match n.parse::<u64>().ok().and_then(|n| m.pipelines.get(&n)) {
                Some(p) => ok(p.clone()),
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
            // /api/v4/groups/{path}/members/all/{user}
            let full: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            if method == "GET"
                && let ["api", "v4", "groups", group, "members", "all", user] = full.as_slice()
            {
                let group = group.replace("%2F", "/");
                let user: u64 = user.parse().unwrap_or(0);
                let member = m.groups.get(&group).is_some_and(|l| l.contains(&user));
                return if member {
                    ok(json!({ "id": user, "access_level": 30, "state": "active" }))
                } else {
                    not_found("")
                };
            }
            not_found("")
        }
    }
}
