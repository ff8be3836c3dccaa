//! The [`World`] on GitLab: [`GitLabFlow`] over [`FakeGitLab`], merge requests, commit
//! statuses, pipelines and notes.

use std::sync::Arc;
use std::time::Duration;

use super::clock::TestClock;
use greenlight::engine::Engine;
use greenlight::store::Store;
use greenlight::worker::WorkerConfig;
use serde_json::json;
use wiremock::ResponseTemplate;

use super::TestDb;
use super::fake_gitlab::{FakeGitLab, PATH, user_id};
use super::fake_http::Call;
use super::faults::{FaultPlan, Faults};
use super::flow_gitlab::{GitLabFlow, POLICY};
use super::gitlab_events::{merge_request, push};
use super::world::{Hook, Kind, Opening, Perm, Run, Seen, State, World};

const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";
/// The bot account the stories' bot comments come from.
const BOT: (u64, &str) = (77, "deploy-bot[bot]");
const CARD: &str = "<!-- greenlight:card";

pub struct GitLabWorld {
    flow: GitLabFlow,
    seen: Seen,
}

impl GitLabWorld {
    pub fn gl(&self) -> &FakeGitLab {
        &self.flow.gl
    }

    /// A world on `db` whose fake GitLab fails calls as `plan` says, with these workers and
    /// request timeout.
    pub async fn start_faulty(
        db: TestDb,
        plan: FaultPlan,
        workers: WorkerConfig,
        timeout: Duration,
    ) -> (Self, Arc<Faults>) {
        let (gl, faults) = FakeGitLab::start_with_faults(Some(POLICY), plan).await;
        let world = Self {
            flow: GitLabFlow::start_with(db, gl, workers, timeout).await,
            seen: Seen::new(Self::FORGE),
        };
        (world, faults)
    }

    fn person(who: &str) -> (u64, &str) {
        (user_id(who), who)
    }
}

/// A project path with numeric ids as `:id` and commit SHAs as `:sha`.
pub fn normalise(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                ":id"
            } else if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                ":sha"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A commit status's state; only the values Greenlight writes are known (any other fails
/// the story).
fn state_of(state: &str) -> State {
    match state {
        "pending" => State::Pending,
        "running" => State::Running,
        "success" => State::Passed,
        "failed" => State::Failed,
        "canceled" => State::Cancelled,
        other => panic!("a commit status state the stories do not know: {other:?}"),
    }
}

/// The state of a pipeline's CI jobs.
fn jobs(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Running => "running",
        State::Passed => "success",
        State::Failed => "failed",
        State::Cancelled => "canceled",
    }
}

/// A pipeline as a [`Run`]: a deploy's commit is its `GREENLIGHT_SHA`.
fn run_of(p: &serde_json::Value, deploy: bool) -> Run {
    let sha = if deploy {
        p["variables"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["key"] == "GREENLIGHT_SHA"))
            .and_then(|v| v["value"].as_str())
    } else {
        p["sha"].as_str()
    };
    Run {
        id: p["id"].as_u64().expect("pipeline id"),
        sha: sha.unwrap_or("").to_owned(),
        deploy,
    }
}

fn is_deploy(body: &serde_json::Value) -> bool {
    body["variables"]
        .as_array()
        .is_some_and(|v| v.iter().any(|v| v["key"] == "GREENLIGHT_ENVIRONMENT"))
}

impl World for GitLabWorld {
    const FORGE: &'static str = "gitlab";
    const POLICY: &'static str = POLICY;
    const POLICY_FILE: &'static str = ".gitlab/greenlight.toml";
    const CI_ACTOR: &'static str = "gitlab-ci";
    const PR_NOUN: &'static str = "merge request";
    const REPO_PATH: &'static str = PATH;
    const WAITING: State = State::Pending;
    const DEPLOY_RUN_NOUN: &'static str = "deploy pipeline";

    async fn start_on(db: TestDb, policy: Option<&str>) -> Self {
        Self {
            flow: GitLabFlow::start_on(db, policy).await,
            seen: Seen::new(Self::FORGE),
        }
    }

    fn seen(&self) -> &Seen {
        &self.seen
    }

    fn store(&self) -> &Store {
        &self.flow.store
    }

    fn engine(&self) -> &Engine {
        &self.flow.engine
    }

    fn clock(&self) -> &TestClock {
        &self.flow.clock
    }

    fn grant(&self, who: &str, perm: Perm) {
        let level = match perm {
            Perm::Read => 20,
            Perm::Write => 30,
            Perm::Maintain => 40,
            Perm::Admin => 50,
        };
        self.gl().set_access(user_id(who), level);
    }

