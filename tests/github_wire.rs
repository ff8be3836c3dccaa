//! GitHub's wire shapes: real router, real workers, real octocrab, GitHub faked over HTTP. The
//! release stories themselves are told once for both forges in `tests/stories.rs`; this file
//! keeps what only GitHub has: the exact requests and their bodies (dispatch inputs,
//! deployment payloads, deployment statuses, check-run output), GitHub's own events (the
//! Re-run button, deleted comments, dispatches without run details) and GitHub's failure
//! answers.

mod common;

use common::fake_github::{FakeGitHub, REPO};
use common::flow::{APP_ID, Flow, POLICY};
use common::github_events::{check_rerun, check_suite_rerun, comment, pull_request, workflow_run};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// `METHOD /path` of every write, numeric ids replaced by `:id`, repository prefix dropped.
fn writes(gh: &FakeGitHub) -> Vec<String> {
    gh.writes()
        .iter()
        .map(|c| format!("{} {}", c.method, normalise(&c.path)))
        .collect()
}

fn normalise(path: &str) -> String {
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

/// Bodies of the writes to paths ending like `suffix` (after normalising).
fn bodies(gh: &FakeGitHub, method: &str, suffix: &str) -> Vec<Value> {
    gh.writes()
        .into_iter()
        .filter(|c| c.method == method && normalise(&c.path).ends_with(suffix))
        .map(|c| c.body)
        .collect()
}

/// Opens pull request `pr` at `sha` by `author` and lets its pipeline pass.
async fn ready(flow: &Flow, pr: u64, sha: &str, author: &str) -> u64 {
    flow.gh.set_pull(pr, sha, author, "open");
    assert_eq!(
        flow.send("pull_request", pull_request("opened", pr, sha, author))
            .await,
        202
    );
    let run = flow.gh.last_run("ci.yml");
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
    run
}

/// Comments on `pr` as `author`.
async fn say(flow: &Flow, pr: u64, id: u64, author: &str, body: &str) {
    assert_eq!(
        flow.send("issue_comment", comment("created", pr, id, author, body))
            .await,
        202
    );
}

/// Lets the latest deploy run finish with `conclusion`.
async fn deploy_finishes(flow: &Flow, sha: &str, conclusion: &str) {
    let run = flow.gh.last_run("deploy.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "deploy.yml", sha, Some(conclusion)),
    )
    .await;
}

fn check_state(gh: &FakeGitHub, name: &str, sha: &str) -> (String, String) {
    let checks = gh.check(name, sha);
    assert_eq!(checks.len(), 1, "one {name} check on {sha}: {checks:#?}");
    let c = &checks[0];
    (
        c["status"].as_str().unwrap_or("").into(),
        c["conclusion"].as_str().unwrap_or("").into(),
    )
}

fn card(gh: &FakeGitHub) -> String {
    gh.card().expect("a release card")
}

#[tokio::test]
async fn the_release_requests_in_order_with_their_bodies() {
    // The story (tests/stories.rs `happy_path_from_pull_request_to_production`) on the wire.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "LGTM\n\n/approve-release aaaaaaa").await;
    deploy_finishes(&flow, A, "success").await;

    // The deployment's "in progress" and the deploy dispatch go out side by side: either
    // may reach GitHub first.
    let mut writes = writes(&flow.gh);
    let started = writes
        .iter()
        .position(|w| w == "POST /deployments")
        .expect("a deployment")
        + 1;
    writes[started..started + 2].sort();
    assert_eq!(
        writes,
        vec![
            // opened: the pipeline check, then the dispatch on the default branch
            "POST /check-runs",
            "POST /actions/workflows/ci.yml/dispatches",
            // in progress
            "PATCH /check-runs/:id",
            // passed: pipeline check done, release check awaiting approval, the card
            "PATCH /check-runs/:id",
            "POST /check-runs",
            "POST /issues/:id/comments",
            // /approve-release: 👀, deployment, in progress, deploy dispatch, deploying, card
            "POST /issues/comments/:id/reactions",
            "POST /deployments",
            "POST /actions/workflows/deploy.yml/dispatches",
            "POST /deployments/:id/statuses",
            "PATCH /check-runs/:id",
            "PATCH /issues/comments/:id",
            // deploy passed: deployment status, release check, card
            "POST /deployments/:id/statuses",
            "PATCH /check-runs/:id",
            "PATCH /issues/comments/:id",
        ]
    );
    let dispatches = flow.gh.dispatches();
    assert_eq!(dispatches[0].0, "ci.yml");
    assert_eq!(
        dispatches[0].1,
        json!({ "ref": "main", "inputs": { "sha": A, "pr": "7" }, "return_run_details": true })
    );
    let deployment = &bodies(&flow.gh, "POST", "/deployments")[0];
    assert_eq!(deployment["ref"], A);
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["auto_merge"], false);
    assert_eq!(deployment["required_contexts"], json!([]));
    assert_eq!(
        deployment["payload"],
        json!({ "pr": 7, "approvers": ["mona"] })
    );
    let deployment_id = flow.gh.deployments()[0]["id"].as_u64().expect("id");
    assert_eq!(dispatches[1].0, "deploy.yml");
    assert_eq!(
        dispatches[1].1,
        json!({
            "ref": "main",
            "inputs": { "sha": A, "environment": "production", "deployment_id": deployment_id.to_string() },
            "return_run_details": true,
        })
    );
    assert_eq!(flow.gh.deployment_states(), vec!["in_progress", "success"]);
    let statuses = bodies(&flow.gh, "POST", "/statuses");
    assert_eq!(
        statuses[1]["log_url"],
        format!(
            "https://github.com/{REPO}/actions/runs/{}",
            flow.gh.last_run("deploy.yml")
        )
    );
    let (status, conclusion) = check_state(&flow.gh, "greenlight/release", A);
    assert_eq!(
        (status.as_str(), conclusion.as_str()),
        ("completed", "success")
    );
    // The audit of the repository by its full name.
    let audit = flow.store.audit_log(Some(REPO), 100).await.expect("audit");
    assert_eq!(audit.len(), 4, "{audit:#?}");
    let tokens = flow
        .gh
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/access_tokens"))
        .count();
    assert_eq!(
        tokens, 1,
        "the installation token is minted once and reused"
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn permissions_are_asked_per_person_from_the_collaborator_api() {
    // The story `people_below_the_permission_cannot_approve` on the wire.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("reader", "read");
    flow.gh.set_permission("writer", "write");
    ready(&flow, 7, A, "octocat").await;
    let before = flow.gh.writes().len();
    say(&flow, 7, 5001, "writer", "/approve-release").await;
    say(&flow, 7, 5002, "reader", "/approve-release").await;
    // Each comment's one reply comes last, gathering its commands' answers.
    assert_eq!(
        writes(&flow.gh)[before..].to_vec(),
        vec![
            "POST /issues/comments/:id/reactions",
            "POST /issues/comments/:id/reactions",
            "POST /issues/:id/comments",
            "POST /issues/comments/:id/reactions",
            "POST /issues/comments/:id/reactions",
            "POST /issues/:id/comments",
        ]
    );
    let perms: Vec<_> = flow
        .gh
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/permission"))
        .map(|c| c.path)
        .collect();
    assert_eq!(
        perms,
        vec![
            format!("/repos/{REPO}/collaborators/writer/permission"),
            format!("/repos/{REPO}/collaborators/reader/permission"),
        ]
    );
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn a_retry_dispatches_the_pipeline_again_with_the_same_inputs() {
    // The story `pipeline_failure_then_retry` on the wire.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let first = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", first, "ci.yml", A, Some("failure")),
    )
    .await;
    assert_eq!(
        check_state(&flow.gh, "greenlight/pipeline", A),
        ("completed".into(), "failure".into())
    );
    say(&flow, 7, 5002, "octocat", "/retry").await;
    let dispatches: Vec<_> = flow
        .gh
        .dispatches()
        .into_iter()
        .filter(|(f, _)| f == "ci.yml")
        .collect();
    assert_eq!(dispatches.len(), 2);
    assert_eq!(dispatches[1].1["inputs"], json!({ "sha": A, "pr": "7" }));
    let checks = flow.gh.check("greenlight/pipeline", A);
    assert_eq!(checks.len(), 2, "a new check run for the new attempt");
    assert_eq!(checks[1]["status"], "queued");
    flow.stop().await;
}

#[tokio::test]
async fn the_rerun_button_dispatches_again() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", A, Some("failure")),
    )
    .await;
    assert_eq!(flow.gh.dispatches().len(), 1);
    flow.send("check_run", check_rerun("greenlight/pipeline", A))
        .await;
    assert_eq!(
        flow.gh.dispatches().len(),
        2,
        "the Re-run button dispatches again"
    );
    flow.stop().await;
}

