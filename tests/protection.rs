//! Greenlight as the GitHub Environment's custom deployment protection rule, and the watch on
//! deployments that slipped past it: real router, real workers, real octocrab, GitHub faked
//! over HTTP with its documented gate (one review per pending gate, 422 after).

mod common;

use common::TestDb;
use common::fake_github::{BOT_ID, BOT_LOGIN, REPO};
use common::flow::{Flow, POLICY};
use common::github_events::{
    comment, deployment_created, deployment_protection_rule, deployment_status, pull_request, push,
    workflow_run,
};
use serde_json::Value;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MAIN: &str = "9049f1265b7d61be4a8904a9a27120d2064dab3b";

/// Pull request 7 at `A`, pipeline passed, approved by mona: its deploy run is dispatched and
/// the release deploys. Returns the deploy run's id.
async fn deploying(flow: &Flow) -> u64 {
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let ci = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", ci, "ci.yml", A, Some("success")),
    )
    .await;
    flow.send(
        "issue_comment",
        comment("created", 7, 5001, "mona", "/approve-release"),
    )
    .await;
    assert_eq!(
        flow.gh.dispatches().len(),
        2,
        "pipeline and deploy dispatched"
    );
    flow.gh.last_run("deploy.yml")
}

/// The job of `run` reaches production, made by `creator`, and GitHub asks Greenlight.
async fn gate(flow: &Flow, run: u64, creator: (&str, u64)) -> Value {
    let d = flow.gh.job_reaches_environment(run, "production", creator);
    flow.send(
        "deployment_protection_rule",
        deployment_protection_rule(run, "production", "workflow_dispatch", &d),
    )
    .await;
    d
}

fn review_comments(flow: &Flow) -> Vec<String> {
    flow.gh.with(|m| {
        m.gate_reviews
            .iter()
            .map(|(_, b)| b["comment"].as_str().unwrap_or("").to_owned())
            .collect()
    })
}

async fn audit(flow: &Flow, action: &str) -> Vec<greenlight::store::AuditEntry> {
    let log = flow.store.audit_log(None, 1000).await.expect("audit");
    log.into_iter().filter(|e| e.action == action).collect()
}

