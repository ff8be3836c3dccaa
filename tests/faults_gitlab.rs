//! GitLab forge faults: a few merge requests through the whole flow (opened → pipeline →
//! card → approved → deploy pipeline → deployed) while a seeded share of GitLab calls fails —
//! 500, 502, answers slower than the client's timeout, 429s with `Retry-After` and with
//! `RateLimit-Remaining: 0`/`RateLimit-Reset`, and connection resets before and after GitLab
//! acted.
//!
//! Pass: every release reaches `deployed`; no pipeline, commit status, card or deploy pipeline
//! is made twice for a merge request; no call reaches GitLab sooner than a rate limit allowed;
//! nothing is dead-lettered. Prints the seed (replay with `FAULT_SEED=…`), calls, faults by
//! kind, job attempts and final states.
//!
//! `FAULT_PRS` (default 4) and `FAULT_SHARE` (default 0.25) make a longer or harsher round.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fake_gitlab::{FakeGitLab, PATH};
use common::faults::{FaultPlan, Faults, LimitStyle, env_or, settle_within};
use common::flow_gitlab::{GitLabFlow, POLICY};
use common::gitlab_events::merge_request;
use common::{TestDb, fast_workers};
use greenlight::release::Stage;
use serde_json::Value;
use wiremock::ResponseTemplate;

/// The client gives up on a call after this long in this test (10 s in production).
const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);

/// How late a "slow" answer comes.
const SLOW_ANSWER: Duration = Duration::from_millis(750);

/// How long the whole flow may take to settle after each step, per merge request.
const SETTLE_PER_MR: Duration = Duration::from_secs(12);

const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";

/// People: (user id, username).
const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");

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

/// Deploy pipelines of `iid`.
fn deploys_of(gl: &FakeGitLab, iid: u64) -> Vec<Value> {
    gl.deploys()
        .into_iter()
        .filter(|p| {
            p["variables"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|v| v["key"] == "GREENLIGHT_MR" && v["value"] == iid.to_string().as_str())
            })
        })
        .collect()
}

