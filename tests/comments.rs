//! What one comment may cost and what a reply may say, on both forges, through the real flow
//! (signed webhook → router → worker → fake forge): a flood comment gets one reply and a
//! bounded number of calls; replies never echo what someone typed; only Greenlight's own
//! comment is ever adopted as its card or reply, however long the thread; a fork's code is
//! built only when someone with write access asks, for each head commit.

mod common;

use common::fake_github::{BOT_ID, FakeGitHub, REPO};
use common::fake_gitlab::FakeGitLab;
use common::flow::{Flow, POLICY};
use common::flow_gitlab::{GitLabFlow, POLICY as GL_POLICY};
use common::github_events::{comment, pull_request, pull_request_from, workflow_run};
use common::gitlab_events::merge_request;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";

/// GitLab people: (user id, username).
const AUTHOR: (u64, &str) = (1, "octocat");
const READER: (u64, &str) = (7, "rita");
const WRITER: (u64, &str) = (6, "dev");

/// 16,000 unknown `/x` lines, then 50 distinct valid commands (`/help`, `/status` and 48
/// `/approve-release` naming commits that are not the head).
fn flood() -> String {
    let mut body = "/x\n".repeat(16_000);
    body.push_str("/help\n/status\n");
    for i in 0..48 {
        body.push_str(&format!("/approve-release {:07x}\n", 0x0c0ffee0 + i));
    }
    body
}

/// One token, no blanks: backticks to escape a code span, a team mention, an image, HTML.
const CRAFTED: &str = "`x`@acme/admins![x](http://evil.example/x.png)<img/src=x>";

fn assert_inert(reply: &str) {
    for bad in ["@acme/admins", "![", "evil.example", "<img", "/x\n"] {
        assert!(!reply.contains(bad), "the reply holds {bad:?}:\n{reply}");
    }
}

// ---------------------------------------------------------------------------------------
// GitHub

async fn gh_ready(flow: &Flow, pr: u64, sha: &str) {
    flow.gh.set_pull(pr, sha, "octocat", "open");
    flow.send("pull_request", pull_request("opened", pr, sha, "octocat"))
        .await;
    let run = flow.gh.last_run("ci.yml");
    flow.send(
        "workflow_run",
        workflow_run("completed", run, "ci.yml", sha, Some("success")),
    )
    .await;
}

async fn gh_say(flow: &Flow, pr: u64, id: u64, author: &str, body: &str) {
    let status = flow
        .send("issue_comment", comment("created", pr, id, author, body))
        .await;
    assert_eq!(status, 202);
}

/// Bot replies (not the card) on `pr`, hidden marker removed.
fn gh_replies(gh: &FakeGitHub, pr: u64) -> Vec<String> {
    gh.bot_comments(pr)
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| !b.contains("<!-- greenlight:card"))
        .map(|b| match b.rfind("\n\n<!-- greenlight:reply:") {
            Some(i) => b[..i].to_owned(),
            None => b,
        })
        .collect()
}

fn gh_cards(gh: &FakeGitHub, pr: u64) -> usize {
    gh.bot_comments(pr)
        .iter()
        .filter(|(_, b)| b.contains("<!-- greenlight:card"))
        .count()
}

#[tokio::test]
async fn github_a_flood_comment_gets_one_reply_and_a_bounded_number_of_calls() {
    let flow = Flow::start(Some(POLICY)).await;
    gh_ready(&flow, 7, A).await;
    let before = flow.gh.calls().len();
    gh_say(&flow, 7, 5001, "mona", &flood()).await;
    let calls = flow.gh.calls().len() - before;
    assert!(calls <= 30, "{calls} calls for one comment");
    let replies = gh_replies(&flow.gh, 7);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    let reply = &replies[0];
    assert!(reply.contains("/approve-release [sha]"), "help: {reply}");
    assert!(
        reply.contains("Only the first 10 commands of a comment act: 40 more were ignored."),
        "{reply}"
    );
    assert!(
        !reply.contains("not know"),
        "a long comment's unknown lines get no answer"
    );
    assert_inert(reply);
    assert!(flow.gh.deployments().is_empty());
    assert!(flow.dead().await.is_empty());
    flow.stop().await;
}

