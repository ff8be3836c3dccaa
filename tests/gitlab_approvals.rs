//! Greenlight as GitLab's deployment approver (protected environments with approval rules):
//! the blocked deployment of the deploy pipeline Greenlight started for the release it
//! deploys is approved once, and its job started; every other blocked deployment of the
//! governed environment is rejected with a comment saying how to deploy, and audited as
//! `unapproved_deployment`. Real router, workers, client; GitLab faked over HTTP as its API
//! documents (tests/common/fake_gitlab_approvals.rs).

mod common;

use std::time::Duration;

use common::TestDb;
use common::fake_gitlab::MAIN_SHA;
use common::flow_gitlab::{GitLabFlow, POLICY};
use common::gitlab_events::{merge_request, push};
use greenlight::engine::reconcile::reconcile_once;
use serde_json::{Value, json};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";
const PUSH: &str = "Push Hook";

const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");
/// The fake's token user (Greenlight's own).
const BOT: (u64, &str) = (42, "project_15_bot_0f1e2d3c");

/// A Greenlight approving deployments, with "Allow pipeline triggerer to approve deployment"
/// on (the README's setup: Greenlight triggers the deploy pipelines it approves).
async fn approver(db: TestDb, policy: &str) -> GitLabFlow {
    let flow = GitLabFlow::start_approver_on(db, Some(policy)).await;
    flow.gl.with(|m| m.allow_triggerer_approval = true);
    flow
}

/// Merge request 7 at `A`, its pipeline passed and Mona's `/approve-release`: Greenlight's
/// deploy pipeline, returned.
async fn approved_release(flow: &GitLabFlow) -> Value {
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
        .await;
    let p = flow.gl.last_pipeline("feature-7");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
    let note = flow.gl.note_hook(7, 5001, MONA, "/approve-release aaaaaaa");
    assert_eq!(flow.send(NOTE, note).await, 202);
    flow.gl.deploys().pop().expect("a deploy pipeline")
}

async fn audit(flow: &GitLabFlow, action: &str) -> Vec<greenlight::store::AuditEntry> {
    let log = flow.store.audit_log(None, 1000).await.expect("audit");
    log.into_iter().filter(|e| e.action == action).collect()
}

/// A pipeline someone ran on main (`source` web), by `user`, with `variables`.
fn hand_pipeline(flow: &GitLabFlow, id: u64, variables: Value) {
    flow.gl.with(|m| {
        m.pipelines.insert(
            id,
            json!({ "id": id, "ref": "main", "sha": MAIN_SHA, "status": "manual",
                    "source": "web", "jobs": "manual", "variables": variables,
                    "web_url": format!("https://gitlab.example.com/acme/widgets/-/pipelines/{id}"),
                    "created_at": chrono::Utc::now().to_rfc3339() }),
        );
    });
}

#[tokio::test]
async fn greenlights_own_blocked_deploy_is_approved_once() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = approver(db, POLICY).await;
        let deploy = approved_release(&flow).await;
        let pipeline = deploy["id"].as_u64().expect("id");
        let (id, hook) = flow.gl.block_deploy(pipeline, 950, BOT, "production");
        assert_eq!(flow.send(PIPELINE, hook.clone()).await, 202, "{label}");

        let reviews = flow.gl.reviews();
        assert_eq!(reviews.len(), 1, "{label}: {reviews:#?}");
        assert_eq!((reviews[0].0, reviews[0].1.as_str()), (id, "approved"));
        assert!(reviews[0].2.contains("!7"), "{label}: {}", reviews[0].2);
        assert_eq!(flow.gl.played(), vec![950], "{label}");
        let d = flow.gl.deployment(id);
        assert_eq!(d["status"], "created", "{label}");
        assert_eq!(d["deployable"]["status"], "pending", "{label}");
        let gate = audit(&flow, "environment_gate").await;
        assert_eq!(gate.len(), 1, "{label}: {gate:#?}");
        assert_eq!((gate[0].outcome.as_str(), gate[0].pr), ("approved", 7));

        // The hook again, and a reconciler pass: nothing more is posted.
        assert_eq!(flow.send(PIPELINE, hook).await, 202, "{label}");
        reconcile_once(&flow.engine, Duration::ZERO)
            .await
            .expect("reconcile");
        flow.settle().await;
        assert_eq!(flow.gl.reviews().len(), 1, "{label}");
        assert_eq!(flow.gl.played(), vec![950], "{label}");
        assert!(audit(&flow, "unapproved_deployment").await.is_empty());
        assert!(flow.dead().await.is_empty(), "{label}");
        flow.stop().await;
    }
}