#[tokio::test]
async fn re_run_all_checks_dispatches_the_pipeline_again_once() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", A, Some("failure")),
    )
    .await;
    assert_eq!(flow.gh.dispatches().len(), 1);
    // Another App's suite on the same commit (another CI's "Re-run all checks") is not ours.
    assert_eq!(
        flow.send("check_suite", check_suite_rerun(A, APP_ID + 1, 7))
            .await,
        202
    );
    assert_eq!(flow.gh.dispatches().len(), 1, "another App's suite");
    let rerun = check_suite_rerun(A, APP_ID, 7);
    assert_eq!(flow.deliver("check_suite", "suite-1", &rerun).await, 202);
    flow.settle().await;
    // GitHub's redelivery of the same delivery (same `X-GitHub-Delivery`).
    assert_eq!(flow.deliver("check_suite", "suite-1", &rerun).await, 200);
    flow.settle().await;
    let dispatches: Vec<_> = flow
        .gh
        .dispatches()
        .into_iter()
        .filter(|(f, _)| f == "ci.yml")
        .collect();
    assert_eq!(dispatches.len(), 2, "dispatched again, once");
    assert_eq!(dispatches[1].1["inputs"], json!({ "sha": A, "pr": "7" }));
    let checks = flow.gh.check("greenlight/pipeline", A);
    assert_eq!(checks.len(), 2, "a new check run for the new attempt");
    assert_eq!(checks[1]["status"], "queued");
    flow.stop().await;
}

