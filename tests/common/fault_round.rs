//! The fault round, one driver for both forges: a few pull requests through the whole flow
//! (opened → pipeline → card → approved → deployed, one deploy at a time) while a seeded share
//! of the forge's calls fails (see [`super::faults`]), told through the [`World`].
//!
//! Pass: every release reaches `deployed`; no check, pipeline, deploy, deploy report or card
//! is made twice for a pull request, and no reply is posted; no call reaches the forge sooner
//! than a rate limit allowed; nothing is dead-lettered. Prints the seed (replay with
//! `FAULT_SEED=…`), calls, faults by kind, job attempts and final states.
//!
//! `FAULT_PRS` and `FAULT_SHARE` (default 0.25) make a longer or harsher round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use greenlight::release::Stage;
use greenlight::worker::WorkerConfig;

use super::faults::{FaultPlan, Faults, LimitStyle, env_or, settle_within};
use super::world::{Opening, Perm, State, World};
use super::world_github::GitHubWorld;
use super::world_gitlab::GitLabWorld;
use super::{TestDb, fast_workers};

/// The client gives up on a call after this long in the round (10 s in production).
pub const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);

/// How late a "slow" answer comes.
pub const SLOW_ANSWER: Duration = Duration::from_millis(750);

/// How long the whole flow may take to settle after each step, per pull request.
const SETTLE_PER_PR: Duration = Duration::from_secs(12);

/// A forge the round can drive.
pub trait Round: World {
    /// The forge's name in the round's output.
    const NAME: &'static str;
    /// How the forge answers a rate limit.
    const STYLE: LimitStyle;
    /// How many pull requests a round takes by default (`FAULT_PRS`).
    const DEFAULT_PRS: u64;
    /// How people refer to pull request `n` (`#7`, `!7`).
    const MARK: char;

    async fn start_faulty(
        db: TestDb,
        plan: FaultPlan,
        workers: WorkerConfig,
        timeout: Duration,
    ) -> (Self, Arc<Faults>);
}

impl Round for GitHubWorld {
    const NAME: &'static str = "GitHub";
    const STYLE: LimitStyle = LimitStyle::GitHub;
    const DEFAULT_PRS: u64 = 5;
    const MARK: char = '#';

    async fn start_faulty(
        db: TestDb,
        plan: FaultPlan,
        workers: WorkerConfig,
        timeout: Duration,
    ) -> (Self, Arc<Faults>) {
        GitHubWorld::start_faulty(db, plan, workers, timeout).await
    }
}

impl Round for GitLabWorld {
    const NAME: &'static str = "GitLab";
    const STYLE: LimitStyle = LimitStyle::GitLab;
    const DEFAULT_PRS: u64 = 4;
    const MARK: char = '!';

    async fn start_faulty(
        db: TestDb,
        plan: FaultPlan,
        workers: WorkerConfig,
        timeout: Duration,
    ) -> (Self, Arc<Faults>) {
        GitLabWorld::start_faulty(db, plan, workers, timeout).await
    }
}

pub fn sha_of(pr: u64) -> String {
    format!("{pr:07x}{}", "c".repeat(33))
}

/// One round on every backend (SQLite, and PostgreSQL with `TEST_DATABASE_URL`), side by side:
/// the rounds mostly wait (time-outs, rate limits).
pub async fn every_release_reaches_its_end<W: Round>() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let prs: u64 = env_or("FAULT_PRS", W::DEFAULT_PRS);
    let share: f64 = env_or("FAULT_SHARE", 0.25);
    let mut dbs = TestDb::all().await.into_iter();
    let first = dbs.next().expect("SQLite");
    let second = dbs.next();
    tokio::join!(run::<W>(first, prs, share), async {
        if let Some(db) = second {
            run::<W>(db, prs, share).await;
        }
    });
}

