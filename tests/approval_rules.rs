//! Who and what an approval counts for (issue 14 items 3 to 6 and 11, issue 24 item 2),
//! through the real flow on both forges: a vote is a person (by forge user id, whatever the
//! login), binds to the head that existed when it was written, never comes from whoever pushed
//! that head, and a queued release still answers to the policy when it leaves the queue. A
//! reopened pull request, or a force-push back to an old commit, starts from nothing.

mod common;

use common::fake_github::user_id;
use common::flow::{Flow, POLICY as GH_POLICY};
use common::flow_gitlab::{GitLabFlow, POLICY as GL_POLICY};
use common::github_events::{comment, pull_request, push as gh_push, workflow_run};
use common::gitlab_events::{merge_request, push as gl_push, user};
use common::{TestDb, fake_gitlab::MAIN_SHA};
use serde_json::{Value, json};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MAIN2: &str = "cccccccccccccccccccccccccccccccccccccccc";
const MAIN3: &str = "dddddddddddddddddddddddddddddddddddddddd";

/// GitLab people: (user id, username), as the fake instance knows them.
const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");
const DEV: (u64, &str) = (6, "dev");

const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";

fn ago(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::seconds(seconds)
}

// ---- GitHub ---------------------------------------------------------------------------------

async fn gh_pipeline_passes(flow: &Flow, sha: &str) {
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", sha, Some("success")),
    )
    .await;
}

async fn gh_ready(flow: &Flow, pr: u64, sha: &str) {
    flow.gh.set_pull(pr, sha, "octocat", "open");
    flow.send("pull_request", pull_request("opened", pr, sha, "octocat"))
        .await;
    gh_pipeline_passes(flow, sha).await;
}

async fn gh_say(flow: &Flow, pr: u64, id: u64, who: &str, body: &str) {
    flow.send("issue_comment", comment("created", pr, id, who, body))
        .await;
}

async fn gh_deploy_finishes(flow: &Flow, sha: &str) {
    let run = flow.gh.last_run("deploy.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "deploy.yml", sha, Some("success")),
    )
    .await;
}

fn gh_replies(flow: &Flow) -> Vec<String> {
    flow.gh.replies()
}

fn gh_card_of(flow: &Flow, pr: u64) -> String {
    flow.gh
        .with(|m| {
            m.comments
                .values()
                .find(|(n, b)| *n == pr && b.contains("<!-- greenlight:card"))
                .map(|(_, b)| b.clone())
        })
        .expect("a card")
}

fn gh_ci_dispatches(flow: &Flow, sha: &str) -> usize {
    flow.gh
        .dispatches()
        .iter()
        .filter(|(f, body)| f == "ci.yml" && body["inputs"]["sha"] == sha)
        .count()
}

