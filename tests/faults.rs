//! GitHub forge faults: the fault round (`tests/common/fault_round.rs`, one driver for both
//! forges) on GitHub — five pull requests through the whole flow while a seeded share of
//! GitHub calls fails: 500, 502, answers slower than the client's timeout, secondary rate
//! limits and 429s with `Retry-After`, an exhausted primary limit, and connection resets
//! before and after GitHub acted — then a regression test for each bug the rounds found.
//!
//! `FAULT_PRS` (default 5) and `FAULT_SHARE` (default 0.25) make a longer or harsher round.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, REPO};
use common::fault_round;
use common::flow::{Flow, POLICY};
use common::github_events::{comment, pull_request, workflow_run};
use common::world_github::GitHubWorld;
use greenlight::release::Stage;

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

fn dispatches_for(gh: &FakeGitHub, workflow: &str, sha: &str) -> usize {
    gh.dispatches()
        .iter()
        .filter(|(file, body)| file == workflow && body["inputs"]["sha"] == sha)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_reaches_its_end_despite_forge_faults() {
    fault_round::every_release_reaches_its_end::<GitHubWorld>().await;
}

// Regression tests for what the random rounds found, each fault placed by hand. Those that
// both forges share are stories (`tests/stories.rs`): a pipeline start whose answer was lost,
// a rate limit holding back every job of the forge account.

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
