//! Commands people type in pull request comments.
//!
//! A command is a line of its own whose first word is `/name`, case-insensitive, with leading
//! blanks allowed (at most three columns: four make a Markdown code block). Lines inside fenced
//! code blocks, indented code, block quotes, code spans and HTML are text, not commands, as a
//! CommonMark parser (pulldown-cmark) sees them: quoting someone's `/approve-release` never
//! approves anything. A word like `/usr/bin` or `/etc/hosts` is a path, not a command.

use std::fmt;
use std::ops::Range;

use pulldown_cmark::{Event, Parser, Tag};

/// A command Greenlight understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Approve the pull request's current head for release, optionally naming it by SHA prefix.
    ApproveRelease { sha_prefix: Option<String> },
    /// Run the pipeline again for the current head.
    Retry,
    /// Refresh the release card.
    Status,
    /// Build a fork's head commit (`allow_forks = true`): a person with write access asks for
    /// it, once per head commit, optionally naming it by SHA prefix.
    Build { sha_prefix: Option<String> },
    /// Explain the commands.
    Help,
}

/// A line that looks like a command but is not one Greenlight can run. Its text says what is
/// wrong without repeating what the person wrote: a reply never echoes untrusted text (a
/// crafted argument could escape any quoting and mention a team, or show an image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `/something` Greenlight does not know (lower-cased, with its slash).
    UnknownCommand(String),
    /// A known command with arguments it does not take.
    InvalidArgument {
        command: &'static str,
        reason: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCommand(_) => f.write_str("That is not a Greenlight command."),
            Self::InvalidArgument { command, reason } => write!(f, "`{command}`: {reason}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The shortest commit prefix `/approve-release` and `/build` accept.
pub const MIN_PREFIX: usize = 7;
/// The longest commit prefix accepted: a whole SHA-1.
pub const MAX_PREFIX: usize = 40;

/// At most this many commands of one comment act: the first ones, each distinct command once.
/// A comment of thousands of command lines costs no more forge calls than ten commands.
pub const MAX_COMMANDS: usize = 10;

/// Unknown commands are answered only in a comment of at most this many bytes: a typo in a
/// short comment gets the list of commands; a long paste of slash-words gets nothing.
pub const UNKNOWN_ANSWER_MAX_BYTES: usize = 1_000;

/// The commands with one line of explanation each, as a Markdown list.
pub fn help_markdown() -> String {
    [
        "- `/approve-release [sha]` — approve the current head commit for release (optionally naming it by its first 7+ hex digits, so you approve exactly what you reviewed)",
        "- `/retry` — run the pipeline again for the current head (pull request author or write access)",
        "- `/status` — refresh the release card",
        "- `/build [sha]` — build a fork's head commit (write access; needed again after each push, with `allow_forks = true`)",
        "- `/help` — show this list",
    ]
    .join("\n")
}

/// Every command line of a comment, in order. Lines that are not commands are skipped.
///
/// Where the code blocks, block quotes, code spans and HTML are is decided by a CommonMark
/// parser — the comment as the forge renders it — not guessed from a line's first characters:
/// a line a reader sees inside a quote (a lazy continuation line too), a fence, a code span
/// running over a line break or an HTML block is never a command.
pub fn parse(body: &str) -> Vec<Result<Command, ParseError>> {
    parse_with_offsets(body)
        .into_iter()
        .map(|(_, cmd)| cmd)
        .collect()
}

/// The commands of one comment that act, as [`batch`] chose them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Known commands (or their usage errors), each distinct one once, in order, at most
    /// [`MAX_COMMANDS`].
    pub commands: Vec<Result<Command, ParseError>>,
    /// Known commands past [`MAX_COMMANDS`], left undone.
    pub ignored: usize,
    /// Lines that look like commands Greenlight does not know.
    pub unknown: usize,
}

impl Batch {
    /// The comment holds nothing that looks like a command.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.ignored == 0 && self.unknown == 0
    }
}