#[tokio::test]
async fn github_one_user_under_two_logins_counts_once() {
    for db in TestDb::all().await {
        let policy = GH_POLICY.replace("required = 1", "required = 2");
        let flow = Flow::start_on(db, Some(&policy)).await;
        for login in ["mona", "mona-renamed", "dev"] {
            flow.gh.set_permission(login, "maintain");
        }
        gh_ready(&flow, 7, A).await;
        gh_say(&flow, 7, 101, "mona", "/approve-release").await;
        // Mona renames her account, then approves again: the same person, the same id.
        let mut again = comment("created", 7, 102, "mona-renamed", "/approve-release");
        again["comment"]["user"]["id"] = json!(user_id("mona"));
        again["sender"]["id"] = json!(user_id("mona"));
        flow.send("issue_comment", again).await;
        assert!(flow.gh.deployments().is_empty(), "one person is one vote");
        let replies = gh_replies(&flow);
        assert_eq!(replies.len(), 1, "{replies:#?}");
        assert!(replies[0].contains("already approved"), "{}", replies[0]);
        assert!(gh_card_of(&flow, 7).contains("1/2: @mona"));
        gh_say(&flow, 7, 103, "dev", "/approve-release").await;
        assert_eq!(flow.gh.deployments().len(), 1, "a second person deploys");
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn github_a_comment_older_than_the_head_never_approves_it() {
    let flow = Flow::start(Some(GH_POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_pull(7, A, "octocat", "open");
    let mut opened = pull_request("opened", 7, A, "octocat");
    opened["pull_request"]["updated_at"] = json!(ago(120).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    flow.send("pull_request", opened).await;
    gh_pipeline_passes(&flow, A).await;
    // Written a minute ago, while the head was A; delivered (or retried) only after B was
    // pushed and passed.
    let mut late = comment("created", 7, 101, "mona", "/approve-release");
    late["comment"]["created_at"] = json!(ago(60).to_rfc3339());
    flow.gh.set_pull(7, B, "octocat", "open");
    flow.send("pull_request", pull_request("synchronize", 7, B, "octocat"))
        .await;
    gh_pipeline_passes(&flow, B).await;
    flow.send("issue_comment", late).await;
    assert!(flow.gh.deployments().is_empty(), "B was never seen by mona");
    let replies = gh_replies(&flow);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].contains("written before `bbbbbbb`"),
        "{}",
        replies[0]
    );
    let audit = flow.store.audit_log(None, 100).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.reason == "stale_commit" && e.actor == "mona")
    );
    // A comment written now approves B.
    gh_say(&flow, 7, 102, "mona", "/approve-release").await;
    let deployments = flow.gh.deployments();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["ref"], B);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn github_the_pusher_of_the_head_cannot_approve_it() {
    let policy = format!("{GH_POLICY}allow_self_approval = false\n");
    let flow = Flow::start(Some(&policy)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_permission("dev", "maintain");
    gh_ready(&flow, 7, A).await;
    // Mona pushes B to octocat's pull request.
    flow.gh.set_pull(7, B, "octocat", "open");
    let mut pushed = pull_request("synchronize", 7, B, "octocat");
    pushed["sender"] = json!({ "login": "mona", "id": user_id("mona"), "type": "User" });
    flow.send("pull_request", pushed).await;
    gh_pipeline_passes(&flow, B).await;
    gh_say(&flow, 7, 101, "mona", "/approve-release").await;
    assert!(
        flow.gh.deployments().is_empty(),
        "the pusher approved her own push"
    );
    let replies = gh_replies(&flow);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].contains("You pushed the head `bbbbbbb`"),
        "{}",
        replies[0]
    );
    gh_say(&flow, 7, 102, "dev", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 1);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn github_close_then_reopen_starts_a_fresh_candidate() {
    for db in TestDb::all().await {
        let flow = Flow::start_on(db, Some(GH_POLICY)).await;
        flow.gh.set_permission("mona", "maintain");
        gh_ready(&flow, 7, A).await;
        flow.gh.set_pull(7, A, "octocat", "closed");
        flow.send("pull_request", pull_request("closed", 7, A, "octocat"))
            .await;
        flow.gh.set_pull(7, A, "octocat", "open");
        flow.send("pull_request", pull_request("reopened", 7, A, "octocat"))
            .await;
        assert_eq!(
            gh_ci_dispatches(&flow, A),
            2,
            "a new pipeline for the reopened head"
        );
        assert_eq!(
            flow.gh.check("greenlight/pipeline", A).len(),
            2,
            "a new check"
        );
        // The old green result does not count: not approvable until the new pipeline passes.
        gh_say(&flow, 7, 101, "mona", "/approve-release").await;
        assert!(flow.gh.deployments().is_empty());
        assert!(
            gh_replies(&flow)[0].contains("has not passed"),
            "{:?}",
            gh_replies(&flow)
        );
        gh_pipeline_passes(&flow, A).await;
        gh_say(&flow, 7, 102, "mona", "/approve-release").await;
        assert_eq!(flow.gh.deployments().len(), 1);
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn github_a_force_push_back_to_an_earlier_commit_starts_afresh() {
    let policy = GH_POLICY.replace("required = 1", "required = 2");
    let flow = Flow::start(Some(&policy)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_permission("dev", "maintain");
    gh_ready(&flow, 7, A).await;
    gh_say(&flow, 7, 101, "mona", "/approve-release").await;
    for sha in [B, A] {
        flow.gh.set_pull(7, sha, "octocat", "open");
        flow.send(
            "pull_request",
            pull_request("synchronize", 7, sha, "octocat"),
        )
        .await;
    }
    assert_eq!(gh_ci_dispatches(&flow, A), 2, "A is built again");
    gh_pipeline_passes(&flow, A).await;
    let card = gh_card_of(&flow, 7);
    assert!(card.contains("0/2"), "mona's old vote is void: {card}");
    // Mona's vote on the fresh candidate is a new one, not a repeat; dev's makes two.
    gh_say(&flow, 7, 102, "mona", "/approve-release").await;
    assert!(flow.gh.deployments().is_empty());
    gh_say(&flow, 7, 103, "dev", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 1);
    assert!(gh_replies(&flow).is_empty(), "{:?}", gh_replies(&flow));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

/// 7 deploys, 8 waits in the queue; then `policy` is pushed to the default branch and 7's
/// deploy ends.
async fn gh_queue_then_push(flow: &Flow, policy: &str) {
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_permission("dev", "maintain");
    gh_ready(flow, 7, A).await;
    gh_ready(flow, 8, B).await;
    gh_say(flow, 7, 101, "mona", "/approve-release").await;
    gh_say(flow, 8, 102, "mona", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 1, "8 is queued behind 7");
    flow.gh.set_policy(policy);
    flow.send("push", gh_push("main", MAIN_SHA, MAIN2)).await;
    gh_deploy_finishes(flow, A).await;
}

#[tokio::test]
async fn github_a_freeze_pushed_while_queued_holds_the_next_release_until_lifted() {
    let flow = Flow::start(Some(GH_POLICY)).await;
    let frozen = GH_POLICY.replace(
        "environment = \"production\"",
        "environment = \"production\"\nfrozen = true\nfreeze_reason = \"incident 42\"",
    );
    gh_queue_then_push(&flow, &frozen).await;
    assert_eq!(flow.gh.deployments().len(), 1, "the freeze holds 8");
    let card = gh_card_of(&flow, 8);
    assert!(
        card.contains("held") && card.contains("incident 42"),
        "{card}"
    );
    flow.gh.set_policy(GH_POLICY);
    flow.send("push", gh_push("main", MAIN2, MAIN3)).await;
    let deployments = flow.gh.deployments();
    assert_eq!(deployments.len(), 2, "lifting the freeze lets 8 go");
    assert_eq!(deployments[1]["ref"], B);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn github_a_raised_quorum_holds_a_queued_release_until_met() {
    let flow = Flow::start(Some(GH_POLICY)).await;
    gh_queue_then_push(&flow, &GH_POLICY.replace("required = 1", "required = 2")).await;
    assert_eq!(flow.gh.deployments().len(), 1, "one vote of two");
    let card = gh_card_of(&flow, 8);
    assert!(card.contains("1 of 2 required approvals"), "{card}");
    gh_say(&flow, 8, 103, "dev", "/approve-release").await;
    let deployments = flow.gh.deployments();
    assert_eq!(deployments.len(), 2, "the second vote lets it go");
    assert_eq!(deployments[1]["ref"], B);
    assert!(gh_replies(&flow).is_empty(), "{:?}", gh_replies(&flow));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

// ---- GitLab ---------------------------------------------------------------------------------

async fn gl_pipeline_passes(flow: &GitLabFlow, iid: u64) {
    let p = flow.gl.last_pipeline(&format!("feature-{iid}"));
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
}

async fn gl_ready(flow: &GitLabFlow, iid: u64, sha: &str) {
    flow.gl.set_mr(iid, sha, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", iid, sha, AUTHOR.0, false))
        .await;
    gl_pipeline_passes(flow, iid).await;
}

async fn gl_say(flow: &GitLabFlow, iid: u64, id: u64, who: (u64, &str), body: &str) {
    flow.send(NOTE, flow.gl.note_hook(iid, id, who, body)).await;
}

async fn gl_deploy_finishes(flow: &GitLabFlow) {
    let p = flow.gl.deploys().pop().expect("a deploy pipeline");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
}

fn gl_card_of(flow: &GitLabFlow, iid: u64) -> String {
    flow.gl.cards_of(iid).pop().expect("a card")
}

fn gl_pipelines_of(flow: &GitLabFlow, sha: &str) -> usize {
    flow.gl
        .pipelines()
        .iter()
        .filter(|p| p["sha"] == sha && p["ref"] != "main")
        .count()
}

fn hook_time(t: chrono::DateTime<chrono::Utc>) -> Value {
    json!(t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

#[tokio::test]
async fn gitlab_one_user_under_two_logins_counts_once() {
    for db in TestDb::all().await {
        let policy = GL_POLICY.replace("required = 1", "required = 2");
        let flow = GitLabFlow::start_on(db, Some(&policy)).await;
        flow.gl.set_access(MONA.0, 40);
        flow.gl.set_access(DEV.0, 40);
        gl_ready(&flow, 7, A).await;
        gl_say(&flow, 7, 101, MONA, "/approve-release").await;
        gl_say(&flow, 7, 102, (MONA.0, "mona-renamed"), "/approve-release").await;
        assert!(flow.gl.deploys().is_empty(), "one person is one vote");
        let replies = flow.gl.replies();
        assert_eq!(replies.len(), 1, "{replies:#?}");
        assert!(replies[0].contains("already approved"), "{}", replies[0]);
        gl_say(&flow, 7, 103, DEV, "/approve-release").await;
        assert_eq!(flow.gl.deploys().len(), 1, "a second person deploys");
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn gitlab_a_comment_older_than_the_head_never_approves_it() {
    let flow = GitLabFlow::start(Some(GL_POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    let mut opened = merge_request("open", 7, A, AUTHOR.0, false);
    opened["object_attributes"]["updated_at"] = hook_time(ago(120));
    flow.send(MR, opened).await;
    gl_pipeline_passes(&flow, 7).await;
    let mut late = flow.gl.note_hook(7, 101, MONA, "/approve-release");
    late["object_attributes"]["created_at"] = hook_time(ago(60));
    // What GitLab's API says the note's time is: the read-back believes only that.
    flow.gl.with(|m| {
        m.notes.get_mut(&101).expect("the note").created_at = ago(60).to_rfc3339();
    });
    flow.gl.set_mr(7, B, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("update", 7, B, AUTHOR.0, false))
        .await;
    gl_pipeline_passes(&flow, 7).await;
    flow.send(NOTE, late).await;
    assert!(flow.gl.deploys().is_empty(), "B was never seen by mona");
    let replies = flow.gl.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].contains("written before `bbbbbbb`"),
        "{}",
        replies[0]
    );
    gl_say(&flow, 7, 102, MONA, "/approve-release").await;
    let deploys = flow.gl.deploys();
    assert_eq!(deploys.len(), 1);
    assert!(
        deploys[0]["variables"].to_string().contains(B),
        "{deploys:#?}"
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_the_pusher_of_the_head_cannot_approve_it() {
    let policy = format!("{GL_POLICY}allow_self_approval = false\n");
    let flow = GitLabFlow::start(Some(&policy)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_access(DEV.0, 40);
    gl_ready(&flow, 7, A).await;
    flow.gl.set_mr(7, B, AUTHOR.1, "opened", false);
    let mut pushed = merge_request("update", 7, B, AUTHOR.0, false);
    pushed["user"] = user(MONA.0, MONA.1);
    flow.send(MR, pushed).await;
    gl_pipeline_passes(&flow, 7).await;
    gl_say(&flow, 7, 101, MONA, "/approve-release").await;
    assert!(
        flow.gl.deploys().is_empty(),
        "the pusher approved her own push"
    );
    let replies = flow.gl.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].contains("You pushed the head `bbbbbbb`"),
        "{}",
        replies[0]
    );
    gl_say(&flow, 7, 102, DEV, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 1);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_close_then_reopen_starts_a_fresh_candidate() {
    for db in TestDb::all().await {
        let flow = GitLabFlow::start_on(db, Some(GL_POLICY)).await;
        flow.gl.set_access(MONA.0, 40);
        gl_ready(&flow, 7, A).await;
        flow.gl.set_mr(7, A, AUTHOR.1, "closed", false);
        flow.send(MR, merge_request("close", 7, A, AUTHOR.0, false))
            .await;
        assert_eq!(
            flow.gl.status("greenlight/release", A).expect("status")["state"],
            "canceled"
        );
        flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
        flow.send(MR, merge_request("reopen", 7, A, AUTHOR.0, false))
            .await;
        assert_eq!(
            gl_pipelines_of(&flow, A),
            2,
            "a new pipeline for the reopened head"
        );
        gl_say(&flow, 7, 101, MONA, "/approve-release").await;
        assert!(
            flow.gl.deploys().is_empty(),
            "the old green result does not count"
        );
        assert!(
            flow.gl.replies()[0].contains("has not passed"),
            "{:?}",
            flow.gl.replies()
        );
        gl_pipeline_passes(&flow, 7).await;
        let release = flow.gl.status("greenlight/release", A).expect("status");
        assert_eq!(release["state"], "pending", "no longer canceled: {release}");
        gl_say(&flow, 7, 102, MONA, "/approve-release").await;
        assert_eq!(flow.gl.deploys().len(), 1);
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn gitlab_a_force_push_back_to_an_earlier_commit_starts_afresh() {
    let policy = GL_POLICY.replace("required = 1", "required = 2");
    let flow = GitLabFlow::start(Some(&policy)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_access(DEV.0, 40);
    gl_ready(&flow, 7, A).await;
    gl_say(&flow, 7, 101, MONA, "/approve-release").await;
    for sha in [B, A] {
        flow.gl.set_mr(7, sha, AUTHOR.1, "opened", false);
        flow.send(MR, merge_request("update", 7, sha, AUTHOR.0, false))
            .await;
    }
    assert_eq!(gl_pipelines_of(&flow, A), 2, "A is built again");
    gl_pipeline_passes(&flow, 7).await;
    assert!(
        gl_card_of(&flow, 7).contains("0/2"),
        "mona's old vote is void"
    );
    gl_say(&flow, 7, 102, MONA, "/approve-release").await;
    assert!(flow.gl.deploys().is_empty());
    gl_say(&flow, 7, 103, DEV, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 1);
    assert!(flow.gl.replies().is_empty(), "{:?}", flow.gl.replies());
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

async fn gl_queue_then_push(flow: &GitLabFlow, policy: &str) {
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_access(DEV.0, 40);
    gl_ready(flow, 7, A).await;
    gl_ready(flow, 8, B).await;
    gl_say(flow, 7, 101, MONA, "/approve-release").await;
    gl_say(flow, 8, 102, MONA, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 1, "8 is queued behind 7");
    flow.gl.set_policy(policy);
    flow.send("Push Hook", gl_push("main", MAIN_SHA, MAIN2))
        .await;
    gl_deploy_finishes(flow).await;
}

#[tokio::test]
async fn gitlab_a_freeze_pushed_while_queued_holds_the_next_release_until_lifted() {
    let flow = GitLabFlow::start(Some(GL_POLICY)).await;
    let frozen = GL_POLICY.replace(
        "environment = \"production\"",
        "environment = \"production\"\nfrozen = true\nfreeze_reason = \"incident 42\"",
    );
    gl_queue_then_push(&flow, &frozen).await;
    assert_eq!(flow.gl.deploys().len(), 1, "the freeze holds 8");
    let card = gl_card_of(&flow, 8);
    assert!(
        card.contains("held") && card.contains("incident 42"),
        "{card}"
    );
    // (The pending `greenlight/release` status keeps its text: GitLab refuses a pending →
    // pending transition, so only the card can say it.)
    flow.gl.set_policy(GL_POLICY);
    flow.send("Push Hook", gl_push("main", MAIN2, MAIN3)).await;
    let deploys = flow.gl.deploys();
    assert_eq!(deploys.len(), 2, "lifting the freeze lets 8 go");
    assert!(
        deploys[1]["variables"].to_string().contains(B),
        "{deploys:#?}"
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_a_raised_quorum_holds_a_queued_release_until_met() {
    let flow = GitLabFlow::start(Some(GL_POLICY)).await;
    gl_queue_then_push(&flow, &GL_POLICY.replace("required = 1", "required = 2")).await;
    assert_eq!(flow.gl.deploys().len(), 1, "one vote of two");
    assert!(gl_card_of(&flow, 8).contains("1 of 2 required approvals"));
    gl_say(&flow, 8, 103, DEV, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 2, "the second vote lets it go");
    assert!(flow.gl.replies().is_empty(), "{:?}", flow.gl.replies());
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}
