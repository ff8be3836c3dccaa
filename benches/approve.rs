//! Command latency and forge calls, through the real router, workers, engine and octocrab
//! against the in-memory fake GitHub of the tests (on loopback, answering at once).
//!
//! For each of `BENCH_APPROVALS` pull requests (default 1,000): open it, let its pipeline run
//! and pass, comment `/approve-release`, let the deploy run pass. Measured: the time from
//! sending the signed `issue_comment` delivery to the deploy workflow's dispatch request
//! arriving at the fake (p50/p99), and the forge API calls of one approval and of one whole
//! pull-request lifecycle (counted at the fake, token requests included). Prints one line of
//! `key=value` pairs for `bench/run.sh`.
//!
//! Run with `cargo bench --bench approve` (SQLite in a temporary directory).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::flow::{Flow, POLICY};
use common::github_events::{comment, pull_request, push, workflow_run};

/// The approver (a maintainer) and the pull requests' author.
const APPROVER: &str = "mona";
const AUTHOR: &str = "octocat";

/// Calls the fake has received so far.
fn calls_so_far(flow: &Flow) -> usize {
    flow.gh.with(|m| m.calls.len())
}

/// One pull request from opening to deployed. Returns the approval latency and the calls made
/// for the approval and for the whole lifecycle.
async fn lifecycle(flow: &Flow, pr: u64) -> (Duration, usize, usize) {
    let sha = format!("{pr:07x}{}", "a".repeat(33));
    let begin = calls_so_far(flow);
    flow.gh.set_pull(pr, &sha, AUTHOR, "open");
    assert_eq!(
        flow.send("pull_request", pull_request("opened", pr, &sha, AUTHOR))
            .await,
        202
    );
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("in_progress", run, "ci.yml", &sha, None),
    )
    .await;
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", &sha, Some("success")),
    )
    .await;

    let before_approval = calls_so_far(flow);
    let body = format!("/approve-release {}", &sha[..7]);
    let sent = Instant::now();
    let payload = comment("created", pr, 100_000 + pr, APPROVER, &body);
    flow.deliver("issue_comment", &format!("approval-{pr}"), &payload)
        .await;
    // Waited for at the fake, not by asking Greenlight's database: the wait costs Greenlight
    // nothing.
    let dispatched = flow
        .gh
        .wait_for(Duration::from_secs(20), |m| {
            m.calls[before_approval..]
                .iter()
                .find(|c| c.path.ends_with("/actions/workflows/deploy.yml/dispatches"))
                .map(|c| c.at)
        })
        .await;
    flow.settle().await;
    let after_approval = calls_so_far(flow);
    if std::env::var_os("BENCH_SHOW_CALLS").is_some() {
        flow.gh.with(|m| {
            for c in &m.calls[before_approval..after_approval] {
                let ms = c.at.duration_since(sent).as_secs_f64() * 1000.0;
                eprintln!("approval call at {ms:6.2} ms: {} {}", c.method, c.path);
            }
        });
    }
    let Some(dispatched) = dispatched else {
        panic!("no deploy dispatched for PR {pr}: {:?}", flow.dead().await)
    };
    let latency = dispatched.duration_since(sent);

    let deploy = flow.gh.last_run("deploy.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", deploy, "deploy.yml", &sha, Some("success")),
    )
    .await;
    let end = calls_so_far(flow);
    (latency, after_approval - before_approval, end - begin)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run one lifecycle.
    let full = std::env::args().any(|a| a == "--bench");
    let approvals: u64 = if full {
        std::env::var("BENCH_APPROVALS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    } else {
        1
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let flow = Flow::start(Some(POLICY)).await;
        flow.gh.set_permission(APPROVER, "maintain");
        // The default branch has moved since the App was installed (as in any active
        // repository): from the next read on, the policy is trusted until the next push.
        let head = "9049f1265b7d61be4a8904a9a27120d2064dab3b";
        assert_eq!(flow.send("push", push("main", head, &"c".repeat(40))).await, 202);
        let mut latencies = Vec::new();
        let (mut approval_calls, mut lifecycle_calls) = (Vec::new(), Vec::new());
        for pr in 1..=approvals {
            let (latency, approval, whole) = lifecycle(&flow, pr).await;
            latencies.push(latency);
            approval_calls.push(approval);
            lifecycle_calls.push(whole);
        }
        let dead = flow.dead().await;
        assert!(dead.is_empty(), "dead letters: {dead:?}");
        // The first pull request pays for the installation token and the policy read; the
        // figures reported are the steady state (the last pull request), the first one beside.
        let first = (approval_calls[0], lifecycle_calls[0]);
        let last = (
            approval_calls[approval_calls.len() - 1],
            lifecycle_calls[lifecycle_calls.len() - 1],
        );
        latencies.sort();
        println!(
            "approve approvals={approvals} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} approval_calls={} lifecycle_calls={} first_approval_calls={} first_lifecycle_calls={}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
            last.0,
            last.1,
            first.0,
            first.1,
        );
        flow.stop().await;
    });
}
