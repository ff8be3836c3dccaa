//! Candidates and their pipelines: failures and `/retry`, forks, drafts, the policy (invalid,
//! missing, read again after a push), a lost pipeline answer, rate limits.

use super::*;

pub(super) async fn pipeline_failure_then_retry<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.open(7, A, "octocat").await;
    let first = w.pipeline_run(7);
    w.report(&first, State::Failed).await;
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Failed));
    let failed = w.card();
    assert!(
        failed.contains("Pipeline failed") && failed.contains("/retry"),
        "{failed}"
    );
    assert!(failed.contains(&w.run_url(&first)), "{failed}");

    // Approving a red commit is refused.
    w.comment(7, 5001, "mona", "/approve-release").await;
    let reply = w.only_reply();
    assert!(reply.contains("(it is pipeline failed)"), "{reply}");

    // The author retries: a new pipeline and a new check for the same commit.
    w.comment(7, 5002, "octocat", "/retry").await;
    assert_eq!(w.pipelines(), 2);
    assert_eq!(
        w.check_history("greenlight/pipeline", A),
        vec![State::Pending, State::Failed, State::Pending],
        "a new check after the failed one"
    );
    assert_eq!(
        w.checks_count("greenlight/pipeline", A),
        2,
        "one per attempt"
    );
    assert!(w.card().contains("Pipeline queued"), "{}", w.card());
    let second = w.pipeline_run(7);
    assert_ne!(first.id, second.id);

    // The first run's late reports change nothing.
    w.report(&first, State::Passed).await;
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));
    w.report(&second, State::Passed).await;
    assert!(w.card().contains("Ready to release"));
    w.report(&first, State::Failed).await;
    assert!(w.card().contains("Ready to release"));
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Passed));

    w.comment(7, 5003, "mona", "/approve-release").await;
    assert_eq!(w.deploys().len(), 1);
    deploying(&w, 7, A);
    let expected: Vec<_> = [refused(5001).to_vec(), vec![eyes(5002), eyes(5003)]].concat();
    assert_eq!(w.reactions(), expected);
    w.finish().await;
}

pub(super) async fn retry_by_a_reader_is_refused<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("reader", Perm::Read);
    w.open(7, A, "octocat").await;
    let run = w.pipeline_run(7);
    w.report(&run, State::Failed).await;
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Failed));
    assert!(w.card().contains("Pipeline failed"));
    w.comment(7, 5001, "reader", "/retry").await;
    let reply = w.only_reply();
    assert!(reply.contains("is `read`"), "{reply}");
    assert_eq!(w.pipelines(), 1);
    assert_eq!(w.reactions(), vec![eyes(5001)]);
    w.finish().await;
}

pub(super) async fn forks_are_not_built_unless_allowed<W: World>() {
    let fork = Opening {
        fork: true,
        ..Opening::default()
    };
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.send(w.opened_as(9, A, "mallory", fork)).await;
    assert_eq!(w.pipelines(), 0, "the fork's code never runs");
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Cancelled));
    let text = w.check_text("greenlight/pipeline", A);
    assert!(text.contains("allow_forks = false"), "{text}");
    assert_eq!(w.writes(), vec![Kind::Check], "the check, nothing else");
    w.finish().await;

    let allowed = format!("{}\n[pull_requests]\nallow_forks = true\n", W::POLICY);
    let w = W::start(Some(&allowed)).await;
    w.send(w.opened_as(9, A, "mallory", fork)).await;
    // Allowed forks wait for `/build` from someone with write (tests/comments.rs).
    assert_eq!(w.pipelines(), 0);
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));
    let title = w.check_title("greenlight/pipeline", A);
    assert_eq!(
        title,
        format!("Waiting for /build aaaaaaa ({} from a fork)", W::PR_NOUN),
        "in the forge's own words"
    );
    assert_eq!(
        w.writes(),
        vec![Kind::Check],
        "the waiting check, nothing else"
    );
    w.finish().await;
}

pub(super) async fn drafts_wait_until_ready_for_review<W: World>() {
    let draft = Opening {
        draft: true,
        ..Opening::default()
    };
    let w = W::start(Some(W::POLICY)).await;
    w.send(w.opened_as(7, A, "octocat", draft)).await;
    assert!(w.writes().is_empty(), "drafts are not built");
    w.send(w.ready_for_review(7, A, "octocat")).await;
    assert_eq!(w.pipelines(), 1);
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));
    w.finish().await;

    let w = W::start(Some(&format!(
        "{}\n[pull_requests]\ndrafts = true\n",
        W::POLICY
    )))
    .await;
    w.send(w.opened_as(7, A, "octocat", draft)).await;
    assert_eq!(w.pipelines(), 1, "drafts = true builds drafts");
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));
    w.finish().await;
}

pub(super) async fn an_invalid_policy_posts_a_failing_config_check_and_nothing_else<W: World>() {
    let broken = format!("{}min_permision = \"write\"\n", W::POLICY);
    let line = W::POLICY.lines().count() + 1;
    let w = W::start(Some(&broken)).await;
    w.open(7, A, "octocat").await;
    w.push(7, A, "octocat").await;
    w.send(w.reopened(7, A, "octocat")).await;
    assert_eq!(
        w.writes(),
        vec![Kind::Check],
        "one config check, nothing else"
    );
    assert_eq!(w.check("greenlight/config", A), Some(State::Failed));
    assert_eq!(
        w.check_title("greenlight/config", A),
        format!("Invalid Greenlight policy: {} line {line}", W::POLICY_FILE)
    );
    assert_eq!(w.pipelines(), 0);

    // Fixed on the default branch: the next push is built.
    w.set_policy(W::POLICY);
    w.push(7, A, "octocat").await;
    assert_eq!(w.pipelines(), 1);
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));
    w.finish().await;
}

