use serde_json::{Value, json};

use super::*;

const HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/github/{name}.json",
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
        forge_id: 4242,
        default_branch: "main".into(),
    }
}

#[test]
fn pull_request_opened() {
    let e = event("pull_request", &fixture("pull_request.opened"));
    assert_eq!(
        e,
        Event::PullRequestUpdated(PullRequest {
            repo: repo(),
            number: PrNumber(7),
            head: CommitSha::parse(HEAD).expect("sha"),
            head_ref: "faster-sprockets".into(),
            author: Login("octocat".into()),
            draft: false,
            from_fork: false,
            title: "Faster widget sprockets".into(),
            sender_id: 1,
            pushed: true,
            updated_at: 1_795_201_272_000,
        })
    );
}

#[test]
fn only_opened_and_synchronize_bring_a_head() {
    let mut v = fixture("pull_request.opened");
    for (action, pushed) in [
        ("opened", true),
        ("synchronize", true),
        ("reopened", false),
        ("ready_for_review", false),
    ] {
        v["action"] = json!(action);
        v["sender"]["id"] = json!(77);
        let Event::PullRequestUpdated(pr) = event("pull_request", &v) else {
            panic!("{action}: an update");
        };
        assert_eq!((pr.pushed, pr.sender_id), (pushed, 77), "{action}");
    }
    v["pull_request"]["updated_at"] = json!("yesterday");
    assert!(parse("pull_request", &serde_json::to_vec(&v).expect("encode")).is_err());
}

#[test]
fn pull_request_actions() {
    let mut v = fixture("pull_request.opened");
    for action in ["reopened", "synchronize", "ready_for_review"] {
        v["action"] = json!(action);
        assert!(
            matches!(event("pull_request", &v), Event::PullRequestUpdated(_)),
            "{action}"
        );
    }
    v["action"] = json!("closed");
    assert_eq!(
        event("pull_request", &v),
        Event::PullRequestClosed {
            repo: repo(),
            pr: PrNumber(7)
        }
    );
    for action in [
        "edited",
        "labeled",
        "converted_to_draft",
        "review_requested",
        "assigned",
    ] {
        v["action"] = json!(action);
        assert!(
            matches!(parse_value("pull_request", &v), Parsed::Ignored(_)),
            "{action}"
        );
    }
}

#[test]
fn forks_and_deleted_forks() {
    let mut v = fixture("pull_request.opened");
    v["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/widgets");
    let Event::PullRequestUpdated(pr) = event("pull_request", &v) else {
        panic!("update")
    };
    assert!(pr.from_fork);
    v["pull_request"]["head"]["repo"] = Value::Null;
    let Event::PullRequestUpdated(pr) = event("pull_request", &v) else {
        panic!("update")
    };
    assert!(pr.from_fork, "a deleted fork is still a fork");
}

#[test]
fn draft_flag() {
    let mut v = fixture("pull_request.opened");
    v["pull_request"]["draft"] = json!(true);
    let Event::PullRequestUpdated(pr) = event("pull_request", &v) else {
        panic!("update")
    };
    assert!(pr.draft);
}

#[test]
fn comment_created_on_a_pull_request() {
    let e = event("issue_comment", &fixture("issue_comment.created"));
    assert_eq!(
        e,
        Event::CommentCreated(Comment {
            repo: repo(),
            pr: PrNumber(7),
            id: 5001,
            author: Login("hubot".into()),
            author_id: 3,
            author_is_bot: false,
            body: "Reviewed, looks right.\r\n\r\n/approve-release 6dcb09b".into(),
            created_at: 1_795_203_000_000,
        })
    );
}

#[test]
fn edited_deleted_and_issue_comments_are_ignored() {
    let mut v = fixture("issue_comment.created");
    for action in ["edited", "deleted"] {
        v["action"] = json!(action);
        assert!(
            matches!(parse_value("issue_comment", &v), Parsed::Ignored(_)),
            "{action}"
        );
    }
    let mut v = fixture("issue_comment.created");
    v["issue"]
        .as_object_mut()
        .expect("issue")
        .remove("pull_request");
    assert!(matches!(
        parse_value("issue_comment", &v),
        Parsed::Ignored(_)
    ));
}

#[test]
fn bots_are_recognised() {
    let mut v = fixture("issue_comment.created");
    v["comment"]["user"] = json!({ "login": "dependabot[bot]", "type": "Bot" });
    let Event::CommentCreated(c) = event("issue_comment", &v) else {
        panic!("comment")
    };
    assert!(c.author_is_bot);
    v["comment"]["user"] = json!({ "login": "greenlight[bot]", "type": "User" });
    let Event::CommentCreated(c) = event("issue_comment", &v) else {
        panic!("comment")
    };
    assert!(c.author_is_bot);
}

#[test]
fn workflow_run_completed() {
    let e = event("workflow_run", &fixture("workflow_run.completed"));
    let Event::PipelineUpdated(run) = e else {
        panic!("run")
    };
    assert_eq!(run.run_id, 30433642);
    assert_eq!(run.workflow_path, ".github/workflows/ci.yml");
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(run.title.contains(HEAD));
    assert_eq!(
        run.url,
        "https://github.com/acme/widgets/actions/runs/30433642"
    );
    assert_eq!(run.created_at, 1_795_201_320_000);
    let origin = run.origin.expect("a GitHub run has an origin");
    assert_eq!(origin.event, "workflow_dispatch");
    assert_eq!(origin.branch, "main");
    assert_eq!(origin.actor_id, Some(9_900_001));
    assert_eq!(origin.triggering_actor_id, Some(9_900_001));
    assert!(origin.is_dispatch_by("main", 9_900_001));
}

