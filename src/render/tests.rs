//! Snapshot tests of every template in every state. Review changes with `cargo insta review`
//! (or `INSTA_UPDATE=always cargo test` and `git diff`).

use super::*;

const SHA: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b";

fn card(stage: Stage) -> CardView {
    CardView {
        forge: "github".into(),
        repo: "acme/widgets".into(),
        pr: 7,
        sha: SHA.into(),
        short_sha: SHA[..7].into(),
        stage,
        pipeline_url: Some("https://github.com/acme/widgets/actions/runs/9001".into()),
        environment: "production".into(),
        approvals: Vec::new(),
        required: 1,
        approvers: "people with `maintain` permission or higher (not the pull request's author)"
            .into(),
        command: format!("/approve-release {}", &SHA[..7]),
        queue_position: None,
        deploy_url: None,
        superseded_by: None,
        detail: None,
    }
}

fn refusal(reason: RefusalReason) -> RefusalView {
    RefusalView {
        forge: "github".into(),
        actor: "mallory".into(),
        reason,
        head_short: Some(SHA[..7].into()),
        prefix: Some("0123abc".into()),
        permission: Some("write".into()),
        required_permission: Some("maintain".into()),
        pipeline_stage: Some("pipeline running".into()),
        freeze_reason: Some("holiday freeze".into()),
        environment: Some("production".into()),
        self_role: None,
    }
}

fn check(kind: CheckKind, stage: &str) -> CheckView {
    CheckView {
        forge: "github".into(),
        check: kind,
        stage: stage.into(),
        sha_short: SHA[..7].into(),
        run_url: Some("https://github.com/acme/widgets/actions/runs/9001".into()),
        environment: Some("production".into()),
        approvals: vec!["alice".into()],
        required: 2,
        message: None,
        line: None,
        path: None,
    }
}

#[test]
fn card_in_every_stage() {
    let r = Renderer::built_in();
    let stages = [
        Stage::PipelinePending,
        Stage::PipelineRunning,
        Stage::PipelineFailed,
        Stage::Ready,
        Stage::Queued,
        Stage::Deploying,
        Stage::Deployed,
        Stage::DeployFailed,
        Stage::Superseded,
        Stage::Closed,
    ];
    for stage in stages {
        let mut view = card(stage);
        if matches!(
            stage,
            Stage::Queued | Stage::Deploying | Stage::Deployed | Stage::DeployFailed
        ) {
            view.approvals = vec!["alice".into(), "bob".into()];
            view.required = 2;
            view.deploy_url = Some("https://github.com/acme/widgets/actions/runs/9002".into());
        }
        if stage == Stage::Queued {
            view.queue_position = Some(2);
        }
        if stage == Stage::DeployFailed {
            view.detail = Some("the deploy workflow failed".into());
        }
        if stage == Stage::Superseded {
            view.superseded_by = Some("aaaaaaa".into());
        }
        let text = r.card(&view).expect("renders");
        assert!(text.starts_with(CARD_MARKER), "{stage:?}");
        insta::assert_snapshot!(format!("card_{stage:?}"), text);
    }
}

#[test]
fn ready_card_shows_the_exact_command_and_approvers() {
    let text = Renderer::built_in()
        .card(&card(Stage::Ready))
        .expect("renders");
    assert!(text.contains(&format!("/approve-release {}", &SHA[..7])));
    assert!(text.contains("maintain"));
    assert!(text.contains("https://github.com/acme/widgets/actions/runs/9001"));
    assert!(text.contains(SHA));
}

#[test]
fn refusal_for_every_reason() {
    let r = Renderer::built_in();
    let reasons = [
        RefusalReason::PrClosed,
        RefusalReason::PipelineNotGreen,
        RefusalReason::AlreadyReleased,
        RefusalReason::StaleCommit,
        RefusalReason::ShaMismatch,
        RefusalReason::NotAllowed,
        RefusalReason::SelfApproval,
        RefusalReason::Frozen,
        RefusalReason::AlreadyApproved,
        RefusalReason::ForkNotAllowed,
    ];
    for reason in reasons {
        let text = r.refusal(&refusal(reason)).expect("renders");
        assert!(text.starts_with("@mallory "), "{reason:?}: {text}");
        insta::assert_snapshot!(format!("refusal_{reason:?}"), text);
    }
}

#[test]
fn a_held_release_says_what_holds_it_on_its_card_and_check() {
    let r = Renderer::built_in();
    let mut view = card(Stage::Queued);
    view.detail = Some("deploys are frozen: incident 42".into());
    let text = r.card(&view).expect("renders");
    assert!(text.contains("held"), "{text}");
    assert!(text.contains("deploys are frozen: incident 42"), "{text}");
    let mut view = check(CheckKind::Release, "approved");
    view.message = Some("1 of 2 required approvals".into());
    let text = r.check(&view).expect("renders");
    assert_eq!(text.title, "Approved, held: 1 of 2 required approvals");
}

