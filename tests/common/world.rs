//! One release story, both forges: a [`World`] is a whole Greenlight wired to a fake forge,
//! driven and observed in the release's own words (open, push, the pipeline passes, a comment,
//! the card, the checks, the deploys, the replies). `tests/stories.rs` tells each story once
//! against this trait and runs it on GitHub ([`super::world_github`]) and GitLab
//! ([`super::world_gitlab`]).
//!
//! A world ends with a strict teardown ([`World::finish`], enforced: dropping an unfinished
//! world fails the test). It fails the story on any dead letter, on any reply the story did
//! not read, and on any forge write the story never looked at. Every write the fake received
//! is sorted into a [`Kind`]; each observation of a kind (the card, the checks, the deploys,
//! the replies, the reactions, the pipelines) marks the writes of that kind made so far as
//! looked at. A write made after the last look at its kind is unconsumed.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use greenlight::engine::Engine;
use greenlight::store::Store;
use serde_json::Value;

use super::TestDb;
use super::clock::TestClock;
use super::fake_http::Call;

/// What a forge write is, in the release's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A check run (GitHub) or commit status (GitLab) created or changed.
    Check,
    /// A candidate's pipeline started (a `ci.yml` dispatch, a merge request pipeline).
    Pipeline,
    /// Anything of a deploy: the deployment, its statuses, the deploy dispatch or pipeline.
    Deploy,
    /// The release card posted or edited.
    Card,
    /// A reply posted or edited.
    Reply,
    /// A reaction (GitHub) or award emoji (GitLab) on a person's comment.
    Reaction,
    /// Any other write (only [`World::writes`] looks at these).
    Other,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Check,
        Kind::Pipeline,
        Kind::Deploy,
        Kind::Card,
        Kind::Reply,
        Kind::Reaction,
        Kind::Other,
    ];
}

/// A permission on the repository, in GitHub's words (GitLab: reporter, developer,
/// maintainer, owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    Read,
    Write,
    Maintain,
    Admin,
}

/// A check's (GitHub) or commit status's (GitLab) state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// GitHub `queued`, GitLab `pending`.
    Pending,
    /// GitHub `in_progress`, GitLab `running`.
    Running,
    /// Completed with success.
    Passed,
    /// Completed with failure.
    Failed,
    /// GitHub `neutral` (or cancelled), GitLab `canceled`: nothing to say any more.
    Cancelled,
}

/// A webhook the forge would send, with the state of the forge already changed as it would be
/// (the pull request's head moved, the note stored).
#[derive(Clone, Debug)]
pub struct Hook {
    pub event: &'static str,
    pub payload: Value,
}

/// A pipeline or deploy run on the forge (a workflow run, a GitLab pipeline).
#[derive(Clone, Debug)]
pub struct Run {
    pub id: u64,
    pub sha: String,
    pub deploy: bool,
}

/// How a pull request is opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct Opening {
    pub draft: bool,
    pub fork: bool,
}

/// What a story looked at, per kind, and whether it finished.
pub struct Seen {
    upto: RefCell<BTreeMap<Kind, usize>>,
    finished: Cell<bool>,
    forge: &'static str,
}

impl Seen {
    pub fn new(forge: &'static str) -> Self {
        Self {
            upto: RefCell::default(),
            finished: Cell::new(false),
            forge,
        }
    }
}

impl Drop for Seen {
    fn drop(&mut self) {
        if !self.finished.get() && !std::thread::panicking() {
            panic!(
                "{}: a story ended without its teardown (World::finish)",
                self.forge
            );
        }
    }
}

pub trait World: Sized {
    /// `github` or `gitlab`, for messages.
    const FORGE: &'static str;
    /// The policy most stories use: one approval from a maintainer.
    const POLICY: &'static str;
    /// Where the forge's policy file lives.
    const POLICY_FILE: &'static str;
    /// Who the audit names for a deploy's end (the forge's CI).
    const CI_ACTOR: &'static str;
    /// What the forge calls a pull request.
    const PR_NOUN: &'static str;
    /// The repository's path (`owner/name`), as the store knows it.
    const REPO_PATH: &'static str;
    /// What a deploy run is called (the card says it failed).
    const DEPLOY_RUN_NOUN: &'static str;
    /// How the forge shows a release check that waits (for approval, or its turn in the
    /// queue): GitHub keeps the check run `in_progress`, GitLab the status `pending`.
    const WAITING: State;

    async fn start_on(db: TestDb, policy: Option<&str>) -> Self;

    async fn start(policy: Option<&str>) -> Self {
        Self::start_on(TestDb::sqlite().await, policy).await
    }