/// What a comment asks for, bounded: [`parse`], then repeats dropped, unknown commands
/// counted (they never act) and the rest cut at [`MAX_COMMANDS`].
pub fn batch(body: &str) -> Batch {
    let mut out = Batch::default();
    for cmd in parse(body) {
        match cmd {
            Err(ParseError::UnknownCommand(_)) => out.unknown += 1,
            known if out.commands.contains(&known) => {}
            known if out.commands.len() < MAX_COMMANDS => out.commands.push(known),
            _ => out.ignored += 1,
        }
    }
    out
}

/// [`parse`], with the byte offset of each command's `/` in `body`.
pub fn parse_with_offsets(body: &str) -> Vec<(usize, Result<Command, ParseError>)> {
    let hidden = hidden_ranges(body);
    let mut next_hidden = 0;
    let mut out = Vec::new();
    for (start, line) in lines(body) {
        let text = line.trim_start_matches([' ', '\t']);
        if indent_columns(&line[..line.len() - text.len()]) >= 4 {
            // Indented code, or a paragraph's continuation: not a line of its own.
            continue;
        }
        let at = start + (line.len() - text.len());
        while hidden.get(next_hidden).is_some_and(|r| r.end <= at) {
            next_hidden += 1;
        }
        if hidden.get(next_hidden).is_some_and(|r| r.contains(&at)) {
            continue;
        }
        if let Some(cmd) = parse_line(text) {
            out.push((at, cmd));
        }
    }
    out
}

/// Byte ranges a reader sees as code, quotation or HTML: sorted, disjoint.
fn hidden_ranges(body: &str) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Parser::new(body)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::HtmlBlock)
            | Event::Code(_)
            | Event::Html(_)
            | Event::InlineHtml(_) => Some(range),
            _ => None,
        })
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// The lines of `body` with their byte offsets, split at `\n`, `\r\n` and `\r` (CommonMark's
/// line endings), without their endings.
fn lines(body: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = body;
    let mut offset = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let start = offset;
        let (line, used) = match rest.find(['\n', '\r']) {
            Some(i) if rest[i..].starts_with("\r\n") => (&rest[..i], i + 2),
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        rest = &rest[used..];
        offset += used;
        Some((start, line))
    })
}

/// Width of leading blanks in columns, tabs stopping at multiples of four (as CommonMark counts).
fn indent_columns(blanks: &str) -> usize {
    blanks.chars().fold(0, |col, c| match c {
        '\t' => col + 4 - col % 4,
        _ => col + 1,
    })
}

/// One line that starts with `/`: a command, an error, or nothing (a path, a lone slash).
fn parse_line(text: &str) -> Option<Result<Command, ParseError>> {
    let rest = text.strip_prefix('/')?;
    if rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    if !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let args: Vec<&str> = words.collect();
    let no_args = |command: &'static str, cmd: Command| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::InvalidArgument {
                command,
                reason: "takes no arguments".into(),
            })
        }
    };
    Some(match name.as_str() {
        "approve-release" => sha_prefix("/approve-release", &args)
            .map(|sha_prefix| Command::ApproveRelease { sha_prefix }),
        "build" => sha_prefix("/build", &args).map(|sha_prefix| Command::Build { sha_prefix }),
        "retry" => no_args("/retry", Command::Retry),
        "status" => no_args("/status", Command::Status),
        "help" => no_args("/help", Command::Help),
        _ => Err(ParseError::UnknownCommand(format!("/{name}"))),
    })
}

