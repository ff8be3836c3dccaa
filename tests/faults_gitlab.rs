//! GitLab forge faults: the fault round (`tests/common/fault_round.rs`, one driver for both
//! forges) on GitLab — four merge requests through the whole flow (opened → pipeline → card →
//! approved → deploy pipeline → deployed) while a seeded share of GitLab calls fails: 500,
//! 502, answers slower than the client's timeout, 429s with `Retry-After` and with
//! `RateLimit-Remaining: 0`/`RateLimit-Reset`, and connection resets before and after GitLab
//! acted — then a regression test for each bug the rounds found.
//!
//! `FAULT_PRS` (default 4) and `FAULT_SHARE` (default 0.25) make a longer or harsher round.

mod common;

use common::fake_gitlab::FakeGitLab;
use common::fault_round;
use common::flow_gitlab::{GitLabFlow, POLICY};
use common::gitlab_events::merge_request;
use common::world_gitlab::GitLabWorld;
use serde_json::Value;

const MR: &str = "Merge Request Hook";

/// People: (user id, username).
const AUTHOR: (u64, &str) = (1, "octocat");

fn sha_of(iid: u64) -> String {
    format!("{iid:07x}{}", "d".repeat(33))
}

fn branch_of(iid: u64) -> String {
    format!("feature-{iid}")
}

/// Merge-request pipelines of `iid` (not deploys).
fn builds_of(gl: &FakeGitLab, iid: u64) -> Vec<Value> {
    gl.pipelines()
        .into_iter()
        .filter(|p| p["ref"] == branch_of(iid).as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gitlab_release_reaches_its_end_despite_forge_faults() {
    fault_round::every_release_reaches_its_end::<GitLabWorld>().await;
}

#[tokio::test]
async fn a_merge_request_pipeline_whose_answer_was_lost_is_not_made_twice() {
    // The story `a_pipeline_start_whose_answer_was_lost_is_not_made_twice`, with GitLab's
    // status linking the one pipeline.
    // GitLab created the pipeline, the answer was lost: the job's retry must find it (it
    // used to create a second one).
    let flow = GitLabFlow::start(Some(POLICY)).await;
    let a = sha_of(7);
    flow.gl.set_mr(7, &a, AUTHOR.1, "opened", false);
    flow.gl.lose_next_answer("POST", "/pipeline");
    flow.send(MR, merge_request("open", 7, &a, AUTHOR.0, false))
        .await;
    let builds = builds_of(&flow.gl, 7);
    assert_eq!(builds.len(), 1, "{builds:#?}");
    let status = flow.gl.status("greenlight/pipeline", &a).expect("status");
    assert_eq!(status["target_url"], builds[0]["web_url"]);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}