    fn seen(&self) -> &Seen;
    fn store(&self) -> &Store;
    fn engine(&self) -> &Engine;
    /// The release's time, which the story moves instead of waiting.
    fn clock(&self) -> &TestClock;

    // --- the forge's state ---------------------------------------------------------------
    fn grant(&self, who: &str, perm: Perm);
    fn add_to_team(&self, team: &str, who: &str);
    fn set_policy(&self, text: &str);

    // --- webhooks (each changes the fake as the forge would, then gives the hook) ---------
    fn opened_as(&self, pr: u64, sha: &str, author: &str, how: Opening) -> Hook;
    fn ready_for_review(&self, pr: u64, sha: &str, author: &str) -> Hook;
    /// New commits: the head of `pr` is now `sha`.
    fn pushed(&self, pr: u64, sha: &str, author: &str) -> Hook;
    fn reopened(&self, pr: u64, sha: &str, author: &str) -> Hook;
    fn closed(&self, pr: u64, sha: &str, author: &str) -> Hook;
    fn commented(&self, pr: u64, id: u64, who: &str, body: &str) -> Hook;
    fn comment_edited(&self, pr: u64, id: u64, who: &str, body: &str) -> Hook;
    /// A comment by a bot account (with admin rights).
    fn bot_commented(&self, pr: u64, id: u64, body: &str) -> Hook;
    /// A push to a branch of the repository (not a pull request's).
    fn branch_pushed(&self, branch: &str, before: &str, after: &str) -> Hook;
    /// `run` is now in `state` (running, passed, failed).
    fn run_reported(&self, run: &Run, state: State) -> Hook;

    /// The hooks the forge sends as a deploy run finishes in `state`.
    fn deploy_finished(&self, run: &Run, state: State) -> Vec<Hook>;

    /// Every pipeline run started for `pr`, oldest first.
    fn pipeline_runs(&self, pr: u64) -> Vec<Run>;
    /// Every deploy run started for `sha`, oldest first.
    fn deploy_runs_of(&self, sha: &str) -> Vec<Run>;

    /// The latest pipeline run started for `pr`.
    fn pipeline_run(&self, pr: u64) -> Run {
        self.pipeline_runs(pr)
            .pop()
            .expect("a pipeline run of the pull request")
    }

    /// The latest deploy run.
    fn deploy_run(&self) -> Run;

    /// The forge now says `run` is in `state`, but sends no webhook (what the reconciler
    /// finds when it asks).
    fn run_is_now(&self, run: &Run, state: State);
    /// The next start of a deploy run fails (502) and is not carried out.
    fn fail_next_deploy_start(&self);
    /// The next start of a pipeline is carried out, but its answer is lost.
    fn lose_next_pipeline_start_answer(&self);
    /// The next read of the policy file is answered 429 with `Retry-After: 1`.
    fn rate_limit_next_policy_read(&self);
    /// Whether `call` reads the policy file.
    fn is_policy_read(call: &Call) -> bool;
    /// Whether Greenlight looked for a deploy run it might have started (before starting one
    /// again).
    fn looked_for_deploy_run(&self) -> bool;

    async fn deliver(&self, hook: &Hook, delivery: &str) -> u16;
    /// Delivers under a fresh delivery id and waits until every job has finished.
    async fn send(&self, hook: Hook) -> u16;
    async fn settle(&self);
    async fn dead(&self) -> Vec<String>;
    async fn stop(self);
    /// The URL of `path` on Greenlight's server (`/metrics`, ...).
    fn url(&self, path: &str) -> String;

    /// Stops without the strict teardown, for a driver that asserts its own invariants (the
    /// fault round: its injected failures are writes no story looks at one by one).
    async fn stop_unchecked(self) {
        self.seen().finished.set(true);
        self.stop().await;
    }

