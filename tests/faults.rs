//! Forge faults: many pull requests through the whole flow (opened → pipeline → card →
//! approved → deployed) while a seeded share of GitHub calls fails — 500, 502, answers slower
//! than the client's timeout, secondary rate limits and 429s with `Retry-After`, an exhausted
//! primary limit, and connection resets before and after GitHub acted.
//!
//! Pass: every release reaches `deployed`; no check run, card, deployment, deployment status
//! or workflow dispatch is made twice for a pull request; no call reaches GitHub sooner than a
//! rate limit allowed; nothing is dead-lettered. Prints the seed (replay with `FAULT_SEED=…`),
//! calls, faults by kind, job attempts and final states.
//!
//! `FAULT_PRS` (default 5) and `FAULT_SHARE` (default 0.25) make a longer or harsher round.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fake_github::{FakeGitHub, REPO};
use common::faults::{FaultPlan, Faults, env_or, settle_within};
use common::flow::{Flow, POLICY};
use common::github_events::{comment, pull_request, workflow_run};
use common::{TestDb, fast_workers};
use greenlight::release::Stage;
use serde_json::Value;

/// The client gives up on a call after this long in this test (10 s in production).
const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);

/// How late a "slow" answer comes.
const SLOW_ANSWER: Duration = Duration::from_millis(750);

/// How long the whole flow may take to settle after each step, per pull request.
const SETTLE_PER_PR: Duration = Duration::from_secs(12);

fn sha_of(pr: u64) -> String {
    format!("{pr:07x}{}", "c".repeat(33))
}

/// Dispatched runs of `workflow` for `sha`, from the fake's record of dispatch inputs.
fn runs_for(gh: &FakeGitHub, workflow: &str, sha: &str) -> Vec<u64> {
    gh.with(|m| {
        m.run_inputs
            .iter()
            .filter(|(_, (file, inputs, _))| file == workflow && inputs["sha"] == sha)
            .map(|(id, _)| *id)
            .collect()
    })
}

/// Waits until no job is queued or running; on time-out, fails with what is still going on.
async fn settle(flow: &Flow, faults: &Faults, prs: u64) {
    let within = SETTLE_PER_PR * u32::try_from(prs.max(5)).expect("a few pull requests");
    settle_within(&flow.store, faults.plan().seed, within).await;
}

fn dispatches_for(gh: &FakeGitHub, workflow: &str, sha: &str) -> usize {
    gh.dispatches()
        .iter()
        .filter(|(file, body)| file == workflow && body["inputs"]["sha"] == sha)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_reaches_its_end_despite_forge_faults() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let prs: u64 = env_or("FAULT_PRS", 5);
    let share: f64 = env_or("FAULT_SHARE", 0.25);
    // The backends run side by side: the rounds mostly wait (time-outs, rate limits).
    let mut rounds = Vec::new();
    for db in TestDb::all().await {
        let plan = FaultPlan::from_env(share, SLOW_ANSWER);
        println!(
            "[{}] {prs} pull requests, {:.0}% of GitHub calls failing, seed {} (replay: FAULT_SEED={})",
            db.label,
            share * 100.0,
            plan.seed,
            plan.seed
        );
        let (gh, faults) = FakeGitHub::start_with_faults(Some(POLICY), plan).await;
        rounds.push(tokio::spawn(run_round(db, gh, faults, prs)));
    }
    for round in rounds {
        round.await.expect("round");
    }
}