#[tokio::test]
async fn github_a_short_comment_gets_one_reply_that_never_echoes() {
    let flow = Flow::start(Some(POLICY)).await;
    flow.gh.set_permission("mona", "maintain");
    gh_ready(&flow, 7, A).await;
    gh_say(
        &flow,
        7,
        5001,
        "mona",
        &format!("/deploy-everything\n/frobnicate\n/approve-release {CRAFTED}\n/build {CRAFTED}"),
    )
    .await;
    let replies = gh_replies(&flow.gh, 7);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    let reply = &replies[0];
    assert!(
        reply.contains("looks like a command Greenlight does not know"),
        "{reply}"
    );
    assert!(
        reply.contains("`/approve-release`: the argument is not a commit SHA"),
        "{reply}"
    );
    assert!(
        reply.contains("`/build`: the argument is not a commit SHA"),
        "{reply}"
    );
    for typed in ["deploy-everything", "frobnicate"] {
        assert!(!reply.contains(typed), "{typed} echoed:\n{reply}");
    }
    assert_inert(reply);
    assert!(flow.gh.deployments().is_empty());
    flow.stop().await;
}

#[tokio::test]
async fn github_a_strangers_comment_with_the_card_marker_is_never_adopted() {
    let flow = Flow::start(Some(POLICY)).await;
    let planted = "<!-- greenlight:card -->\n✅ Ready to release (not really)";
    let fake = flow.gh.plant_comment(7, 666, "mallory", planted);
    let reply_marker = "<!-- greenlight:reply:5001 -->";
    let fake_reply = flow.gh.plant_comment(7, 666, "mallory", reply_marker);
    gh_ready(&flow, 7, A).await;
    // A lost answer makes the reply look itself up by its marker: the stranger's is not it.
    flow.gh
        .lose_next_answer("POST", &format!("/repos/{REPO}/issues/7/comments"));
    gh_say(&flow, 7, 5001, "mona", "/help").await;
    let bodies = flow.gh.with(|m| {
        (
            m.comments[&fake].1.clone(),
            m.comments[&fake_reply].1.clone(),
        )
    });
    assert_eq!(bodies, (planted.to_owned(), reply_marker.to_owned()));
    let edited: Vec<_> = flow
        .gh
        .calls()
        .into_iter()
        .filter(|c| c.method == "PATCH" && c.path.contains("/issues/comments/"))
        .filter(|c| {
            c.path.ends_with(&fake.to_string()) || c.path.ends_with(&fake_reply.to_string())
        })
        .collect();
    assert!(
        edited.is_empty(),
        "a stranger's comment was edited: {edited:?}"
    );
    assert_eq!(gh_cards(&flow.gh, 7), 1, "Greenlight posted its own card");
    assert_eq!(gh_replies(&flow.gh, 7).len(), 1, "and its own reply");
    flow.stop().await;
}

#[tokio::test]
async fn github_after_a_lost_answer_the_card_and_reply_are_found_in_a_thread_of_250() {
    let flow = Flow::start(Some(POLICY)).await;
    for i in 0..250 {
        flow.gh
            .plant_comment(7, 1000 + i, &format!("user{i}"), "LGTM, nice change");
    }
    flow.gh
        .lose_next_answer("POST", &format!("/repos/{REPO}/issues/7/comments"));
    gh_ready(&flow, 7, A).await;
    assert_eq!(gh_cards(&flow.gh, 7), 1, "the card is found on page 3");
    flow.gh
        .lose_next_answer("POST", &format!("/repos/{REPO}/issues/7/comments"));
    gh_say(&flow, 7, 5001, "mona", "/help").await;
    assert_eq!(gh_replies(&flow.gh, 7).len(), 1, "the reply is found too");
    let pages: Vec<String> = flow
        .gh
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET" && c.path.ends_with("/issues/7/comments"))
        .map(|c| c.path)
        .collect();
    assert!(pages.len() >= 3, "the thread was paged: {pages:?}");
    assert!(flow.dead().await.is_empty());
    let _ = BOT_ID;
    flow.stop().await;
}

