//! Deploys: the happy path, failures, the queue, duplicate deliveries, a deploy start that
//! failed, and the reconciler.

use super::*;

pub(super) async fn happy_path_from_pull_request_to_production<W: World>() {
    for db in TestDb::all().await {
        let label = db.label;
        let w = W::start_on(db, Some(W::POLICY)).await;
        w.grant("mona", Perm::Maintain);
        w.ready(7, A, "octocat").await;
        assert_eq!(
            w.check_history("greenlight/pipeline", A),
            vec![State::Pending, State::Running, State::Passed],
            "{label}"
        );
        let ready = w.card();
        assert!(ready.contains("/approve-release aaaaaaa"), "{ready}");
        assert!(ready.contains(&w.run_url(&w.pipeline_run(7))), "{ready}");
        assert!(ready.contains(W::PR_NOUN), "{ready}");
        assert_eq!(w.check("greenlight/release", A), Some(W::WAITING));

        w.comment(7, 5001, "mona", "LGTM\n\n/approve-release aaaaaaa")
            .await;
        deploying(&w, 7, A);
        assert_eq!(w.deploy_runs(), 1);
        w.deploy_finishes(State::Passed).await;

        let release = w.check_history("greenlight/release", A);
        assert_eq!(release.first(), Some(&W::WAITING), "{label}: {release:?}");
        assert_eq!(
            release[1..],
            [State::Running, State::Passed],
            "{label}: waiting, deploying, deployed"
        );
        assert_eq!(w.checks_count("greenlight/release", A), 1, "{label}");
        assert_eq!(w.deploy_reports(A), vec![State::Running, State::Passed]);
        assert_eq!(w.reactions(), vec![eyes(5001)]);
        let done = w.card();
        assert!(
            done.contains("Deployed") && done.contains("@mona"),
            "{done}"
        );
        assert!(done.contains(&w.run_url(&w.deploy_run())), "{done}");
        assert!(
            w.replies().is_empty(),
            "the card is edited in place, nothing else is posted"
        );
        assert_eq!(w.raw_cards().len(), 1, "one card");
        assert_eq!(w.deploys(), vec![A]);
        assert_eq!(
            w.audit_actions().await,
            vec![
                "mona approve accepted".to_owned(),
                "mona queue ok".to_owned(),
                "mona deploy_start ok".to_owned(),
                format!("{} deploy_end deployed", W::CI_ACTOR),
            ],
            "{label}"
        );
        w.finish().await;
    }
}

pub(super) async fn deploy_failure_is_reported_and_frees_the_environment<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release").await;
    deploying(&w, 7, A);
    w.deploy_finishes(State::Failed).await;

    assert_eq!(w.check("greenlight/release", A), Some(State::Failed));
    assert_eq!(w.deploy_reports(A), vec![State::Running, State::Failed]);
    let text = w.card_of(7);
    assert!(text.contains("Deploy failed"), "{text}");
    assert!(
        text.contains(&format!("the {} failed", W::DEPLOY_RUN_NOUN)),
        "{text}"
    );
    let audit = w.audit().await;
    assert!(
        audit
            .last()
            .is_some_and(|a| a.starts_with(&format!("{} deploy_end failed", W::CI_ACTOR))),
        "{audit:#?}"
    );

    // The environment is free: another pull request deploys at once.
    w.ready(8, B, "octocat").await;
    w.comment(8, 5002, "mona", "/approve-release").await;
    assert_eq!(w.deploys(), vec![A, B]);
    deploying(&w, 8, B);

    // And a failure hands the environment to the next in the queue.
    w.ready(9, C, "octocat").await;
    w.comment(9, 5003, "mona", "/approve-release").await;
    assert_eq!(w.deploys().len(), 2, "#9 waits");
    assert!(w.card_of(9).contains("queued"), "{}", w.card_of(9));
    w.deploy_finishes(State::Failed).await;
    assert_eq!(w.check("greenlight/release", B), Some(State::Failed));
    assert!(w.card_of(8).contains("Deploy failed"));
    assert_eq!(w.deploys(), vec![A, B, C], "the queue moved on");
    deploying(&w, 9, C);
    assert_eq!(w.reactions(), vec![eyes(5001), eyes(5002), eyes(5003)]);
    w.finish().await;
}

