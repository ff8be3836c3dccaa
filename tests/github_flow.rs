//! The GitHub release flow end to end: real router, real workers, real octocrab, GitHub faked
//! over HTTP. Each scenario asserts the exact requests Greenlight made and what people see.

mod common;

use common::fake_github::{FakeGitHub, REPO};
use common::flow::{Flow, POLICY};
use common::github_events::{
    check_rerun, comment, pull_request, pull_request_from, push, workflow_run,
};
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

/// Nothing was deployed: no deployment, no deploy dispatch.
fn nothing_deployed(gh: &FakeGitHub) {
    assert!(gh.deployments().is_empty(), "{:#?}", gh.deployments());
    assert!(
        gh.dispatches().iter().all(|(f, _)| f != "deploy.yml"),
        "{:#?}",
        gh.dispatches()
    );
}

/// The one reply (not the card) posted so far.
fn only_reply(gh: &FakeGitHub) -> String {
    let replies = gh.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    replies[0].clone()
}

fn audit_outcomes(entries: &[greenlight::store::AuditEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.outcome, e.reason))
        .collect()
}

#[tokio::test]
async fn read_and_write_users_cannot_approve_when_maintain_is_required() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("reader", "read");
    flow.gh.set_permission("writer", "write");
    ready(&flow, 7, A, "octocat").await;
    let before = flow.gh.writes().len();

    say(&flow, 7, 5001, "writer", "/approve-release").await;
    let reply = only_reply(&flow.gh);
    assert_eq!(
        reply,
        "@writer ✋ **Not deployed.**\nYour permission on this repository is `write`; approving a release to `production` needs `maintain` or a place in the policy's approvers."
    );
    say(&flow, 7, 5002, "reader", "/approve-release").await;
    assert!(
        flow.gh.replies()[1].contains("is `read`"),
        "{:?}",
        flow.gh.replies()
    );

    nothing_deployed(&flow.gh);
    assert_eq!(
        flow.gh.reactions(),
        vec![
            (5001, "eyes".into()),
            (5001, "-1".into()),
            (5002, "eyes".into()),
            (5002, "-1".into())
        ]
    );
    // Only the replies and reactions were written: no check, card or deployment changed.
    // Each comment's one reply comes last, gathering its commands' answers.
    let after: Vec<String> = writes(&flow.gh)[before..].to_vec();
    assert_eq!(
        after,
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
    let audit = flow.store.audit_log(None, 100).await.expect("audit");
    assert_eq!(
        audit_outcomes(&audit),
        vec![
            "writer approve refused not_allowed",
            "reader approve refused not_allowed"
        ]
    );
    assert!(card(&flow.gh).contains("Ready to release"));
    flow.stop().await;
}

#[tokio::test]
async fn listed_users_and_team_members_may_approve_below_min_permission() {
    let policy = format!("{POLICY}users = [\"dana\"]\nteams = [\"acme/release\"]\n");
    for (who, setup) in [("dana", false), ("tim", true)] {
        let flow = Flow::start(Some(&policy)).await;
        flow.gh.set_permission(who, "read");
        if setup {
            flow.gh.with(|m| {
                m.team_members
                    .insert("acme/release".into(), vec!["tim".into()])
            });
        }
        ready(&flow, 7, A, "octocat").await;
        say(&flow, 7, 5001, who, "/approve-release").await;
        assert_eq!(flow.gh.deployments().len(), 1, "{who} may approve");
        if setup {
            assert!(
                flow.gh
                    .calls()
                    .iter()
                    .any(|c| c.path == "/orgs/acme/teams/release/memberships/tim")
            );
        }
        flow.stop().await;
    }
}

#[tokio::test]
async fn self_approval_is_refused_unless_allowed() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("octocat", "admin");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "octocat", "/approve-release").await;
    assert!(only_reply(&flow.gh).contains("cannot approve their own pull request"));
    nothing_deployed(&flow.gh);
    flow.stop().await;

    let flow = Flow::start(Some(&format!("{POLICY}allow_self_approval = true\n"))).await;
    flow.gh.set_permission("octocat", "admin");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "octocat", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 1);
    flow.stop().await;
}

