//! GitHub payload → Event (`greenlight::forge::github::events::parse`) on raw bytes: the first
//! byte picks the `X-GitHub-Event` name, the rest is the body. The seeds are the documented
//! payloads in tests/fixtures/github/ (see scripts/fuzz.sh).
//!
//! Beyond "never panics": an event that parses holds a well-formed commit id, and parsing the
//! same bytes twice gives the same answer.

#![no_main]

use greenlight::forge::github::events::{Parsed, parse};
use greenlight::release::Event;
use libfuzzer_sys::fuzz_target;

/// The events Greenlight acts on, and one it ignores.
const EVENTS: &[&str] = &[
    "pull_request",
    "issue_comment",
    "workflow_run",
    "check_run",
    "installation",
    "installation_repositories",
    "push",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let event = EVENTS[usize::from(pick) % EVENTS.len()];
    let first = parse(event, body);
    let again = parse(event, body);
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "parsing is deterministic"
    );
    if let Ok(Parsed::Event(e)) = first {
        check_event(event, &e);
    }
});

/// What any event that parsed must hold.
fn check_event(name: &str, e: &Event) {
    let sha = match e {
        Event::PullRequestUpdated(pr) => Some(pr.head.as_str()),
        Event::PipelineUpdated(run) => Some(run.run_head.as_str()),
        Event::RerunRequested { head, .. } => Some(head.as_str()),
        Event::PullRequestClosed { .. } | Event::CommentCreated(_) => None,
    };
    if let Some(sha) = sha {
        assert!(
            sha.len() == 40 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{name}: {sha:?} is not a commit id"
        );
    }
    let expected = match e {
        Event::PullRequestUpdated(_) | Event::PullRequestClosed { .. } => "pull_request",
        Event::CommentCreated(_) => "issue_comment",
        Event::PipelineUpdated(_) => "workflow_run",
        Event::RerunRequested { .. } => "check_run",
    };
    assert_eq!(name, expected, "{e:?}");
}