#[test]
fn workflow_run_statuses() {
    let mut v = fixture("workflow_run.completed");
    let cases = [
        ("requested", "queued", None, RunStatus::Queued),
        ("in_progress", "in_progress", None, RunStatus::InProgress),
        (
            "completed",
            "completed",
            Some("success"),
            RunStatus::Succeeded,
        ),
        ("completed", "completed", Some("failure"), RunStatus::Failed),
        (
            "completed",
            "completed",
            Some("timed_out"),
            RunStatus::Failed,
        ),
        (
            "completed",
            "completed",
            Some("startup_failure"),
            RunStatus::Failed,
        ),
        (
            "completed",
            "completed",
            Some("action_required"),
            RunStatus::Failed,
        ),
        (
            "completed",
            "completed",
            Some("cancelled"),
            RunStatus::Cancelled,
        ),
        (
            "completed",
            "completed",
            Some("skipped"),
            RunStatus::Cancelled,
        ),
        ("completed", "completed", None, RunStatus::Failed),
    ];
    for (action, status, conclusion, want) in cases {
        v["action"] = json!(action);
        v["workflow_run"]["status"] = json!(status);
        v["workflow_run"]["conclusion"] = json!(conclusion);
        let Event::PipelineUpdated(run) = event("workflow_run", &v) else {
            panic!("run")
        };
        assert_eq!(run.status, want, "{action} {status} {conclusion:?}");
    }
}

#[test]
fn check_run_rerequested() {
    let e = event("check_run", &fixture("check_run.rerequested"));
    assert_eq!(
        e,
        Event::RerunRequested {
            repo: repo(),
            head: CommitSha::parse(HEAD).expect("sha"),
            check_name: "greenlight/pipeline".into()
        }
    );
    let mut v = fixture("check_run.rerequested");
    v["action"] = json!("created");
    assert!(matches!(parse_value("check_run", &v), Parsed::Ignored(_)));
}

#[test]
fn check_suite_rerequested_names_the_suite_app_and_reruns_the_pipeline() {
    let v = fixture("check_suite.rerequested");
    assert_eq!(
        parse_value("check_suite", &v),
        Parsed::SuiteRerequested {
            app_id: 9999,
            event: Event::RerunRequested {
                repo: repo(),
                head: CommitSha::parse(HEAD).expect("sha"),
                check_name: "greenlight/pipeline".into()
            }
        }
    );
    for action in ["requested", "completed"] {
        let mut v = v.clone();
        v["action"] = json!(action);
        assert!(
            matches!(parse_value("check_suite", &v), Parsed::Ignored(_)),
            "{action}"
        );
    }
}

#[test]
fn installations() {
    let mut v = fixture("installation.created");
    assert_eq!(
        parse_value("installation", &v),
        Parsed::Installation(InstallationChange {
            installation_id: 4242,
            account: "acme".into(),
            removed: false
        })
    );
    v["action"] = json!("deleted");
    assert!(matches!(
        parse_value("installation", &v),
        Parsed::Installation(InstallationChange { removed: true, .. })
    ));
    v["action"] = json!("added");
    assert!(matches!(
        parse_value("installation_repositories", &v),
        Parsed::Installation(InstallationChange { removed: false, .. })
    ));
}

#[test]
fn other_events_are_ignored() {
    assert!(matches!(
        parse_value("release", &json!({ "action": "published" })),
        Parsed::Ignored(_)
    ));
    assert!(matches!(
        parse_value("star", &json!({ "action": "created" })),
        Parsed::Ignored(_)
    ));
}

#[test]
fn deliveries_without_an_installation_are_ignored() {
    let mut v = fixture("pull_request.opened");
    v.as_object_mut().expect("obj").remove("installation");
    assert!(matches!(
        parse_value("pull_request", &v),
        Parsed::Ignored(_)
    ));
}

#[test]
fn malformed_payloads_are_errors() {
    assert!(parse("pull_request", b"not json").is_err());
    let mut v = fixture("pull_request.opened");
    v["pull_request"]["head"]["sha"] = json!("main");
    assert!(parse("pull_request", &serde_json::to_vec(&v).expect("encode")).is_err());
    v["pull_request"] = json!({});
    assert!(parse("pull_request", &serde_json::to_vec(&v).expect("encode")).is_err());
}

#[test]
fn a_push_to_the_default_branch_moves_it_and_other_pushes_are_ignored() {
    let mut v = fixture("push");
    assert_eq!(
        event("push", &v),
        Event::DefaultBranchMoved {
            repo: repo(),
            head: CommitSha::parse("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c").expect("sha"),
        }
    );
    for other in [
        "refs/heads/feature",
        "refs/tags/v1.0",
        "refs/heads/main-old",
    ] {
        v["ref"] = json!(other);
        assert!(
            matches!(parse_value("push", &v), Parsed::Ignored(_)),
            "{other}"
        );
    }
}
