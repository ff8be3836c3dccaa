//! The release stories, told once and run on both forges: real router, real workers, real
//! forge clients, GitHub and GitLab faked over HTTP (`tests/common/world*.rs`). Each story is
//! a generic `async fn` over [`World`]; [`both_forges!`] makes a `github::` and a `gitlab::`
//! test of it. Every world ends with the strict teardown ([`World::finish`]): no dead letter,
//! no reply the story did not read, no forge write it never looked at.
//!
//! Wire shapes (request bodies, deployment payloads, pipeline variables, the exact request
//! order) live in `tests/github_wire.rs` and `tests/gitlab_wire.rs`.

mod common;

use common::TestDb;
use common::world::{Kind, Opening, Perm, State, World};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "ccccccc3cccccccccccccccccccccccccccccccc";

/// Makes `github::<story>` and `gitlab::<story>` tests of each generic story.
macro_rules! both_forges {
    ($($story:ident),* $(,)?) => {
        mod github {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$story::<crate::common::world_github::GitHubWorld>().await;
                }
            )*
        }
        mod gitlab {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$story::<crate::common::world_gitlab::GitLabWorld>().await;
                }
            )*
        }
    };
}

both_forges!(
    happy_path_from_pull_request_to_production,
    people_below_the_permission_cannot_approve,
    listed_users_and_team_members_may_approve_below_min_permission,
    self_approval_is_refused_unless_allowed,
    approval_after_a_new_push_is_stale,
    approval_with_a_wrong_sha_prefix_is_refused,
    pipeline_failure_then_retry,
    retry_by_a_reader_is_refused,
    deploy_failure_is_reported_and_frees_the_environment,
    the_same_webhook_twice_changes_nothing_twice,
    two_approvals_racing_make_one_deploy,
    a_second_release_waits_for_the_first,
    closed_before_approval,
    edited_comments_and_bots_never_act,
    forks_are_not_built_unless_allowed,
    an_invalid_policy_posts_a_failing_config_check_and_nothing_else,
    without_a_policy_only_help_answers,
    unknown_commands_get_help,
    drafts_wait_until_ready_for_review,
    a_frozen_environment_refuses_approvals,
    the_policy_is_read_again_after_each_push_to_the_default_branch_only,
    approvals_accumulate_from_distinct_people,
    look_alike_commands_never_act,
    a_deploy_start_that_failed_is_looked_for_then_made_again_once,
    the_reconciler_recovers_runs_whose_webhooks_were_lost,
    a_pipeline_start_whose_answer_was_lost_is_not_made_twice,
    a_rate_limit_holds_back_every_job_of_the_forge_account,
);

fn eyes(id: u64) -> (u64, String) {
    (id, "eyes".into())
}

fn refused(id: u64) -> [(u64, String); 2] {
    [(id, "eyes".into()), (id, "-1".into())]
}

/// The release of `pr` at `sha` is deploying: the deploy started for it, its release check
/// runs, its card says so.
fn deploying<W: World>(w: &W, pr: u64, sha: &str) {
    assert_eq!(
        w.deploys().last().map(String::as_str),
        Some(sha),
        "{}",
        W::FORGE
    );
    assert_eq!(w.check("greenlight/release", sha), Some(State::Running));
    let card = w.card_of(pr);
    assert!(card.contains("Deploying"), "{card}");
}

