//! GitLab's wire shapes: real router, real workers, real reqwest client, GitLab faked over
//! HTTP. The release stories themselves are told once for both forges in `tests/stories.rs`;
//! this file keeps what only GitLab has: the exact requests and their bodies (pipeline refs and
//! variables, status history, award emoji names), GitLab's own notes and users, how commit
//! statuses live in pipelines, and GitLab's failure answers (lost answers, refused variables,
//! a status post that fails after a saved stage).

mod common;

use common::fake_gitlab::{FakeGitLab, MAIN_SHA};
use common::flow_gitlab::{GitLabFlow, POLICY, SIGNING_KEY};
use common::gitlab_events::merge_request;
use common::{GITLAB_TOKEN, TestDb};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";

/// People: (user id, username).
const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");
const DEV: (u64, &str) = (6, "dev");

/// `METHOD /path` of every write below the project, numeric ids replaced by `:id`.
fn writes(gl: &FakeGitLab) -> Vec<String> {
    gl.writes()
        .iter()
        .map(|c| format!("{} {}", c.method, normalise(&c.path)))
        .collect()
}

fn normalise(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                ":id"
            } else if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                ":sha"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Opens merge request `iid` at `sha` by the author and lets its pipeline pass.
async fn ready(flow: &GitLabFlow, iid: u64, sha: &str) -> Value {
    flow.gl.set_mr(iid, sha, AUTHOR.1, "opened", false);
    assert_eq!(
        flow.send(MR, merge_request("open", iid, sha, AUTHOR.0, false))
            .await,
        202
    );
    let p = flow.gl.last_pipeline(&format!("feature-{iid}"));
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "running"))
        .await;
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
    p
}

/// A note on merge request `iid`.
async fn say(flow: &GitLabFlow, iid: u64, id: u64, who: (u64, &str), body: &str) {
    assert_eq!(
        flow.send(NOTE, flow.gl.note_hook(iid, id, who, body)).await,
        202
    );
}

/// Lets the latest deploy pipeline finish with `status`.
async fn deploy_finishes(flow: &GitLabFlow, status: &str) {
    let p = flow.gl.deploys().pop().expect("a deploy pipeline");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "running"))
        .await;
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, status)).await;
}

fn state(gl: &FakeGitLab, name: &str, sha: &str) -> String {
    gl.status(name, sha)
        .and_then(|s| s["state"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "none".into())
}

fn card(gl: &FakeGitLab) -> String {
    gl.card().expect("a release card")
}

fn only_reply(gl: &FakeGitLab) -> String {
    let replies = gl.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    replies[0].clone()
}

fn nothing_deployed(gl: &FakeGitLab) {
    assert!(gl.deploys().is_empty(), "{:#?}", gl.deploys());
}

fn audit_outcomes(entries: &[greenlight::store::AuditEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.outcome, e.reason))
        .collect()
}