async fn run<W: Round>(db: TestDb, prs: u64, share: f64) {
    let label = db.label;
    let mark = W::MARK;
    let plan = FaultPlan::from_env_for(W::STYLE, share, SLOW_ANSWER);
    let seed = plan.seed;
    println!(
        "[{label}] {prs} {}s, {:.0}% of {} calls failing, seed {seed} (replay: FAULT_SEED={seed})",
        W::PR_NOUN,
        share * 100.0,
        W::NAME,
    );
    let mut workers = fast_workers(2);
    workers.max_attempts = 60;
    // Backoff doubles per attempt: from 2 ms, an unlucky job's twelfth retry still comes
    // within seconds.
    workers.retry_base = Duration::from_millis(2);
    let (w, faults) = W::start_faulty(db, plan, workers, CLIENT_TIMEOUT).await;
    w.grant("mona", Perm::Maintain);
    let within = SETTLE_PER_PR * u32::try_from(prs.max(W::DEFAULT_PRS)).expect("a few");
    let settle = || settle_within(w.store(), seed, within);
    let started = std::time::Instant::now();

    // Opened: a pipeline check and a pipeline each.
    for pr in 1..=prs {
        let hook = w.opened_as(pr, &sha_of(pr), "octocat", Opening::default());
        assert_eq!(w.deliver(&hook, &format!("open-{pr}")).await, 202);
    }
    settle().await;

    // The pipelines run and pass.
    for pr in 1..=prs {
        for run in w.pipeline_runs(pr) {
            for state in [State::Running, State::Passed] {
                let hook = w.run_reported(&run, state);
                w.deliver(&hook, &format!("ci-{}-{state:?}", run.id)).await;
            }
        }
    }
    settle().await;

    // Approved: the deploys queue up, one at a time per environment.
    for pr in 1..=prs {
        let body = format!("/approve-release {}", &sha_of(pr)[..7]);
        let hook = w.commented(pr, 9000 + pr, "mona", &body);
        w.deliver(&hook, &format!("approve-{pr}")).await;
    }
    settle().await;

    // Each deploy finishes; the next one starts.
    let mut finished = Vec::new();
    for _ in 0..=prs {
        let mut progressed = false;
        for pr in 1..=prs {
            for run in w.deploy_runs_of(&sha_of(pr)) {
                if finished.contains(&run.id) {
                    continue;
                }
                finished.push(run.id);
                progressed = true;
                for (i, hook) in w.deploy_finished(&run, State::Passed).iter().enumerate() {
                    w.deliver(hook, &format!("deploy-{}-{i}", run.id)).await;
                }
            }
        }
        if !progressed {
            break;
        }
        settle().await;
    }
    let elapsed = started.elapsed();

    // Figures.
    let report = faults.report();
    let deliveries = w
        .store()
        .list_deliveries(10_000, false)
        .await
        .expect("list");
    let attempts: u32 = deliveries.iter().map(|d| d.attempts).sum();
    let most = deliveries.iter().map(|d| d.attempts).max().unwrap_or(0);
    let mut stages: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for pr in 1..=prs {
        let sha = sha_of(pr);
        let releases = w
            .store()
            .releases_of_pull(W::FORGE, W::REPO_PATH, pr)
            .await
            .expect("releases");
        for r in &releases {
            *stages.entry(r.stage.as_str()).or_default() += 1;
        }
        if releases.len() != 1 || releases[0].stage != Stage::Deployed {
            problems.push(format!(
                "{mark}{pr}: not deployed: {:?}",
                releases
                    .iter()
                    .map(|r| (r.stage.as_str(), r.detail.clone()))
                    .collect::<Vec<_>>()
            ));
        }
        for name in ["greenlight/pipeline", "greenlight/release"] {
            let n = w.raw_checks_count(name, &sha);
            let history = w.raw_check_history(name, &sha);
            if n != 1 || history.last() != Some(&State::Passed) {
                problems.push(format!(
                    "{mark}{pr}: {n} {name} checks, history {history:?}"
                ));
            }
        }
        let builds = w.pipeline_runs(pr).len();
        if builds != 1 {
            problems.push(format!("{mark}{pr}: {builds} pipelines"));
        }
        let runs = w.deploy_runs_of(&sha).len();
        if runs != 1 {
            problems.push(format!("{mark}{pr}: {runs} deploy runs"));
        }
        let deploys = w.raw_deploys().iter().filter(|d| **d == sha).count();
        if deploys != 1 {
            problems.push(format!("{mark}{pr}: {deploys} deploys"));
        }
        let reports = w.raw_deploy_reports(&sha);
        let count = |s: State| reports.iter().filter(|r| **r == s).count();
        if count(State::Passed) != 1
            || count(State::Running) > 1
            || reports.last() != Some(&State::Passed)
        {
            problems.push(format!("{mark}{pr}: deploy reports {reports:?}"));
        }
        let cards: Vec<String> = w
            .raw_cards()
            .into_iter()
            .filter(|(n, _)| *n == pr)
            .map(|(_, c)| c)
            .collect();
        if cards.len() != 1 {
            problems.push(format!("{mark}{pr}: {} cards", cards.len()));
        } else if !cards[0].contains("Deployed") {
            problems.push(format!(
                "{mark}{pr}: the card does not say deployed:\n{}",
                cards[0]
            ));
        }
    }
    let replies = w.raw_replies();
    if !replies.is_empty() {
        problems.push(format!(
            "{} unexpected replies: {replies:#?}",
            replies.len()
        ));
    }
    let violations = faults.rate_limit_violations();
    let dead = w.dead().await;
    println!(
        "[{label}] {report}\n[{label}] {} deliveries, {attempts} job attempts ({} retries, at most {most} for one), {} dead; final states {stages:?}; {} rate-limit violations; {:.1}s",
        deliveries.len(),
        attempts.saturating_sub(deliveries.len() as u32),
        dead.len(),
        violations.len(),
        elapsed.as_secs_f64()
    );
    w.stop_unchecked().await;
    assert!(
        problems.is_empty() && violations.is_empty() && dead.is_empty(),
        "[{label}] seed {seed}:\n{}\nrate limits not respected:\n{}\ndead letters:\n{}",
        problems.join("\n"),
        violations.join("\n"),
        dead.join("\n")
    );
}
