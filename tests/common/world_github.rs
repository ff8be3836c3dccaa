//! The [`World`] on GitHub: [`Flow`] over [`FakeGitHub`], pull requests, check runs,
//! workflow dispatches and deployments.

use std::sync::Arc;
use std::time::Duration;

use super::clock::TestClock;
use greenlight::engine::Engine;
use greenlight::store::Store;
use greenlight::worker::WorkerConfig;
use serde_json::json;
use wiremock::ResponseTemplate;

use super::TestDb;
use super::fake_github::{FakeGitHub, REPO};
use super::fake_http::Call;
use super::faults::{FaultPlan, Faults};
use super::flow::{Flow, POLICY};
use super::github_events::{comment, pull_request_from, push, workflow_run};
use super::world::{Hook, Kind, Opening, Perm, Run, Seen, State, World};

/// The bot account the stories' bot comments come from.
const BOT: &str = "deploy-bot[bot]";
const CARD: &str = "<!-- greenlight:card";

pub struct GitHubWorld {
    flow: Flow,
    seen: Seen,
}

impl GitHubWorld {
    pub fn gh(&self) -> &FakeGitHub {
        &self.flow.gh
    }

    /// A world on `db` whose fake GitHub fails calls as `plan` says, with these workers and
    /// request timeout.
    pub async fn start_faulty(
        db: TestDb,
        plan: FaultPlan,
        workers: WorkerConfig,
        timeout: Duration,
    ) -> (Self, Arc<Faults>) {
        let (gh, faults) = FakeGitHub::start_with_faults(Some(POLICY), plan).await;
        let world = Self {
            flow: Flow::start_with(db, gh, workers, timeout).await,
            seen: Seen::new(Self::FORGE),
        };
        (world, faults)
    }

    /// Dispatched runs whose workflow file and inputs match, oldest first.
    fn runs(&self, matches: impl Fn(&str, &serde_json::Value) -> bool) -> Vec<Run> {
        self.gh().with(|m| {
            m.run_inputs
                .iter()
                .filter(|(_, (file, inputs, _))| matches(file, inputs))
                .map(|(id, (file, inputs, _))| Run {
                    id: *id,
                    sha: inputs["sha"].as_str().unwrap_or("").to_owned(),
                    deploy: file == "deploy.yml",
                })
                .collect()
        })
    }
}