pub(super) async fn a_second_release_waits_for_the_first<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.ready(8, B, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release").await;
    w.comment(8, 5002, "mona", "/approve-release").await;

    assert_eq!(w.deploys(), vec![A], "one deploy per environment at a time");
    deploying(&w, 7, A);
    let queued = w.card_of(8);
    assert!(
        queued.contains("**Approved, queued** for `production`: position 1"),
        "{queued}"
    );
    assert_eq!(w.check("greenlight/release", B), Some(W::WAITING));

    w.deploy_finishes(State::Passed).await;
    assert_eq!(w.check("greenlight/release", A), Some(State::Passed));
    assert!(w.card_of(7).contains("Deployed"));
    assert_eq!(
        w.deploys(),
        vec![A, B],
        "the next one starts when the lock frees"
    );
    deploying(&w, 8, B);
    w.deploy_finishes(State::Passed).await;
    assert_eq!(w.check("greenlight/release", B), Some(State::Passed));
    assert!(w.card_of(8).contains("Deployed"));
    assert_eq!(w.deploy_runs(), 2);
    assert_eq!(w.deploy_reports(A), vec![State::Running, State::Passed]);
    assert_eq!(w.deploy_reports(B), vec![State::Running, State::Passed]);
    assert_eq!(w.reactions(), vec![eyes(5001), eyes(5002)]);
    w.finish().await;
}

pub(super) async fn the_same_webhook_twice_changes_nothing_twice<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    let opened = w.opened_as(7, A, "octocat", Opening::default());
    assert_eq!(w.deliver(&opened, "same-1").await, 202);
    w.settle().await;
    assert_eq!(
        w.deliver(&opened, "same-1").await,
        200,
        "a known delivery id"
    );
    w.settle().await;
    // The forge can also send the same event again under a new delivery id (a redelivery by
    // hand): the effects are still made once.
    w.send(opened).await;
    assert_eq!(w.pipelines(), 1);
    assert_eq!(w.checks_count("greenlight/pipeline", A), 1);
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));

    let done = w.run_reported(&w.pipeline_run(7), State::Passed);
    w.send(done.clone()).await;
    w.send(done).await;
    assert_eq!(w.checks_count("greenlight/release", A), 1);
    assert_eq!(w.check("greenlight/release", A), Some(W::WAITING));
    assert!(w.card().contains("Ready to release"));
    assert_eq!(w.raw_cards().len(), 1, "one card");

    let approve = w.commented(7, 5001, "mona", "/approve-release");
    w.send(approve.clone()).await;
    w.send(approve).await;
    assert_eq!(w.deploys().len(), 1);
    assert_eq!(w.deploy_runs(), 1);
    assert!(w.replies().is_empty(), "no reply, the card only");

    w.deploy_finishes(State::Passed).await;
    w.deploy_finishes(State::Passed).await;
    let release = w.check_history("greenlight/release", A);
    assert_eq!(release.first(), Some(&W::WAITING), "{release:?}");
    assert_eq!(release.last(), Some(&State::Passed), "{release:?}");
    assert_eq!(
        w.deploy_reports(A),
        vec![State::Running, State::Passed],
        "each said once"
    );
    assert_eq!(w.checks_count("greenlight/release", A), 1);
    assert!(w.card().contains("Deployed"));
    assert_eq!(w.reactions(), vec![eyes(5001)]);
    w.finish().await;
}

