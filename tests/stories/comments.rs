//! Comments that must never act, and unknown commands.

use super::*;

pub(super) async fn edited_comments_and_bots_never_act<W: World>() {
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

pub(super) async fn unknown_commands_get_help<W: World>() {
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

pub(super) async fn look_alike_commands_never_act<W: World>() {
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
