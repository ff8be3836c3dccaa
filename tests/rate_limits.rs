//! Rate-limit pauses hold across processes: two `greenlight serve` processes on one database
//! (PostgreSQL when `TEST_DATABASE_URL` is set, and SQLite), one after the other against the
//! same fake GitHub. The first is answered 429 with `Retry-After` and records the pause; the
//! second, which never saw that answer, makes no call for the installation before the pause
//! ends, counted at the fake against the recorded end.

mod common;

use std::time::{Duration, Instant};

use common::fake_github::{FakeGitHub, INSTALLATION};
use common::flow::POLICY;
use common::github_events::pull_request;
use common::serve::Serve;
use common::{TestDb, eventually, github_request, wait_ready};
use greenlight::store::now_ms;
use wiremock::ResponseTemplate;

async fn deliver(port: u16, id: &str, number: u64, sha: &str) {
    let body = serde_json::to_vec(&pull_request("opened", number, sha, "octocat")).expect("json");
    let res = github_request(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/webhooks/github"),
        "pull_request",
        id,
        &body,
    )
    .send()
    .await
    .expect("deliver");
    assert_eq!(res.status().as_u16(), 202);
}

#[tokio::test]
async fn a_rate_limit_learned_by_one_process_holds_for_another() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let gh = FakeGitHub::start(Some(POLICY)).await;
        let (sha7, sha8) = ("7".repeat(40), "8".repeat(40));
        gh.set_pull(7, &sha7, "octocat", "open");
        gh.set_pull(8, &sha8, "octocat", "open");
        // The first installation call after the token is answered 429, come back in 3 s.
        gh.fail_next(
            "GET",
            "/repos/",
            ResponseTemplate::new(429).insert_header("retry-after", "3"),
        );
        // Instants of the fake's calls, on the wall clock the pause is recorded in.
        let (base_instant, base_ms) = (Instant::now(), now_ms());
        let wall = |at: Instant| base_ms + at.duration_since(base_instant).as_millis() as i64;

        let a = Serve::new(&db.url, &gh.url());
        let port_a = a.port;
        a.start();
        wait_ready(port_a).await;
        deliver(port_a, "d-7", 7, &sha7).await;
        let until = eventually(Duration::from_secs(20), || async {
            store
                .rate_limited_until("github", &INSTALLATION.to_string())
                .await
                .expect("read")
        })
        .await;
        let limited_calls = gh.calls().len();
        // The first process is gone; the second never saw the 429.
        a.kill();

        let b = Serve::new(&db.url, &gh.url());
        let port_b = b.port;
        b.start();
        wait_ready(port_b).await;
        deliver(port_b, "d-8", 8, &sha8).await;
        // Both pull requests get their check run, from the second process, in the end.
        gh.wait_for(Duration::from_secs(30), |m| {
            let shas: Vec<_> = m
                .check_runs
                .values()
                .filter_map(|c| c["head_sha"].as_str().map(str::to_owned))
                .collect();
            (shas.contains(&sha7) && shas.contains(&sha8)).then_some(())
        })
        .await
        .expect("both pull requests got their check run");
        b.kill();

        let early: Vec<String> = gh.calls()[limited_calls..]
            .iter()
            .filter(|c| !c.path.ends_with("/access_tokens") && wall(c.at) + 1 < until)
            .map(|c| {
                format!(
                    "{} {} at {} ms before the end",
                    c.method,
                    c.path,
                    until - wall(c.at)
                )
            })
            .collect();
        assert!(
            early.is_empty(),
            "{}: calls inside the pause: {early:#?}",
            db.label
        );
        store.close().await;
        db.cleanup().await;
    }
}