#[tokio::test]
async fn the_reconciler_reviews_a_blocked_deploy_whose_hook_was_lost() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = approver(db, POLICY).await;
        let deploy = approved_release(&flow).await;
        let pipeline = deploy["id"].as_u64().expect("id");
        let (id, _lost) = flow.gl.block_deploy(pipeline, 951, BOT, "production");
        for _ in 0..2 {
            reconcile_once(&flow.engine, Duration::ZERO)
                .await
                .expect("reconcile");
            flow.settle().await;
        }
        let reviews = flow.gl.reviews();
        assert_eq!(reviews.len(), 1, "{label}: {reviews:#?}");
        assert_eq!((reviews[0].0, reviews[0].1.as_str()), (id, "approved"));
        assert_eq!(flow.gl.played(), vec![951], "{label}");
        assert!(flow.dead().await.is_empty(), "{label}");
        flow.stop().await;
    }
}

/// Each row: who triggered the hand-made pipeline, and its variables.
type HandCase = (&'static str, (u64, &'static str), Value);

#[tokio::test]
async fn a_hand_started_blocked_deploy_is_rejected_and_audited() {
    let cases: Vec<HandCase> = vec![
        // Mona runs main with GREENLIGHT_SHA set to the approved commit by hand.
        (
            "GREENLIGHT_SHA by hand",
            MONA,
            json!([{ "key": "GREENLIGHT_SHA", "value": A }]),
        ),
        // Mona runs main with no variables at all.
        ("another user", MONA, json!([])),
        // A pipeline made with Greenlight's token that Greenlight did not start (a schedule,
        // someone holding the token): not recorded with any release.
        (
            "not started by Greenlight",
            BOT,
            json!([{ "key": "GREENLIGHT_SHA", "value": A }]),
        ),
    ];
    for (what, who, variables) in cases {
        for db in TestDb::all().await {
            let label = format!("{what}/{}", db.label);
            let flow = approver(db, POLICY).await;
            let deploy = approved_release(&flow).await;
            hand_pipeline(&flow, 700, variables.clone());
            let (id, hook) = flow.gl.block_deploy(700, 960, who, "production");
            assert_eq!(flow.send(PIPELINE, hook).await, 202, "{label}");

            let reviews = flow.gl.reviews();
            assert_eq!(reviews.len(), 1, "{label}: {reviews:#?}");
            assert_eq!((reviews[0].0, reviews[0].1.as_str()), (id, "rejected"));
            assert!(
                reviews[0].2.contains("/approve-release"),
                "{label}: {}",
                reviews[0].2
            );
            assert!(flow.gl.played().is_empty(), "{label}");
            assert_eq!(
                flow.gl.deployment(id)["deployable"]["failure_reason"],
                "deployment_rejected"
            );
            let entries = audit(&flow, "unapproved_deployment").await;
            assert_eq!(entries.len(), 1, "{label}: {entries:#?}");
            assert_eq!(entries[0].outcome, "rejected", "{label}");
            assert_eq!(
                entries[0].actor,
                format!("{} ({})", who.1, who.0),
                "{label}"
            );

            // Greenlight's own deploy, blocked next, is still approved.
            let own = deploy["id"].as_u64().expect("id");
            let (own_id, hook) = flow.gl.block_deploy(own, 961, BOT, "production");
            flow.send(PIPELINE, hook).await;
            let approved: Vec<_> = flow
                .gl
                .reviews()
                .into_iter()
                .filter(|r| r.1 == "approved")
                .collect();
            assert_eq!(approved.len(), 1, "{label}: {approved:#?}");
            assert_eq!(approved[0].0, own_id, "{label}");
            assert_eq!(flow.gl.played(), vec![961], "{label}");
            assert!(flow.dead().await.is_empty(), "{label}");
            flow.stop().await;
        }
    }
}

