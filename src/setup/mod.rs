//! Setting a forge up from the command line (`greenlight setup gitlab`), checking a setup
//! (`greenlight doctor`), and the report such a command prints: one line per step or check, ✓ or ✗, with the fix for each ✗ and what a
//! person still has to do. (GitHub is set up on the page `serve` prints:
//! [`crate::server::setup`].)

pub mod doctor;
pub mod gitlab;

use std::fmt;

/// One step or check, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub ok: bool,
    #[serde(rename = "check")]
    pub text: String,
    /// What to do about a ✗.
    pub fix: Option<String>,
}

impl Line {
    pub fn pass(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
            fix: None,
        }
    }

    pub fn fail(text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }
}

/// What a setup command did, checked, and leaves to a person.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
    /// What remains for a person to do.
    pub remains: Vec<String>,
}

impl Report {
    /// True when every line passed.
    pub fn all_passed(&self) -> bool {
        self.lines.iter().all(|l| l.ok)
    }
}

impl Report {
    /// One JSON object: `ok`, every check (`ok`, `check`, `fix`) and what remains.
    pub fn json(&self) -> String {
        serde_json::json!({
            "ok": self.all_passed(),
            "checks": self.lines,
            "remains": self.remains,
        })
        .to_string()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{} {}", if line.ok { "✓" } else { "✗" }, line.text)?;
            if let Some(fix) = &line.fix {
                writeln!(f, "    fix: {fix}")?;
            }
        }
        if !self.remains.is_empty() {
            writeln!(f, "\nWhat remains for you to do:")?;
            for (i, r) in self.remains.iter().enumerate() {
                writeln!(f, "  {}. {r}", i + 1)?;
            }
        }
        Ok(())
    }
}