#[tokio::test]
async fn deleted_comments_never_act() {
    // The story `edited_comments_and_bots_never_act`, for GitHub's `deleted` action.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    let before = flow.gh.calls().len();
    assert_eq!(
        flow.send(
            "issue_comment",
            comment("deleted", 7, 5001, "mona", "/approve-release")
        )
        .await,
        202
    );
    assert_eq!(flow.gh.calls().len(), before, "not a single call to GitHub");
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn an_invalid_policy_is_annotated_on_its_line() {
    // The story `an_invalid_policy_posts_a_failing_config_check_and_nothing_else` on the wire.
    let broken = format!("{POLICY}min_permision = \"write\"\n");
    let flow = Flow::start(Some(&broken)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    assert_eq!(writes(&flow.gh), vec!["POST /check-runs"]);
    let check = &flow.gh.check("greenlight/config", A)[0];
    assert_eq!(check["conclusion"], "failure");
    assert_eq!(
        check["output"]["title"],
        "Invalid Greenlight policy: .github/greenlight.toml line 12"
    );
    let annotation = &check["output"]["annotations"][0];
    assert_eq!(annotation["path"], ".github/greenlight.toml");
    assert_eq!(annotation["start_line"], 12);
    assert!(
        annotation["message"]
            .as_str()
            .unwrap_or("")
            .contains("min_permision"),
        "{annotation}"
    );
    flow.stop().await;
}

#[tokio::test]
async fn a_github_outage_and_a_rate_limit_are_retried_without_duplicates() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    // Three 500s: more than the in-call retries, so the job itself is retried later.
    for _ in 0..3 {
        flow.gh.fail_next(
            "POST",
            &format!("/repos/{REPO}/check-runs"),
            ResponseTemplate::new(500),
        );
    }
    // Then the dispatch hits the rate limit, with the reset time given.
    let reset = chrono::Utc::now().timestamp() + 1;
    flow.gh.fail_next(
        "POST",
        &format!("/repos/{REPO}/actions/workflows"),
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
            .set_body_json(json!({ "message": "API rate limit exceeded" })),
    );
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;

    assert_eq!(
        flow.gh.check("greenlight/pipeline", A).len(),
        1,
        "one check run despite the retries"
    );
    assert_eq!(
        flow.gh.dispatches().len(),
        1,
        "one dispatch despite the rate limit"
    );
    let attempts: Vec<_> = flow
        .gh
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/check-runs"))
        .collect();
    assert_eq!(attempts.len(), 4, "3 failures then success");
    let (state, tries) = flow
        .store
        .delivery_state(1)
        .await
        .expect("state")
        .expect("row");
    assert_eq!(state, greenlight::store::DeliveryState::Done);
    assert!(
        tries >= 2,
        "the job was rescheduled, not retried in a loop: {tries}"
    );
    assert!(flow.dead().await.is_empty());
    flow.stop().await;
}

#[tokio::test]
async fn runs_are_matched_by_title_when_the_dispatch_returns_no_run_id() {
    // Older GitHub Enterprise Server answers a dispatch with 204 and no run details.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.with(|m| m.no_run_details = true);
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    // A run of the same workflow for another commit is not ours.
    flow.send(
        "workflow_run",
        workflow_run("completed", 77, "ci.yml", B, Some("success")),
    )
    .await;
    assert_eq!(check_state(&flow.gh, "greenlight/pipeline", A).0, "queued");
    // A run of another workflow carrying our SHA is not ours either.
    flow.send(
        "workflow_run",
        workflow_run("completed", 78, "lint.yml", A, Some("success")),
    )
    .await;
    assert_eq!(check_state(&flow.gh, "greenlight/pipeline", A).0, "queued");
    // Ours: the pipeline workflow, our SHA in the title, created after the dispatch.
    flow.send(
        "workflow_run",
        workflow_run("in_progress", 79, "ci.yml", A, None),
    )
    .await;
    let check = &flow.gh.check("greenlight/pipeline", A)[0];
    assert_eq!(check["status"], "in_progress");
    assert_eq!(
        check["details_url"],
        format!("https://github.com/{REPO}/actions/runs/79")
    );
    flow.send(
        "workflow_run",
        workflow_run("completed", 79, "ci.yml", A, Some("success")),
    )
    .await;
    assert!(card(&flow.gh).contains("Ready to release"));
    flow.stop().await;
}

#[tokio::test]
async fn the_deployment_payload_names_every_approver_in_order() {
    // The story `approvals_accumulate_from_distinct_people` on the wire.
    let flow = Flow::start(Some(&POLICY.replace("required = 1", "required = 2"))).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_permission("hubot", "admin");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    nothing_deployed(&flow.gh);
    say(&flow, 7, 5003, "hubot", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 1);
    assert_eq!(
        flow.gh.deployments()[0]["payload"]["approvers"],
        json!(["mona", "hubot"])
    );
    flow.stop().await;
}

#[tokio::test]
async fn lost_answers_from_github_never_duplicate_an_effect() {
    // GitHub carries out each of these creations but the answer never arrives (a 502 from a
    // proxy): the job is retried, and must find what it created instead of creating it again.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    for path in [
        "check-runs",
        "issues/7/comments",
        "deployments",
        "actions/workflows/deploy.yml",
    ] {
        flow.gh
            .lose_next_answer("POST", &format!("/repos/{REPO}/{path}"));
    }
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    say(&flow, 7, 5002, "mona", "/deploy").await;
    flow.gh
        .lose_next_answer("POST", &format!("/repos/{REPO}/issues/7/comments"));
    say(&flow, 7, 5003, "mona", "/help").await;
    deploy_finishes(&flow, A, "success").await;

    assert_eq!(flow.gh.check("greenlight/pipeline", A).len(), 1);
    assert_eq!(flow.gh.check("greenlight/release", A).len(), 1);
    assert_eq!(flow.gh.deployments().len(), 1);
    assert_eq!(
        flow.gh
            .dispatches()
            .iter()
            .filter(|(f, _)| f == "deploy.yml")
            .count(),
        1,
        "one deploy"
    );
    let comments = flow.gh.comments();
    assert_eq!(comments.len(), 3, "the card and two replies: {comments:#?}");
    assert!(
        comments.iter().all(|(_, b)| b.contains("<!-- greenlight:")),
        "each carries its marker"
    );
    assert!(card(&flow.gh).contains("Deployed"), "{}", card(&flow.gh));
    assert_eq!(
        flow.gh.deployment_states().last().map(String::as_str),
        Some("success")
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

/// Nothing was deployed: no deployment, no deploy dispatch.
fn nothing_deployed(gh: &FakeGitHub) {
    assert!(gh.deployments().is_empty(), "{:#?}", gh.deployments());
    assert!(
        gh.dispatches().iter().all(|(f, _)| f != "deploy.yml"),
        "{:#?}",
        gh.dispatches()
    );
}