    // --- what the fake holds (raw: not marking anything as looked at) ---------------------
    fn raw_writes(&self) -> Vec<(Kind, String)>;
    /// Every call the fake received, in order.
    fn raw_calls(&self) -> Vec<Call>;
    fn calls_count(&self) -> usize {
        self.raw_calls().len()
    }
    fn raw_check_history(&self, name: &str, sha: &str) -> Vec<State>;
    /// How many instances of a check there are on `sha` (check runs; GitLab status objects).
    fn raw_checks_count(&self, name: &str, sha: &str) -> usize;
    /// What the check says (GitHub: title and summary; GitLab: description).
    fn raw_check_text(&self, name: &str, sha: &str) -> String;
    /// The check's one-line title (GitHub: the output title; GitLab: the description).
    fn raw_check_title(&self, name: &str, sha: &str) -> String;
    fn raw_cards(&self) -> Vec<(u64, String)>;
    fn raw_replies(&self) -> Vec<String>;
    /// (comment id, reaction) with GitHub's names (`eyes`, `-1`).
    fn raw_reactions(&self) -> Vec<(u64, String)>;
    /// The commits of the deploys started, in order (GitHub: deployments; GitLab: deploy
    /// pipelines).
    fn raw_deploys(&self) -> Vec<String>;
    /// What the forge was told of the deploys of `sha`, in order (GitHub: the deployment's
    /// statuses; GitLab: the release status from the deploy's start on).
    fn raw_deploy_reports(&self, sha: &str) -> Vec<State>;
    /// How many deploy runs were started (GitHub: `deploy.yml` dispatches).
    fn raw_deploy_runs(&self) -> usize;
    /// Where people see a run (the card and statuses link it).
    fn run_url(&self, run: &Run) -> String;
    /// How many candidate pipelines were started.
    fn raw_pipelines(&self) -> usize;
    /// How many times the policy file was read.
    fn policy_reads(&self) -> usize {
        self.raw_calls()
            .iter()
            .filter(|c| Self::is_policy_read(c))
            .count()
    }
    /// Whether Greenlight asked the forge if `who` is in `team`.
    fn asked_team(&self, team: &str, who: &str) -> bool;

    // --- provided: verbs --------------------------------------------------------------------
    async fn open(&self, pr: u64, sha: &str, author: &str) -> u16 {
        self.send(self.opened_as(pr, sha, author, Opening::default()))
            .await
    }

    async fn push(&self, pr: u64, sha: &str, author: &str) -> u16 {
        self.send(self.pushed(pr, sha, author)).await
    }

    /// Comments on `pr` as `who`; the delivery is accepted.
    async fn comment(&self, pr: u64, id: u64, who: &str, body: &str) {
        assert_eq!(self.send(self.commented(pr, id, who, body)).await, 202);
    }

    async fn report(&self, run: &Run, state: State) {
        self.send(self.run_reported(run, state)).await;
    }

    /// The pipeline of `pr` runs and passes.
    async fn pipeline_passes(&self, pr: u64) {
        let run = self.pipeline_run(pr);
        self.report(&run, State::Running).await;
        self.report(&run, State::Passed).await;
    }

    /// The latest deploy run finishes (passes or fails).
    async fn deploy_finishes(&self, state: State) {
        let run = self.deploy_run();
        for hook in self.deploy_finished(&run, state) {
            self.send(hook).await;
        }
    }

    /// Opens `pr` at `sha` by `author`, its pipeline passes, and the release is ready: the
    /// pipeline check passed, one more pipeline was started, the card says so.
    async fn ready(&self, pr: u64, sha: &str, author: &str) {
        let before = self.raw_pipelines();
        assert_eq!(self.open(pr, sha, author).await, 202);
        self.pipeline_passes(pr).await;
        assert_eq!(self.pipelines(), before + 1, "{}", Self::FORGE);
        assert_eq!(self.check("greenlight/pipeline", sha), Some(State::Passed));
        let card = self.card_of(pr);
        assert!(card.contains("Ready to release"), "{card}");
    }

    // --- provided: observations (each marks its kind as looked at) ------------------------
    fn look(&self, kind: Kind) {
        let n = self.raw_writes().len();
        self.seen().upto.borrow_mut().insert(kind, n);
    }

    /// Every write so far, by kind (looks at all of them).
    fn writes(&self) -> Vec<Kind> {
        for kind in Kind::ALL {
            self.look(kind);
        }
        self.raw_writes().into_iter().map(|(k, _)| k).collect()
    }

    /// The kinds of the writes after the first `n` (looks at all of them).
    fn writes_since(&self, n: usize) -> Vec<Kind> {
        self.writes()[n..].to_vec()
    }

    fn writes_count(&self) -> usize {
        self.raw_writes().len()
    }

    /// The latest state of a check on `sha`.
    fn check(&self, name: &str, sha: &str) -> Option<State> {
        self.check_history(name, sha).last().copied()
    }

    /// Every state a check went through on `sha`, all of its instances, oldest first.
    fn check_history(&self, name: &str, sha: &str) -> Vec<State> {
        self.look(Kind::Check);
        self.raw_check_history(name, sha)
    }

    /// How many instances of a check there are on `sha` (a new attempt makes a new one).
    fn checks_count(&self, name: &str, sha: &str) -> usize {
        self.look(Kind::Check);
        self.raw_checks_count(name, sha)
    }

    fn check_text(&self, name: &str, sha: &str) -> String {
        self.look(Kind::Check);
        self.raw_check_text(name, sha)
    }

    fn check_title(&self, name: &str, sha: &str) -> String {
        self.look(Kind::Check);
        self.raw_check_title(name, sha)
    }