pub(super) async fn a_deploy_start_that_failed_is_looked_for_then_made_again_once<W: World>() {
    // The start fails and the forge did *not* carry it out. The retried job cannot know that:
    // it looks for the run first, waits while a run could still be on its way, and only then
    // starts it again. One deploy, not zero, not two.
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.fail_next_deploy_start();
    w.comment(7, 5001, "mona", "/approve-release").await;
    assert_eq!(w.deploy_runs(), 1, "started again after the failure");
    assert!(
        w.looked_for_deploy_run(),
        "looked for the run before starting it again"
    );
    deploying(&w, 7, A);
    w.deploy_finishes(State::Passed).await;
    assert_eq!(w.deploy_runs(), 1);
    assert_eq!(w.deploys(), vec![A]);
    assert_eq!(w.deploy_reports(A), vec![State::Running, State::Passed]);
    assert!(w.card().contains("Deployed"), "{}", w.card());
    let starts = w
        .audit()
        .await
        .iter()
        .filter(|a| a.contains(" deploy_start "))
        .count();
    assert_eq!(starts, 1, "{:#?}", w.audit().await);
    assert_eq!(w.reactions(), vec![eyes(5001)]);
    w.finish().await;
}

pub(super) async fn the_reconciler_recovers_runs_whose_webhooks_were_lost<W: World>() {
    use greenlight::engine::reconcile::reconcile_once;
    use std::time::Duration;
    let reconcile = |w: &W, quiet: Duration| {
        let engine = w.engine().clone();
        async move { reconcile_once(&engine, quiet).await.expect("pass") }
    };

    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.open(7, A, "octocat").await;
    let run = w.pipeline_run(7);
    // Still queued at the forge: nothing to do.
    w.run_is_now(&run, State::Pending);
    assert_eq!(reconcile(&w, Duration::ZERO).await, 0);
    // It passed, but no webhook ever came: the reconciler feeds what the forge says through
    // the inbox.
    w.run_is_now(&run, State::Passed);
    assert_eq!(reconcile(&w, Duration::ZERO).await, 1);
    w.settle().await;
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Passed));
    assert!(w.card().contains("Ready to release"), "{}", w.card());
    assert_eq!(
        reconcile(&w, Duration::ZERO).await,
        0,
        "nothing left waiting"
    );
    // The webhook arriving late changes nothing.
    w.report(&run, State::Passed).await;
    assert_eq!(w.raw_cards().len(), 1);

    // A release quiet for less than the threshold is left alone.
    w.comment(7, 5001, "mona", "/approve-release").await;
    deploying(&w, 7, A);
    let deploy = w.deploy_run();
    w.run_is_now(&deploy, State::Passed);
    assert_eq!(reconcile(&w, Duration::from_secs(600)).await, 0);
    assert_eq!(reconcile(&w, Duration::ZERO).await, 1);
    w.settle().await;
    assert!(w.card().contains("Deployed"), "{}", w.card());
    // The webhook arriving late changes nothing.
    w.report(&deploy, State::Passed).await;
    assert_eq!(w.deploy_reports(A), vec![State::Running, State::Passed]);
    assert_eq!(w.reactions(), vec![eyes(5001)]);
    assert_eq!(w.pipelines(), 1);
    w.finish().await;
}

/// The release's time comes from the clock the engine is given, not the machine's: every
/// audit entry of a release, approval to deploy end, is stamped by the story's clock.
pub(super) async fn the_release_keeps_the_time_of_the_clock_it_is_given<W: World>() {
    // 2026-01-01T00:00:00Z: long before the machine's own time.
    const NEW_YEAR: i64 = 1_767_225_600_000;
    let w = W::start(Some(W::POLICY)).await;
    w.clock().set(NEW_YEAR);
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release").await;
    deploying(&w, 7, A);
    w.deploy_finishes(State::Passed).await;
    assert_eq!(w.check("greenlight/release", A), Some(State::Passed));
    assert_eq!(w.deploy_reports(A), vec![State::Running, State::Passed]);
    assert_eq!(w.reactions(), vec![eyes(5001)]);

    let entries = w.store().audit_log(None, 100).await.expect("audit");
    assert_eq!(entries.len(), 4, "{entries:#?}");
    let hour = 3_600_000;
    for e in &entries {
        assert!(
            (NEW_YEAR..NEW_YEAR + hour).contains(&e.at),
            "{} {} stamped {} instead of the clock's time",
            e.action,
            e.outcome,
            e.at
        );
    }
    w.card_of(7);
    w.finish().await;
}
