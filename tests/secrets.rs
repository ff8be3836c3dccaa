//! No secret reaches the logs: the whole happy path of both forges at `trace` level (every
//! crate's logs), then a search of everything logged for the webhook secrets, the private key,
//! the App's JWT, the installation token, the GitLab access token and signing token.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::flow::{Flow, POLICY};
use common::flow_gitlab::{GitLabFlow, SIGNING_KEY};
use common::github_events::{comment, pull_request, workflow_run};
use common::{GITHUB_SECRET, GITLAB_TOKEN};
use common::{fake_gitlab, gitlab_events};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_happy_path_at_trace_level_logs_no_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sha = "abcdef1234567890abcdef1234567890abcdef12";
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    flow.gh.set_pull(7, sha, "octocat", "open");
    flow.send("pull_request", pull_request("opened", 7, sha, "octocat"))
        .await;
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", sha, Some("success")),
    )
    .await;
    flow.send(
        "issue_comment",
        comment("created", 7, 1, "mona", "/approve-release"),
    )
    .await;
    let deploy = flow.gh.last_run("deploy.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", deploy, "deploy.yml", sha, Some("success")),
    )
    .await;
    assert_eq!(
        flow.gh.deployment_states(),
        vec!["in_progress", "success"],
        "the path ran"
    );
    flow.stop().await;

    // The same on GitLab: token in every API call, signed deliveries.
    let flow = GitLabFlow::start(Some(common::flow_gitlab::POLICY)).await;
    flow.gl.set_access(5, 40);
    flow.gl.set_mr(7, sha, "octocat", "opened", false);
    flow.send(
        "Merge Request Hook",
        gitlab_events::merge_request("open", 7, sha, 1, false),
    )
    .await;
    let p = flow.gl.last_pipeline("feature-7");
    flow.send("Pipeline Hook", flow.gl.pipeline_hook(&p, "success"))
        .await;
    flow.send(
        "Note Hook",
        flow.gl.note_hook(7, 1, (5, "mona"), "/approve-release"),
    )
    .await;
    let deploy = flow.gl.deploys().pop().expect("a deploy pipeline");
    flow.send("Pipeline Hook", flow.gl.pipeline_hook(&deploy, "success"))
        .await;
    assert!(
        flow.gl.card().expect("card").contains("Deployed"),
        "the GitLab path ran"
    );
    flow.stop().await;

    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        text.len() > 10_000,
        "trace logs were captured ({} bytes)",
        text.len()
    );
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .expect("key");
    let key_line = key.lines().nth(3).expect("a line of key material");
    let forbidden = [
        ("webhook secret", GITHUB_SECRET),
        ("gitlab webhook token", GITLAB_TOKEN),
        ("gitlab access token", fake_gitlab::TOKEN),
        ("gitlab signing token", SIGNING_KEY),
        ("gitlab signing key material", &SIGNING_KEY[6..]),
        ("private key material", key_line),
        ("installation token", "ghs_faketoken"),
        ("a JWT", "eyJ"),
        ("an authorization header value", "Bearer "),
    ];
    for (what, needle) in forbidden {
        assert!(!text.contains(needle), "{what} appears in the logs");
    }
}