/// `greenlight_unapproved_deployments_total{forge="github"}` as `/metrics` says it.
async fn unapproved_metric(flow: &Flow) -> String {
    let text = reqwest::get(flow.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    text.lines()
        .find(|l| l.starts_with("greenlight_unapproved_deployments_total{forge=\"github\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("absent")
        .to_owned()
}

#[tokio::test]
async fn a_deployment_greenlight_started_is_approved_exactly_once() {
    for db in TestDb::all().await {
        let flow = Flow::start_on(db, Some(POLICY)).await;
        let run = deploying(&flow).await;
        gate(&flow, run, (BOT_LOGIN, BOT_ID)).await;
        assert_eq!(flow.gh.gate_reviews(), vec![(run, "approved".to_owned())]);
        assert_eq!(flow.gh.gate_review_calls(), 1);
        let comments = review_comments(&flow);
        assert!(
            comments[0].contains("approved #7 at aaaaaaa"),
            "{comments:?}"
        );
        let body = flow.gh.with(|m| m.gate_reviews[0].1.clone());
        assert_eq!(body["environment_name"], "production");
        let entries = audit(&flow, "environment_gate").await;
        assert_eq!(entries.len(), 1, "{entries:#?}");
        assert_eq!(
            (entries[0].outcome.as_str(), entries[0].pr),
            ("approved", 7)
        );
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn a_hand_dispatched_run_is_rejected() {
    let flow = Flow::start(Some(POLICY)).await;
    // Even while a release of Greenlight's deploys, another run is not it.
    let ours = deploying(&flow).await;
    let hand = ours + 1000;
    gate(&flow, hand, ("mallory", 666)).await;
    assert_eq!(flow.gh.gate_reviews(), vec![(hand, "rejected".to_owned())]);
    let comments = review_comments(&flow);
    assert!(
        comments[0].contains("did not start this deployment")
            && comments[0].contains("/approve-release"),
        "{comments:?}"
    );
    // Greenlight's own run, re-run by hand: the job's deployment is made by who re-ran it.
    gate(&flow, ours, ("mallory", 666)).await;
    assert_eq!(flow.gh.gate_reviews()[1], (ours, "rejected".to_owned()));
    assert!(review_comments(&flow)[1].contains("started by mallory"));
    let entries = audit(&flow, "environment_gate").await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert!(entries.iter().all(|e| e.outcome == "rejected"));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_freeze_pushed_between_approval_and_gate_rejects() {
    let flow = Flow::start(Some(POLICY)).await;
    let run = deploying(&flow).await;
    flow.gh.set_policy(&POLICY.replace(
        "environment = \"production\"",
        "environment = \"production\"\nfrozen = true\nfreeze_reason = \"incident 42\"",
    ));
    flow.send(
        "push",
        push("main", MAIN, "c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffe"),
    )
    .await;
    gate(&flow, run, (BOT_LOGIN, BOT_ID)).await;
    assert_eq!(flow.gh.gate_reviews(), vec![(run, "rejected".to_owned())]);
    let comments = review_comments(&flow);
    assert!(comments[0].contains("frozen: incident 42"), "{comments:?}");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_lost_answer_gives_one_review() {
    for db in TestDb::all().await {
        let flow = Flow::start_on(db, Some(POLICY)).await;
        let run = deploying(&flow).await;
        // GitHub takes the review, the answer never arrives: the job retries.
        flow.gh.lose_next_answer(
            "POST",
            &format!("/repos/{REPO}/actions/runs/{run}/deployment_protection_rule"),
        );
        gate(&flow, run, (BOT_LOGIN, BOT_ID)).await;
        assert_eq!(
            flow.gh.gate_review_calls(),
            2,
            "asked again after the lost answer"
        );
        assert_eq!(flow.gh.gate_reviews(), vec![(run, "approved".to_owned())]);
        assert_eq!(audit(&flow, "environment_gate").await.len(), 1);
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn a_redelivered_webhook_gives_one_review() {
    let flow = Flow::start(Some(POLICY)).await;
    let run = deploying(&flow).await;
    let d = gate(&flow, run, (BOT_LOGIN, BOT_ID)).await;
    // The same event again, under another delivery id (a redelivery from the App's settings).
    flow.send(
        "deployment_protection_rule",
        deployment_protection_rule(run, "production", "workflow_dispatch", &d),
    )
    .await;
    assert_eq!(flow.gh.gate_reviews(), vec![(run, "approved".to_owned())]);
    assert_eq!(
        flow.gh.gate_review_calls(),
        1,
        "answered once, not asked again"
    );
    assert_eq!(audit(&flow, "environment_gate").await.len(), 1);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_hand_made_deployment_is_audited_once_and_counted() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    assert_eq!(unapproved_metric(&flow).await, "0");
    let hand = flow
        .gh
        .job_reaches_environment(31_337, "production", ("mallory", 666));
    flow.send("deployment", deployment_created(&hand)).await;
    flow.send("deployment_status", deployment_status(&hand, "in_progress"))
        .await;
    flow.send("deployment_status", deployment_status(&hand, "success"))
        .await;
    // Not a governed environment: nothing to say.
    let elsewhere = flow
        .gh
        .job_reaches_environment(31_338, "preview", ("mallory", 666));
    flow.send("deployment", deployment_created(&elsewhere))
        .await;

    let entries = audit(&flow, "unapproved_deployment").await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].actor, "mallory (666)");
    assert_eq!(entries[0].sha, MAIN);
    assert!(entries[0].reason.contains("production"), "{:?}", entries[0]);
    assert_eq!(unapproved_metric(&flow).await, "1");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn greenlights_own_deployments_are_not_reported() {
    let flow = Flow::start(Some(POLICY)).await;
    let run = deploying(&flow).await;
    // The deployment Greenlight created, and the one GitHub made for the job of its run.
    let created = flow.gh.deployments()[0].clone();
    assert_eq!(created["creator"]["id"], BOT_ID);
    let job = gate(&flow, run, (BOT_LOGIN, BOT_ID)).await;
    for d in [&created, &job] {
        flow.send("deployment", deployment_created(d)).await;
        flow.send("deployment_status", deployment_status(d, "success"))
            .await;
    }
    assert!(audit(&flow, "unapproved_deployment").await.is_empty());
    assert_eq!(unapproved_metric(&flow).await, "0");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}
