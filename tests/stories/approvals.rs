//! Who may approve what, and when: permissions, listed users and teams, self-approval,
//! stale and wrong SHAs, several approvals, racing approvals, freezes, closed pull requests.

use super::*;

pub(super) async fn people_below_the_permission_cannot_approve<W: World>() {
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

pub(super) async fn listed_users_and_team_members_may_approve_below_min_permission<W: World>() {
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

pub(super) async fn self_approval_is_refused_unless_allowed<W: World>() {
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

pub(super) async fn approval_after_a_new_push_is_stale<W: World>() {
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

pub(super) async fn approval_with_a_wrong_sha_prefix_is_refused<W: World>() {
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

pub(super) async fn approvals_accumulate_from_distinct_people<W: World>() {
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

pub(super) async fn two_approvals_racing_make_one_deploy<W: World>() {
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

pub(super) async fn a_frozen_environment_refuses_approvals<W: World>() {
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

pub(super) async fn closed_before_approval<W: World>() {
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