#[test]
fn refusals_for_the_pusher_and_for_a_comment_older_than_the_head() {
    let r = Renderer::built_in();
    let mut view = refusal(RefusalReason::SelfApproval);
    view.self_role = Some("pusher".into());
    let text = r.refusal(&view).expect("renders");
    assert!(text.contains("pushed"), "{text}");
    assert!(text.contains(&SHA[..7]), "names the head: {text}");
    view.self_role = Some("author".into());
    let author = r.refusal(&view).expect("renders");
    assert_eq!(
        author,
        r.refusal(&refusal(RefusalReason::SelfApproval))
            .expect("renders")
    );
    let mut view = refusal(RefusalReason::StaleCommit);
    view.prefix = None;
    let text = r.refusal(&view).expect("renders");
    assert!(text.contains("written before"), "{text}");
    assert!(
        text.contains(&format!("/approve-release {}", &SHA[..7])),
        "{text}"
    );
}

#[test]
fn checks() {
    let r = Renderer::built_in();
    let cases = [
        (CheckKind::Pipeline, "queued"),
        (CheckKind::Pipeline, "in_progress"),
        (CheckKind::Pipeline, "success"),
        (CheckKind::Pipeline, "failure"),
        (CheckKind::Pipeline, "cancelled"),
        (CheckKind::Release, "awaiting_approval"),
        (CheckKind::Release, "approved"),
        (CheckKind::Release, "deploying"),
        (CheckKind::Release, "deployed"),
        (CheckKind::Release, "deploy_failed"),
        (CheckKind::Release, "superseded"),
    ];
    for (kind, stage) in cases {
        let text = r.check(&check(kind, stage)).expect("renders");
        assert!(
            !text.title.is_empty() && !text.summary.is_empty(),
            "{kind:?} {stage}"
        );
        insta::assert_snapshot!(
            format!("check_{kind:?}_{stage}"),
            format!("{}\n---\n{}", text.title, text.summary)
        );
    }
    let mut config = check(CheckKind::Config, "config_error");
    config.message = Some("unknown field `min_permision`".into());
    config.line = Some(8);
    config.path = Some(".github/greenlight.toml".into());
    let text = r.check(&config).expect("renders");
    assert_eq!(
        text.title,
        "Invalid Greenlight policy: .github/greenlight.toml line 8"
    );
    insta::assert_snapshot!("check_config", text.summary);
}

#[test]
fn help_enabled_and_not() {
    let r = Renderer::built_in();
    let view = |enabled| HelpView {
        forge: "github".into(),
        commands: crate::release::command::help_markdown(),
        enabled,
        policy_path: ".github/greenlight.toml".into(),
    };
    insta::assert_snapshot!("help_enabled", r.help(&view(true)).expect("renders"));
    let disabled = r.help(&view(false)).expect("renders");
    assert!(disabled.contains(".github/greenlight.toml"));
    insta::assert_snapshot!("help_not_enabled", disabled);
    let unknown = UnknownCommandView {
        forge: "github".into(),
        commands: crate::release::command::help_markdown(),
    };
    insta::assert_snapshot!(
        "unknown_command",
        r.unknown_command(&unknown).expect("renders")
    );
}

#[test]
fn overrides_replace_a_template_and_keep_the_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("card.md.j2"),
        "Custom card for {{ short_sha }}",
    )
    .expect("write");
    let r = Renderer::new(Some(dir.path())).expect("compiles");
    let text = r.card(&card(Stage::Ready)).expect("renders");
    assert_eq!(
        text,
        format!("{CARD_MARKER}\nCustom card for {}", &SHA[..7])
    );
    // The others are still the built-in ones.
    assert!(
        r.refusal(&refusal(RefusalReason::PrClosed))
            .expect("renders")
            .contains("closed")
    );
}

#[test]
fn broken_override_fails_at_start_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("refusal.md.j2"), "ok\n{% if %}\n").expect("write");
    let e = Renderer::new(Some(dir.path()))
        .expect_err("must not compile")
        .to_string();
    assert!(e.contains("refusal.md.j2:2"), "{e}");
}

#[test]
fn undefined_variables_are_errors_not_blanks() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("help.md.j2"), "{{ no_such_thing }}").expect("write");
    let r = Renderer::new(Some(dir.path())).expect("compiles");
    let view = HelpView {
        forge: "github".into(),
        commands: String::new(),
        enabled: true,
        policy_path: String::new(),
    };
    assert!(r.help(&view).is_err());
}