    fn add_to_team(&self, team: &str, who: &str) {
        self.gl()
            .with(|m| m.groups.insert(team.into(), vec![user_id(who)]));
    }

    fn set_policy(&self, text: &str) {
        self.gl().set_policy(text);
    }

    fn opened_as(&self, pr: u64, sha: &str, author: &str, how: Opening) -> Hook {
        self.gl().set_mr(pr, sha, author, "opened", how.fork);
        let mut payload = merge_request("open", pr, sha, user_id(author), how.fork);
        payload["object_attributes"]["draft"] = json!(how.draft);
        Hook { event: MR, payload }
    }

    fn ready_for_review(&self, pr: u64, sha: &str, author: &str) -> Hook {
        // GitLab: an update without new commits whose `changes` name the draft flag.
        let mut payload = merge_request("update", pr, sha, user_id(author), false);
        if let Some(attrs) = payload["object_attributes"].as_object_mut() {
            attrs.remove("oldrev");
        }
        payload["changes"] = json!({ "draft": { "previous": true, "current": false } });
        Hook { event: MR, payload }
    }

    fn pushed(&self, pr: u64, sha: &str, author: &str) -> Hook {
        self.gl().set_mr(pr, sha, author, "opened", false);
        Hook {
            event: MR,
            payload: merge_request("update", pr, sha, user_id(author), false),
        }
    }

    fn reopened(&self, pr: u64, sha: &str, author: &str) -> Hook {
        self.gl().set_mr(pr, sha, author, "opened", false);
        Hook {
            event: MR,
            payload: merge_request("reopen", pr, sha, user_id(author), false),
        }
    }

    fn closed(&self, pr: u64, sha: &str, author: &str) -> Hook {
        self.gl().set_mr(pr, sha, author, "closed", false);
        Hook {
            event: MR,
            payload: merge_request("close", pr, sha, user_id(author), false),
        }
    }

    fn commented(&self, pr: u64, id: u64, who: &str, body: &str) -> Hook {
        Hook {
            event: NOTE,
            payload: self.gl().note_hook(pr, id, Self::person(who), body),
        }
    }

    fn comment_edited(&self, pr: u64, id: u64, who: &str, body: &str) -> Hook {
        let mut payload = self.gl().note_hook(pr, id, Self::person(who), body);
        payload["object_attributes"]["action"] = json!("update");
        Hook {
            event: NOTE,
            payload,
        }
    }

    fn bot_commented(&self, pr: u64, id: u64, body: &str) -> Hook {
        self.gl().set_access(BOT.0, 50);
        Hook {
            event: NOTE,
            payload: self.gl().note_hook(pr, id, BOT, body),
        }
    }

    fn branch_pushed(&self, branch: &str, before: &str, after: &str) -> Hook {
        Hook {
            event: "Push Hook",
            payload: push(branch, before, after),
        }
    }

    fn run_reported(&self, run: &Run, state: State) -> Hook {
        Hook {
            event: PIPELINE,
            payload: self
                .gl()
                .pipeline_hook(&json!({ "id": run.id }), jobs(state)),
        }
    }

    fn deploy_finished(&self, run: &Run, state: State) -> Vec<Hook> {
        // GitLab reports the deploy pipeline running, then finished.
        vec![
            self.run_reported(run, State::Running),
            self.run_reported(run, state),
        ]
    }

    fn pipeline_runs(&self, pr: u64) -> Vec<Run> {
        let branch = format!("feature-{pr}");
        self.gl()
            .pipelines()
            .iter()
            .filter(|p| p["ref"] == branch.as_str() && !is_deploy(p))
            .map(|p| run_of(p, false))
            .collect()
    }

    fn deploy_runs_of(&self, sha: &str) -> Vec<Run> {
        self.gl()
            .deploys()
            .iter()
            .map(|p| run_of(p, true))
            .filter(|r| r.sha == sha)
            .collect()
    }

    fn deploy_run(&self) -> Run {
        let p = self.gl().deploys().pop().expect("a deploy pipeline");
        run_of(&p, true)
    }

    fn run_is_now(&self, run: &Run, state: State) {
        self.gl().set_pipeline_status(run.id, jobs(state));
    }

    fn fail_next_deploy_start(&self) {
        self.gl()
            .fail_next("POST", "/pipeline", ResponseTemplate::new(502));
    }

    fn lose_next_pipeline_start_answer(&self) {
        self.gl().lose_next_answer("POST", "/pipeline");
    }

    fn rate_limit_next_policy_read(&self) {
        self.gl().fail_next(
            "GET",
            "/repository/files/",
            ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        );
    }

