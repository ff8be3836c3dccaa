//! `greenlight doctor` against both fakes (issue 20): a healthy setup is all ✓ and exits 0;
//! with one thing broken at a time — a missing permission, a missing event, failing webhook
//! deliveries, a GitLab token without `api`, a GitLab hook without a trigger, an invalid
//! GitLab policy, a dead letter — exactly that check is ✗, with its fix, and it exits 1.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::fake_github::FakeGitHub;
use common::fake_gitlab::{FakeGitLab, TOKEN};
use common::flow::APP_ID;
use greenlight::store::{NewDelivery, Store};
use serde_json::{Value, json};

struct Setup {
    gh: FakeGitHub,
    gl: FakeGitLab,
    db: String,
    _dir: tempfile::TempDir,
}

async fn healthy() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("greenlight.db").display());
    let store = Store::connect(&db).await.expect("db");
    store.migrate().await.expect("migrate");
    store.close().await;
    let gh = FakeGitHub::start(None).await;
    gh.hook_delivery("g-1", "pull_request", "opened", 202, 5);
    gh.hook_delivery("g-2", "issue_comment", "created", 202, 4);
    Setup {
        gh,
        gl: FakeGitLab::start(None).await,
        db,
        _dir: dir,
    }
}

fn doctor(s: &Setup, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("doctor")
        .args(extra)
        .env_clear()
        .env("DATABASE_URL", &s.db)
        .env("GITHUB_APP_ID", APP_ID.to_string())
        .env(
            "GITHUB_PRIVATE_KEY",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/test-app-key.pem"
            ),
        )
        .env("GITHUB_API_URL", s.gh.url())
        .env("GITLAB_URL", s.gl.url())
        .env("GITLAB_TOKEN", TOKEN)
        .env("RUST_LOG", "error")
        .output()
        .expect("run doctor")
}

/// The ✗ lines and the exit code.
fn failures(out: &Output) -> (Vec<String>, Option<i32>) {
    let text = String::from_utf8_lossy(&out.stdout);
    (
        text.lines()
            .filter(|l| l.starts_with('✗'))
            .map(str::to_owned)
            .collect(),
        out.status.code(),
    )
}

