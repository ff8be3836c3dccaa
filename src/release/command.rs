//! Commands people type in pull request comments.
//!
//! A command is a line of its own whose first word is `/name`, case-insensitive, with leading
//! blanks allowed (at most three spaces: four make a Markdown code block). Lines inside fenced
//! code blocks, indented code and block quotes are text, not commands: quoting someone's
//! `/approve-release` never approves anything. A word like `/usr/bin` or `/etc/hosts` is a path,
//! not a command.

use std::fmt;

/// A command Greenlight understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Approve the pull request's current head for release, optionally naming it by SHA prefix.
    ApproveRelease { sha_prefix: Option<String> },
    /// Run the pipeline again for the current head.
    Retry,
    /// Refresh the release card.
    Status,
    /// Explain the commands.
    Help,
}

/// A line that looks like a command but is not one Greenlight can run.
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
            Self::UnknownCommand(word) => write!(f, "`{word}` is not a Greenlight command."),
            Self::InvalidArgument { command, reason } => write!(f, "`{command}`: {reason}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The shortest and longest commit prefix `/approve-release` accepts.
pub const MIN_PREFIX: usize = 7;
pub const MAX_PREFIX: usize = 40;

/// The commands with one line of explanation each, as a Markdown list.
pub fn help_markdown() -> String {
    [
        "- `/approve-release [sha]` — approve the current head commit for release (optionally naming it by its first 7+ hex digits, so you approve exactly what you reviewed)",
        "- `/retry` — run the pipeline again for the current head (pull request author or write access)",
        "- `/status` — refresh the release card",
        "- `/help` — show this list",
    ]
    .join("\n")
}

/// Every command line of a comment, in order. Lines that are not commands are skipped.
pub fn parse(body: &str) -> Vec<Result<Command, ParseError>> {
    let mut out = Vec::new();
    let mut fence: Option<(u8, usize)> = None;
    for raw in body.lines() {
        let line = raw.trim_end_matches('\r');
        let indent = line.len() - line.trim_start_matches(' ').len();
        let text = line.trim_start();
        if let Some((ch, len)) = fence {
            let closes = indent < 4
                && is_fence(text).is_some_and(|(c, n)| c == ch && n >= len)
                && text.trim_start_matches(char::from(ch)).trim().is_empty();
            if closes {
                fence = None;
            }
            continue;
        }
        if indent < 4
            && let Some(open) = is_fence(text)
        {
            fence = Some(open);
            continue;
        }
        if indent >= 4 || line.starts_with('\t') || text.starts_with('>') {
            continue;
        }
        if let Some(cmd) = parse_line(text) {
            out.push(cmd);
        }
    }
    out
}

/// A fence opener: three or more backticks or tildes.
fn is_fence(text: &str) -> Option<(u8, usize)> {
    let ch = *text.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = text.bytes().take_while(|&b| b == ch).count();
    (len >= 3).then_some((ch, len))
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
        "approve-release" => approve(&args),
        "retry" => no_args("/retry", Command::Retry),
        "status" => no_args("/status", Command::Status),
        "help" => no_args("/help", Command::Help),
        _ => Err(ParseError::UnknownCommand(format!("/{name}"))),
    })
}

fn approve(args: &[&str]) -> Result<Command, ParseError> {
    const CMD: &str = "/approve-release";
    match args {
        [] => Ok(Command::ApproveRelease { sha_prefix: None }),
        [sha] => {
            let sha = sha.trim_matches('`');
            if !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseError::InvalidArgument {
                    command: CMD,
                    reason: format!("`{sha}` is not a commit SHA (hex digits only)"),
                });
            }
            if !(MIN_PREFIX..=MAX_PREFIX).contains(&sha.len()) {
                return Err(ParseError::InvalidArgument {
                    command: CMD,
                    reason: format!(
                        "a commit prefix has {MIN_PREFIX} to {MAX_PREFIX} hex digits; `{sha}` has {}",
                        sha.len()
                    ),
                });
            }
            Ok(Command::ApproveRelease {
                sha_prefix: Some(sha.to_ascii_lowercase()),
            })
        }
        _ => Err(ParseError::InvalidArgument {
            command: CMD,
            reason: "takes at most one argument, a commit SHA prefix".into(),
        }),
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
            "`/approve-release`: `main` is not a commit SHA (hex digits only)"
        );
        let e = one("/deploy").expect_err("unknown");
        assert_eq!(e.to_string(), "`/deploy` is not a Greenlight command.");
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_markdown();
        for cmd in ["/approve-release", "/retry", "/status", "/help"] {
            assert!(help.contains(cmd), "{cmd} missing from help");
        }
    }
}