#[tokio::test]
async fn a_freeze_pushed_between_approval_and_block_rejects() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = approver(db, POLICY).await;
        let deploy = approved_release(&flow).await;
        flow.gl.set_policy(&POLICY.replace(
            "environment = \"production\"",
            "environment = \"production\"\nfrozen = true\nfreeze_reason = \"incident 42\"",
        ));
        flow.send(PUSH, push("main", MAIN_SHA, MAIN_SHA)).await;
        let pipeline = deploy["id"].as_u64().expect("id");
        let (id, hook) = flow.gl.block_deploy(pipeline, 970, BOT, "production");
        assert_eq!(flow.send(PIPELINE, hook).await, 202, "{label}");

        let reviews = flow.gl.reviews();
        assert_eq!(reviews.len(), 1, "{label}: {reviews:#?}");
        assert_eq!((reviews[0].0, reviews[0].1.as_str()), (id, "rejected"));
        assert!(
            reviews[0].2.contains("incident 42"),
            "{label}: {}",
            reviews[0].2
        );
        assert!(flow.gl.played().is_empty(), "{label}");
        let gate = audit(&flow, "environment_gate").await;
        assert_eq!(gate.len(), 1, "{label}: {gate:#?}");
        assert_eq!(gate[0].outcome, "rejected", "{label}");
        assert!(
            gate[0].reason.starts_with("frozen"),
            "{label}: {}",
            gate[0].reason
        );
        assert!(flow.dead().await.is_empty(), "{label}");
        flow.stop().await;
    }
}

#[tokio::test]
async fn a_lost_answer_to_the_approval_gives_one_review() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = approver(db, POLICY).await;
        let deploy = approved_release(&flow).await;
        let pipeline = deploy["id"].as_u64().expect("id");
        let (id, hook) = flow.gl.block_deploy(pipeline, 980, BOT, "production");
        // GitLab takes the approval; its answer never arrives.
        flow.gl.lose_next_answer("POST", "/deployments/");
        assert_eq!(flow.send(PIPELINE, hook.clone()).await, 202, "{label}");
        flow.send(PIPELINE, hook).await;

        let reviews = flow.gl.reviews();
        assert_eq!(reviews.len(), 1, "{label}: {reviews:#?}");
        assert_eq!(reviews[0].1, "approved", "{label}");
        let asked = flow
            .gl
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path == format!("/deployments/{id}"))
            .count();
        assert!(
            asked >= 1,
            "{label}: the deployment's approvals are read first"
        );
        assert_eq!(flow.gl.played(), vec![980], "{label}");
        assert_eq!(flow.gl.deployment(id)["deployable"]["status"], "pending");
        assert!(flow.dead().await.is_empty(), "{label}");
        flow.stop().await;
    }
}

#[tokio::test]
async fn without_the_setting_blocked_deploys_are_left_alone() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    let deploy = approved_release(&flow).await;
    let pipeline = deploy["id"].as_u64().expect("id");
    let (_, hook) = flow.gl.block_deploy(pipeline, 990, BOT, "production");
    assert_eq!(flow.send(PIPELINE, hook).await, 202);
    reconcile_once(&flow.engine, Duration::ZERO)
        .await
        .expect("reconcile");
    flow.settle().await;
    assert!(flow.gl.reviews().is_empty());
    assert!(flow.gl.played().is_empty());
    let listed = flow
        .gl
        .calls()
        .iter()
        .filter(|c| c.path.starts_with("/deployments"))
        .count();
    assert_eq!(
        listed, 0,
        "no deployment API call without GITLAB_DEPLOYMENT_APPROVALS"
    );
    flow.stop().await;
}