pub(super) async fn without_a_policy_only_help_answers<W: World>() {
    let w = W::start(None).await;
    w.open(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release").await;
    assert!(w.writes().is_empty(), "quiet");
    w.comment(7, 5002, "mona", "/help").await;
    let help = w.only_reply();
    assert!(
        help.contains("not enabled") && help.contains(W::POLICY_FILE),
        "{help}"
    );
    assert_eq!(w.reactions(), vec![eyes(5002)]);
    w.finish().await;
}

pub(super) async fn the_policy_is_read_again_after_each_push_to_the_default_branch_only<
    W: World,
>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    // No push seen yet: every event asks (conditionally).
    w.ready(7, A, "octocat").await;
    let before = w.policy_reads();
    assert!(before >= 3, "each event asked: {before}");
    w.comment(7, 5001, "hubot", "/help").await;
    assert_eq!(
        w.policy_reads(),
        before + 1,
        "no push seen, so no trust: asked"
    );

    // A push to main: read once after it, then trusted.
    assert_eq!(w.send(w.branch_pushed("main", A, B)).await, 202);
    w.comment(7, 5002, "hubot", "/help").await;
    assert_eq!(w.policy_reads(), before + 2, "read again after the push");
    w.comment(7, 5003, "hubot", "/help").await;
    assert_eq!(w.policy_reads(), before + 2, "trusted until the next push");

    // A push elsewhere changes nothing.
    assert_eq!(w.send(w.branch_pushed("feature-7", A, B)).await, 202);
    w.comment(7, 5004, "hubot", "/help").await;
    assert_eq!(w.policy_reads(), before + 2, "a push to another branch");

    // The policy freezes deploys in a push to main: the next approval sees it.
    w.set_policy(&frozen(W::POLICY, "incident 42"));
    assert_eq!(w.send(w.branch_pushed("main", B, A)).await, 202);
    w.comment(7, 5005, "mona", "/approve-release").await;
    assert_eq!(w.policy_reads(), before + 3);
    let replies = w.replies();
    assert_eq!(replies.len(), 5, "four helps and a refusal: {replies:#?}");
    assert_eq!(
        replies.last().map(String::as_str),
        Some("@mona ✋ **Not deployed.**\nDeploys to `production` are frozen: incident 42.")
    );
    let expected: Vec<_> = [
        vec![eyes(5001), eyes(5002), eyes(5003), eyes(5004)],
        refused(5005).to_vec(),
    ]
    .concat();
    assert_eq!(w.reactions(), expected);
    w.nothing_deployed();
    w.finish().await;
}

pub(super) async fn a_pipeline_start_whose_answer_was_lost_is_not_made_twice<W: World>() {
    // The forge started the pipeline, the answer was lost: the job's retry must find it (it
    // used to start a second one).
    let w = W::start(Some(W::POLICY)).await;
    w.lose_next_pipeline_start_answer();
    w.ready(7, A, "octocat").await;
    assert_eq!(w.pipelines(), 1, "one pipeline");
    let releases = w
        .store()
        .releases_of_pull(W::FORGE, W::REPO_PATH, 7)
        .await
        .expect("releases");
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].stage, greenlight::release::Stage::Ready);
    assert!(w.card().contains(&w.run_url(&w.pipeline_run(7))));
    w.finish().await;
}

pub(super) async fn a_rate_limit_holds_back_every_job_of_the_forge_account<W: World>() {
    // Job 1 is told to wait a second; job 2 (another pull request) must not call the forge in
    // that second either (each job used to honour only its own 429).
    use std::time::Duration;
    let w = W::start(Some(W::POLICY)).await;
    w.rate_limit_next_policy_read();
    let seven = w.opened_as(7, A, "octocat", Opening::default());
    let eight = w.opened_as(8, B, "octocat", Opening::default());
    assert_eq!(w.deliver(&seven, "open-7").await, 202);
    assert_eq!(w.deliver(&eight, "open-8").await, 202);
    w.settle().await;
    let calls = w.raw_calls();
    let limited = calls
        .iter()
        .position(W::is_policy_read)
        .expect("the policy was fetched");
    let at = calls[limited].at;
    let too_soon: Vec<String> = calls[limited + 1..]
        .iter()
        .filter(|c| c.at < at + Duration::from_secs(1))
        .map(|c| format!("{} {} after {:?}", c.method, c.path, c.at - at))
        .collect();
    assert!(
        too_soon.is_empty(),
        "called while rate limited: {too_soon:#?}"
    );
    assert_eq!(w.pipeline_runs(7).len(), 1);
    assert_eq!(w.pipeline_runs(8).len(), 1);
    assert_eq!(w.pipelines(), 2);
    assert_eq!(w.check("greenlight/pipeline", A), Some(State::Pending));
    assert_eq!(w.check("greenlight/pipeline", B), Some(State::Pending));
    w.finish().await;
}
