//! Two replicas on one PostgreSQL database, as behind a load balancer (issue 25): two
//! `greenlight serve` processes share the queue, deliveries alternate between them, and they
//! are killed with SIGKILL in turn (up to eight times), each 0–2 ms after a dispatch it made
//! reached GitHub, while GitHub's answer is still on its way (answers come 400 ms late), and
//! restarted 300 ms later. The other replica takes over the dispatch job when its lease ends.
//! A delivery the killed process never answered goes to the other one, as GitHub's redelivery
//! through the balancer would.
//!
//! Pass, with the reconciler off: every release deployed, no check run, card, deployment,
//! deployment status or dispatch made twice, nothing dead or lost. PostgreSQL only (SQLite is
//! one process's file); skipped with a printed line when `TEST_DATABASE_URL` is unset.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_github::FakeGitHub;
use common::flow::POLICY;
use common::github_events::{comment, pull_request, workflow_run};
use common::serve::Serve;
use common::{TestDb, github_request, settle_within, wait_ready};
use greenlight::store::DeliveryState;
use serde_json::Value;

const PRS: u64 = 6;
/// One kill per dispatch, as long as they last: each is a chance for a run's webhooks to be
/// worked before the takeover learns the run (which job gets the repository first when the
/// dead one's lease ends is a race).
const KILLS: usize = 8;

/// Deliveries acknowledged, per replica and by id.
#[derive(Default)]
struct Figures {
    next: AtomicUsize,
    acknowledged_by: [AtomicU64; 2],
    acknowledged_ids: Mutex<HashSet<String>>,
}