async fn settle(flow: &GitLabFlow, faults: &Faults, mrs: u64) {
    let within = SETTLE_PER_MR * u32::try_from(mrs.max(4)).expect("a few merge requests");
    settle_within(&flow.store, faults.plan().seed, within).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gitlab_release_reaches_its_end_despite_forge_faults() {
    let mrs: u64 = env_or("FAULT_PRS", 4);
    let share: f64 = env_or("FAULT_SHARE", 0.25);
    let mut rounds = Vec::new();
    for db in TestDb::all().await {
        let plan = FaultPlan::from_env_for(LimitStyle::GitLab, share, SLOW_ANSWER);
        println!(
            "[{}] {mrs} merge requests, {:.0}% of GitLab calls failing, seed {} (replay: FAULT_SEED={})",
            db.label,
            share * 100.0,
            plan.seed,
            plan.seed
        );
        let (gl, faults) = FakeGitLab::start_with_faults(Some(POLICY), plan).await;
        rounds.push(tokio::spawn(run_round(db, gl, faults, mrs)));
    }
    for round in rounds {
        round.await.expect("round");
    }
}

async fn run_round(db: TestDb, gl: FakeGitLab, faults: Arc<Faults>, mrs: u64) {
    let label = db.label;
    let seed = faults.plan().seed;
    gl.set_access(MONA.0, 40);
    for iid in 1..=mrs {
        gl.set_mr(iid, &sha_of(iid), AUTHOR.1, "opened", false);
    }
    let mut workers = fast_workers(2);
    workers.max_attempts = 60;
    workers.retry_base = Duration::from_millis(2);
    let flow = GitLabFlow::start_with(db, gl.clone(), workers, CLIENT_TIMEOUT).await;
    let started = std::time::Instant::now();

    for iid in 1..=mrs {
        let payload = merge_request("open", iid, &sha_of(iid), AUTHOR.0, false);
        assert_eq!(
            flow.deliver(MR, &format!("open-{iid}"), &payload).await,
            202
        );
    }
    settle(&flow, &faults, mrs).await;

    for iid in 1..=mrs {
        for p in builds_of(&gl, iid) {
            for status in ["running", "success"] {
                let id = &p["id"];
                flow.deliver(
                    PIPELINE,
                    &format!("ci-{id}-{status}"),
                    &gl.pipeline_hook(&p, status),
                )
                .await;
            }
        }
    }
    settle(&flow, &faults, mrs).await;

    for iid in 1..=mrs {
        let body = format!("/approve-release {}", &sha_of(iid)[..7]);
        flow.deliver(
            NOTE,
            &format!("approve-{iid}"),
            &gl.note_hook(iid, 9000 + iid, MONA, &body),
        )
        .await;
    }
    settle(&flow, &faults, mrs).await;

    let mut finished = Vec::new();
    for _ in 0..=mrs {
        let mut progressed = false;
        for iid in 1..=mrs {
            for p in deploys_of(&gl, iid) {
                let id = p["id"].as_u64().expect("id");
                if finished.contains(&id) {
                    continue;
                }
                finished.push(id);
                progressed = true;
                for status in ["running", "success"] {
                    flow.deliver(
                        PIPELINE,
                        &format!("deploy-{id}-{status}"),
                        &gl.pipeline_hook(&p, status),
                    )
                    .await;
                }
            }
        }
        if !progressed {
            break;
        }
        settle(&flow, &faults, mrs).await;
    }
    let elapsed = started.elapsed();

    let report = faults.report();
    let deliveries = flow
        .store
        .list_deliveries(10_000, false)
        .await
        .expect("list");
    let attempts: u32 = deliveries.iter().map(|d| d.attempts).sum();
    let most = deliveries.iter().map(|d| d.attempts).max().unwrap_or(0);
    let mut stages: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for iid in 1..=mrs {
        let sha = sha_of(iid);
        let releases = flow
            .store
            .releases_of_pull("gitlab", PATH, iid)
            .await
            .expect("releases");
        for r in &releases {
            *stages.entry(r.stage.as_str()).or_default() += 1;
        }
        if releases.len() != 1 || releases[0].stage != Stage::Deployed {
            problems.push(format!(
                "!{iid}: not deployed: {:?}",
                releases
                    .iter()
                    .map(|r| (r.stage.as_str(), r.detail.clone()))
                    .collect::<Vec<_>>()
            ));
        }
        for name in ["greenlight/pipeline", "greenlight/release"] {
            let instances = gl.with(|m| {
                m.statuses
                    .iter()
                    .filter(|s| s["name"] == name && s["sha"] == sha.as_str())
                    .count()
            });
            let last = gl.status(name, &sha).map(|s| s["state"].clone());
            if instances != 1 || last != Some(Value::from("success")) {
                problems.push(format!(
                    "!{iid}: {instances} {name} statuses, history {:?}",
                    gl.status_history(name, &sha)
                ));
            }
        }
        let builds = builds_of(&gl, iid).len();
        if builds != 1 {
            problems.push(format!("!{iid}: {builds} merge request pipelines"));
        }
        let deploys = deploys_of(&gl, iid).len();
        if deploys != 1 {
            problems.push(format!("!{iid}: {deploys} deploy pipelines"));
        }
        let cards: Vec<String> = gl.cards_of(iid);
        if cards.len() != 1 {
            problems.push(format!("!{iid}: {} cards", cards.len()));
        } else if !cards[0].contains("Deployed") {
            problems.push(format!(
                "!{iid}: the card does not say deployed:\n{}",
                cards[0]
            ));
        }
        let others = gl
            .own_notes()
            .iter()
            .filter(|(n, body)| *n == iid && !body.contains("<!-- greenlight:card"))
            .count();
        if others != 0 {
            problems.push(format!("!{iid}: {others} unexpected replies"));
        }
    }
    let violations = faults.rate_limit_violations();
    let dead = flow.dead().await;
    println!(
        "[{label}] {report}\n[{label}] {} deliveries, {attempts} job attempts ({} retries, at most {most} for one), {} dead; final states {stages:?}; {} rate-limit violations; {:.1}s",
        deliveries.len(),
        attempts.saturating_sub(deliveries.len() as u32),
        dead.len(),
        violations.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        problems.is_empty() && violations.is_empty() && dead.is_empty(),
        "[{label}] seed {seed}:\n{}\nrate limits not respected:\n{}\ndead letters:\n{}",
        problems.join("\n"),
        violations.join("\n"),
        dead.join("\n")
    );
    flow.stop().await;
}

#[tokio::test]
async fn a_gitlab_rate_limit_holds_back_every_job_of_the_token() {
    // Job 1 is told to wait a second; job 2 (another merge request) must not call GitLab in
    // that second either (each job used to honour only its own 429).
    let flow = GitLabFlow::start(Some(POLICY)).await;
    let (a, b) = (sha_of(7), sha_of(8));
    flow.gl.set_mr(7, &a, AUTHOR.1, "opened", false);
    flow.gl.set_mr(8, &b, AUTHOR.1, "opened", false);
    flow.gl.fail_next(
        "GET",
        "/repository/files/",
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
    );
    flow.deliver(MR, "open-7", &merge_request("open", 7, &a, AUTHOR.0, false))
        .await;
    flow.deliver(MR, "open-8", &merge_request("open", 8, &b, AUTHOR.0, false))
        .await;
    flow.settle().await;
    let calls = flow.gl.calls();
    let limited = calls
        .iter()
        .position(|c| c.method == "GET" && c.path.starts_with("/repository/files/"))
        .expect("the policy was fetched");
    let at = calls[limited].at;
    let too_soon: Vec<String> = calls[limited + 1..]
        .iter()
        .filter(|c| c.at < at + Duration::from_secs(1))
        .map(|c| format!("{} {} after {:?}", c.method, c.path, c.at - at))
        .collect();
    assert!(
        too_soon.is_empty(),
        "called while rate limited: {too_soon:#?}"
    );
    assert_eq!(builds_of(&flow.gl, 7).len(), 1);
    assert_eq!(builds_of(&flow.gl, 8).len(), 1);
    flow.stop().await;
}

#[tokio::test]
async fn a_merge_request_pipeline_whose_answer_was_lost_is_not_made_twice() {
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