async fn run_round(db: TestDb, gh: FakeGitHub, faults: Arc<Faults>, prs: u64) {
    let label = db.label;
    let seed = faults.plan().seed;
    gh.set_permission("mona", "maintain");
    for pr in 1..=prs {
        gh.set_pull(pr, &sha_of(pr), "octocat", "open");
    }
    let mut workers = fast_workers(2);
    workers.max_attempts = 60;
    // Backoff doubles per attempt: from 2 ms, an unlucky job's twelfth retry still comes
    // within seconds.
    workers.retry_base = Duration::from_millis(2);
    let flow = Flow::start_with(db, gh.clone(), workers, CLIENT_TIMEOUT).await;
    let started = std::time::Instant::now();

    // Opened: a pipeline check and a dispatch each.
    for pr in 1..=prs {
        let status = flow
            .deliver(
                "pull_request",
                &format!("open-{pr}"),
                &pull_request("opened", pr, &sha_of(pr), "octocat"),
            )
            .await;
        assert_eq!(status, 202);
    }
    settle(&flow, &faults, prs).await;

    // The pipelines run and pass.
    for pr in 1..=prs {
        let sha = sha_of(pr);
        for run in runs_for(&gh, "ci.yml", &sha) {
            for (action, conclusion) in [("in_progress", None), ("completed", Some("success"))] {
                flow.deliver(
                    "workflow_run",
                    &format!("ci-{run}-{action}"),
                    &workflow_run(action, run, "ci.yml", &sha, conclusion),
                )
                .await;
            }
        }
    }
    settle(&flow, &faults, prs).await;

    // Approved: the deploys queue up, one at a time per environment.
    for pr in 1..=prs {
        flow.deliver(
            "issue_comment",
            &format!("approve-{pr}"),
            &comment("created", pr, 9000 + pr, "mona", "/approve-release"),
        )
        .await;
    }
    settle(&flow, &faults, prs).await;

    // Each deploy finishes; the next one starts.
    let mut finished = Vec::new();
    for _ in 0..=prs {
        let mut progressed = false;
        for pr in 1..=prs {
            let sha = sha_of(pr);
            for run in runs_for(&gh, "deploy.yml", &sha) {
                if finished.contains(&run) {
                    continue;
                }
                finished.push(run);
                progressed = true;
                flow.deliver(
                    "workflow_run",
                    &format!("deploy-{run}"),
                    &workflow_run("completed", run, "deploy.yml", &sha, Some("success")),
                )
                .await;
            }
        }
        if !progressed {
            break;
        }
        settle(&flow, &faults, prs).await;
    }
    let elapsed = started.elapsed();

    // Figures.
    let report = faults.report();
    let deliveries = flow
        .store
        .list_deliveries(10_000, false)
        .await
        .expect("list");
    let attempts: u32 = deliveries.iter().map(|d| d.attempts).sum();
    let most = deliveries.iter().map(|d| d.attempts).max().unwrap_or(0);
    let mut stages: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for pr in 1..=prs {
        let sha = sha_of(pr);
        let releases = flow
            .store
            .releases_of_pull("github", REPO, pr)
            .await
            .expect("releases");
        for r in &releases {
            *stages.entry(r.stage.as_str()).or_default() += 1;
        }
        if releases.len() != 1 || releases[0].stage != Stage::Deployed {
            problems.push(format!(
                "#{pr}: not deployed: {:?}",
                releases
                    .iter()
                    .map(|r| (r.stage.as_str(), r.detail.clone()))
                    .collect::<Vec<_>>()
            ));
        }
        for name in ["greenlight/pipeline", "greenlight/release"] {
            let n = gh.check(name, &sha).len();
            if n != 1 {
                problems.push(format!("#{pr}: {n} {name} check runs"));
            }
        }
        for workflow in ["ci.yml", "deploy.yml"] {
            let n = dispatches_for(&gh, workflow, &sha);
            if n != 1 {
                problems.push(format!("#{pr}: {n} dispatches of {workflow}"));
            }
        }
        let deployments: Vec<Value> = gh
            .deployments()
            .into_iter()
            .filter(|d| d["ref"] == sha)
            .collect();
        if deployments.len() != 1 {
            problems.push(format!("#{pr}: {} deployments", deployments.len()));
        }
        for d in &deployments {
            let id = d["id"].as_u64().expect("id");
            let states: Vec<String> = gh.with(|m| {
                m.deployment_statuses
                    .iter()
                    .filter(|(dep, _)| *dep == id)
                    .map(|(_, s)| s["state"].as_str().unwrap_or("").to_owned())
                    .collect()
            });
            let successes = states.iter().filter(|s| *s == "success").count();
            let in_progress = states.iter().filter(|s| *s == "in_progress").count();
            if successes != 1
                || in_progress > 1
                || states.last().map(String::as_str) != Some("success")
            {
                problems.push(format!("#{pr}: deployment statuses {states:?}"));
            }
        }
        let cards: Vec<String> = gh.with(|m| {
            m.comments
                .values()
                .filter(|(n, body)| *n == pr && body.contains("<!-- greenlight:card"))
                .map(|(_, body)| body.clone())
                .collect()
        });
        if cards.len() != 1 {
            problems.push(format!("#{pr}: {} cards", cards.len()));
        } else if !cards[0].contains("Deployed") {
            problems.push(format!(
                "#{pr}: the card does not say deployed:\n{}",
                cards[0]
            ));
        }
        let others = gh.with(|m| {
            m.comments
                .values()
                .filter(|(n, body)| *n == pr && !body.contains("<!-- greenlight:card"))
                .count()
        });
        if others != 0 {
            problems.push(format!("#{pr}: {others} unexpected replies"));
        }
    }
    let violations = faults.rate_limit_violations();
    let dead = flow.dead().await;
    println!(
        "[{label}] {report}\n[{label}] {} deliveries, {attempts} job attempts ({} retries, at most {most} for one), {} dead; final states {stages:?}; {} rate-limit violations; {:.1}s",
        deliveries.len(),
        attempts.saturating_sub(deliveries.len() as u32),
        dead.len(),
        violations.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        problems.is_empty() && violations.is_empty() && dead.is_empty(),
        "[{label}] seed {seed}:\n{}\nrate limits not respected:\n{}\ndead letters:\n{}",
        problems.join("\n"),
        violations.join("\n"),
        dead.join("\n")
    );
    flow.stop().await;
}