/// Posts to the replicas in turn until one answers 2xx; a delivery the first one did not
/// answer goes to the other one.
async fn deliver(
    http: &reqwest::Client,
    ports: [u16; 2],
    figures: &Figures,
    event: &str,
    id: &str,
    payload: &Value,
) {
    let body = serde_json::to_vec(payload).expect("encode");
    let mut i = figures.next.fetch_add(1, Ordering::Relaxed) % 2;
    for _ in 0..2_000 {
        let url = format!("http://127.0.0.1:{}/webhooks/github", ports[i]);
        let res = github_request(http, &url, event, id, &body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if res.is_ok_and(|r| r.status().is_success()) {
            figures.acknowledged_by[i].fetch_add(1, Ordering::Relaxed);
            figures
                .acknowledged_ids
                .lock()
                .expect("ids")
                .insert(id.to_owned());
            return;
        }
        i = 1 - i;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("delivery {id} never acknowledged by either replica");
}

fn sha(pr: u64) -> String {
    format!("{pr:08x}{}", "d".repeat(32))
}

/// Run ids dispatched for `workflow`, with the commit each is for.
fn runs_of(gh: &FakeGitHub, workflow: &str) -> Vec<(String, u64)> {
    gh.with(|m| {
        m.dispatches
            .iter()
            .zip(m.runs.iter())
            .filter(|((file, _), _)| file == workflow)
            .map(|((_, body), (_, run))| {
                (
                    body["inputs"]["sha"].as_str().unwrap_or("").to_owned(),
                    *run,
                )
            })
            .collect()
    })
}

/// Which replica (by the `Host` it addresses the fake as) made the latest dispatch.
fn last_dispatcher(gh: &FakeGitHub, hosts: &[String; 2]) -> Option<usize> {
    gh.with(|m| {
        let call = m
            .calls
            .iter()
            .rev()
            .find(|c| c.method == "POST" && c.path.ends_with("/dispatches"))?;
        hosts.iter().position(|h| *h == call.host)
    })
}

/// How many entries of `counts` were made more than once, and what they are.
fn repeated(kind: &str, counts: &HashMap<String, usize>, out: &mut Vec<String>) {
    for (what, n) in counts.iter().filter(|(_, n)| **n > 1) {
        out.push(format!("{kind} {what} ×{n}"));
    }
}

fn count<I: IntoIterator<Item = String>>(keys: I) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_one_killed_mid_flow_deploy_everything_once() {
    let Some(db) = TestDb::postgres().await else {
        println!("two_replicas: TEST_DATABASE_URL not set, skipped");
        return;
    };
    let gh = FakeGitHub::start(Some(POLICY)).await;
    // A run's state is final as soon as it exists: a replica taking over a dispatch whose
    // record was lost finds a run whose webhooks may all have been worked already.
    gh.with(|m| m.runs_pass_at_once = true);
    // Each dispatch is answered 400 ms after GitHub carried it out, so every kill below lands
    // between a dispatch and its record: the dispatch is made, and the process that made it
    // never learns its run.
    gh.with(|m| m.slow_dispatch_answers = Some(Duration::from_millis(400)));
    for pr in 1..=PRS {
        gh.set_pull(pr, &sha(pr), "octocat", "open");
    }
    gh.set_permission("mona", "maintain");
    // Migrated once, before two processes start on it.
    let store = db.store().await;
    // One fake, addressed by two names: the `Host` of a call tells which replica made it.
    let api_urls = [gh.url(), gh.url().replace("127.0.0.1", "localhost")];
    let replicas = Arc::new(
        api_urls
            .clone()
            .map(|url| Serve::new(&db.url, &url).with("GREENLIGHT_MAX_ATTEMPTS", "100")),
    );
    let ports = [replicas[0].port, replicas[1].port];
    let hosts = api_urls.clone().map(|u| {
        u.trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    });
    for r in replicas.iter() {
        r.start();
    }
    for p in ports {
        wait_ready(p).await;
    }

    // The killer: 0–2 ms after a dispatch reached GitHub (its answer still on the way), the
    // replica that made it is killed, then restarted 300 ms later on the same database; the
    // next kill waits for the next dispatch after that restart. Killing the process that made
    // the dispatch is what leaves a dispatch without its record. `KILLS` kills, or fewer if
    // the round ends first; the other replica is always up.
    let kills = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (replicas, kills, done) = (replicas.clone(), kills.clone(), done.clone());
        let hosts = hosts.clone();
        let g = gh.clone();
        let dispatched = gh.with(|m| m.dispatched.clone());
        tokio::spawn(async move {
            for _ in 0..KILLS {
                let seen = g.dispatches().len();
                while g.dispatches().len() == seen {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(5), dispatched.notified()).await;
                }
                let Some(victim) = last_dispatcher(&g, &hosts) else {
                    continue;
                };
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 3)).await;
                replicas[victim].kill();
                kills.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(300)).await;
                replicas[victim].start();
                wait_ready(replicas[victim].port).await;
            }
        })
    };
    let figures = Figures::default();
    let http = reqwest::Client::new();

    // 1. Every pull request opens; the pipelines are dispatched.
    for pr in 1..=PRS {
        let payload = pull_request("opened", pr, &sha(pr), "octocat");
        deliver(
            &http,
            ports,
            &figures,
            "pull_request",
            &format!("open-{pr}"),
            &payload,
        )
        .await;
    }

    // 2. Every pipeline passes, its result delivered (twice) as soon as its dispatch reached
    // GitHub: while the process that made it may be dead, and before anyone learned its run.
    let mut passed_runs = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        for (s, run) in runs_of(&gh, "ci.yml") {
            if passed_runs.insert(run) {
                let payload = workflow_run("completed", run, "ci.yml", &s, Some("success"));
                for id in [format!("ci-{run}"), format!("ci-{run}-again")] {
                    deliver(&http, ports, &figures, "workflow_run", &id, &payload).await;
                }
            }
        }
        let passed = gh
            .check_runs()
            .iter()
            .filter(|c| c["name"] == "greenlight/pipeline" && c["conclusion"] == "success")
            .count() as u64;
        if passed >= PRS && gh.comments().len() as u64 >= PRS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{passed}/{PRS} pipelines passed in time; deliveries {:?}",
            store.count_by_state().await.expect("counts")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // 3. Every release is approved; each deploy run finishes once dispatched, which frees the
    // environment for the next one.
    for pr in 1..=PRS {
        let body = format!("/approve-release {}", &sha(pr)[..10]);
        let payload = comment("created", pr, 20_000 + pr, "mona", &body);
        deliver(
            &http,
            ports,
            &figures,
            "issue_comment",
            &format!("approve-{pr}"),
            &payload,
        )
        .await;
    }
    let mut finished = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        for (s, run) in runs_of(&gh, "deploy.yml") {
            if finished.insert(run) {
                let payload = workflow_run("completed", run, "deploy.yml", &s, Some("success"));
                let id = format!("deploy-{run}");
                deliver(&http, ports, &figures, "workflow_run", &id, &payload).await;
            }
        }
        let deployed = gh.with(|m| {
            m.deployment_statuses
                .iter()
                .filter(|(_, s)| s["state"] == "success")
                .map(|(d, _)| *d)
                .collect::<HashSet<u64>>()
                .len() as u64
        });
        if deployed >= PRS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{deployed}/{PRS} deployed in time; deliveries {:?}",
            store.count_by_state().await.expect("counts")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.store(true, Ordering::Relaxed);
    killer.await.expect("killer");
    settle_within(&store, Duration::from_secs(30)).await;
    for r in replicas.iter() {
        r.kill();
    }

    // Effects, each made once.
    let checks = count(
        gh.check_runs()
            .iter()
            .map(|c| format!("{} {}", c["name"], c["head_sha"])),
    );
    let cards = count(gh.with(|m| {
        m.comments
            .values()
            .map(|(pr, _)| pr.to_string())
            .collect::<Vec<_>>()
    }));
    let deployments = count(gh.deployments().iter().map(|d| d["ref"].to_string()));
    let dispatches = count(
        gh.dispatches()
            .iter()
            .map(|(file, body)| format!("{file} {}", body["inputs"]["sha"])),
    );
    let statuses = count(
        gh.with(|m| m.deployment_statuses.clone())
            .iter()
            .map(|(d, s)| format!("{d} {}", s["state"])),
    );
    let mut twice = Vec::new();
    repeated("check run", &checks, &mut twice);
    repeated("card on PR", &cards, &mut twice);
    repeated("deployment of", &deployments, &mut twice);
    repeated("dispatch", &dispatches, &mut twice);
    repeated("deployment status", &statuses, &mut twice);

    let rows: Vec<_> = store
        .list_deliveries(100_000, false)
        .await
        .expect("rows")
        .into_iter()
        .filter(|d| !d.delivery_id.starts_with("learned:"))
        .collect();
    let dead = store.list_deliveries(100_000, true).await.expect("dead");
    let done_ids: HashSet<&str> = rows
        .iter()
        .filter(|d| d.state == DeliveryState::Done)
        .map(|d| d.delivery_id.as_str())
        .collect();
    let acknowledged = figures.acknowledged_ids.lock().expect("ids").clone();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !done_ids.contains(id.as_str()))
        .collect();
    let by = [
        figures.acknowledged_by[0].load(Ordering::Relaxed),
        figures.acknowledged_by[1].load(Ordering::Relaxed),
    ];
    println!(
        "two replicas: {PRS} pull requests, {} kills, acknowledged {by:?} by replica, {} dispatches, dead {}, lost {}, duplicate effects {}",
        kills.load(Ordering::Relaxed),
        gh.dispatches().len(),
        dead.len(),
        lost.len(),
        twice.len()
    );
    assert!(
        kills.load(Ordering::Relaxed) >= 2,
        "each replica killed at least once"
    );
    assert!(
        by[0] > 0 && by[1] > 0,
        "deliveries spread over both: {by:?}"
    );
    assert!(
        dead.is_empty(),
        "{:?}",
        dead.iter()
            .map(|d| d.last_error.clone())
            .collect::<Vec<_>>()
    );
    assert!(lost.is_empty(), "acknowledged but not processed: {lost:?}");
    assert!(twice.is_empty(), "no effect was made twice: {twice:?}");
    assert_eq!(deployments.len() as u64, PRS, "every release was deployed");
    assert_eq!(
        rows.len(),
        acknowledged.len(),
        "every acknowledged delivery stored exactly once"
    );
    db.cleanup().await;
}