async fn happy_path_from_pull_request_to_production<W: World>() {
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

async fn people_below_the_permission_cannot_approve<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("reader", Perm::Read);
    w.grant("writer", Perm::Write);
    w.ready(7, A, "octocat").await;
    let before = w.writes_count();

    w.comment(7, 5001, "writer", "/approve-release").await;
    assert_eq!(
        w.only_reply(),
        "@writer ✋ **Not deployed.**\nYour permission on this repository is `write`; approving a release to `production` needs `maintain` or a place in the policy's approvers."
    );
    w.comment(7, 5002, "reader", "/approve-release").await;
    assert!(w.replies()[1].contains("is `read`"), "{:?}", w.replies());
    w.comment(7, 5003, "stranger", "/approve-release").await;
    assert!(w.replies()[2].contains("is `none`"), "{:?}", w.replies());

    w.nothing_deployed();
    let expected: Vec<_> = [refused(5001), refused(5002), refused(5003)].concat();
    assert_eq!(w.reactions(), expected);
    // Only the replies and reactions were written: no check, card or deploy changed. Each
    // comment's one reply comes last, gathering its commands' answers.
    use Kind::{Reaction, Reply};
    assert_eq!(
        w.writes_since(before),
        vec![
            Reaction, Reaction, Reply, Reaction, Reaction, Reply, Reaction, Reaction, Reply
        ]
    );
    assert_eq!(
        w.audit().await,
        vec![
            "writer approve refused not_allowed",
            "reader approve refused not_allowed",
            "stranger approve refused not_allowed",
        ]
    );
    assert!(w.card().contains("Ready to release"));
    w.finish().await;
}

async fn listed_users_and_team_members_may_approve_below_min_permission<W: World>() {
    let policy = format!(
        "{}users = [\"dana\", \"lee\"]\nteams = [\"acme/release\"]\n",
        W::POLICY
    );
    for (who, perm, in_team) in [
        ("dana", Some(Perm::Read), false),
        ("lee", None, false),
        ("tim", Some(Perm::Read), true),
    ] {
        let w = W::start(Some(&policy)).await;
        if let Some(perm) = perm {
            w.grant(who, perm);
        }
        if in_team {
            w.add_to_team("acme/release", who);
        }
        w.ready(7, A, "octocat").await;
        w.comment(7, 5001, who, "/approve-release").await;
        assert_eq!(w.deploys().len(), 1, "{who} may approve");
        deploying(&w, 7, A);
        assert_eq!(w.reactions(), vec![eyes(5001)]);
        assert_eq!(w.asked_team("acme/release", who), in_team, "{who}");
        w.finish().await;
    }
}

async fn self_approval_is_refused_unless_allowed<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("octocat", Perm::Admin);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "octocat", "/approve-release").await;
    let reply = w.only_reply();
    assert!(
        reply.contains(&format!("cannot approve their own {}", W::PR_NOUN)),
        "{reply}"
    );
    assert_eq!(w.reactions(), refused(5001).to_vec());
    w.nothing_deployed();
    w.finish().await;

    let w = W::start(Some(&format!("{}allow_self_approval = true\n", W::POLICY))).await;
    w.grant("octocat", Perm::Admin);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "octocat", "/approve-release").await;
    assert_eq!(w.deploys().len(), 1);
    deploying(&w, 7, A);
    assert_eq!(w.reactions(), vec![eyes(5001)]);
    w.finish().await;
}

async fn approval_after_a_new_push_is_stale<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;

    // New commits: A's candidate is superseded, B's pipeline starts.
    w.push(7, B, "octocat").await;
    assert_eq!(w.check("greenlight/release", A), Some(State::Cancelled));
    assert_eq!(w.check("greenlight/pipeline", B), Some(State::Pending));
    assert_eq!(w.pipelines(), 2);
    let card = w.card();
    assert!(
        card.contains("Pipeline queued") && card.contains("bbbbbbb"),
        "{card}"
    );

    // The reviewer approves what they saw (A): refused as stale, with the new head named.
    w.comment(7, 5001, "mona", "/approve-release aaaaaaa1")
        .await;
    assert_eq!(
        w.only_reply(),
        format!(
            "@mona ✋ **Not deployed.**\n`aaaaaaa1` is an older commit of this {}. The head is now `bbbbbbb`: review it, then approve it with `/approve-release bbbbbbb`.",
            W::PR_NOUN
        )
    );
    // Without a prefix: B has not passed yet.
    w.comment(7, 5002, "mona", "/approve-release").await;
    assert!(
        w.replies()[1].contains("has not passed for the current head `bbbbbbb`"),
        "{:?}",
        w.replies()
    );
    // A prefix of neither commit.
    w.comment(7, 5003, "mona", "/approve-release 1234567").await;
    assert!(w.replies()[2].contains("`1234567`"), "{:?}", w.replies());
    w.nothing_deployed();
    let expected: Vec<_> = [refused(5001), refused(5002), refused(5003)].concat();
    assert_eq!(w.reactions(), expected);
    let approvals: Vec<String> = w
        .audit()
        .await
        .into_iter()
        .filter(|a| a.contains("approve"))
        .collect();
    assert_eq!(
        approvals,
        vec![
            "mona approve refused stale_commit",
            "mona approve refused pipeline_not_green",
            "mona approve refused sha_mismatch",
        ]
    );
    w.finish().await;
}

