//! The comment → commands parser (`greenlight::release::command::parse`), on arbitrary text.
//!
//! Beyond "never panics", it checks what the parser promises:
//! - a command starts its line and is never taken from inside a code block, a code span or a
//!   block quote, as a CommonMark parser (pulldown-cmark) renders the comment;
//! - the whole comment fenced, or quoted line by line, yields no command at all;
//! - every command it finds, written out again on a line of its own, parses back to itself.

#![no_main]

use std::ops::Range;

use greenlight::release::command::{Command, parse, parse_with_offsets};
use libfuzzer_sys::fuzz_target;
use pulldown_cmark::{Event, Parser, Tag};

fuzz_target!(|data: &[u8]| {
    // GitHub caps a comment at 65536 characters.
    if data.len() > 65536 {
        return;
    }
    let body = String::from_utf8_lossy(data);
    let found = parse(&body);

    never_inside_code_or_quotes(&body, found.len());
    assert_eq!(parse(&fenced(&body)), vec![], "fenced: {body:?}");
    assert_eq!(parse(&quoted(&body)), vec![], "quoted: {body:?}");
    for cmd in found.into_iter().flatten() {
        let line = render(&cmd);
        assert_eq!(parse(&line), vec![Ok(cmd.clone())], "{line:?}");
    }
});

/// Byte ranges a reader sees as code or quotation.
fn hidden(body: &str) -> Vec<Range<usize>> {
    Parser::new(body)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_)) => Some(range),
            Event::Code(_) => Some(range),
            _ => None,
        })
        .collect()
}

/// Each command's `/` is where the parser says, and not inside code or a quote.
fn never_inside_code_or_quotes(body: &str, total: usize) {
    let hidden = hidden(body);
    let found = parse_with_offsets(body);
    assert_eq!(
        found.len(),
        total,
        "parse and parse_with_offsets disagree: {body:?}"
    );
    for (at, _) in found {
        assert_eq!(body.as_bytes().get(at), Some(&b'/'), "{at} in {body:?}");
        let line_start = body[..at].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let blanks = &body[line_start..at];
        assert!(
            blanks.chars().all(|c| c == ' ' || c == '\t'),
            "a command starts its line: {body:?}"
        );
        assert!(
            !hidden.iter().any(|r| r.contains(&at)),
            "command at byte {at} is inside code or a quote: {body:?}"
        );
    }
}

/// The whole text inside one fence longer than any backtick run in it.
fn fenced(body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}\n{body}\n{fence}\n")
}

/// Every line quoted, as a quote reply does.
fn quoted(body: &str) -> String {
    body.split_inclusive(['\n', '\r'])
        .map(|l| format!("> {l}"))
        .collect()
}

fn render(cmd: &Command) -> String {
    match cmd {
        Command::ApproveRelease { sha_prefix: None } => "/approve-release".into(),
        Command::ApproveRelease {
            sha_prefix: Some(sha),
        } => format!("/approve-release {sha}"),
        Command::Retry => "/retry".into(),
        Command::Status => "/status".into(),
        Command::Help => "/help".into(),
    }
}