#[tokio::test]
async fn the_release_requests_in_order_with_their_bodies() {
    for db in TestDb::all().await {
        // The story (tests/stories.rs `happy_path_from_pull_request_to_production`) on the wire.
        let label = db.label;
        let flow = GitLabFlow::start_on(db, Some(POLICY)).await;
        flow.gl.set_access(MONA.0, 40);
        let p = ready(&flow, 7, A).await;
        assert_eq!(p["ref"], "feature-7", "built on the source branch");
        assert_eq!(p["variables"], json!([]), "no variables for the pipeline");
        assert_eq!(
            flow.gl.status_history("greenlight/pipeline", A),
            vec!["pending", "running", "success"]
        );
        assert_eq!(
            flow.gl.status("greenlight/pipeline", A).expect("status")["target_url"],
            p["web_url"]
        );

        say(&flow, 7, 5001, MONA, "LGTM\n\n/approve-release aaaaaaa").await;
        let deploy = flow.gl.deploys().pop().expect("deploy pipeline");
        assert_eq!(deploy["ref"], "main", "deploys run on the default branch");
        assert_eq!(deploy["sha"], MAIN_SHA);
        assert_eq!(
            deploy["variables"],
            json!([
                { "key": "GREENLIGHT_ENVIRONMENT", "value": "production" },
                { "key": "GREENLIGHT_SHA", "value": A },
                { "key": "GREENLIGHT_MR", "value": "7" },
            ])
        );
        deploy_finishes(&flow, "success").await;

        assert_eq!(
            writes(&flow.gl),
            vec![
                // opened: the pipeline on the source branch, then its pending status
                "POST /pipeline",
                "POST /statuses/:sha",
                // running, then passed: pipeline status, release status pending, the card
                "POST /statuses/:sha",
                "POST /statuses/:sha",
                "POST /statuses/:sha",
                "POST /merge_requests/:id/notes",
                // /approve-release: 👀, the deploy pipeline, release status running, the card
                "POST /merge_requests/:id/notes/:id/award_emoji",
                "POST /pipeline",
                "POST /statuses/:sha",
                "PUT /merge_requests/:id/notes/:id",
                // deploy pipeline success: release status success, the card
                "POST /statuses/:sha",
                "PUT /merge_requests/:id/notes/:id",
            ],
            "{label}"
        );
        assert_eq!(
            flow.gl.status_history("greenlight/release", A),
            vec!["pending", "running", "success"]
        );
        assert_eq!(flow.gl.awards(), vec![(5001, "eyes".into())]);
        let audit = flow.store.audit_log(None, 100).await.expect("audit");
        assert_eq!(
            audit_outcomes(&audit),
            vec![
                "mona approve accepted permission maintain",
                "mona queue ok 1 approval(s)",
                "mona deploy_start ok pipeline on main",
                &format!(
                    "gitlab-ci deploy_end deployed {}",
                    deploy["web_url"].as_str().unwrap_or("")
                ),
            ]
        );
        // Permission came from the members API, by user id.
        assert!(
            flow.gl
                .calls()
                .iter()
                .any(|c| c.method == "GET" && c.path == "/members/all/5")
        );
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn refusals_award_thumbsdown() {
    // The story `people_below_the_permission_cannot_approve` on the wire: GitLab's emoji
    // names.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(DEV.0, 30);
    ready(&flow, 7, A).await;
    let before = flow.gl.writes().len();
    say(&flow, 7, 5001, DEV, "/approve-release").await;
    assert_eq!(
        flow.gl.awards(),
        vec![(5001, "eyes".into()), (5001, "thumbsdown".into())]
    );
    // The note's one reply comes last, gathering its commands' answers.
    assert_eq!(
        writes(&flow.gl)[before..].to_vec(),
        vec![
            "POST /merge_requests/:id/notes/:id/award_emoji",
            "POST /merge_requests/:id/notes/:id/award_emoji",
            "POST /merge_requests/:id/notes",
        ]
    );
    nothing_deployed(&flow.gl);
    flow.stop().await;
}

#[tokio::test]
async fn a_pipeline_of_another_commit_never_counts() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
        .await;
    // The branch moved on before the pipeline ran: the pipeline we created reports B.
    let p = flow.gl.last_pipeline("feature-7");
    let id = p["id"].as_u64().expect("id");
    flow.gl
        .with(|m| m.pipelines.get_mut(&id).map(|p| p["sha"] = json!(B)));
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
    assert_eq!(state(&flow.gl, "greenlight/pipeline", A), "pending");
    assert!(flow.gl.card().is_none());
    say(&flow, 7, 5001, MONA, "/approve-release").await;
    assert!(only_reply(&flow.gl).contains("pipeline"), "not green");
    nothing_deployed(&flow.gl);
    flow.stop().await;
}

#[tokio::test]
async fn system_notes_bot_users_and_our_own_notes_never_act() {
    // The story `edited_comments_and_bots_never_act`, for GitLab's own kinds of note and user.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_access(42, 40);
    // A token user whose name and payload say nothing: known by the token's own user id.
    flow.gl.with(|m| m.me = (43, "greenlight".into()));
    flow.gl.set_access(43, 40);
    ready(&flow, 7, A).await;
    let before = flow.gl.calls().len();

    let mut system = flow.gl.note_hook(7, 5001, MONA, "/approve-release");
    system["object_attributes"]["system"] = json!(true);
    assert_eq!(flow.send(NOTE, system).await, 202);
    flow.send(
        NOTE,
        flow.gl
            .note_hook(7, 5003, (42, "project_15_bot_0f1e2d3c"), "/approve-release"),
    )
    .await;
    let mut flagged = flow.gl.note_hook(7, 5004, MONA, "/approve-release");
    flagged["user"]["bot"] = json!(true);
    flow.send(NOTE, flagged).await;

    assert_eq!(flow.gl.calls().len(), before, "not one call to GitLab");
    flow.send(
        NOTE,
        flow.gl
            .note_hook(7, 5005, (43, "greenlight"), "/approve-release"),
    )
    .await;
    let calls: Vec<String> = flow.gl.calls()[before..]
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(
        calls,
        vec!["GET /merge_requests/7/notes/5005"],
        "read back, then known as our own (the card taught who we are), nothing else"
    );
    nothing_deployed(&flow.gl);
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_outage_and_rate_limit_are_retried_without_duplicates() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    // Three 500s reading the merge request: more than the in-call retries, so the job itself
    // is retried later.
    for _ in 0..3 {
        flow.gl
            .fail_next("GET", "/merge_requests/7", ResponseTemplate::new(500));
    }
    // Then the pipeline creation hits the rate limit, with the reset time given.
    let reset = chrono::Utc::now().timestamp() + 1;
    flow.gl.fail_next(
        "POST",
        "/pipeline",
        ResponseTemplate::new(429)
            .insert_header("ratelimit-remaining", "0")
            .insert_header("ratelimit-reset", reset.to_string().as_str())
            .set_body_json(json!({ "message": "Retry later" })),
    );
    flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
        .await;
    assert_eq!(
        flow.gl.pipelines().len(),
        1,
        "one pipeline despite all that"
    );
    let tries = flow
        .gl
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path == "/pipeline")
        .count();
    assert_eq!(tries, 2, "rate limited once, then created");
    let (state, attempts) = flow
        .store
        .delivery_state(1)
        .await
        .expect("state")
        .expect("row");
    assert_eq!(state, greenlight::store::DeliveryState::Done);
    assert!(attempts >= 2, "rescheduled, not looped: {attempts}");

    // A lost answer to the deploy pipeline's creation: never a second deploy.
    let p = flow.gl.last_pipeline("feature-7");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
    flow.gl.lose_next_answer("POST", "/pipeline");
    say(&flow, 7, 5001, MONA, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 1);
    assert_eq!(state_of(&flow.gl), "running", "the retry came first");
    // The retried job found it by its GREENLIGHT_SHA among the default branch's pipelines.
    assert!(
        flow.gl
            .calls()
            .iter()
            .any(|c| c.method == "GET" && c.path.ends_with("/variables")),
        "looked for the pipeline"
    );
    deploy_finishes(&flow, "success").await;
    assert_eq!(state_of(&flow.gl), "success");
    assert!(card(&flow.gl).contains("Deployed"));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_finished_status_whose_answer_was_lost_is_not_posted_twice() {
    // GitLab keeps a finished status and makes a new one for each post: the retried job must
    // find the status it posted instead of posting it again.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
        .await;
    let p = flow.gl.last_pipeline("feature-7");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "running"))
        .await;
    flow.gl.lose_next_answer("POST", "/statuses");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;

    let instances = |name: &str| {
        flow.gl.with(|m| {
            m.statuses
                .iter()
                .filter(|s| s["name"] == name && s["sha"] == A)
                .count()
        })
    };
    assert_eq!(
        instances("greenlight/pipeline"),
        1,
        "{:?}",
        flow.gl.status_history("greenlight/pipeline", A)
    );
    assert_eq!(state(&flow.gl, "greenlight/pipeline", A), "success");
    let asked = flow
        .gl
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.ends_with("/statuses"))
        .count();
    assert_eq!(asked, 1, "looked for the status once, on the retry");
    assert!(
        card(&flow.gl).contains("/approve-release"),
        "{}",
        card(&flow.gl)
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_deploy_pipeline_that_failed_is_created_again_once() {
    // The story `a_deploy_start_that_failed_is_looked_for_then_made_again_once` on the wire.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    ready(&flow, 7, A).await;
    flow.gl
        .fail_next("POST", "/pipeline", ResponseTemplate::new(502));
    say(&flow, 7, 5001, MONA, "/approve-release").await;
    let tries = flow
        .gl
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path == "/pipeline")
        .count();
    assert_eq!(tries, 3, "the MR pipeline, the failed deploy, the deploy");
    assert_eq!(flow.gl.deploys().len(), 1);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_crash_after_a_deploy_failed_to_start_still_frees_the_environment() {
    // The deploy pipeline is refused; the job saves `deploy_failed`, then dies before saying so
    // and freeing the environment (here: GitLab fails the status post). The retry says it, the
    // audit has one entry, and the next release is not kept waiting for the lock's lease.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.with(|m| m.variables_forbidden = true);
    ready(&flow, 7, A).await;
    flow.gl.fail_next_when(
        "POST",
        &format!("/statuses/{A}"),
        Some(r#""state":"failed""#),
        ResponseTemplate::new(500),
    );
    say(&flow, 7, 5001, MONA, "/approve-release").await;
    nothing_deployed(&flow.gl);
    assert_eq!(state(&flow.gl, "greenlight/release", A), "failed");
    let failed_posts = flow
        .gl
        .calls()
        .iter()
        .filter(|c| c.path == format!("/statuses/{A}") && c.body["state"] == "failed")
        .count();
    assert_eq!(failed_posts, 2, "failed once, said again by the retry");
    assert!(card(&flow.gl).contains("Minimum role to use pipeline variables"));

    flow.gl.with(|m| m.variables_forbidden = false);
    ready(&flow, 8, B).await;
    say(&flow, 8, 5002, MONA, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 1, "the environment was freed");
    let audit = flow.store.audit_log(None, 100).await.expect("audit");
    let outcomes = audit_outcomes(&audit);
    let count = |prefix: &str| outcomes.iter().filter(|o| o.starts_with(prefix)).count();
    assert_eq!(count("greenlight deploy_end failed"), 1, "{outcomes:#?}");
    assert_eq!(count("mona approve accepted"), 2, "{outcomes:#?}");
    assert_eq!(count("mona queue ok"), 2, "{outcomes:#?}");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_crash_after_superseding_still_cancels_the_old_status_once() {
    // New commits supersede the ready candidate; the job saves `superseded`, then fails before
    // its `greenlight/release` status is canceled. The retry still cancels it, and the audit
    // says `superseded` once.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    ready(&flow, 7, A).await;
    flow.gl.fail_next_when(
        "POST",
        &format!("/statuses/{A}"),
        Some(r#""state":"canceled""#),
        ResponseTemplate::new(500),
    );
    flow.gl.set_mr(7, B, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("update", 7, B, AUTHOR.0, false))
        .await;
    assert_eq!(state(&flow.gl, "greenlight/release", A), "canceled");
    assert_eq!(state(&flow.gl, "greenlight/pipeline", B), "pending");
    let audit = flow.store.audit_log(None, 100).await.expect("audit");
    let superseded = audit.iter().filter(|e| e.action == "superseded").count();
    assert_eq!(superseded, 1, "{:#?}", audit_outcomes(&audit));
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

fn state_of(gl: &FakeGitLab) -> String {
    state(gl, "greenlight/release", A)
}

#[tokio::test]
async fn refused_pipeline_variables_say_what_to_change() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.with(|m| m.variables_forbidden = true);
    ready(&flow, 7, A).await;
    say(&flow, 7, 5001, MONA, "/approve-release").await;
    nothing_deployed(&flow.gl);
    assert_eq!(state(&flow.gl, "greenlight/release", A), "failed");
    // The status names the setting too, within GitLab's 255 characters.
    let status = flow.gl.status("greenlight/release", A).expect("status");
    let said = status["description"].as_str().unwrap_or_default();
    assert!(
        said.contains("Minimum role to use pipeline variables"),
        "{said}"
    );
    assert!(said.chars().count() <= 255, "{said}");
    let text = card(&flow.gl);
    assert!(
        text.contains("Minimum role to use pipeline variables"),
        "{text}"
    );
    assert!(
        text.contains("Insufficient permissions to set pipeline variables"),
        "{text}"
    );
    // The environment is free again.
    flow.gl.with(|m| m.variables_forbidden = false);
    ready(&flow, 8, B).await;
    say(&flow, 8, 5002, MONA, "/approve-release").await;
    assert_eq!(flow.gl.deploys().len(), 1);
    flow.stop().await;
}

#[tokio::test]
async fn only_authentic_deliveries_are_accepted() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    let opened = merge_request("open", 7, A, AUTHOR.0, false);
    assert_eq!(
        flow.deliver_with(MR, "d-1", &opened, "wrong-token", SIGNING_KEY)
            .await,
        401
    );
    assert_eq!(
        flow.deliver_with(
            MR,
            "d-2",
            &opened,
            GITLAB_TOKEN,
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        )
        .await,
        401
    );
    flow.settle().await;
    assert!(flow.gl.calls().is_empty(), "nothing acted on");
    assert!(
        flow.store
            .list_deliveries(10, false)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(flow.deliver(MR, "d-3", &opened).await, 202);
    flow.settle().await;
    assert_eq!(flow.gl.pipelines().len(), 1);
    flow.stop().await;
}

#[tokio::test]
async fn without_a_token_deliveries_are_dead_lettered_with_the_reason() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let engine =
        greenlight::engine::Engine::new(store.clone(), greenlight::render::Renderer::built_in());
    let mut intake = common::intake();
    intake.gitlab_signing_keys = None;
    let server = common::TestServer::start(
        store.clone(),
        intake,
        common::fast_workers(1),
        std::sync::Arc::new(engine),
    )
    .await;
    let body = serde_json::to_vec(&merge_request("open", 7, A, 1, false)).expect("json");
    let status = reqwest::Client::new()
        .post(server.url("/webhooks/gitlab"))
        .header("content-type", "application/json")
        .header("x-gitlab-event", MR)
        .header("x-gitlab-token", GITLAB_TOKEN)
        .header("idempotency-key", "k-1")
        .body(body)
        .send()
        .await
        .expect("send")
        .status();
    assert_eq!(status, 202);
    let dead = common::eventually(std::time::Duration::from_secs(10), || async {
        let rows = store.list_deliveries(10, true).await.expect("list");
        rows.into_iter().next()
    })
    .await;
    assert!(
        dead.last_error.unwrap_or_default().contains("GITLAB_TOKEN"),
        "the reason names the setting"
    );
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn greenlight_statuses_never_hold_a_pipeline_open() {
    // GitLab puts a status without `ref` into the newest pipeline of its commit, and counts it
    // in that pipeline's status: Greenlight's statuses must live in a pipeline of their own.
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    // The project's own push pipeline of the commit, already passed.
    let push_pipeline = flow.gl.with(|m| {
        m.next_id += 1;
        let id = m.next_id;
        m.pipelines.insert(
            id,
            json!({ "id": id, "ref": "feature-7", "sha": A, "status": "success",
                    "source": "push", "jobs": "success", "variables": [],
                    "web_url": format!("https://gitlab.example.com/acme/widgets/-/pipelines/{id}"),
                    "created_at": chrono::Utc::now().to_rfc3339() }),
        );
        id
    });
    let p = ready(&flow, 7, A).await;
    let id = p["id"].as_u64().expect("id");
    // Its jobs passed, and so did the pipeline: Greenlight saw it and the release is ready.
    assert_eq!(flow.gl.pipeline_now(id)["status"], "success");
    assert!(
        card(&flow.gl).contains("Ready to release"),
        "{}",
        card(&flow.gl)
    );
    assert_eq!(flow.gl.pipeline_now(push_pipeline)["status"], "success");
    // The widget shows the project's pipeline, not one of Greenlight's statuses.
    assert_eq!(flow.gl.head_pipeline(7).expect("head")["id"], id);
    // Every Greenlight status is in one external pipeline, on Greenlight's own ref.
    let external = flow.gl.external_pipelines();
    assert_eq!(external.len(), 1, "{external:#?}");
    assert_eq!(external[0]["ref"], "greenlight/statuses");
    let homes: Vec<Value> = flow.gl.with(|m| {
        m.statuses
            .iter()
            .map(|s| s["pipeline_id"].clone())
            .collect()
    });
    assert!(homes.iter().all(|h| *h == external[0]["id"]), "{homes:?}");
    // Awaiting approval, then deploying: the merge request's pipeline stays passed.
    assert_eq!(state(&flow.gl, "greenlight/release", A), "pending");
    say(&flow, 7, 5001, MONA, "/approve-release").await;
    assert_eq!(state(&flow.gl, "greenlight/release", A), "running");
    assert_eq!(flow.gl.pipeline_now(id)["status"], "success");
    let deploy = flow.gl.deploys().pop().expect("deploy");
    let deploy_id = deploy["id"].as_u64().expect("id");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&deploy, "running"))
        .await;
    flow.send(PIPELINE, flow.gl.pipeline_hook(&deploy, "success"))
        .await;
    assert_eq!(flow.gl.pipeline_now(deploy_id)["status"], "success");
    assert!(card(&flow.gl).contains("Deployed"), "{}", card(&flow.gl));
    assert_eq!(flow.gl.head_pipeline(7).expect("head")["id"], id);
    assert_eq!(flow.gl.pipeline_now(id)["status"], "success");
    assert_eq!(flow.gl.pipeline_now(push_pipeline)["status"], "success");
    // GitLab's hooks for the external pipeline change nothing.
    let before = flow.gl.writes().len();
    let ext = flow.gl.external_pipelines().pop().expect("external");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&ext, "success"))
        .await;
    assert_eq!(flow.gl.writes().len(), before);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn a_deploy_found_after_a_lost_answer_says_running_when_its_hook_came_first() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    // The deploy pipeline is created but the answer is lost, and the retry's first look does
    // not list it yet: the job is put back while the pipeline's hook arrives.
    let deploy = deploy_in_doubt(&flow).await;
    let hook = flow.gl.pipeline_hook(&deploy, "running");
    assert_eq!(flow.deliver(PIPELINE, "deploy-running", &hook).await, 202);
    // The same job says it on the status, then on the card: wait for both.
    common::eventually(std::time::Duration::from_secs(8), || async {
        (state_of(&flow.gl) == "running" && card(&flow.gl).contains("Deploying")).then_some(())
    })
    .await;
    assert!(card(&flow.gl).contains("Deploying"), "{}", card(&flow.gl));
    // The retry then finds it adopted: one deploy, the status still running, said once.
    flow.settle().await;
    assert_eq!(flow.gl.deploys().len(), 1);
    assert_eq!(state_of(&flow.gl), "running");
    assert_eq!(
        flow.gl.status_history("greenlight/release", A),
        vec!["pending", "running"]
    );
    deploy_finishes(&flow, "success").await;
    assert_eq!(state_of(&flow.gl), "success");
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

/// The release's deploy pipeline, as Greenlight knows it.
async fn deploy_run_of(flow: &GitLabFlow) -> Option<u64> {
    flow.store
        .releases_of_pull("gitlab", common::fake_gitlab::PATH, 7)
        .await
        .expect("releases")
        .iter()
        .find_map(|r| r.deploy_run_id)
}

/// Approves #7 while its deploy pipeline's creation answer is lost and the retry's first look
/// lists nothing: returns Greenlight's own pipeline, not yet known to the release.
async fn deploy_in_doubt(flow: &GitLabFlow) -> Value {
    flow.gl.set_access(MONA.0, 40);
    ready(flow, 7, A).await;
    flow.gl.lose_next_answer("POST", "/pipeline");
    flow.gl.fail_next(
        "GET",
        "/pipelines",
        ResponseTemplate::new(200).set_body_json(json!([])),
    );
    let approve = flow.gl.note_hook(7, 5001, MONA, "/approve-release");
    assert_eq!(flow.deliver(NOTE, "approve", &approve).await, 202);
    common::eventually(std::time::Duration::from_secs(10), || async {
        flow.gl
            .calls()
            .iter()
            .any(|c| c.method == "GET" && c.path == "/pipelines")
            .then_some(())
    })
    .await;
    flow.gl.deploys().pop().expect("created")
}

/// Anyone who may run the default branch's pipeline can give it `GREENLIGHT_SHA`: while
/// Greenlight's own deploy is in doubt, such a pipeline is never taken for it, neither from
/// its Pipeline Hook nor from the look-up.
#[tokio::test]
async fn a_deploy_pipeline_someone_else_started_is_never_adopted() {
    for by_hook in [true, false] {
        let flow = GitLabFlow::start(Some(POLICY)).await;
        let ours = deploy_in_doubt(&flow).await;
        let theirs = flow
            .gl
            .pipeline_by((DEV.0, DEV.1), "main", ours["variables"].clone());
        if by_hook {
            let hook = flow.gl.pipeline_hook(&theirs, "running");
            assert_eq!(flow.deliver(PIPELINE, "theirs", &hook).await, 202);
        }
        flow.settle().await;
        assert_eq!(
            deploy_run_of(&flow).await,
            ours["id"].as_u64(),
            "by hook: {by_hook}: Greenlight's own pipeline is the deploy"
        );
        let listed = flow
            .gl
            .calls()
            .into_iter()
            .rfind(|c| c.method == "GET" && c.path == "/pipelines")
            .expect("looked up");
        assert!(
            listed.query.contains("username=project_15_bot_0f1e2d3c"),
            "{}",
            listed.query
        );
        flow.send(PIPELINE, flow.gl.pipeline_hook(&ours, "success"))
            .await;
        assert_eq!(state_of(&flow.gl), "success");
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}