/// The optional commit prefix of `/approve-release` and `/build`. Errors never quote it.
fn sha_prefix(command: &'static str, args: &[&str]) -> Result<Option<String>, ParseError> {
    let invalid = |reason: String| ParseError::InvalidArgument { command, reason };
    match args {
        [] => Ok(None),
        [sha] => {
            let sha = sha.trim_matches('`');
            if !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "the argument is not a commit SHA (hex digits only)".into(),
                ));
            }
            if !(MIN_PREFIX..=MAX_PREFIX).contains(&sha.len()) {
                return Err(invalid(format!(
                    "a commit prefix has {MIN_PREFIX} to {MAX_PREFIX} hex digits; this one has {}",
                    sha.len()
                )));
            }
            Ok(Some(sha.to_ascii_lowercase()))
        }
        _ => Err(invalid(
            "takes at most one argument, a commit SHA prefix".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Result<Command, ParseError> {
        let mut all = parse(body);
        assert_eq!(
            all.len(),
            1,
            "expected one command in {body:?}, got {all:?}"
        );
        all.remove(0)
    }

    fn none(body: &str) {
        assert_eq!(parse(body), vec![], "expected no command in {body:?}");
    }

    const APPROVE: Command = Command::ApproveRelease { sha_prefix: None };

    fn approve_sha(s: &str) -> Command {
        Command::ApproveRelease {
            sha_prefix: Some(s.into()),
        }
    }

    fn invalid(r: &Result<Command, ParseError>) -> bool {
        matches!(r, Err(ParseError::InvalidArgument { .. }))
    }

    #[test]
    fn plain_commands() {
        assert_eq!(one("/approve-release"), Ok(APPROVE));
        assert_eq!(one("/retry"), Ok(Command::Retry));
        assert_eq!(one("/status"), Ok(Command::Status));
        assert_eq!(one("/help"), Ok(Command::Help));
    }

    #[test]
    fn case_insensitive() {
        assert_eq!(one("/APPROVE-RELEASE"), Ok(APPROVE));
        assert_eq!(one("/Approve-Release"), Ok(APPROVE));
        assert_eq!(one("/ReTrY"), Ok(Command::Retry));
        assert_eq!(one("/approve-release ABCDEF1"), Ok(approve_sha("abcdef1")));
    }

    #[test]
    fn sha_prefix_lengths() {
        assert_eq!(one("/approve-release abcdef1"), Ok(approve_sha("abcdef1")));
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            one(&format!("/approve-release {full}")),
            Ok(approve_sha(full))
        );
        assert!(
            invalid(&one("/approve-release abc123")),
            "six digits are too few"
        );
        assert!(
            invalid(&one(&format!("/approve-release {full}8"))),
            "41 digits are too many"
        );
    }

    #[test]
    fn sha_prefix_must_be_hex() {
        assert!(invalid(&one("/approve-release main")));
        assert!(invalid(&one("/approve-release abcdefg")));
        assert!(invalid(&one("/approve-release 0x12345678")));
    }

    #[test]
    fn sha_in_backticks_is_accepted() {
        assert_eq!(
            one("/approve-release `abcdef1`"),
            Ok(approve_sha("abcdef1"))
        );
    }

    #[test]
    fn too_many_arguments() {
        assert!(invalid(&one("/approve-release abcdef1 1234567")));
        assert!(invalid(&one("/retry now")));
        assert!(invalid(&one("/status please")));
        assert!(invalid(&one("/help me")));
    }

    #[test]
    fn unknown_commands() {
        assert_eq!(
            one("/deploy"),
            Err(ParseError::UnknownCommand("/deploy".into()))
        );
        assert_eq!(
            one("/APPROVE"),
            Err(ParseError::UnknownCommand("/approve".into()))
        );
        assert_eq!(
            one("/approve-releases"),
            Err(ParseError::UnknownCommand("/approve-releases".into()))
        );
        assert_eq!(
            one("/approve_release"),
            Err(ParseError::UnknownCommand("/approve_release".into()))
        );
    }

    #[test]
    fn surrounding_whitespace() {
        assert_eq!(one("   /approve-release   "), Ok(APPROVE));
        assert_eq!(one("/approve-release\r\n"), Ok(APPROVE));
        assert_eq!(one("\n\n/retry\n\n"), Ok(Command::Retry));
        assert_eq!(one("/approve-release\tabcdef1"), Ok(approve_sha("abcdef1")));
    }

    #[test]
    fn command_must_start_the_line() {
        none("please /approve-release");
        none("LGTM! /approve-release");
        none("`/approve-release`");
        none("**/approve-release**");
    }

    #[test]
    fn paths_and_slashes_are_not_commands() {
        none("/usr/bin/env is missing");
        none("/etc/hosts");
        none("/");
        none("/ approve-release");
        none("//approve-release");
        none("/123");
        none("/-retry");
    }

    #[test]
    fn one_command_per_line_in_order() {
        let got = parse("/status\nsome text\n/approve-release abcdef1\n/help");
        assert_eq!(
            got,
            vec![
                Ok(Command::Status),
                Ok(approve_sha("abcdef1")),
                Ok(Command::Help)
            ]
        );
    }

    #[test]
    fn two_commands_on_one_line_are_one_bad_command() {
        assert!(invalid(&one("/approve-release /retry")));
    }

    #[test]
    fn prose_around_commands() {
        assert_eq!(
            one("Looks good to me.\n\n/approve-release\n\nThanks!"),
            Ok(APPROVE)
        );
    }

    #[test]
    fn empty_and_text_only_comments() {
        none("");
        none("LGTM");
        none("approve-release");
        none("Ship it :rocket:");
    }

    #[test]
    fn fenced_code_blocks_are_ignored() {
        none("```\n/approve-release\n```");
        none("```text\n/approve-release\n```");
        none("~~~\n/approve-release\n~~~");
        none("  ```\n/retry\n  ```");
        assert_eq!(
            one("```\n/approve-release\n```\n/status"),
            Ok(Command::Status)
        );
    }

    #[test]
    fn fence_closes_only_with_its_own_kind() {
        none("```\n~~~\n/approve-release\n```");
        none("````\n```\n/approve-release\n````");
        assert_eq!(one("~~~\n```\n~~~\n/retry"), Ok(Command::Retry));
    }

    #[test]
    fn unclosed_fence_hides_the_rest() {
        none("```\n/approve-release\n/retry");
    }

    #[test]
    fn indented_code_is_ignored() {
        none("    /approve-release");
        none("\t/approve-release");
        assert_eq!(one("   /approve-release"), Ok(APPROVE));
    }

    #[test]
    fn quotes_are_ignored() {
        none("> /approve-release");
        none(">/approve-release");
        none("  > /approve-release");
        none("> > /approve-release");
        assert_eq!(
            one("> @alice wrote:\n> /approve-release\n\n/status"),
            Ok(Command::Status)
        );
    }

    #[test]
    fn duplicates_are_kept_for_the_caller() {
        assert_eq!(parse("/status\n/status").len(), 2);
    }

    #[test]
    fn errors_explain_themselves() {
        let e = one("/approve-release main").expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "`/approve-release`: the argument is not a commit SHA (hex digits only)"
        );
        let e = one("/approve-release abc").expect_err("short");
        assert_eq!(
            e.to_string(),
            "`/approve-release`: a commit prefix has 7 to 40 hex digits; this one has 3"
        );
        let e = one("/deploy").expect_err("unknown");
        assert_eq!(e.to_string(), "That is not a Greenlight command.");
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_markdown();
        for cmd in ["/approve-release", "/retry", "/status", "/build", "/help"] {
            assert!(help.contains(cmd), "{cmd} missing from help");
        }
    }

    #[test]
    fn a_line_continuing_a_quote_is_quoted() {
        // Found by fuzz/fuzz_targets/command.rs: CommonMark's "lazy continuation" puts a line
        // right after a quote, with no blank line between, inside the quote.
        none("> @alice ce wrote:\n> wro~\n/help    /knonns");
        none("> @alice wrote:\n/approve-release");
        assert_eq!(one("> @alice wrote:\n\n/approve-release"), Ok(APPROVE));
    }

    #[test]
    fn tabs_count_as_columns() {
        // Two spaces and a tab reach column four: indented code.
        none("  \t/approve-release");
        // A tab-indented fence is code, not the end of the fence before it.
        none("```\n\t```\n/approve-release\n```");
    }

    #[test]
    fn fences_as_commonmark_sees_them() {
        // A backtick "fence" whose info string holds a backtick is not a fence: the next
        // line opens one, and the command is inside it.
        none("``` a`b\n```\n/approve-release\n```");
        // A closing fence takes only blanks after it.
        none("```\n```\u{a0}\n/approve-release\n```");
        // A fence inside a list item hides its lines too.
        none("- ```\n  /approve-release\n  ```");
    }

    #[test]
    fn code_spans_and_html_hide_commands() {
        none("`see\n/approve-release abcdef1`");
        // Found by fuzz/fuzz_targets/command.rs (the oracle then read comments line by line; a
        // code span closed on a later line hides the lines before its end).
        none("``e\nb``\n`\n/apprreotryleasetry\n`\n");
        none("<!--\n/approve-release\n-->");
        none("<details>\n/approve-release\n</details>");
        assert_eq!(
            one("<details>\n\n/approve-release\n\n</details>"),
            Ok(APPROVE),
            "markdown inside HTML, set apart by blank lines, is text people read"
        );
    }

    #[test]
    fn only_spaces_and_tabs_lead_a_command() {
        none("\u{3000}/approve-release");
        none("\u{a0}/approve-release");
        assert_eq!(
            one("\r/approve-release"),
            Ok(APPROVE),
            "a lone CR ends a line"
        );
        assert_eq!(one("LGTM\r/retry"), Ok(Command::Retry));
    }

    #[test]
    fn build_with_and_without_a_prefix() {
        assert_eq!(one("/build"), Ok(Command::Build { sha_prefix: None }));
        assert_eq!(
            one("/BUILD ABCDEF1"),
            Ok(Command::Build {
                sha_prefix: Some("abcdef1".into())
            })
        );
        assert_eq!(
            one("/build `abcdef1`"),
            Ok(Command::Build {
                sha_prefix: Some("abcdef1".into())
            })
        );
        assert!(invalid(&one("/build main")));
        assert!(invalid(&one("/build abc")));
        assert!(invalid(&one("/build abcdef1 abcdef2")));
        none("> /build");
        none("`/build`");
    }

    #[test]
    fn crafted_arguments_are_never_quoted_back() {
        for arg in [
            "`x`@acme/admins`",
            "@acme/admins",
            "![x](http://evil.example/a.png)",
            "<img src=x onerror=alert(1)>",
            "abc`def",
        ] {
            for command in ["/approve-release", "/build"] {
                let e = one(&format!("{command} {arg}")).expect_err("invalid");
                let text = e.to_string();
                assert!(!text.contains(arg), "{text:?} echoes {arg:?}");
                for bad in ["@", "![", "<", "http"] {
                    assert!(!text.contains(bad), "{text:?} holds {bad:?}");
                }
            }
        }
    }

    #[test]
    fn a_batch_is_bounded_and_counts_each_command_once() {
        let flood = "/x\n".repeat(16_000);
        let b = batch(&flood);
        assert_eq!((b.commands.len(), b.ignored, b.unknown), (0, 0, 16_000));
        let b = batch("/status\n/status\n/help\n/status");
        assert_eq!(b.commands, vec![Ok(Command::Status), Ok(Command::Help)]);
        let many: String = (0..50)
            .map(|i| format!("/approve-release {:07x}\n", 0x1000000 + i))
            .collect();
        let b = batch(&format!("{flood}{many}"));
        assert_eq!(b.commands.len(), MAX_COMMANDS);
        assert_eq!((b.ignored, b.unknown), (40, 16_000));
        assert!(batch("just text").is_empty());
        assert!(!batch("/nope").is_empty());
    }
}
