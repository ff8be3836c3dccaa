//! A pipeline or deploy result can never be forged by a pull request's own workflow run
//! (issue 14, hole 1). Without the run id from the dispatch's own answer (GitHub Enterprise
//! Server answers 204; an answer can be lost), a run counts only if it is a
//! `workflow_dispatch` on the default branch started by the App's bot user, of the policy's
//! workflow file, titled with the SHA. A pull request author can copy everything else: the
//! file name, `run-name` with the SHA, `exit 0`.

mod common;

use common::fake_github::{BOT_ID, REPO};
use common::flow::{Flow, POLICY};
use common::github_events::{comment, pull_request, workflow_run};
use serde_json::{Value, json};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The ways a run someone else started differs from Greenlight's dispatch.
fn forgeries() -> Vec<(&'static str, Value)> {
    let octocat = json!({ "login": "octocat", "id": 1, "type": "User" });
    vec![
        (
            "a pull_request run of the branch's own copy",
            json!({ "event": "pull_request", "head_branch": "feature-7", "actor": octocat, "triggering_actor": octocat }),
        ),
        (
            "a dispatch on another branch",
            json!({ "event": "workflow_dispatch", "head_branch": "feature-7", "actor": octocat, "triggering_actor": octocat }),
        ),
        (
            "a dispatch on the default branch by someone else",
            json!({ "event": "workflow_dispatch", "head_branch": "main", "actor": octocat, "triggering_actor": octocat }),
        ),
        (
            "the bot's run re-run by someone else",
            json!({ "event": "workflow_dispatch", "head_branch": "main",
                    "actor": { "login": "greenlight-test[bot]", "id": BOT_ID, "type": "Bot" },
                    "triggering_actor": octocat }),
        ),
    ]
}

/// `workflow_run` `action` for run `id` of `workflow` titled with `sha`, changed by `forged`.
fn forged(
    action: &str,
    id: u64,
    workflow: &str,
    sha: &str,
    conclusion: Option<&str>,
    forged: &Value,
) -> Value {
    let mut p = workflow_run(action, id, workflow, sha, conclusion);
    for (k, v) in forged.as_object().expect("fields") {
        p["workflow_run"][k] = v.clone();
    }
    p["sender"] = forged["triggering_actor"].clone();
    p
}

fn check(flow: &Flow, sha: &str) -> (String, String) {
    let checks = flow.gh.check("greenlight/pipeline", sha);
    assert_eq!(checks.len(), 1, "{checks:#?}");
    (
        checks[0]["status"].as_str().unwrap_or("").into(),
        checks[0]["conclusion"].as_str().unwrap_or("").into(),
    )
}

fn ready_to_release(flow: &Flow) -> bool {
    flow.gh
        .card()
        .is_some_and(|c| c.contains("Ready to release"))
}

#[tokio::test]
async fn without_run_details_a_forged_pipeline_run_never_makes_a_release_ready() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.with(|m| m.no_run_details = true);
    flow.gh.set_pull(7, A, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    for (n, (what, fields)) in forgeries().into_iter().enumerate() {
        let id = 500 + n as u64;
        flow.send(
            "workflow_run",
            forged("in_progress", id, "ci.yml", A, None, &fields),
        )
        .await;
        flow.send(
            "workflow_run",
            forged("completed", id, "ci.yml", A, Some("success"), &fields),
        )
        .await;
        assert_eq!(check(&flow, A).0, "queued", "{what} counted");
        assert!(!ready_to_release(&flow), "{what} made the release ready");
    }
    // Greenlight's own dispatch still counts.
    flow.send(
        "workflow_run",
        workflow_run("completed", 600, "ci.yml", A, Some("success")),
    )
    .await;
    assert_eq!(check(&flow, A), ("completed".into(), "success".into()));
    assert!(ready_to_release(&flow));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn after_a_lost_dispatch_answer_a_forged_run_in_the_list_is_never_adopted() {
    // The dispatch is carried out but its answer is lost: the retried job looks for the run in
    // the runs list. A run of `ci.yml` dispatched by someone else on their branch, newer and
    // titled with the SHA, is in that list too.
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    let octocat = json!({ "login": "octocat", "id": 1, "type": "User" });
    flow.gh.with(|m| {
        m.foreign_runs.push(json!({
            "id": 666,
            "path": ".github/workflows/ci.yml",
            "head_branch": "feature-7",
            "head_sha": A,
            "display_title": format!("Greenlight {A} (#7)"),
            "event": "workflow_dispatch",
            "status": "completed",
            "conclusion": "success",
            "created_at": (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339(),
            "html_url": format!("https://github.com/{REPO}/actions/runs/666"),
            "actor": octocat,
            "triggering_actor": octocat,
        }))
    });
    flow.gh.lose_next_answer(
        "POST",
        &format!("/repos/{REPO}/actions/workflows/ci.yml/dispatches"),
    );
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let forgery = &forgeries()[1].1;
    flow.send(
        "workflow_run",
        forged("completed", 666, "ci.yml", A, Some("success"), forgery),
    )
    .await;
    assert_eq!(check(&flow, A).0, "queued", "the forged run was adopted");
    assert!(!ready_to_release(&flow));
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", A, Some("success")),
    )
    .await;
    assert_eq!(check(&flow, A), ("completed".into(), "success".into()));
    assert!(ready_to_release(&flow));
    assert_eq!(flow.gh.dispatches().len(), 1, "dispatched once");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_forged_deploy_run_never_finishes_a_deploy_nor_frees_the_environment() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.with(|m| m.no_run_details = true);
    flow.gh.set_permission("mona", "maintain");
    for (pr, sha, run) in [(7, A, 601), (8, B, 602)] {
        flow.gh.set_pull(pr, sha, "octocat", "open");
        flow.send("pull_request", pull_request("opened", pr, sha, "octocat"))
            .await;
        flow.send(
            "workflow_run",
            workflow_run("completed", run, "ci.yml", sha, Some("success")),
        )
        .await;
    }
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
    assert_eq!(flow.gh.deployments().len(), 1, "#8 waits for #7");
    let deploy_title = |p: &mut Value| {
        p["workflow_run"]["display_title"] = json!(format!("Greenlight deploy {A} to production"));
    };
    for (n, (what, fields)) in forgeries().into_iter().enumerate() {
        let mut p = forged(
            "completed",
            700 + n as u64,
            "deploy.yml",
            A,
            Some("success"),
            &fields,
        );
        deploy_title(&mut p);
        flow.send("workflow_run", p).await;
        assert_eq!(
            flow.gh.deployment_states(),
            vec!["in_progress"],
            "{what} finished the deploy"
        );
        assert_eq!(
            flow.gh.deployments().len(),
            1,
            "{what} freed the environment"
        );
    }
    // Greenlight's own deploy run finishes it, and the next release deploys.
    let run = flow.gh.last_run("deploy.yml");
    let mut p = workflow_run("completed", run, "deploy.yml", A, Some("success"));
    deploy_title(&mut p);
    flow.send("workflow_run", p).await;
    assert_eq!(
        flow.gh.deployment_states(),
        vec!["in_progress", "success", "in_progress"]
    );
    assert_eq!(flow.gh.deployments().len(), 2);
    assert_eq!(flow.gh.deployments()[1]["ref"], B);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}