#[tokio::test]
async fn approval_after_a_new_push_is_stale() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    assert!(card(&flow.gh).contains("Ready to release"));

    // New commits: A's candidate is superseded, B's pipeline starts.
    flow.gh.set_pull(7, B, "octocat", "open");
    flow.send("pull_request", pull_request("synchronize", 7, B, "octocat"))
        .await;
    let (status, conclusion) = check_state(&flow.gh, "greenlight/release", A);
    assert_eq!(
        (status.as_str(), conclusion.as_str()),
        ("completed", "neutral")
    );
    assert_eq!(check_state(&flow.gh, "greenlight/pipeline", B).0, "queued");
    assert!(
        card(&flow.gh).contains("Pipeline queued") && card(&flow.gh).contains("bbbbbbb"),
        "{}",
        card(&flow.gh)
    );

    // The reviewer approves what they saw (A): refused as stale, with the new head named.
    say(&flow, 7, 5001, "mona", "/approve-release aaaaaaa1").await;
    assert_eq!(
        only_reply(&flow.gh),
        "@mona ✋ **Not deployed.**\n`aaaaaaa1` is an older commit of this pull request. The head is now `bbbbbbb`: review it, then approve it with `/approve-release bbbbbbb`."
    );
    // Without a prefix: B has not passed yet.
    say(&flow, 7, 5002, "mona", "/approve-release").await;
    assert!(
        flow.gh.replies()[1].contains("has not passed for the current head `bbbbbbb`"),
        "{:?}",
        flow.gh.replies()
    );
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn approval_with_a_wrong_sha_prefix_is_refused() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release 1234567").await;
    assert_eq!(
        only_reply(&flow.gh),
        "@mona ✋ **Not deployed.**\n`1234567` is not the head of this pull request (the head is `aaaaaaa`)."
    );
    nothing_deployed(&flow.gh);
    // A prefix that is not a SHA at all is a usage error, not an approval.
    say(&flow, 7, 5002, "mona", "/approve-release main").await;
    assert!(
        flow.gh.replies()[1].contains("the argument is not a commit SHA"),
        "{:?}",
        flow.gh.replies()
    );
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn pipeline_failure_then_retry() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
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
    let failed = card(&flow.gh);
    assert!(
        failed.contains("Pipeline failed") && failed.contains("/retry"),
        "{failed}"
    );
    assert!(
        failed.contains(&format!("actions/runs/{first}")),
        "{failed}"
    );

    // Approving a red commit is refused.
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    assert!(
        only_reply(&flow.gh).contains("(it is pipeline failed)"),
        "{:?}",
        flow.gh.replies()
    );

    // The author retries: a fresh check run and a second dispatch for the same SHA.
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
    assert!(
        card(&flow.gh).contains("Pipeline queued"),
        "{}",
        card(&flow.gh)
    );

    let second = flow.gh.last_run("ci.yml");
    assert_ne!(first, second);
    flow.send(
        "workflow_run",
        workflow_run("completed", second, "ci.yml", A, Some("success")),
    )
    .await;
    assert!(card(&flow.gh).contains("Ready to release"));
    // A late report from the first run changes nothing.
    flow.send(
        "workflow_run",
        workflow_run("completed", first, "ci.yml", A, Some("failure")),
    )
    .await;
    assert!(card(&flow.gh).contains("Ready to release"));
    say(&flow, 7, 5003, "mona", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 1);
    flow.stop().await;
}

#[tokio::test]
async fn retry_by_a_reader_is_refused_and_rerun_button_works() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("reader", "read");
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", A, Some("failure")),
    )
    .await;
    say(&flow, 7, 5001, "reader", "/retry").await;
    assert!(
        only_reply(&flow.gh).contains("is `read`"),
        "{:?}",
        flow.gh.replies()
    );
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
async fn deploy_failure_is_reported_and_frees_the_environment() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    deploy_finishes(&flow, A, "failure").await;

    assert_eq!(flow.gh.deployment_states(), vec!["in_progress", "failure"]);
    assert_eq!(
        check_state(&flow.gh, "greenlight/release", A),
        ("completed".into(), "failure".into())
    );
    let text = card(&flow.gh);
    assert!(
        text.contains("Deploy failed") && text.contains("the deploy workflow failed"),
        "{text}"
    );
    let audit = flow.store.audit_log(None, 100).await.expect("audit");
    assert_eq!(audit.last().map(|e| e.outcome.as_str()), Some("failed"));

    // The environment is free: another pull request deploys at once.
    ready(&flow, 8, B, "octocat").await;
    say(&flow, 8, 5002, "mona", "/approve-release").await;
    assert_eq!(flow.gh.deployments().len(), 2);
    assert_eq!(flow.gh.deployments()[1]["ref"], B);
    flow.stop().await;
}