    fn looked_for_deploy_run(&self) -> bool {
        self.gl()
            .calls()
            .iter()
            .any(|c| c.method == "GET" && c.path == "/pipelines")
    }

    async fn deliver(&self, hook: &Hook, delivery: &str) -> u16 {
        self.flow.deliver(hook.event, delivery, &hook.payload).await
    }

    async fn send(&self, hook: Hook) -> u16 {
        self.flow.send(hook.event, hook.payload).await
    }

    async fn settle(&self) {
        self.flow.settle().await;
    }

    async fn dead(&self) -> Vec<String> {
        self.flow.dead().await
    }

    async fn stop(self) {
        self.flow.stop().await;
    }

    fn url(&self, path: &str) -> String {
        self.flow.url(path)
    }

    fn raw_writes(&self) -> Vec<(Kind, String)> {
        self.gl()
            .writes()
            .into_iter()
            .map(|c| {
                let path = normalise(&c.path);
                let text = c.body["body"].as_str().unwrap_or("");
                let kind = match (c.method.as_str(), path.as_str()) {
                    ("POST", "/statuses/:sha") => Kind::Check,
                    ("POST", "/pipeline") if is_deploy(&c.body) => Kind::Deploy,
                    ("POST", "/pipeline") => Kind::Pipeline,
                    ("POST", "/merge_requests/:id/notes/:id/award_emoji") => Kind::Reaction,
                    ("POST", "/merge_requests/:id/notes")
                    | ("PUT", "/merge_requests/:id/notes/:id") => {
                        if text.contains(CARD) {
                            Kind::Card
                        } else {
                            Kind::Reply
                        }
                    }
                    _ => Kind::Other,
                };
                let mut what = format!("{} {path}", c.method);
                if kind == Kind::Reply {
                    what = format!("{what}: {text}");
                }
                (kind, what)
            })
            .collect()
    }

    fn raw_calls(&self) -> Vec<Call> {
        self.gl().calls()
    }

    fn raw_check_history(&self, name: &str, sha: &str) -> Vec<State> {
        self.gl()
            .status_history(name, sha)
            .iter()
            .map(|s| state_of(s))
            .collect()
    }

    fn raw_checks_count(&self, name: &str, sha: &str) -> usize {
        self.gl().with(|m| {
            m.statuses
                .iter()
                .filter(|s| s["name"] == name && s["sha"] == sha)
                .count()
        })
    }

    fn raw_check_text(&self, name: &str, sha: &str) -> String {
        let s = self.gl().status(name, sha).expect("a status");
        s["description"].as_str().unwrap_or("").to_owned()
    }

    fn raw_check_title(&self, name: &str, sha: &str) -> String {
        self.raw_check_text(name, sha)
    }

    fn raw_cards(&self) -> Vec<(u64, String)> {
        self.gl()
            .own_notes()
            .into_iter()
            .filter(|(_, b)| b.contains(CARD))
            .collect()
    }

    fn raw_replies(&self) -> Vec<String> {
        self.gl().replies()
    }

    fn raw_reactions(&self) -> Vec<(u64, String)> {
        self.gl()
            .awards()
            .into_iter()
            .map(|(n, e)| {
                // GitLab's names for GitHub's; any other stays marked as GitLab's own.
                let e = match e.as_str() {
                    "eyes" => e,
                    "thumbsdown" => "-1".to_owned(),
                    "thumbsup" => "+1".to_owned(),
                    _ => format!("gitlab:{e}"),
                };
                (n, e)
            })
            .collect()
    }

    fn raw_deploys(&self) -> Vec<String> {
        self.gl()
            .deploys()
            .iter()
            .map(|p| run_of(p, true).sha)
            .collect()
    }

    fn raw_deploy_reports(&self, sha: &str) -> Vec<State> {
        self.raw_check_history("greenlight/release", sha)
            .into_iter()
            .skip_while(|s| *s == State::Pending)
            .collect()
    }

    fn raw_deploy_runs(&self) -> usize {
        self.gl().deploys().len()
    }

    fn run_url(&self, run: &Run) -> String {
        self.gl().pipeline_now(run.id)["web_url"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn raw_pipelines(&self) -> usize {
        self.gl()
            .pipelines()
            .iter()
            .filter(|p| !is_deploy(p))
            .count()
    }

    fn is_policy_read(call: &Call) -> bool {
        call.method == "GET" && call.path.contains("/repository/files/")
    }

    fn asked_team(&self, team: &str, who: &str) -> bool {
        let path = format!(
            "/api/v4/groups/{}/members/{}",
            team.replace('/', "%2F"),
            user_id(who)
        );
        self.gl().calls().iter().any(|c| c.path == path)
    }
}
