//! The GitHub release flow end to end: real router, real workers, real octocrab, GitHub faked
//! over HTTP. Each scenario asserts the exact requests Greenlight made and what people see.

mod common;

use common::fake_github::{FakeGitHub, REPO};
use common::flow::{Flow, POLICY};
use common::github_events::{comment, pull_request, workflow_run};
use serde_json::{Value, json};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

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
async fn happy_path_from_pull_request_to_production() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;

    let (status, conclusion) = check_state(&flow.gh, "greenlight/pipeline", A);
    assert_eq!(
        (status.as_str(), conclusion.as_str()),
        ("completed", "success")
    );
    let ready_card = card(&flow.gh);
    assert!(ready_card.contains("Ready to release"), "{ready_card}");
    assert!(
        ready_card.contains("/approve-release aaaaaaa"),
        "{ready_card}"
    );
    assert!(
        ready_card.contains(&format!("https://github.com/{REPO}/actions/runs/")),
        "{ready_card}"
    );

    say(&flow, 7, 5001, "mona", "LGTM\n\n/approve-release aaaaaaa").await;
    assert!(card(&flow.gh).contains("Deploying"), "{}", card(&flow.gh));
    deploy_finishes(&flow, A, "success").await;

    assert_eq!(
        writes(&flow.gh),
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
            // /approve-release: 👀, approved, deployment, in progress, deploy dispatch, card
            "POST /issues/comments/:id/reactions",
            "PATCH /check-runs/:id",
            "POST /deployments",
            "POST /deployments/:id/statuses",
            "POST /actions/workflows/deploy.yml/dispatches",
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
    assert_eq!(flow.gh.reactions(), vec![(5001, "eyes".to_owned())]);
    let (status, conclusion) = check_state(&flow.gh, "greenlight/release", A);
    assert_eq!(
        (status.as_str(), conclusion.as_str()),
        ("completed", "success")
    );
    let final_card = card(&flow.gh);
    assert!(
        final_card.contains("Deployed") && final_card.contains("@mona"),
        "{final_card}"
    );
    assert_eq!(
        flow.gh.comments().len(),
        1,
        "the card is edited in place, nothing else is posted"
    );

    let audit = flow.store.audit_log(Some(REPO), 100).await.expect("audit");
    let actions: Vec<_> = audit
        .iter()
        .map(|e| format!("{} {} {}", e.actor, e.action, e.outcome))
        .collect();
    assert_eq!(
        actions,
        vec![
            "mona approve accepted",
            "mona queue ok",
            "mona deploy_start ok",
            "github-actions deploy_end deployed"
        ]
    );
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