#[tokio::test]
async fn the_same_webhook_twice_changes_nothing_twice() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_pull(7, A, "octocat", "open");
    let opened = pull_request("opened", 7, A, "octocat");
    assert_eq!(flow.deliver("pull_request", "same-1", &opened).await, 202);
    flow.settle().await;
    assert_eq!(
        flow.deliver("pull_request", "same-1", &opened).await,
        200,
        "a known delivery id"
    );
    flow.settle().await;
    // GitHub can also send the same event again under a new delivery id (redelivery by hand,
    // an App re-sending): the effects are still made once.
    flow.send("pull_request", opened.clone()).await;
    assert_eq!(flow.gh.check("greenlight/pipeline", A).len(), 1);
    assert_eq!(flow.gh.dispatches().len(), 1);

    let run = flow.gh.last_run("ci.yml");
    let done = workflow_run("completed", run, "ci.yml", A, Some("success"));
    flow.send("workflow_run", done.clone()).await;
    flow.send("workflow_run", done).await;
    assert_eq!(flow.gh.check("greenlight/release", A).len(), 1);
    assert_eq!(flow.gh.comments().len(), 1);

    let approve = comment("created", 7, 5001, "mona", "/approve-release");
    flow.send("issue_comment", approve.clone()).await;
    flow.send("issue_comment", approve).await;
    assert_eq!(flow.gh.deployments().len(), 1);
    assert_eq!(
        flow.gh
            .dispatches()
            .iter()
            .filter(|(f, _)| f == "deploy.yml")
            .count(),
        1
    );
    assert_eq!(flow.gh.comments().len(), 1, "no reply, the card only");

    deploy_finishes(&flow, A, "success").await;
    deploy_finishes(&flow, A, "success").await;
    assert_eq!(flow.gh.deployment_states(), vec!["in_progress", "success"]);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn two_approvals_racing_make_one_deployment() {
    for db in common::TestDb::all().await {
        let label = db.label;
        let flow = Flow::start_on(db, Some(POLICY)).await;
        flow.gh.set_permission("mona", "maintain");
        flow.gh.set_permission("hubot", "admin");
        ready(&flow, 7, A, "octocat").await;
        let first = comment("created", 7, 5001, "mona", "/approve-release");
        let second = comment("created", 7, 5002, "hubot", "/approve-release aaaaaaa");
        let (a, b) = tokio::join!(
            flow.deliver("issue_comment", "race-1", &first),
            flow.deliver("issue_comment", "race-2", &second),
        );
        assert_eq!((a, b), (202, 202));
        flow.settle().await;
        assert_eq!(flow.gh.deployments().len(), 1, "{label}");
        assert_eq!(
            flow.gh
                .dispatches()
                .iter()
                .filter(|(f, _)| f == "deploy.yml")
                .count(),
            1,
            "{label}"
        );
        // The later one is told the commit is already on its way.
        let replies = flow.gh.replies();
        assert_eq!(replies.len(), 1, "{label}: {replies:?}");
        assert!(
            replies[0].contains("already queued") || replies[0].contains("already deploying"),
            "{replies:?}"
        );
        flow.stop().await;
    }
}

#[tokio::test]
async fn a_second_release_waits_for_the_first() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    ready(&flow, 8, B, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    say(&flow, 8, 5002, "mona", "/approve-release").await;

    assert_eq!(
        flow.gh.deployments().len(),
        1,
        "one deploy per environment at a time"
    );
    let cards = flow.gh.comments();
    let card8 = cards
        .iter()
        .map(|(_, b)| b)
        .find(|b| b.contains("bbbbbbb"))
        .expect("card of #8");
    assert!(
        card8.contains("queued") && card8.contains("position 1"),
        "{card8}"
    );
    assert_eq!(
        check_state(&flow.gh, "greenlight/release", B).0,
        "in_progress"
    );

    deploy_finishes(&flow, A, "success").await;
    assert_eq!(
        flow.gh.deployments().len(),
        2,
        "the next one starts when the lock frees"
    );
    assert_eq!(flow.gh.deployments()[1]["ref"], B);
    let cards = flow.gh.comments();
    let card8 = cards
        .iter()
        .map(|(_, b)| b)
        .find(|b| b.contains("bbbbbbb"))
        .expect("card of #8");
    assert!(card8.contains("Deploying"), "{card8}");
    deploy_finishes(&flow, B, "success").await;
    assert_eq!(
        flow.gh.deployment_states(),
        vec!["in_progress", "success", "in_progress", "success"]
    );
    flow.stop().await;
}