    /// The release card (of the only or first pull request).
    fn card(&self) -> String {
        self.look(Kind::Card);
        self.raw_cards()
            .into_iter()
            .next()
            .map(|(_, c)| c)
            .expect("a release card")
    }

    fn card_of(&self, pr: u64) -> String {
        self.look(Kind::Card);
        self.raw_cards()
            .into_iter()
            .find(|(n, _)| *n == pr)
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("a release card on #{pr}"))
    }

    fn has_card(&self) -> bool {
        self.look(Kind::Card);
        !self.raw_cards().is_empty()
    }

    /// Replies as people read them, oldest first.
    fn replies(&self) -> Vec<String> {
        self.look(Kind::Reply);
        self.raw_replies()
    }

    /// The one reply posted so far.
    fn only_reply(&self) -> String {
        let replies = self.replies();
        assert_eq!(replies.len(), 1, "{}: {replies:#?}", Self::FORGE);
        replies[0].clone()
    }

    fn last_reply(&self) -> String {
        self.replies().pop().expect("a reply")
    }

    fn reactions(&self) -> Vec<(u64, String)> {
        self.look(Kind::Reaction);
        self.raw_reactions()
    }

    fn deploys(&self) -> Vec<String> {
        self.look(Kind::Deploy);
        self.raw_deploys()
    }

    fn deploy_reports(&self, sha: &str) -> Vec<State> {
        self.look(Kind::Deploy);
        self.look(Kind::Check);
        self.raw_deploy_reports(sha)
    }

    fn deploy_runs(&self) -> usize {
        self.look(Kind::Deploy);
        self.raw_deploy_runs()
    }

    fn pipelines(&self) -> usize {
        self.look(Kind::Pipeline);
        self.raw_pipelines()
    }

    /// Nothing was deployed.
    fn nothing_deployed(&self) {
        assert!(
            self.deploys().is_empty(),
            "{}: {:?}",
            Self::FORGE,
            self.deploys()
        );
        assert_eq!(self.deploy_runs(), 0, "{}: no deploy run", Self::FORGE);
    }

    /// The audit log as `actor action outcome reason`.
    async fn audit(&self) -> Vec<String> {
        let entries = self.store().audit_log(None, 100).await.expect("audit");
        entries
            .iter()
            .map(|e| format!("{} {} {} {}", e.actor, e.action, e.outcome, e.reason))
            .collect()
    }

    /// The audit log as `actor action outcome`.
    async fn audit_actions(&self) -> Vec<String> {
        let entries = self.store().audit_log(None, 100).await.expect("audit");
        entries
            .iter()
            .map(|e| format!("{} {} {}", e.actor, e.action, e.outcome))
            .collect()
    }

    /// The strict teardown: waits for the queue, stops, then fails on a dead letter, an
    /// unread reply, a write the story never looked at, or a request to the forge that did
    /// not say exactly `User-Agent: greenlight/<version>` (token minting included).
    async fn finish(self) {
        self.settle().await;
        let dead = self.dead().await;
        let agent = concat!("greenlight/", env!("CARGO_PKG_VERSION"));
        let calls = self.raw_calls();
        let anonymous: Vec<String> = calls
            .iter()
            .filter(|c| c.user_agents != [agent])
            .map(|c| format!("{} {} {:?}", c.method, c.path, c.user_agents))
            .collect();
        let upto = self.seen().upto.borrow().clone();
        let unconsumed: Vec<(Kind, String)> = self
            .raw_writes()
            .into_iter()
            .enumerate()
            .filter(|(i, (kind, _))| *i >= upto.get(kind).copied().unwrap_or(0))
            .map(|(_, w)| w)
            .collect();
        let unread: Vec<&String> = unconsumed
            .iter()
            .filter(|(k, _)| *k == Kind::Reply)
            .map(|(_, w)| w)
            .collect();
        let unread = format!("{unread:#?}");
        let no_reply = !unconsumed.iter().any(|(k, _)| *k == Kind::Reply);
        self.seen().finished.set(true);
        self.stop().await;
        let forge = Self::FORGE;
        assert!(dead.is_empty(), "{forge}: dead letters: {dead:#?}");
        assert!(!calls.is_empty(), "{forge}: the story called the forge");
        assert!(
            anonymous.is_empty(),
            "{forge}: requests without `User-Agent: {agent}` alone: {anonymous:#?}"
        );
        assert!(
            no_reply,
            "{forge}: replies the story did not expect: {unread}"
        );
        assert!(
            unconsumed.is_empty(),
            "{forge}: forge writes the story never looked at: {unconsumed:#?}"
        );
    }
}
