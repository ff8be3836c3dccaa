//! Everything Greenlight writes for people: the release card, refusals, help, check run texts.
//!
//! The texts are minijinja templates in `templates/`, compiled into the binary. Setting
//! `GREENLIGHT_TEMPLATES_DIR` replaces any of them at run time: a file there with the same name
//! wins. All templates are compiled at start-up, so a broken override stops the service with
//! the file and line instead of failing on the first pull request.

pub mod pages;
mod views;

use std::path::Path;

use minijinja::Environment;

pub use views::{
    CardView, CheckKind, CheckText, CheckView, HelpView, RefusalReason, RefusalView, Stage,
    UnknownCommandView,
};

/// The hidden first line of every card: how the card is found again after a restart.
pub const CARD_MARKER: &str = "<!-- greenlight:card -->";

/// The templates and their built-in text.
const BUILT_IN: &[(&str, &str)] = &[
    ("card.md.j2", include_str!("../../templates/card.md.j2")),
    ("check.md.j2", include_str!("../../templates/check.md.j2")),
    (
        "refusal.md.j2",
        include_str!("../../templates/refusal.md.j2"),
    ),
    ("help.md.j2", include_str!("../../templates/help.md.j2")),
    (
        "unknown_command.md.j2",
        include_str!("../../templates/unknown_command.md.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0:#}")]
    Template(#[from] minijinja::Error),
}

/// Compiled templates.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// The built-in templates, with any file of the same name in `overrides` taking their place.
    pub fn new(overrides: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (name, text) in BUILT_IN {
            let source = match overrides.map(|dir| dir.join(name)) {
                Some(path) if path.is_file() => {
                    std::fs::read_to_string(&path).map_err(|source| RenderError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                _ => (*text).to_owned(),
            };
            env.add_template_owned(*name, source)?;
        }
        Ok(Self { env })
    }

    /// The built-in templates only.
    pub fn built_in() -> Self {
        match Self::new(None) {
            Ok(r) => r,
            // The built-in templates are compiled by every test run.
            Err(e) => unreachable!("built-in templates do not compile: {e}"),
        }
    }

    fn render<S: serde::Serialize>(&self, name: &str, view: &S) -> Result<String, RenderError> {
        let text = self.env.get_template(name)?.render(view)?;
        Ok(tidy(&text))
    }

    /// The release card, starting with [`CARD_MARKER`] whatever the template says.
    pub fn card(&self, view: &CardView) -> Result<String, RenderError> {
        Ok(format!(
            "{CARD_MARKER}\n{}",
            self.render("card.md.j2", view)?
        ))
    }

    /// A check run's title (the template's first line) and summary (the rest).
    pub fn check(&self, view: &CheckView) -> Result<CheckText, RenderError> {
        let text = self.render("check.md.j2", view)?;
        let (title, summary) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        Ok(CheckText {
            title: title.trim().to_owned(),
            summary: summary.trim().to_owned(),
        })
    }

    pub fn refusal(&self, view: &RefusalView) -> Result<String, RenderError> {
        self.render("refusal.md.j2", view)
    }

    pub fn help(&self, view: &HelpView) -> Result<String, RenderError> {
        self.render("help.md.j2", view)
    }

    pub fn unknown_command(&self, view: &UnknownCommandView) -> Result<String, RenderError> {
        self.render("unknown_command.md.j2", view)
    }
}

/// Trims each line's end, collapses runs of blank lines, ends with no newline.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests;
