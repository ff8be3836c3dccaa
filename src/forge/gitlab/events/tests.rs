use serde_json::{Value, json};

use super::*;

const HEAD: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/gitlab/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

fn parse_value(event: &str, v: &Value) -> Parsed {
    parse(event, &serde_json::to_vec(v).expect("encode")).expect("parses")
}

fn event(event: &str, v: &Value) -> Event {
    match parse_value(event, v) {
        Parsed::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn repo() -> RepoRef {
    RepoRef {
        name: RepoName("acme/widgets".into()),
        forge_id: 15,
        default_branch: "main".into(),
    }
}

const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";

#[test]
fn merge_request_opened() {
    let e = event(MR, &fixture("merge_request.open"));
    assert_eq!(
        e,
        Event::PullRequestUpdated(PullRequest {
            repo: repo(),
            number: PrNumber(7),
            head: CommitSha::parse(HEAD).expect("sha"),
            head_ref: "faster-sprockets".into(),
            author: Login("root".into()),
            draft: false,
            from_fork: false,
            title: "Faster widget sprockets".into(),
            sender_id: 1,
            pushed: true,
            updated_at: 1_795_201_200_000,
        })
    );
}

#[test]
fn the_hook_user_brought_the_head_on_open_and_on_new_commits_only() {
    let mut v = fixture("merge_request.open");
    v["user"]["id"] = json!(77);
    let pushed = |v: &Value| match event(MR, v) {
        Event::PullRequestUpdated(pr) => (pr.pushed, pr.sender_id),
        other => panic!("an update, got {other:?}"),
    };
    assert_eq!(pushed(&v), (true, 77), "open");
    v["object_attributes"]["action"] = json!("reopen");
    assert_eq!(pushed(&v), (false, 77), "reopen");
    v["object_attributes"]["action"] = json!("update");
    v["changes"] = json!({ "draft": { "previous": true, "current": false } });
    assert_eq!(pushed(&v), (false, 77), "draft → ready");
    v["object_attributes"]["oldrev"] = json!("0123456789abcdef0123456789abcdef01234567");
    assert_eq!(pushed(&v), (true, 77), "new commits");
}

#[test]
fn merge_request_actions() {
    let mut v = fixture("merge_request.open");
    v["object_attributes"]["action"] = json!("reopen");
    assert!(matches!(event(MR, &v), Event::PullRequestUpdated(_)));

    v["object_attributes"]["action"] = json!("update");
    assert!(
        matches!(parse_value(MR, &v), Parsed::Ignored(_)),
        "a title edit is not new code"
    );
    v["object_attributes"]["oldrev"] = json!("0123456789abcdef0123456789abcdef01234567");
    assert!(
        matches!(event(MR, &v), Event::PullRequestUpdated(_)),
        "new commits"
    );
    v["object_attributes"]["oldrev"] = Value::Null;
    v["changes"] = json!({ "draft": { "previous": true, "current": false } });
    assert!(
        matches!(event(MR, &v), Event::PullRequestUpdated(_)),
        "ready"
    );

    for action in ["close", "merge"] {
        v["object_attributes"]["action"] = json!(action);
        assert_eq!(
            event(MR, &v),
            Event::PullRequestClosed {
                repo: repo(),
                pr: PrNumber(7)
            },
            "{action}"
        );
    }
    for action in ["approved", "unapproved", "approval", "unapproval"] {
        v["object_attributes"]["action"] = json!(action);
        assert!(
            matches!(parse_value(MR, &v), Parsed::Ignored(_)),
            "{action}"
        );
    }
}

#[test]
fn forks_drafts_and_someone_else_pushing() {
    let mut v = fixture("merge_request.open");
    v["object_attributes"]["source_project_id"] = json!(99);
    v["object_attributes"]["work_in_progress"] = json!(true);
    v["user"]["id"] = json!(2);
    let Event::PullRequestUpdated(pr) = event(MR, &v) else {
        panic!("update")
    };
    assert!(pr.from_fork);
    assert!(pr.draft);
    assert_eq!(pr.author.as_str(), "", "the actor is not the author");
}

#[test]
fn note_on_a_merge_request() {
    let e = event(NOTE, &fixture("note.merge_request"));
    assert_eq!(
        e,
        Event::CommentCreated(Comment {
            repo: repo(),
            pr: PrNumber(7),
            id: 5001,
            author: Login("hubot".into()),
            author_id: 3,
            author_is_bot: false,
            body: "Reviewed, looks right.\n\n/approve-release da15608".into(),
            created_at: 1_795_203_000_000,
        })
    );
}

#[test]
fn system_edited_and_other_notes_are_ignored() {
    let mut v = fixture("note.merge_request");
    v["object_attributes"]["system"] = json!(true);
    assert!(matches!(parse_value(NOTE, &v), Parsed::Ignored(_)));
    v["object_attributes"]["system"] = json!(false);
    v["object_attributes"]["action"] = json!("update");
    assert!(matches!(parse_value(NOTE, &v), Parsed::Ignored(_)));
    v["object_attributes"]["action"] = json!("create");
    v["object_attributes"]["noteable_type"] = json!("Issue");
    assert!(matches!(parse_value(NOTE, &v), Parsed::Ignored(_)));
    // Older GitLab: no action at all means a new note.
    let mut old = fixture("note.merge_request");
    old["object_attributes"]
        .as_object_mut()
        .expect("object")
        .remove("action");
    assert!(matches!(event(NOTE, &old), Event::CommentCreated(_)));
}

#[test]
fn bots_never_command() {
    let bot = |user: Value| {
        let mut v = fixture("note.merge_request");
        v["user"] = user;
        match event(NOTE, &v) {
            Event::CommentCreated(c) => c.author_is_bot,
            other => panic!("{other:?}"),
        }
    };
    assert!(bot(
        json!({ "id": 9, "username": "project_15_bot_0f1e2d3c" })
    ));
    assert!(bot(json!({ "id": 9, "username": "project_15_bot" })));
    assert!(bot(json!({ "id": 9, "username": "group_7_bot_ab12" })));
    assert!(bot(
        json!({ "id": 9, "username": "service_account_group_7_1a2b" })
    ));
    assert!(bot(json!({ "id": 9, "username": "alice", "bot": true })));
    assert!(!bot(json!({ "id": 9, "username": "robot" })));
    assert!(!bot(json!({ "id": 9, "username": "project_manager_bot" })));
    assert!(
        !bot(json!({ "id": 9, "username": "project_15_bot", "bot": false })),
        "GitLab's own flag wins over the name"
    );
}

#[test]
fn pipeline_status_changes() {
    let e = event(PIPELINE, &fixture("pipeline.success"));
    let Event::PipelineUpdated(run) = e else {
        panic!("pipeline")
    };
    assert_eq!(run.repo, repo());
    assert_eq!(run.run_id, 31);
    assert_eq!(run.run_head.as_str(), HEAD);
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        run.url,
        "https://gitlab.example.com/acme/widgets/-/pipelines/31"
    );
    assert_eq!(run.sha_input, None);
    assert_eq!(
        run.created_at,
        chrono::DateTime::parse_from_rfc3339("2026-11-20T19:05:00Z")
            .expect("time")
            .timestamp_millis()
    );
    let mut v = fixture("pipeline.success");
    for (status, ours) in [
        ("created", RunStatus::Queued),
        ("pending", RunStatus::Queued),
        ("waiting_for_resource", RunStatus::Queued),
        ("manual", RunStatus::Queued),
        ("running", RunStatus::InProgress),
        ("failed", RunStatus::Failed),
        ("canceled", RunStatus::Cancelled),
        ("skipped", RunStatus::Cancelled),
    ] {
        v["object_attributes"]["status"] = json!(status);
        let Event::PipelineUpdated(run) = event(PIPELINE, &v) else {
            panic!("pipeline")
        };
        assert_eq!(run.status, ours, "{status}");
    }
}

#[test]
fn deploy_pipelines_carry_their_sha_and_old_hooks_have_no_url() {
    let mut v = fixture("pipeline.success");
    v["object_attributes"]["variables"] = json!([
        { "key": "GREENLIGHT_ENVIRONMENT", "value": "production" },
        { "key": "GREENLIGHT_SHA", "value": HEAD },
    ]);
    v["object_attributes"]
        .as_object_mut()
        .expect("object")
        .remove("url");
    v["object_attributes"]["created_at"] = json!("2026-11-20T19:05:00.123Z");
    let Event::PipelineUpdated(run) = event(PIPELINE, &v) else {
        panic!("pipeline")
    };
    assert_eq!(run.sha_input.as_ref().map(CommitSha::as_str), Some(HEAD));
    assert_eq!(
        run.url,
        "https://gitlab.example.com/acme/widgets/-/pipelines/31"
    );
}

#[test]
fn a_pipeline_with_a_deploy_job_waiting_names_its_environment() {
    let mut v = fixture("pipeline.success");
    v["object_attributes"]["status"] = json!("manual");
    v["builds"] = json!([
        { "id": 1, "name": "test", "status": "success", "environment": null },
        { "id": 2, "name": "review", "status": "success",
          "environment": { "name": "review/x", "action": "start" } },
        { "id": 3, "name": "deploy", "status": "manual",
          "environment": { "name": "production", "action": "start", "deployment_tier": "production" } },
    ]);
    let Event::PipelineUpdated(run) = event(PIPELINE, &v) else {
        panic!("pipeline")
    };
    assert_eq!(run.waiting_on.as_deref(), Some("production"));
    // A manual job that deploys nowhere, or no builds at all: nothing waits on approvals.
    v["builds"] = json!([{ "id": 4, "name": "lint", "status": "manual", "environment": null }]);
    let Event::PipelineUpdated(run) = event(PIPELINE, &v) else {
        panic!("pipeline")
    };
    assert_eq!(run.waiting_on, None);
    let Event::PipelineUpdated(run) = event(PIPELINE, &fixture("pipeline.success")) else {
        panic!("pipeline")
    };
    assert_eq!(run.waiting_on, None);
}

#[test]
fn malformed_payloads_are_errors_and_other_events_ignored() {
    let mut v = fixture("pipeline.success");
    v["object_attributes"]["sha"] = json!("nope");
    assert!(parse(PIPELINE, &serde_json::to_vec(&v).expect("encode")).is_err());
    assert!(parse(MR, b"{}").is_err());
    assert!(matches!(
        parse("Tag Push Hook", b"{}").expect("parses"),
        Parsed::Ignored(_)
    ));
}

#[test]
fn a_push_to_the_default_branch_moves_it_and_other_pushes_are_ignored() {
    let mut v = fixture("push");
    assert_eq!(
        event("Push Hook", &v),
        Event::DefaultBranchMoved {
            repo: repo(),
            head: CommitSha::parse("95790bf891e76fee5e1747ab589903a6a1f80f22").expect("sha"),
        }
    );
    for other in ["refs/heads/feature", "refs/heads/main-old"] {
        v["ref"] = json!(other);
        assert!(
            matches!(parse_value("Push Hook", &v), Parsed::Ignored(_)),
            "{other}"
        );
    }
}