#[tokio::test]
async fn a_healthy_setup_passes_every_check() {
    let s = healthy().await;
    let out = doctor(&s, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(failures(&out), (vec![], Some(0)), "{text}");
    for check in [
        "✓ database reachable and migrated",
        "✓ no dead letters",
        "✓ GitHub App greenlight-test: every permission Greenlight needs",
        "✓ GitHub App greenlight-test: subscribed to every event Greenlight needs",
        "✓ GitHub: the last 2 webhook deliveries were answered 2xx",
        "✓ GitLab: token \"greenlight\" is active with the api scope, expires 2027-11-01",
    ] {
        assert!(text.lines().any(|l| l == check), "{check:?} in {text}");
    }
    let json: Value = serde_json::from_slice(&doctor(&s, &["--json"]).stdout).expect("json");
    assert_eq!(json["ok"], true);
    assert_eq!(json["checks"].as_array().map(Vec::len), Some(6));
}

#[tokio::test]
async fn a_missing_permission_is_the_one_failure() {
    let s = healthy().await;
    s.gh.with(|m| {
        let (mut permissions, _) = common::fake_github_apps::granted(&m.apps);
        permissions["actions"] = json!("read");
        m.apps.app_permissions = Some(permissions);
    });
    let out = doctor(&s, &[]);
    assert_eq!(
        failures(&out),
        (
            vec!["✗ GitHub App greenlight-test lacks permissions: Actions (Read and write)".into()],
            Some(1)
        )
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fix: https://github.com/apps/greenlight-test → App settings → Permissions & events: grant them"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_event_is_the_one_failure() {
    let s = healthy().await;
    s.gh.with(|m| {
        let (_, events) = common::fake_github_apps::granted(&m.apps);
        let kept: Vec<Value> = events
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| *e != "deployment_protection_rule")
            .cloned()
            .collect();
        m.apps.app_events = Some(Value::Array(kept));
    });
    let out = doctor(&s, &[]);
    assert_eq!(
        failures(&out),
        (
            vec![
                "✗ GitHub App greenlight-test is not subscribed to: Deployment protection rule"
                    .into()
            ],
            Some(1)
        )
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Subscribe to events: tick them"));
}

#[tokio::test]
async fn failing_deliveries_are_the_one_failure() {
    let s = healthy().await;
    s.gh.with(|m| m.hook_deliveries.clear());
    s.gh.hook_delivery("g-1", "pull_request", "opened", 503, 9);
    s.gh.hook_delivery("g-2", "push", "", 202, 8);
    s.gh.hook_delivery("g-3", "issue_comment", "created", 401, 7);
    s.gh.hook_delivery("g-4", "pull_request", "synchronize", 401, 6);
    let out = doctor(&s, &[]);
    assert_eq!(
        failures(&out),
        (
            vec![
                "✗ GitHub: 3 of the last 4 webhook deliveries failed: 401 × 2 (pull_request, issue_comment), 503 × 1 (pull_request)"
                    .into()
            ],
            Some(1)
        )
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fix: 401: GITHUB_WEBHOOK_SECRET differs from the App's webhook secret; 5xx or no answer"),
        "{text}"
    );
    let asked =
        s.gh.calls()
            .into_iter()
            .any(|c| c.method == "GET" && c.path == "/app/hook/deliveries");
    assert!(asked);
}

#[tokio::test]
async fn a_gitlab_token_without_api_is_the_one_failure() {
    let s = healthy().await;
    s.gl.with(|m| m.setup.scopes = Some(vec!["read_api".into(), "read_repository".into()]));
    let out = doctor(&s, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["ok"], false);
    let failed: Vec<&Value> = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(
        failed,
        [&json!({
            "ok": false,
            "check": "GitLab: token \"greenlight\" has scopes [read_api, read_repository]",
            "fix": "create a token with the api scope and set it as GITLAB_TOKEN",
        })]
    );
}

#[tokio::test]
async fn a_dead_letter_is_the_one_failure_with_its_reason() {
    let s = healthy().await;
    let store = Store::connect(&s.db).await.expect("db");
    store
        .insert_delivery(&NewDelivery {
            forge: "github",
            delivery_id: "d-1",
            event: "pull_request",
            payload: b"{}",
            actionable: true,
        })
        .await
        .expect("insert");
    let job = store
        .claim(Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("a job");
    store
        .dead_letter(&job, "GitHub App not configured")
        .await
        .expect("dead");
    store.close().await;
    let out = doctor(&s, &[]);
    let (failed, code) = failures(&out);
    assert_eq!(code, Some(1));
    assert_eq!(
        failed,
        [format!(
            "✗ 1 dead letter(s): #{} pull_request: GitHub App not configured",
            job.id
        )]
    );
}

/// A project set up as `setup gitlab` leaves it: Maintainer token, the webhook with every
/// trigger, a valid policy on `main`.
async fn with_gitlab_project() -> Setup {
    let s = healthy().await;
    let gl = FakeGitLab::start(Some(common::flow_gitlab::POLICY)).await;
    gl.with(|m| {
        let me = m.me.0;
        m.members.insert(me, 40);
        m.setup.hooks.insert(
            7,
            json!({ "id": 7, "url": "https://greenlight.example.com/webhooks/gitlab",
                    "merge_requests_events": true, "note_events": true, "pipeline_events": true,
                    "push_events": true, "deployment_events": true, "job_events": false,
                    "enable_ssl_verification": true, "token": "s3cret" }),
        );
    });
    Setup { gl, ..s }
}

const PROJECT_ARGS: &[&str] = &["--gitlab-project", "acme/widgets"];

fn doctor_project(s: &Setup) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("doctor")
        .args(PROJECT_ARGS)
        .env_clear()
        .env("DATABASE_URL", &s.db)
        .env("GITLAB_URL", s.gl.url())
        .env("GITLAB_TOKEN", TOKEN)
        .env("GREENLIGHT_PUBLIC_URL", "https://greenlight.example.com")
        .env("RUST_LOG", "error")
        .output()
        .expect("run doctor")
}

#[tokio::test]
async fn a_healthy_gitlab_project_passes() {
    let s = with_gitlab_project().await;
    let out = doctor_project(&s);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(failures(&out), (vec![], Some(0)), "{text}");
    for check in [
        "✓ GitLab: the token's role in the project acme/widgets is Maintainer",
        "✓ GitLab: the webhook of the project acme/widgets (https://greenlight.example.com/webhooks/gitlab) has every trigger, SSL verification on",
        "✓ GitLab: .gitlab/greenlight.toml of the project acme/widgets on main is valid",
    ] {
        assert!(text.lines().any(|l| l == check), "{check:?} in {text}");
    }
}

#[tokio::test]
async fn a_gitlab_hook_without_a_trigger_is_the_one_failure() {
    let s = with_gitlab_project().await;
    s.gl.with(|m| {
        if let Some(h) = m.setup.hooks.get_mut(&7) {
            h["note_events"] = json!(false);
        }
    });
    let out = doctor_project(&s);
    assert_eq!(
        failures(&out),
        (
            vec![
                "✗ GitLab: the webhook of the project acme/widgets lacks triggers: Comments".into()
            ],
            Some(1)
        )
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("fix: greenlight setup gitlab --project acme/widgets")
    );
}

#[tokio::test]
async fn an_invalid_gitlab_policy_is_the_one_failure() {
    let s = with_gitlab_project().await;
    s.gl.with(|m| m.policy = Some("[deploy]\nenvironment = \"production\"\nmystery = 1\n".into()));
    let out = doctor_project(&s);
    let (failed, code) = failures(&out);
    assert_eq!(code, Some(1));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("✗ GitLab: .gitlab/greenlight.toml:3:"),
        "{failed:?}"
    );
    assert!(
        failed[0].contains("of the project acme/widgets: ") && failed[0].contains("mystery"),
        "{failed:?}"
    );
}