#[tokio::test]
async fn pull_request_closed_before_approval() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    flow.gh.set_pull(7, A, "octocat", "closed");
    flow.send("pull_request", pull_request("closed", 7, A, "octocat"))
        .await;
    assert_eq!(
        check_state(&flow.gh, "greenlight/release", A),
        ("completed".into(), "neutral".into())
    );
    assert!(card(&flow.gh).contains("Closed"), "{}", card(&flow.gh));

    say(&flow, 7, 5001, "mona", "/approve-release").await;
    assert_eq!(
        only_reply(&flow.gh),
        "@mona ✋ **Not deployed.**\nThis pull request is closed."
    );
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn edited_comments_and_bots_never_act() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_permission("deploy-bot[bot]", "admin");
    ready(&flow, 7, A, "octocat").await;
    let before = flow.gh.calls().len();
    assert_eq!(
        flow.send(
            "issue_comment",
            comment("edited", 7, 5001, "mona", "/approve-release")
        )
        .await,
        202
    );
    assert_eq!(
        flow.send(
            "issue_comment",
            comment("deleted", 7, 5001, "mona", "/approve-release")
        )
        .await,
        202
    );
    assert_eq!(
        flow.send(
            "issue_comment",
            comment("created", 7, 5002, "deploy-bot[bot]", "/approve-release")
        )
        .await,
        202
    );
    assert_eq!(flow.gh.calls().len(), before, "not a single call to GitHub");
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn fork_pull_requests_are_not_built_unless_allowed() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_pull(9, A, "mallory", "open");
    flow.send(
        "pull_request",
        pull_request_from("opened", 9, A, "mallory", "mallory/widgets", false),
    )
    .await;
    assert!(
        flow.gh.dispatches().is_empty(),
        "the fork's code never runs"
    );
    assert_eq!(
        check_state(&flow.gh, "greenlight/pipeline", A),
        ("completed".into(), "neutral".into())
    );
    let check = &flow.gh.check("greenlight/pipeline", A)[0];
    assert!(
        check["output"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("allow_forks = false")
    );
    assert_eq!(writes(&flow.gh), vec!["POST /check-runs"]);
    flow.stop().await;
}