// Regression tests for what the random rounds found, each fault placed by hand.

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn repo_path(rest: &str) -> String {
    format!("/repos/{REPO}/{rest}")
}

/// Opens `pr` at `sha` and lets its pipeline pass.
async fn ready(flow: &Flow, pr: u64, sha: &str) {
    flow.gh.set_pull(pr, sha, "octocat", "open");
    flow.send("pull_request", pull_request("opened", pr, sha, "octocat"))
        .await;
    let run = *runs_for(&flow.gh, "ci.yml", sha).last().expect("a ci run");
    flow.send(
        "workflow_run",
        workflow_run("in_progress", run, "ci.yml", sha, None),
    )
    .await;
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", sha, Some("success")),
    )
    .await;
}

async fn deploy_finishes(flow: &Flow, sha: &str) {
    let run = *runs_for(&flow.gh, "deploy.yml", sha)
        .last()
        .expect("a deploy run");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "deploy.yml", sha, Some("success")),
    )
    .await;
}

async fn stage_of(flow: &Flow, pr: u64) -> Stage {
    flow.store
        .releases_of_pull("github", REPO, pr)
        .await
        .expect("releases")
        .last()
        .expect("a release")
        .stage
}

#[tokio::test]
async fn a_pipeline_dispatch_whose_answer_was_lost_is_not_made_twice() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh
        .lose_next_answer("POST", &repo_path("actions/workflows/ci.yml"));
    ready(&flow, 7, A).await;
    assert_eq!(dispatches_for(&flow.gh, "ci.yml", A), 1, "one pipeline run");
    assert_eq!(stage_of(&flow, 7).await, Stage::Ready);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_deploy_dispatch_that_failed_is_made_again() {
    // A 500 before GitHub acted: the deploy must still start (it used to stay "deploying").
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A).await;
    flow.gh.fail_next(
        "POST",
        &repo_path("actions/workflows/deploy.yml"),
        wiremock::ResponseTemplate::new(500),
    );
    flow.send(
        "issue_comment",
        comment("created", 7, 5001, "mona", "/approve-release"),
    )
    .await;
    assert_eq!(dispatches_for(&flow.gh, "deploy.yml", A), 1);
    deploy_finishes(&flow, A).await;
    assert_eq!(stage_of(&flow, 7).await, Stage::Deployed);
    assert_eq!(flow.gh.deployment_states(), vec!["in_progress", "success"]);
    flow.stop().await;
}

#[tokio::test]
async fn a_job_failing_after_the_pipeline_passed_still_posts_the_card() {
    // The outcome is saved, then creating the release check fails: the retry must finish the
    // job (it used to find nothing to change and leave no check and no card).
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let run = runs_for(&flow.gh, "ci.yml", A)[0];
    flow.gh.fail_next(
        "POST",
        &repo_path("check-runs"),
        wiremock::ResponseTemplate::new(500),
    );
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", A, Some("success")),
    )
    .await;
    assert_eq!(flow.gh.check("greenlight/release", A).len(), 1);
    let card = flow.gh.card().expect("a card");
    assert!(card.contains("Ready to release"), "{card}");
    flow.stop().await;
}