#[tokio::test]
async fn a_refused_approval_is_dead_lettered_naming_the_setting() {
    // "Allow pipeline triggerer to approve deployment" left off: GitLab refuses the approval
    // of the pipeline Greenlight triggered.
    let flow = GitLabFlow::start_approver_on(TestDb::sqlite().await, Some(POLICY)).await;
    let deploy = approved_release(&flow).await;
    let pipeline = deploy["id"].as_u64().expect("id");
    let (id, hook) = flow.gl.block_deploy(pipeline, 995, BOT, "production");
    assert_eq!(flow.send(PIPELINE, hook).await, 202);
    let dead = flow.dead().await;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(
        dead[0].contains("Allow pipeline triggerer to approve deployment"),
        "{}",
        dead[0]
    );
    assert!(!dead[0].contains(common::fake_gitlab::TOKEN));
    assert_eq!(flow.gl.reviews().len(), 1);
    assert_eq!(flow.gl.deployment(id)["status"], "blocked");
    assert!(flow.gl.played().is_empty());

    // The setting turned on, but a freeze pushed meanwhile; the dead letter retried: GitLab
    // took no answer, so the deployment is judged again now, and rejected.
    flow.gl.with(|m| m.allow_triggerer_approval = true);
    flow.gl.set_policy(&POLICY.replace(
        "environment = \"production\"",
        "environment = \"production\"\nfrozen = true\nfreeze_reason = \"incident 42\"",
    ));
    flow.send(PUSH, push("main", MAIN_SHA, MAIN_SHA)).await;
    let dead = flow.store.list_deliveries(10, true).await.expect("dead");
    assert!(flow.store.requeue(dead[0].id).await.expect("requeue"));
    flow.settle().await;
    let reviews = flow.gl.reviews();
    assert_eq!(reviews.len(), 2, "{reviews:#?}");
    assert_eq!(reviews[1].1, "rejected");
    assert!(flow.gl.played().is_empty());
    assert!(flow.dead().await.is_empty());
    let gate = audit(&flow, "environment_gate").await;
    let outcomes: Vec<&str> = gate.iter().map(|e| e.outcome.as_str()).collect();
    assert!(
        outcomes.contains(&"approved") && outcomes.contains(&"rejected"),
        "{gate:#?}"
    );
    flow.stop().await;
}

#[tokio::test]
async fn greenlights_deploy_job_retried_by_someone_else_is_rejected() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = approver(db, POLICY).await;
        let deploy = approved_release(&flow).await;
        let pipeline = deploy["id"].as_u64().expect("id");
        // Mona retried the job of Greenlight's pipeline: the new deployment is hers.
        let (id, hook) = flow.gl.block_deploy(pipeline, 985, MONA, "production");
        assert_eq!(flow.send(PIPELINE, hook).await, 202, "{label}");

        let reviews = flow.gl.reviews();
        assert_eq!(reviews.len(), 1, "{label}: {reviews:#?}");
        assert_eq!((reviews[0].0, reviews[0].1.as_str()), (id, "rejected"));
        assert!(reviews[0].2.contains("mona"), "{label}: {}", reviews[0].2);
        assert!(flow.gl.played().is_empty(), "{label}");
        let gate = audit(&flow, "environment_gate").await;
        assert_eq!(gate.len(), 1, "{label}: {gate:#?}");
        assert_eq!(gate[0].outcome, "rejected", "{label}");
        assert!(
            gate[0].reason.starts_with("created_by_someone_else"),
            "{label}: {}",
            gate[0].reason
        );
        assert!(flow.dead().await.is_empty(), "{label}");
        flow.stop().await;
    }
}