/// A repository path without the repository prefix, numeric ids as `:id`.
pub fn normalise(path: &str) -> String {
    let path = path.strip_prefix(&format!("/repos/{REPO}")).unwrap_or(path);
    path.split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                ":id"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A check run's state as GitHub's `status` and `conclusion` say it; only the values
/// Greenlight writes are known (any other fails the story).
fn state_of(check: &serde_json::Value) -> Option<State> {
    let conclusion = check["conclusion"].as_str().unwrap_or("");
    let state = match (check["status"].as_str()?, conclusion) {
        ("queued", _) => State::Pending,
        ("in_progress", _) => State::Running,
        ("completed", "success") => State::Passed,
        ("completed", "failure") => State::Failed,
        ("completed", "neutral") => State::Cancelled,
        other => panic!("a check run state the stories do not know: {other:?}"),
    };
    Some(state)
}

impl World for GitHubWorld {
    const FORGE: &'static str = "github";
    const POLICY: &'static str = POLICY;
    const POLICY_FILE: &'static str = ".github/greenlight.toml";
    const CI_ACTOR: &'static str = "github-actions";
    const PR_NOUN: &'static str = "pull request";
    const REPO_PATH: &'static str = REPO;
    const WAITING: State = State::Running;
    const DEPLOY_RUN_NOUN: &'static str = "deploy workflow";

    async fn start_on(db: TestDb, policy: Option<&str>) -> Self {
        Self {
            flow: Flow::start_on(db, policy).await,
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
        let p = match perm {
            Perm::Read => "read",
            Perm::Write => "write",
            Perm::Maintain => "maintain",
            Perm::Admin => "admin",
        };
        self.gh().set_permission(who, p);
    }

    fn add_to_team(&self, team: &str, who: &str) {
        self.gh()
            .with(|m| m.team_members.insert(team.into(), vec![who.into()]));
    }

    fn set_policy(&self, text: &str) {
        self.gh().set_policy(text);
    }

    fn opened_as(&self, pr: u64, sha: &str, author: &str, how: Opening) -> Hook {
        self.gh().set_pull(pr, sha, author, "open");
        let head_repo = if how.fork { "mallory/widgets" } else { REPO };
        Hook {
            event: "pull_request",
            payload: pull_request_from("opened", pr, sha, author, head_repo, how.draft),
        }
    }

    fn ready_for_review(&self, pr: u64, sha: &str, author: &str) -> Hook {
        Hook {
            event: "pull_request",
            payload: pull_request_from("ready_for_review", pr, sha, author, REPO, false),
        }
    }

    fn pushed(&self, pr: u64, sha: &str, author: &str) -> Hook {
        self.gh().set_pull(pr, sha, author, "open");
        Hook {
            event: "pull_request",
            payload: pull_request_from("synchronize", pr, sha, author, REPO, false),
        }
    }

    fn reopened(&self, pr: u64, sha: &str, author: &str) -> Hook {
        self.gh().set_pull(pr, sha, author, "open");
        Hook {
            event: "pull_request",
            payload: pull_request_from("reopened", pr, sha, author, REPO, false),
        }
    }

    fn closed(&self, pr: u64, sha: &str, author: &str) -> Hook {
        self.gh().set_pull(pr, sha, author, "closed");
        Hook {
            event: "pull_request",
            payload: pull_request_from("closed", pr, sha, author, REPO, false),
        }
    }

    fn commented(&self, pr: u64, id: u64, who: &str, body: &str) -> Hook {
        Hook {
            event: "issue_comment",
            payload: comment("created", pr, id, who, body),
        }
    }

    fn comment_edited(&self, pr: u64, id: u64, who: &str, body: &str) -> Hook {
        Hook {
            event: "issue_comment",
            payload: comment("edited", pr, id, who, body),
        }
    }

    fn bot_commented(&self, pr: u64, id: u64, body: &str) -> Hook {
        self.gh().set_permission(BOT, "admin");
        Hook {
            event: "issue_comment",
            payload: comment("created", pr, id, BOT, body),
        }
    }

    fn branch_pushed(&self, branch: &str, before: &str, after: &str) -> Hook {
        Hook {
            event: "push",
            payload: push(branch, before, after),
        }
    }

    fn run_reported(&self, run: &Run, state: State) -> Hook {
        let file = if run.deploy { "deploy.yml" } else { "ci.yml" };
        let (action, conclusion) = match state {
            State::Pending => ("requested", None),
            State::Running => ("in_progress", None),
            State::Passed => ("completed", Some("success")),
            State::Failed => ("completed", Some("failure")),
            State::Cancelled => ("completed", Some("cancelled")),
        };
        Hook {
            event: "workflow_run",
            payload: workflow_run(action, run.id, file, &run.sha, conclusion),
        }
    }

    fn deploy_finished(&self, run: &Run, state: State) -> Vec<Hook> {
        // GitHub says a deploy run finished once, with its conclusion.
        vec![self.run_reported(run, state)]
    }

    fn pipeline_runs(&self, pr: u64) -> Vec<Run> {
        let pr = pr.to_string();
        self.runs(|file, inputs| file == "ci.yml" && inputs["pr"] == json!(pr))
    }

    fn deploy_runs_of(&self, sha: &str) -> Vec<Run> {
        self.runs(|file, inputs| file == "deploy.yml" && inputs["sha"] == sha)
    }

    fn deploy_run(&self) -> Run {
        self.runs(|file, _| file == "deploy.yml")
            .pop()
            .expect("a deploy run")
    }

    fn run_is_now(&self, run: &Run, state: State) {
        let hook = self.run_reported(run, state);
        let described = hook.payload["workflow_run"].clone();
        self.gh().with(|m| m.run_states.insert(run.id, described));
    }

    fn fail_next_deploy_start(&self) {
        self.gh().fail_next(
            "POST",
            &format!("/repos/{REPO}/actions/workflows/deploy.yml"),
            ResponseTemplate::new(502),
        );
    }

    fn lose_next_pipeline_start_answer(&self) {
        self.gh()
            .lose_next_answer("POST", &format!("/repos/{REPO}/actions/workflows/ci.yml"));
    }

    fn rate_limit_next_policy_read(&self) {
        self.gh().fail_next(
            "GET",
            &format!("/repos/{REPO}/contents/"),
            ResponseTemplate::new(429).insert_header("retry-after", "1"),
        );
    }

    fn looked_for_deploy_run(&self) -> bool {
        self.gh()
            .calls()
            .iter()
            .any(|c| c.method == "GET" && c.path.ends_with("/actions/workflows/deploy.yml/runs"))
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
        self.gh()
            .writes()
            .into_iter()
            .map(|c| {
                let path = normalise(&c.path);
                let text = c.body["body"].as_str().unwrap_or("");
                let kind = match (c.method.as_str(), path.as_str()) {
                    (_, p) if p.starts_with("/check-runs") => Kind::Check,
                    ("POST", "/actions/workflows/ci.yml/dispatches") => Kind::Pipeline,
                    ("POST", "/actions/workflows/deploy.yml/dispatches") => Kind::Deploy,
                    ("POST", p) if p.starts_with("/deployments") => Kind::Deploy,
                    ("POST", "/issues/comments/:id/reactions") => Kind::Reaction,
                    ("POST", "/issues/:id/comments") | ("PATCH", "/issues/comments/:id") => {
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
        self.gh().calls()
    }

    fn raw_check_history(&self, name: &str, sha: &str) -> Vec<State> {
        // Each check run's states in the order they were written; a new run for a new
        // attempt follows the old one.
        let runs = self.gh().check_runs();
        let mut history = Vec::new();
        for c in self.gh().writes() {
            let path = normalise(&c.path);
            let ours = match (c.method.as_str(), path.as_str()) {
                ("POST", "/check-runs") => c.body["name"] == name && c.body["head_sha"] == sha,
                ("PATCH", "/check-runs/:id") => {
                    let id: u64 = c
                        .path
                        .rsplit('/')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    runs.iter()
                        .any(|r| r["id"] == id && r["name"] == name && r["head_sha"] == sha)
                }
                _ => false,
            };
            if ours && let Some(state) = state_of(&c.body) {
                history.push(state);
            }
        }
        history
    }

    fn raw_checks_count(&self, name: &str, sha: &str) -> usize {
        self.gh().check(name, sha).len()
    }

    fn raw_check_text(&self, name: &str, sha: &str) -> String {
        let checks = self.gh().check(name, sha);
        let c = checks.last().expect("a check");
        format!(
            "{}\n{}",
            c["output"]["title"].as_str().unwrap_or(""),
            c["output"]["summary"].as_str().unwrap_or("")
        )
    }

    fn raw_check_title(&self, name: &str, sha: &str) -> String {
        let checks = self.gh().check(name, sha);
        let c = checks.last().expect("a check");
        c["output"]["title"].as_str().unwrap_or("").to_owned()
    }

    fn raw_cards(&self) -> Vec<(u64, String)> {
        self.gh().with(|m| {
            m.comments
                .iter()
                .filter(|(id, (_, b))| !m.comment_authors.contains_key(id) && b.contains(CARD))
                .map(|(_, (pr, b))| (*pr, b.clone()))
                .collect()
        })
    }

    fn raw_replies(&self) -> Vec<String> {
        self.gh().replies()
    }

    fn raw_reactions(&self) -> Vec<(u64, String)> {
        self.gh().reactions()
    }

    fn raw_deploys(&self) -> Vec<String> {
        self.gh()
            .deployments()
            .iter()
            .map(|d| d["ref"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn raw_deploy_reports(&self, sha: &str) -> Vec<State> {
        self.gh().with(|m| {
            m.deployment_statuses
                .iter()
                .filter(|(id, _)| m.deployments.get(id).is_some_and(|d| d["ref"] == sha))
                .map(|(_, s)| match s["state"].as_str().unwrap_or("") {
                    "queued" | "pending" => State::Pending,
                    "in_progress" => State::Running,
                    "success" => State::Passed,
                    "inactive" => State::Cancelled,
                    _ => State::Failed,
                })
                .collect()
        })
    }

    fn raw_deploy_runs(&self) -> usize {
        self.gh()
            .dispatches()
            .iter()
            .filter(|(f, _)| f == "deploy.yml")
            .count()
    }

    fn run_url(&self, run: &Run) -> String {
        format!("https://github.com/{REPO}/actions/runs/{}", run.id)
    }

    fn raw_pipelines(&self) -> usize {
        self.gh()
            .dispatches()
            .iter()
            .filter(|(f, _)| f == "ci.yml")
            .count()
    }

    fn is_policy_read(call: &Call) -> bool {
        call.method == "GET" && call.path.ends_with("/contents/.github/greenlight.toml")
    }

    fn asked_team(&self, team: &str, who: &str) -> bool {
        let (org, slug) = team.split_once('/').expect("org/team");
        let path = format!("/orgs/{org}/teams/{slug}/memberships/{who}");
        self.gh().calls().iter().any(|c| c.path == path)
    }
}
