//! A run learned after the fact loses nothing (issue 25). The dispatch (GitLab: the pipeline's
//! creation) is carried out but its answer is lost, and the job dies before it learns the run.
//! Every webhook about the run is worked while no release knows it. Then the job is worked
//! again (a takeover, or an operator's `deliveries retry`): it finds the run, and the run's
//! current state is applied at once, with no reconciler pass.

mod common;

use common::fake_github::REPO;
use common::fake_gitlab::FakeGitLab;
use common::flow::{Flow, POLICY};
use common::flow_gitlab::{GitLabFlow, POLICY as GITLAB_POLICY};
use common::github_events::{comment, pull_request, workflow_run};
use common::gitlab_events::merge_request;
use common::scripted::Script;
use greenlight::store::Store;
use serde_json::json;
use wiremock::ResponseTemplate;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// More lookups than a job has attempts: the job that lost the answer dies.
const LOOKUPS_DOWN: usize = 40;

/// The one dead delivery (the job that died), by row id.
async fn the_dead_job(store: &Store) -> i64 {
    let dead = store.list_deliveries(100, true).await.expect("dead");
    assert_eq!(dead.len(), 1, "{dead:#?}");
    dead[0].id
}

/// The job is worked again, as a takeover or `deliveries retry` does.
async fn take_over(store: &Store, id: i64) {
    assert!(store.requeue(id).await.expect("requeue"));
}

fn github_check(flow: &Flow, sha: &str) -> (String, String) {
    let checks = flow.gh.check("greenlight/pipeline", sha);
    assert_eq!(checks.len(), 1, "{checks:#?}");
    (
        checks[0]["status"].as_str().unwrap_or("").into(),
        checks[0]["conclusion"].as_str().unwrap_or("").into(),
    )
}

/// The dispatch of `workflow` is carried out but answered 502, and the runs list cannot be
/// read until [`Script`] is reset: the job that dispatched dies.
fn github_dispatch_lost(flow: &Flow, workflow: &str) {
    flow.gh.lose_next_answer(
        "POST",
        &format!("/repos/{REPO}/actions/workflows/{workflow}/dispatches"),
    );
    for _ in 0..LOOKUPS_DOWN {
        flow.gh.fail_next(
            "GET",
            &format!("/repos/{REPO}/actions/workflows/{workflow}/runs"),
            ResponseTemplate::new(404),
        );
    }
}