async fn approval_with_a_wrong_sha_prefix_is_refused<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release 1234567").await;
    assert_eq!(
        w.only_reply(),
        format!(
            "@mona ✋ **Not deployed.**\n`1234567` is not the head of this {} (the head is `aaaaaaa`).",
            W::PR_NOUN
        )
    );
    w.nothing_deployed();
    // A prefix that is not a SHA at all is a usage error, not an approval.
    w.comment(7, 5002, "mona", "/approve-release main").await;
    assert!(
        w.replies()[1].contains("the argument is not a commit SHA"),
        "{:?}",
        w.replies()
    );
    w.nothing_deployed();
    let reactions = w.reactions();
    assert_eq!(reactions[..2], refused(5001), "{reactions:?}");
    assert_eq!(reactions[2], eyes(5002), "{reactions:?}");
    w.finish().await;
}

async fn pipeline_failure_then_retry<W: World>() {
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

async fn retry_by_a_reader_is_refused<W: World>() {
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

async fn deploy_failure_is_reported_and_frees_the_environment<W: World>() {
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

async fn the_same_webhook_twice_changes_nothing_twice<W: World>() {
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

async fn two_approvals_racing_make_one_deploy<W: World>() {
    for db in TestDb::all().await {
        let label = db.label;
        let w = W::start_on(db, Some(W::POLICY)).await;
        w.grant("mona", Perm::Maintain);
        w.grant("hubot", Perm::Admin);
        w.ready(7, A, "octocat").await;
        let first = w.commented(7, 5001, "mona", "/approve-release");
        let second = w.commented(7, 5002, "hubot", "/approve-release aaaaaaa");
        let (a, b) = tokio::join!(w.deliver(&first, "race-1"), w.deliver(&second, "race-2"));
        assert_eq!((a, b), (202, 202));
        w.settle().await;
        assert_eq!(w.deploys().len(), 1, "{label}");
        assert_eq!(w.deploy_runs(), 1, "{label}");
        deploying(&w, 7, A);
        // The later one is told the commit is already on its way.
        let reply = w.only_reply();
        assert!(
            reply.contains("already queued") || reply.contains("already deploying"),
            "{label}: {reply}"
        );
        let reactions = w.reactions();
        assert!(reactions.contains(&eyes(5001)), "{reactions:?}");
        assert!(reactions.contains(&eyes(5002)), "{reactions:?}");
        w.finish().await;
    }
}

async fn a_second_release_waits_for_the_first<W: World>() {
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

async fn closed_before_approval<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.send(w.closed(7, A, "octocat")).await;
    assert_eq!(w.check("greenlight/release", A), Some(State::Cancelled));
    assert!(w.card().contains("Closed"), "{}", w.card());

    w.comment(7, 5001, "mona", "/approve-release").await;
    assert_eq!(
        w.only_reply(),
        format!("@mona ✋ **Not deployed.**\nThis {} is closed.", W::PR_NOUN)
    );
    assert_eq!(w.reactions(), refused(5001).to_vec());
    w.nothing_deployed();
    w.finish().await;
}

async fn edited_comments_and_bots_never_act<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    let before = w.calls_count();
    let edited = w.comment_edited(7, 5001, "mona", "/approve-release");
    assert_eq!(w.send(edited).await, 202);
    let bot = w.bot_commented(7, 5002, "/approve-release");
    assert_eq!(w.send(bot).await, 202);
    assert_eq!(w.calls_count(), before, "not a single call to the forge");
    w.nothing_deployed();
    w.finish().await;
}

async fn forks_are_not_built_unless_allowed<W: World>() {
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
    assert_eq!(
        w.writes(),
        vec![Kind::Check],
        "the waiting check, nothing else"
    );
    w.finish().await;
}

async fn an_invalid_policy_posts_a_failing_config_check_and_nothing_else<W: World>() {
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

async fn without_a_policy_only_help_answers<W: World>() {
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

async fn unknown_commands_get_help<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/deploy now").await;
    let reply = w.only_reply();
    assert!(
        reply.starts_with("A line of this comment looks like a command Greenlight does not know."),
        "{reply}"
    );
    assert!(reply.contains("/approve-release"), "{reply}");
    // A command in a quote or a code block is not a command.
    w.comment(7, 5002, "mona", "> /deploy\n\n```\n/retry\n```")
        .await;
    assert_eq!(w.replies().len(), 1);
    assert_eq!(w.reactions(), vec![eyes(5001)]);
    w.finish().await;
}

async fn drafts_wait_until_ready_for_review<W: World>() {
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

fn frozen(policy: &str, reason: &str) -> String {
    policy.replace(
        "environment = \"production\"",
        &format!("environment = \"production\"\nfrozen = true\nfreeze_reason = \"{reason}\""),
    )
}

async fn a_frozen_environment_refuses_approvals<W: World>() {
    let w = W::start(Some(&frozen(W::POLICY, "end-of-year freeze"))).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release").await;
    assert_eq!(
        w.only_reply(),
        "@mona ✋ **Not deployed.**\nDeploys to `production` are frozen: end-of-year freeze."
    );
    assert_eq!(w.reactions(), refused(5001).to_vec());
    w.nothing_deployed();
    w.finish().await;
}

async fn the_policy_is_read_again_after_each_push_to_the_default_branch_only<W: World>() {
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

async fn approvals_accumulate_from_distinct_people<W: World>() {
    let w = W::start(Some(&W::POLICY.replace("required = 1", "required = 2"))).await;
    w.grant("mona", Perm::Maintain);
    w.grant("hubot", Perm::Admin);
    w.ready(7, A, "octocat").await;
    w.comment(7, 5001, "mona", "/approve-release").await;
    assert!(
        w.card().contains("| Approvals | 1/2: @mona |"),
        "{}",
        w.card()
    );
    w.nothing_deployed();
    w.comment(7, 5002, "mona", "/approve-release").await;
    assert!(w.only_reply().contains("already approved"));
    w.nothing_deployed();
    w.comment(7, 5003, "hubot", "/approve-release").await;
    assert_eq!(w.deploys().len(), 1);
    deploying(&w, 7, A);
    let expected: Vec<_> = [vec![eyes(5001)], refused(5002).to_vec(), vec![eyes(5003)]].concat();
    assert_eq!(w.reactions(), expected);
    w.finish().await;
}

async fn look_alike_commands_never_act<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    w.grant("mona", Perm::Maintain);
    w.ready(7, A, "octocat").await;
    let before = w.calls_count();
    let texts = [
        "\u{ff0f}approve-release",
        "/approve\u{200d}-release",
        "/approve-release\u{200b}",
        "\u{2044}approve-release",
        "/\u{0430}pprove-release",
        "\u{200b}/approve-release",
        "> /approve-release",
        "```\n/approve-release\n```",
        "    /approve-release",
        "please /approve-release",
    ];
    for (i, text) in texts.iter().enumerate() {
        w.comment(7, 6000 + i as u64, "mona", text).await;
    }
    assert_eq!(w.calls_count(), before, "not one call");
    w.nothing_deployed();
    w.finish().await;
}

async fn a_deploy_start_that_failed_is_looked_for_then_made_again_once<W: World>() {
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

async fn the_reconciler_recovers_runs_whose_webhooks_were_lost<W: World>() {
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

async fn a_pipeline_start_whose_answer_was_lost_is_not_made_twice<W: World>() {
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

async fn a_rate_limit_holds_back_every_job_of_the_forge_account<W: World>() {
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