/// Makes pull request `pr` come from a fork, on the fake and in the webhook.
async fn gh_open_fork(flow: &Flow, pr: u64, sha: &str, action: &str) {
    flow.gh.set_pull(pr, sha, "mallory", "open");
    flow.gh.with(|m| {
        if let Some(p) = m.pulls.get_mut(&pr) {
            p["head"]["repo"]["full_name"] = "mallory/widgets".into();
        }
    });
    flow.send(
        "pull_request",
        pull_request_from(action, pr, sha, "mallory", "mallory/widgets", false),
    )
    .await;
}

fn gh_pipeline_title(gh: &FakeGitHub, sha: &str) -> String {
    let checks = gh.check("greenlight/pipeline", sha);
    assert_eq!(checks.len(), 1, "{checks:#?}");
    checks[0]["output"]["title"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn gh_built(gh: &FakeGitHub) -> Vec<String> {
    gh.dispatches()
        .into_iter()
        .filter(|(f, _)| f == "ci.yml")
        .map(|(_, b)| b["inputs"]["sha"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn github_a_forks_pipeline_starts_only_when_a_writer_asks_for_each_head() {
    let policy = format!("{POLICY}\n[pull_requests]\nallow_forks = true\n");
    let flow = Flow::start(Some(&policy)).await;
    flow.gh.set_permission("rita", "read");
    flow.gh.set_permission("wanda", "write");
    gh_open_fork(&flow, 9, A, "opened").await;
    assert!(gh_built(&flow.gh).is_empty(), "not built on open");
    let title = gh_pipeline_title(&flow.gh, A);
    assert!(title.contains("/build aaaaaaa"), "{title}");

    gh_say(&flow, 9, 6001, "rita", "/build").await;
    assert!(gh_built(&flow.gh).is_empty(), "a reader cannot build");
    let replies = gh_replies(&flow.gh, 9);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(replies[0].contains("needs `write`"), "{}", replies[0]);

    gh_say(&flow, 9, 6002, "wanda", "/build bbbbbbb").await;
    assert!(gh_built(&flow.gh).is_empty(), "not the head: nothing built");

    gh_say(&flow, 9, 6003, "wanda", "/build aaaaaaa").await;
    assert_eq!(gh_built(&flow.gh), vec![A.to_owned()], "exactly the head");
    assert!(gh_pipeline_title(&flow.gh, A).starts_with("Pipeline queued"));
    gh_say(&flow, 9, 6004, "wanda", "/build").await;
    assert_eq!(gh_built(&flow.gh).len(), 1, "once per head");

    gh_open_fork(&flow, 9, B, "synchronize").await;
    assert_eq!(gh_built(&flow.gh).len(), 1, "a new push needs a new /build");
    assert!(gh_pipeline_title(&flow.gh, B).contains("/build bbbbbbb"));
    gh_say(&flow, 9, 6005, "wanda", "/build").await;
    assert_eq!(gh_built(&flow.gh), vec![A.to_owned(), B.to_owned()]);
    assert!(flow.dead().await.is_empty());
    flow.stop().await;
}

// ---------------------------------------------------------------------------------------
// GitLab

async fn gl_ready(flow: &GitLabFlow, iid: u64, sha: &str) {
    flow.gl.set_mr(iid, sha, AUTHOR.1, "opened", false);
    flow.send(MR, merge_request("open", iid, sha, AUTHOR.0, false))
        .await;
    let p = flow.gl.last_pipeline(&format!("feature-{iid}"));
    flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
        .await;
}

async fn gl_say(flow: &GitLabFlow, iid: u64, id: u64, who: (u64, &str), body: &str) {
    assert_eq!(
        flow.send(NOTE, flow.gl.note_hook(iid, id, who, body)).await,
        202
    );
}

fn gl_created_pipelines(gl: &FakeGitLab) -> usize {
    gl.calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/pipelines"))
        .count()
}

#[tokio::test]
async fn gitlab_a_flood_note_gets_one_reply_and_a_bounded_number_of_calls() {
    let flow = GitLabFlow::start(Some(GL_POLICY)).await;
    gl_ready(&flow, 7, A).await;
    let (before, notes) = (flow.gl.calls().len(), flow.gl.notes());
    gl_say(&flow, 7, 5001, (5, "mona"), &flood()).await;
    let calls = flow.gl.calls().len() - before;
    assert!(calls <= 30, "{calls} calls for one note");
    let replies: Vec<String> = flow
        .gl
        .replies()
        .into_iter()
        .filter(|r| r.contains("/approve-release [sha]"))
        .collect();
    assert_eq!(flow.gl.notes() - notes, 1, "one note more: {replies:#?}");
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].contains("40 more were ignored"),
        "{}",
        replies[0]
    );
    assert_inert(&replies[0]);
    assert!(flow.gl.deploys().is_empty());
    assert!(flow.dead().await.is_empty());
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_a_short_note_gets_one_reply_that_never_echoes() {
    let flow = GitLabFlow::start(Some(GL_POLICY)).await;
    gl_ready(&flow, 7, A).await;
    let notes = flow.gl.notes();
    gl_say(
        &flow,
        7,
        5001,
        (5, "mona"),
        &format!("/deploy-everything\n/approve-release {CRAFTED}"),
    )
    .await;
    assert_eq!(flow.gl.notes() - notes, 1);
    let reply = flow
        .gl
        .replies()
        .into_iter()
        .find(|r| r.contains("not a commit SHA"))
        .expect("the reply");
    assert!(reply.contains("does not know"), "{reply}");
    assert!(!reply.contains("deploy-everything"), "{reply}");
    assert_inert(&reply);
    flow.stop().await;
}

#[tokio::test]
async fn gitlab_a_forks_pipeline_starts_only_when_a_writer_asks_for_each_head() {
    let policy = format!("{GL_POLICY}\n[pull_requests]\nallow_forks = true\n");
    let flow = GitLabFlow::start(Some(&policy)).await;
    flow.gl.set_access(READER.0, 20);
    flow.gl.set_access(WRITER.0, 30);
    flow.gl.set_mr(9, A, AUTHOR.1, "opened", true);
    flow.send(MR, merge_request("open", 9, A, AUTHOR.0, true))
        .await;
    assert_eq!(gl_created_pipelines(&flow.gl), 0, "not built on open");
    let s = flow.gl.status("greenlight/pipeline", A).expect("status");
    assert_eq!(s["state"], "pending");
    assert!(
        s["description"]
            .as_str()
            .unwrap_or("")
            .contains("/build aaaaaaa"),
        "{s}"
    );

    gl_say(&flow, 9, 6001, READER, "/build").await;
    assert_eq!(gl_created_pipelines(&flow.gl), 0, "a reader cannot build");
    assert!(
        flow.gl
            .replies()
            .iter()
            .any(|r| r.contains("needs `write`")),
        "{:#?}",
        flow.gl.replies()
    );

    gl_say(&flow, 9, 6002, WRITER, "/build aaaaaaa").await;
    assert_eq!(gl_created_pipelines(&flow.gl), 1, "exactly the head");
    gl_say(&flow, 9, 6003, WRITER, "/build").await;
    assert_eq!(gl_created_pipelines(&flow.gl), 1, "once per head");

    flow.gl.set_mr(9, B, AUTHOR.1, "opened", true);
    flow.send(MR, merge_request("update", 9, B, AUTHOR.0, true))
        .await;
    assert_eq!(
        gl_created_pipelines(&flow.gl),
        1,
        "a new push needs a new /build"
    );
    gl_say(&flow, 9, 6004, WRITER, "/build bbbbbbb").await;
    assert_eq!(gl_created_pipelines(&flow.gl), 2);
    assert!(flow.dead().await.is_empty());
    flow.stop().await;
}