#[tokio::test]
async fn github_a_pipeline_run_learned_after_its_webhooks_is_applied_at_once() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_pull(7, A, "octocat", "open");
    github_dispatch_lost(&flow, "ci.yml");
    flow.send("pull_request", pull_request("opened", 7, A, "octocat"))
        .await;
    let dead = the_dead_job(&flow.store).await;
    flow.gh.with(|m| m.script = Script::default());

    // GitHub ran it to success; each of its webhooks was worked while no release knew it.
    let run = flow.gh.last_run("ci.yml");
    flow.gh.with(|m| {
        m.run_states.insert(
            run,
            json!({ "status": "completed", "conclusion": "success" }),
        )
    });
    for (action, conclusion) in [
        ("requested", None),
        ("in_progress", None),
        ("completed", Some("success")),
    ] {
        flow.send(
            "workflow_run",
            workflow_run(action, run, "ci.yml", A, conclusion),
        )
        .await;
    }
    assert_eq!(github_check(&flow, A).0, "queued");

    take_over(&flow.store, dead).await;
    flow.settle().await;
    assert_eq!(
        github_check(&flow, A),
        ("completed".into(), "success".into())
    );
    let card = flow.gh.card().expect("a card");
    assert!(card.contains("Ready to release"), "{card}");
    assert_eq!(flow.gh.dispatches().len(), 1, "dispatched once");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn github_a_deploy_run_learned_after_its_webhooks_frees_the_environment() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    for (pr, sha) in [(7, A), (8, B)] {
        flow.gh.set_pull(pr, sha, "octocat", "open");
        flow.send("pull_request", pull_request("opened", pr, sha, "octocat"))
            .await;
        let run = flow.gh.last_run("ci.yml");
        flow.send(
            "workflow_run",
            workflow_run("completed", run, "ci.yml", sha, Some("success")),
        )
        .await;
    }
    github_dispatch_lost(&flow, "deploy.yml");
    flow.send(
        "issue_comment",
        comment("created", 7, 5001, "mona", "/approve-release"),
    )
    .await;
    let dead = the_dead_job(&flow.store).await;
    flow.gh.with(|m| m.script = Script::default());
    flow.send(
        "issue_comment",
        comment("created", 8, 5002, "mona", "/approve-release"),
    )
    .await;
    assert_eq!(flow.gh.deployments().len(), 1, "#8 waits for #7");

    let run = flow.gh.last_run("deploy.yml");
    flow.gh.with(|m| {
        m.run_states.insert(
            run,
            json!({ "status": "completed", "conclusion": "success" }),
        )
    });
    let mut done = workflow_run("completed", run, "deploy.yml", A, Some("success"));
    done["workflow_run"]["display_title"] = json!(format!("Greenlight deploy {A} to production"));
    flow.send("workflow_run", done).await;

    take_over(&flow.store, dead).await;
    flow.settle().await;
    let deploys = flow
        .gh
        .dispatches()
        .iter()
        .filter(|(f, _)| f == "deploy.yml")
        .count();
    assert_eq!(deploys, 2, "one deploy each: {:?}", flow.gh.dispatches());
    assert_eq!(
        flow.gh.deployments().len(),
        2,
        "the environment was freed for #8"
    );
    assert_eq!(flow.gh.deployments()[1]["ref"], B);
    assert_eq!(
        flow.gh.deployment_states(),
        vec!["in_progress", "success", "in_progress"]
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

const MR: &str = "Merge Request Hook";
const PIPELINE: &str = "Pipeline Hook";
const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");

fn gitlab_state(gl: &FakeGitLab, name: &str, sha: &str) -> String {
    gl.status(name, sha)
        .and_then(|s| s["state"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "none".into())
}

/// The pipeline's creation is carried out but answered 502, and the pipelines list cannot be
/// read until [`Script`] is reset: the job that created it dies.
fn gitlab_creation_lost(gl: &FakeGitLab) {
    gl.lose_next_answer("POST", "/pipeline");
    for _ in 0..LOOKUPS_DOWN {
        gl.fail_next("GET", "/pipelines", ResponseTemplate::new(404));
    }
}

#[tokio::test]
async fn gitlab_a_pipeline_learned_after_its_hooks_is_applied_at_once() {
    let flow = GitLabFlow::start(Some(GITLAB_POLICY)).await;
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    gitlab_creation_lost(&flow.gl);
    flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
        .await;
    let dead = the_dead_job(&flow.store).await;
    flow.gl.with(|m| m.script = Script::default());

    let p = flow.gl.last_pipeline("feature-7");
    let id = p["id"].as_u64().expect("id");
    flow.gl.set_pipeline_status(id, "success");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "running"))
        .await;
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
    assert_ne!(gitlab_state(&flow.gl, "greenlight/pipeline", A), "success");

    take_over(&flow.store, dead).await;
    flow.settle().await;
    assert_eq!(gitlab_state(&flow.gl, "greenlight/pipeline", A), "success");
    let card = flow.gl.card().expect("a card");
    assert!(card.contains("Ready to release"), "{card}");
    assert_eq!(flow.gl.pipelines().len(), 1, "created once");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_a_deploy_learned_after_its_hooks_frees_the_environment() {
    let flow = GitLabFlow::start(Some(GITLAB_POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    for (iid, sha) in [(7, A), (8, B)] {
        flow.gl.set_mr(iid, sha, AUTHOR.1, "opened", false);
        flow.send(MR, merge_request("open", iid, sha, AUTHOR.0, false))
            .await;
        let p = flow.gl.last_pipeline(&format!("feature-{iid}"));
        flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
            .await;
    }
    gitlab_creation_lost(&flow.gl);
    flow.send(
        "Note Hook",
        flow.gl.note_hook(7, 5001, MONA, "/approve-release"),
    )
    .await;
    let dead = the_dead_job(&flow.store).await;
    flow.gl.with(|m| m.script = Script::default());
    flow.send(
        "Note Hook",
        flow.gl.note_hook(8, 5002, MONA, "/approve-release"),
    )
    .await;
    assert_eq!(flow.gl.deploys().len(), 1, "!8 waits for !7");

    let p = flow.gl.deploys().pop().expect("the deploy of !7");
    let id = p["id"].as_u64().expect("id");
    flow.gl.set_pipeline_status(id, "success");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "running"))
        .await;
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;

    take_over(&flow.store, dead).await;
    flow.settle().await;
    assert_eq!(
        flow.gl.deploys().len(),
        2,
        "the environment was freed for !8"
    );
    assert_eq!(gitlab_state(&flow.gl, "greenlight/release", A), "success");
    assert_eq!(gitlab_state(&flow.gl, "greenlight/release", B), "running");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}