#[tokio::test]
async fn a_job_failing_after_a_deploy_finished_still_frees_the_environment() {
    // The deploy's success is saved, then updating the release check fails (past the in-call
    // retries): the retry must free the environment and start the next release.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A).await;
    ready(&flow, 8, B).await;
    flow.send(
        "issue_comment",
        comment("created", 7, 5001, "mona", "/approve-release"),
    )
    .await;
    flow.send(
        "issue_comment",
        comment("created", 8, 5002, "mona", "/approve-release"),
    )
    .await;
    assert_eq!(stage_of(&flow, 8).await, Stage::Queued);
    for _ in 0..3 {
        flow.gh.fail_next(
            "PATCH",
            &repo_path("check-runs/"),
            wiremock::ResponseTemplate::new(502),
        );
    }
    deploy_finishes(&flow, A).await;
    assert_eq!(stage_of(&flow, 7).await, Stage::Deployed);
    assert_eq!(
        stage_of(&flow, 8).await,
        Stage::Deploying,
        "the next deploy started"
    );
    assert_eq!(dispatches_for(&flow.gh, "deploy.yml", B), 1);
    assert!(flow.gh.card().is_some());
    flow.stop().await;
}

#[tokio::test]
async fn a_deployment_status_whose_answer_was_lost_is_not_posted_twice() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A).await;
    flow.send(
        "issue_comment",
        comment("created", 7, 5001, "mona", "/approve-release"),
    )
    .await;
    flow.gh.lose_next_answer("POST", &repo_path("deployments/"));
    deploy_finishes(&flow, A).await;
    assert_eq!(flow.gh.deployment_states(), vec!["in_progress", "success"]);
    assert_eq!(stage_of(&flow, 7).await, Stage::Deployed);
    flow.stop().await;
}

#[tokio::test]
async fn a_rate_limit_holds_back_every_job_of_the_installation() {
    // Job 1 is told to wait a second; job 2 (another pull request) must not call GitHub for
    // the installation in that second either.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.gh.set_pull(8, B, "octocat", "open");
    flow.gh.fail_next(
        "GET",
        &repo_path("contents/"),
        wiremock::ResponseTemplate::new(429).insert_header("retry-after", "1"),
    );
    flow.deliver(
        "pull_request",
        "open-7",
        &pull_request("opened", 7, A, "octocat"),
    )
    .await;
    flow.deliver(
        "pull_request",
        "open-8",
        &pull_request("opened", 8, B, "octocat"),
    )
    .await;
    flow.settle().await;
    let calls = flow.gh.calls();
    let limited = calls
        .iter()
        .position(|c| c.method == "GET" && c.path.starts_with(&repo_path("contents/")))
        .expect("the policy was fetched");
    let at = calls[limited].at;
    let too_soon: Vec<String> = calls[limited + 1..]
        .iter()
        .filter(|c| c.at < at + Duration::from_secs(1))
        .map(|c| format!("{} {} after {:?}", c.method, c.path, c.at - at))
        .collect();
    assert!(
        too_soon.is_empty(),
        "called while rate limited: {too_soon:#?}"
    );
    assert_eq!(dispatches_for(&flow.gh, "ci.yml", A), 1);
    assert_eq!(dispatches_for(&flow.gh, "ci.yml", B), 1);
    flow.stop().await;
}

#[tokio::test]
async fn a_rate_limit_on_the_installation_token_is_honoured_too() {
    // octocrab mints the token inside the call; its 429 must hold the job back like any other.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    let tokens = "/app/installations/4242/access_tokens";
    flow.gh.fail_next(
        "POST",
        tokens,
        wiremock::ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(serde_json::json!({ "message": "Too Many Requests" })),
    );
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let calls = flow.gh.calls();
    let at = calls[0].at;
    assert_eq!(calls[0].path, tokens);
    let too_soon: Vec<String> = calls[1..]
        .iter()
        .filter(|c| c.at < at + Duration::from_secs(1))
        .map(|c| format!("{} {} after {:?}", c.method, c.path, c.at - at))
        .collect();
    assert!(
        too_soon.is_empty(),
        "called while rate limited: {too_soon:#?}"
    );
    assert_eq!(dispatches_for(&flow.gh, "ci.yml", A), 1);
    flow.stop().await;
}
