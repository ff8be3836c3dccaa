//! `greenlight redeliver` against GitHub's documented App webhook deliveries
//! (`tests/common/fake_hook_deliveries.rs`): the binary as an operator runs it, the exact
//! requests it makes, and what it prints as a table and as JSON lines.

mod common;

use common::fake_github::FakeGitHub;
use common::flow::APP_ID;
use greenlight::store::{NewDelivery, Store};
use serde_json::Value;

const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/test-app-key.pem"
);

/// Runs `greenlight redeliver ARGS` as the App against `gh`, with the database `url`.
async fn redeliver(gh: &FakeGitHub, url: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("redeliver")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("GITHUB_APP_ID", APP_ID.to_string())
        .env("GITHUB_PRIVATE_KEY", KEY)
        .env("GITHUB_API_URL", gh.url())
        .output()
        .await
        .expect("run greenlight")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

/// (guid, outcome) of each JSON line.
fn outcomes(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["guid"].as_str().unwrap_or_default().to_owned(),
                l["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// `METHOD path?query` of every request to GitHub other than token minting.
fn requests(gh: &FakeGitHub) -> Vec<String> {
    gh.calls()
        .iter()
        .map(|c| match c.query.as_str() {
            "" => format!("{} {}", c.method, c.path),
            q => format!("{} {}?{q}", c.method, c.path),
        })
        .collect()
}

#[tokio::test]
async fn failed_deliveries_are_asked_again_once_each_and_only_those() {
    let gh = FakeGitHub::start(None).await;
    // GitHub's record, oldest first; listed newest first. Deliveries of the last day, then
    // older ones that `--since 24h` must never read.
    for i in 0..150 {
        gh.hook_delivery(&format!("old-ok-{i}"), "push", "", 200, 40 * 60 - i);
    }
    gh.hook_delivery("g-old", "pull_request", "opened", 503, 30 * 60);
    let e = gh.hook_delivery("g-e", "issue_comment", "created", 0, 20 * 60);
    for i in 0..150 {
        gh.hook_delivery(&format!("ok-{i}"), "push", "", 202, 19 * 60 - i * 7);
    }
    let _d1 = gh.hook_delivery("g-d", "pull_request", "synchronize", 502, 40);
    let d2 = gh.hook_delivery("g-d", "pull_request", "synchronize", 502, 35);
    gh.hook_delivery("g-c", "check_suite", "rerequested", 0, 30);
    gh.hook_delivery("g-b", "workflow_run", "completed", 503, 20);
    let a = gh.hook_delivery("g-a", "issue_comment", "created", 500, 10);
    gh.hook_delivery("g-b", "workflow_run", "completed", 202, 5);

    // g-c came (GitHub timed out waiting for the answer): Greenlight has it.
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .insert_delivery(&NewDelivery {
            forge: "github",
            delivery_id: "g-c",
            event: "check_suite",
            payload: b"{}",
            actionable: true,
        })
        .await
        .expect("insert");
    store.close().await;

    let listed = |cursor: Option<String>| match cursor {
        None => "GET /app/hook/deliveries?per_page=100".to_owned(),
        Some(c) => format!("GET /app/hook/deliveries?per_page=100&cursor={c}"),
    };
    // The 101st delivery, newest first, starts the second page.
    let second_page = gh.with(|m| format!("v1_{}", m.hook_deliveries[100]["id"]));
    let reads = vec![listed(None), listed(Some(second_page))];

    // A dry run reads the two pages of the last day and asks nothing.
    let dry = redeliver(&gh, &url, &["--since", "24h", "--dry-run", "--json"]).await;
    assert!(dry.status.success(), "{dry:?}");
    let lines = json_lines(&dry);
    assert_eq!(
        outcomes(&lines),
        pairs(&[
            ("g-a", "would_redeliver"),
            ("g-b", "succeeded_since"),
            ("g-c", "already_received"),
            ("g-d", "would_redeliver"),
            ("g-e", "would_redeliver"),
        ])
    );
    assert_eq!(lines[0]["id"], a);
    assert_eq!(lines[0]["event"], "issue_comment");
    assert_eq!(lines[0]["action"], "created");
    assert_eq!(lines[0]["status_code"], 500);
    assert_eq!(lines[0]["error"], Value::Null);
    assert_eq!(lines[3]["id"], d2, "an event by its latest failed delivery");
    assert_eq!(requests(&gh), reads, "the last day's pages, nothing older");
    assert!(gh.redelivery_requests().is_empty());

    // For real, as a table: each event that needs it once.
    let before = gh.calls().len();
    let real = redeliver(&gh, &url, &["--since", "24h"]).await;
    assert!(real.status.success(), "{real:?}");
    assert_eq!(gh.redelivery_requests(), [a, d2, e]);
    let made: Vec<String> = requests(&gh).split_off(before);
    let mut want = reads.clone();
    want.extend([a, d2, e].map(|id| format!("POST /app/hook/deliveries/{id}/attempts")));
    assert_eq!(made, want);
    let table = stdout(&real);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("          id  delivery"), "{table}");
    assert_eq!(rows.len(), 7, "{table}");
    assert!(
        rows[1].contains("g-a") && rows[1].ends_with("redelivered"),
        "{table}"
    );
    assert!(rows[1].contains("issue_comment.created"), "{table}");
    assert!(
        rows[2].contains("g-b") && rows[2].ends_with("succeeded since"),
        "{table}"
    );
    assert!(
        rows[3].contains("g-c") && rows[3].ends_with("already received"),
        "{table}"
    );
    assert_eq!(rows[6], "3 redelivered, 0 failed", "{table}");

    // Again: GitHub lists the redeliveries as succeeded, so nothing is asked twice.
    let again = redeliver(&gh, &url, &["--json"]).await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(gh.redelivery_requests(), [a, d2, e], "no second attempt");
    assert!(
        outcomes(&json_lines(&again))
            .iter()
            .all(|(_, o)| o == "succeeded_since" || o == "already_received"),
        "{}",
        stdout(&again)
    );
    // Every request was the App's own (the fake refuses an installation token), and said
    // who it came from.
    let agent = concat!("greenlight/", env!("CARGO_PKG_VERSION"));
    assert!(gh.calls().iter().all(|c| c.user_agents == [agent]));
}

#[tokio::test]
async fn a_refused_redelivery_is_reported_and_fails_the_command() {
    let gh = FakeGitHub::start(None).await;
    let a = gh.hook_delivery("g-a", "pull_request", "opened", 502, 10);
    let b = gh.hook_delivery("g-b", "pull_request", "opened", 502, 5);
    // GitHub refuses one (422: "Validation failed, or the endpoint has been spammed").
    gh.fail_next(
        "POST",
        &format!("/app/hook/deliveries/{b}/attempts"),
        wiremock::ResponseTemplate::new(422)
            .set_body_json(serde_json::json!({ "message": "Validation Failed" })),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.close().await;
    let out = redeliver(&gh, &url, &["--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(
        outcomes(&lines),
        pairs(&[("g-b", "failed"), ("g-a", "redelivered")])
    );
    assert!(
        lines[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("422") && e.contains("Validation Failed")),
        "{}",
        lines[0]
    );
    assert_eq!(gh.redelivery_requests(), [a], "the other still went out");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 redelivery request(s) failed"),
        "{out:?}"
    );
}
