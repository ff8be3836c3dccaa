//! GitLab as an attacker and a busy merge request see it: a Note Hook is only as good as a
//! webhook secret a group hook shares, so a note acts only as GitLab's notes API tells it;
//! a marker anyone can paste never makes a stranger's note Greenlight's card; lookups read
//! every page (GitLab counts system notes); `teams` never counts members of parent groups.
//! Real router, workers and client; GitLab faked over HTTP as its API documents.

mod common;

use common::fake_gitlab::{FakeGitLab, Note};
use common::flow_gitlab::{GitLabFlow, POLICY};
use common::gitlab_events::merge_request;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";

const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");
const DEV: (u64, &str) = (6, "dev");

/// Merge request `iid` at `sha` opened, its pipeline passed.
async fn ready(flow: &GitLabFlow, iid: u64, sha: &str) {
    flow.gl.set_mr(iid, sha, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", iid, sha, AUTHOR.0, false))
        .await;
    let p = flow.gl.last_pipeline(&format!("feature-{iid}"));
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
}

fn put_note(gl: &FakeGitLab, id: u64, mr: u64, who: (u64, &str), body: &str, system: bool) {
    gl.with(|m| {
        m.notes.insert(
            id,
            Note {
                mr,
                body: body.into(),
                author: (who.0, who.1.into()),
                system,
                created_at: chrono::Utc::now().to_rfc3339(),
            },
        )
    });
}

async fn approvals(flow: &GitLabFlow) -> Vec<String> {
    let audit = flow.store.audit_log(None, 100).await.expect("audit");
    audit
        .iter()
        .filter(|e| e.action == "approve" && e.outcome == "accepted")
        .map(|e| e.actor.clone())
        .collect()
}

/// What GitLab's notes API really holds for a forged hook's note id: (merge request, author,
/// body, system), or nothing.
type RealNote = Option<(u64, (u64, &'static str), &'static str, bool)>;

#[tokio::test]
async fn a_forged_note_hook_acts_on_nothing() {
    // Each hook claims Mona (a maintainer) wrote `/approve-release` on !7; GitLab says
    // otherwise. Only what GitLab's notes API answers may act.
    let cases: [(&str, RealNote); 5] = [
        ("another author", Some((7, DEV, "/approve-release", false))),
        ("another body", Some((7, MONA, "LGTM", false))),
        ("a system note", Some((7, MONA, "/approve-release", true))),
        (
            "a note on another MR",
            Some((8, MONA, "/approve-release", false)),
        ),
        ("a missing note", None),
    ];
    for (case, real) in cases {
        let flow = GitLabFlow::start(Some(POLICY)).await;
        flow.gl.set_access(MONA.0, 40);
        flow.gl.set_access(DEV.0, 30);
        flow.gl.set_mr(8, A, AUTHOR.1, "opened", false);
        ready(&flow, 7, A).await;
        if let Some((mr, who, body, system)) = real {
            put_note(&flow.gl, 6001, mr, who, body, system);
        }
        let forged = common::gitlab_events::note(7, 6001, MONA, "/approve-release");
        assert_eq!(flow.send(NOTE, forged).await, 202, "{case}");
        assert!(flow.gl.deploys().is_empty(), "{case}: deployed");
        assert!(approvals(&flow).await.is_empty(), "{case}: a vote counted");
        assert!(
            flow.gl
                .calls()
                .iter()
                .any(|c| c.method == "GET" && c.path == "/merge_requests/7/notes/6001"),
            "{case}: read back"
        );
        if case == "another author" {
            // The real author's command is answered as theirs: a Developer is refused.
            let replies = flow.gl.replies();
            assert_eq!(replies.len(), 1, "{case}: {replies:#?}");
            assert!(replies[0].contains("@dev"), "{case}: {}", replies[0]);
        } else {
            assert!(
                flow.gl.replies().is_empty(),
                "{case}: {:?}",
                flow.gl.replies()
            );
            assert!(flow.gl.awards().is_empty(), "{case}: reacted");
        }
        assert!(
            flow.dead().await.is_empty(),
            "{case}: {:?}",
            flow.dead().await
        );
        flow.stop().await;
    }
}

#[tokio::test]
async fn quorum_cannot_be_met_by_forged_usernames() {
    let policy = POLICY.replace("required = 1", "required = 2");
    let flow = GitLabFlow::start(Some(&policy)).await;
    for id in [MONA.0, 11, 12] {
        flow.gl.set_access(id, 40);
    }
    ready(&flow, 7, A).await;
    flow.send(NOTE, flow.gl.note_hook(7, 6001, MONA, "/approve-release"))
        .await;
    // Two more "maintainers", each a new username on a hook: GitLab has the notes as Mona's
    // (the same person again), or not at all.
    put_note(&flow.gl, 6002, 7, MONA, "/approve-release", false);
    flow.send(
        NOTE,
        common::gitlab_events::note(7, 6002, (11, "alice"), "/approve-release"),
    )
    .await;
    flow.send(
        NOTE,
        common::gitlab_events::note(7, 6003, (12, "bob"), "/approve-release"),
    )
    .await;
    assert!(flow.gl.deploys().is_empty(), "quorum met by forged names");
    assert_eq!(approvals(&flow).await, vec!["mona"]);
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn the_card_is_found_among_hundreds_of_notes_after_a_lost_answer() {
    for (people, system) in [(60, 65), (100, 150)] {
        let flow = GitLabFlow::start(Some(POLICY)).await;
        flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
        flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
            .await;
        // A busy thread: people talking, and GitLab's own system notes.
        flow.gl.add_notes(7, people, false);
        flow.gl.add_notes(7, system, true);
        // The card is posted, but its answer is lost: the retry must find it on a later page.
        flow.gl.lose_next_answer("POST", "/merge_requests/7/notes");
        let p = flow.gl.last_pipeline("feature-7");
        flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
            .await;
        let total = people + system + 1;
        assert_eq!(flow.gl.cards_of(7).len(), 1, "{total} notes: one card");
        assert!(flow.gl.cards_of(7)[0].contains("Ready to release"));
        let pages = flow
            .gl
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path == "/merge_requests/7/notes")
            .count();
        // Looked for before posting, and again after the lost answer: every page each time.
        let expected = (total - 1).div_ceil(100) + total.div_ceil(100);
        assert_eq!(pages, expected, "{total} notes: every page read");
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}

#[tokio::test]
async fn a_strangers_note_carrying_the_marker_is_never_adopted() {
    let flow = GitLabFlow::start(Some(POLICY)).await;
    flow.gl.set_access(MONA.0, 40);
    flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
        .await;
    // Someone pastes the card's marker, and a reply's marker for Mona's coming note.
    let fake_card = "<!-- greenlight:card -->\nReady to release, trust me";
    put_note(&flow.gl, 6001, 7, DEV, fake_card, false);
    put_note(
        &flow.gl,
        6002,
        7,
        DEV,
        "<!-- greenlight:reply:5001:0 -->",
        false,
    );
    // The card's answer is lost: the retry looks for it by marker.
    flow.gl.lose_next_answer("POST", "/merge_requests/7/notes");
    let p = flow.gl.last_pipeline("feature-7");
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
    // A reply whose answer is lost: looked for by its marker too.
    flow.gl.lose_next_answer("POST", "/merge_requests/7/notes");
    flow.send(NOTE, flow.gl.note_hook(7, 5001, MONA, "/help"))
        .await;
    assert_eq!(flow.gl.cards_of(7).len(), 1, "Greenlight's own card");
    assert_eq!(flow.gl.replies().len(), 1, "{:?}", flow.gl.replies());
    let untouched = flow.gl.with(|m| {
        (
            m.notes.get(&6001).map(|n| n.body.clone()),
            m.notes.get(&6002).map(|n| n.body.clone()),
        )
    });
    assert_eq!(untouched.0.as_deref(), Some(fake_card));
    assert!(
        !flow
            .gl
            .writes()
            .iter()
            .any(|c| c.path.contains("/notes/6001") || c.path.contains("/notes/6002")),
        "a stranger's note was never edited"
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}

#[tokio::test]
async fn teams_count_the_group_and_its_subgroups_never_its_parents() {
    let policy = format!("{POLICY}teams = [\"acme/release\"]\n");
    for (who, admitted) in [((20, "ana"), false), ((21, "oli"), true)] {
        let flow = GitLabFlow::start(Some(&policy)).await;
        flow.gl.with(|m| {
            m.groups.insert("acme".into(), vec![20]);
            m.groups.insert("acme/release".into(), vec![]);
            m.groups.insert("acme/release/oncall".into(), vec![21]);
            m.groups.insert("acme/other".into(), vec![22]);
        });
        ready(&flow, 7, A).await;
        flow.send(NOTE, flow.gl.note_hook(7, 5001, who, "/approve-release"))
            .await;
        assert_eq!(
            flow.gl.deploys().len(),
            usize::from(admitted),
            "{}: member of {}",
            who.1,
            if admitted {
                "acme/release/oncall"
            } else {
                "acme only"
            }
        );
        assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
        flow.stop().await;
    }
}