#[tokio::test]
async fn an_invalid_policy_posts_a_failing_config_check_and_nothing_else() {
    let broken = format!("{POLICY}min_permision = \"write\"\n");
    let flow = Flow::start(Some(&broken)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    flow.send("pull_request", pull_request("synchronize", 7, A, "octocat"))
        .await;
    assert_eq!(
        writes(&flow.gh),
        vec!["POST /check-runs"],
        "one config check, nothing else"
    );
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

    // Fixed on the default branch: the next push is built.
    flow.gh.set_policy(POLICY);
    flow.send("pull_request", pull_request("synchronize", 7, A, "octocat"))
        .await;
    assert_eq!(flow.gh.dispatches().len(), 1);
    flow.stop().await;
}

#[tokio::test]
async fn without_a_policy_only_help_answers() {
    let flow = Flow::start(None).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    assert!(flow.gh.writes().is_empty(), "quiet: {:?}", writes(&flow.gh));
    say(&flow, 7, 5002, "mona", "/help").await;
    let help = only_reply(&flow.gh);
    assert!(
        help.contains("not enabled") && help.contains(".github/greenlight.toml"),
        "{help}"
    );
    flow.stop().await;
}

#[tokio::test]
async fn unknown_commands_get_help_and_status_refreshes() {
    let flow = Flow::start(Some(POLICY)).await;
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/deploy now").await;
    let reply = only_reply(&flow.gh);
    assert!(
        reply.starts_with("A line of this comment looks like a command Greenlight does not know."),
        "{reply}"
    );
    assert!(reply.contains("/approve-release"), "{reply}");
    // A command in a quote or a code block is not a command.
    say(&flow, 7, 5002, "mona", "> /deploy\n\n```\n/retry\n```").await;
    assert_eq!(flow.gh.replies().len(), 1);
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
async fn drafts_wait_until_ready_for_review() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send(
        "pull_request",
        pull_request_from("opened", 7, A, "octocat", REPO, true),
    )
    .await;
    assert!(
        flow.gh.writes().is_empty(),
        "drafts are not built: {:?}",
        writes(&flow.gh)
    );
    flow.send(
        "pull_request",
        pull_request_from("ready_for_review", 7, A, "octocat", REPO, false),
    )
    .await;
    assert_eq!(flow.gh.dispatches().len(), 1);
    flow.stop().await;

    let flow = Flow::start(Some(&format!("{POLICY}\n[pull_requests]\ndrafts = true\n"))).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send(
        "pull_request",
        pull_request_from("opened", 7, A, "octocat", REPO, true),
    )
    .await;
    assert_eq!(flow.gh.dispatches().len(), 1, "drafts = true builds drafts");
    flow.stop().await;
}

#[tokio::test]
async fn a_frozen_environment_refuses_approvals() {
    let frozen = POLICY.replace(
        "environment = \"production\"",
        "environment = \"production\"\nfrozen = true\nfreeze_reason = \"end-of-year freeze\"",
    );
    let flow = Flow::start(Some(&frozen)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    assert_eq!(
        only_reply(&flow.gh),
        "@mona ✋ **Not deployed.**\nDeploys to `production` are frozen: end-of-year freeze."
    );
    nothing_deployed(&flow.gh);
    flow.stop().await;
}

#[tokio::test]
async fn the_policy_is_read_again_after_each_push_to_the_default_branch_only() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    let reads = || {
        flow.gh
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path.ends_with("/contents/.github/greenlight.toml"))
            .count()
    };
    // No push seen yet: every event asks (conditionally).
    ready(&flow, 7, A, "octocat").await;
    let before = reads();
    assert!(before >= 3, "each event asked: {before}");
    say(&flow, 7, 5001, "hubot", "/help").await;
    assert_eq!(reads(), before + 1, "no push seen, so no trust: asked");

    // A push to main: read once after it, then trusted.
    assert_eq!(flow.send("push", push("main", A, B)).await, 202);
    say(&flow, 7, 5002, "hubot", "/help").await;
    assert_eq!(reads(), before + 2, "read again after the push");
    say(&flow, 7, 5003, "hubot", "/help").await;
    assert_eq!(reads(), before + 2, "trusted until the next push");

    // A push elsewhere changes nothing.
    assert_eq!(flow.send("push", push("feature-7", A, B)).await, 202);
    say(&flow, 7, 5004, "hubot", "/help").await;
    assert_eq!(reads(), before + 2, "a push to another branch");

    // The policy freezes deploys in a push to main: the next approval sees it.
    flow.gh.set_policy(&POLICY.replace(
        "environment = \"production\"",
        "environment = \"production\"\nfrozen = true\nfreeze_reason = \"incident 42\"",
    ));
    assert_eq!(flow.send("push", push("main", B, A)).await, 202);
    say(&flow, 7, 5005, "mona", "/approve-release").await;
    assert_eq!(reads(), before + 3);
    let replies = flow.gh.replies();
    assert_eq!(
        replies.last().map(String::as_str),
        Some("@mona ✋ **Not deployed.**\nDeploys to `production` are frozen: incident 42.")
    );
    nothing_deployed(&flow.gh);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn approvals_accumulate_from_distinct_people() {
    let flow = Flow::start(Some(&POLICY.replace("required = 1", "required = 2"))).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_permission("hubot", "admin");
    ready(&flow, 7, A, "octocat").await;
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    assert!(
        card(&flow.gh).contains("| Approvals | 1/2: @mona |"),
        "{}",
        card(&flow.gh)
    );
    nothing_deployed(&flow.gh);
    say(&flow, 7, 5002, "mona", "/approve-release").await;
    assert!(only_reply(&flow.gh).contains("already approved"));
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

#[tokio::test]
async fn a_deploy_dispatch_that_failed_is_looked_for_then_made_again_once() {
    // The dispatch fails and GitHub did *not* carry it out. The retried job cannot know that:
    // it looks for the run first, waits while a run could still be on its way, and only then
    // dispatches again. One deploy, not zero, not two.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    flow.gh.fail_next(
        "POST",
        &format!("/repos/{REPO}/actions/workflows/deploy.yml"),
        ResponseTemplate::new(502),
    );
    say(&flow, 7, 5001, "mona", "/approve-release").await;

    let deploys = || {
        flow.gh
            .dispatches()
            .into_iter()
            .filter(|(f, _)| f == "deploy.yml")
            .count()
    };
    assert_eq!(deploys(), 1, "dispatched again after the failure");
    let looked = flow
        .gh
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET" && c.path.ends_with("/actions/workflows/deploy.yml/runs"))
        .count();
    assert!(looked >= 1, "looked for the run before dispatching again");
    deploy_finishes(&flow, A, "success").await;
    assert_eq!(deploys(), 1);
    assert_eq!(flow.gh.deployments().len(), 1);
    assert!(card(&flow.gh).contains("Deployed"), "{}", card(&flow.gh));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn the_reconciler_recovers_runs_whose_webhooks_were_lost() {
    use greenlight::engine::reconcile::reconcile_once;
    use std::time::Duration;

    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let run = flow.gh.last_run("ci.yml");
    let state = |action: &str, workflow: &str, run: u64, conclusion: Option<&str>| {
        workflow_run(action, run, workflow, A, conclusion)["workflow_run"].clone()
    };

    // Still queued at GitHub: nothing to do.
    flow.gh.with(|m| {
        m.run_states
            .insert(run, state("requested", "ci.yml", run, None))
    });
    assert_eq!(
        reconcile_once(&flow.engine, Duration::ZERO)
            .await
            .expect("pass"),
        0
    );
    // It passed, but no webhook ever came: the reconciler feeds what GitHub says through the inbox.
    flow.gh.with(|m| {
        m.run_states
            .insert(run, state("completed", "ci.yml", run, Some("success")))
    });
    assert_eq!(
        reconcile_once(&flow.engine, Duration::ZERO)
            .await
            .expect("pass"),
        1
    );
    flow.settle().await;
    assert!(
        card(&flow.gh).contains("Ready to release"),
        "{}",
        card(&flow.gh)
    );
    assert_eq!(
        reconcile_once(&flow.engine, Duration::ZERO)
            .await
            .expect("pass"),
        0,
        "nothing left waiting"
    );
    // A release quiet for less than the threshold is left alone.
    say(&flow, 7, 5001, "mona", "/approve-release").await;
    let deploy = flow.gh.last_run("deploy.yml");
    flow.gh.with(|m| {
        m.run_states.insert(
            deploy,
            state("completed", "deploy.yml", deploy, Some("success")),
        )
    });
    assert_eq!(
        reconcile_once(&flow.engine, Duration::from_secs(600))
            .await
            .expect("pass"),
        0
    );
    assert_eq!(
        reconcile_once(&flow.engine, Duration::ZERO)
            .await
            .expect("pass"),
        1
    );
    flow.settle().await;
    assert!(card(&flow.gh).contains("Deployed"), "{}", card(&flow.gh));
    // The webhook arriving late changes nothing.
    deploy_finishes(&flow, A, "success").await;
    assert_eq!(flow.gh.deployment_states(), vec!["in_progress", "success"]);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn look_alike_commands_never_act() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    ready(&flow, 7, A, "octocat").await;
    let before = flow.gh.calls().len();
    let texts = [
        "\u{ff0f}approve-release",
        "/approve\u{200d}-release",
        "/approve-release\u{200b}",
        "\u{2044}approve-release",
        "/\u{0430}pprove-release",
        "\u{200b}/approve-release",
        "> /approve-release",
        "```\n/approve-release\n```",
        "    /approve-release",
        "please /approve-release",
    ];
    for (i, text) in texts.iter().enumerate() {
        say(&flow, 7, 6000 + i as u64, "mona", text).await;
    }
    assert_eq!(
        flow.gh.calls().len(),
        before,
        "not one call: {:#?}",
        &flow.gh.calls()[before..]
    );
    nothing_deployed(&flow.gh);
    flow.stop().await;
}
