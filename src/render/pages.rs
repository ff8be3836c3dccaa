//! The web pages Greenlight serves itself (the setup page), as HTML from minijinja templates
//! in `templates/*.html.j2`, compiled into the binary. Every value is HTML-escaped: a page
//! shows names that came from outside (an organisation typed on the page, GitHub's answers).

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

const PAGES: &[(&str, &str)] = &[
    (
        "setup.html.j2",
        include_str!("../../templates/setup.html.j2"),
    ),
    (
        "setup_done.html.j2",
        include_str!("../../templates/setup_done.html.j2"),
    ),
    (
        "setup_failed.html.j2",
        include_str!("../../templates/setup_failed.html.j2"),
    ),
];

/// The compiled pages.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, text) in PAGES {
            if let Err(e) = env.add_template(name, text) {
                // Compiled by every test run.
                unreachable!("built-in page {name} does not compile: {e}");
            }
        }
        Self { env }
    }
}

/// The setup page: what it will do, and the manifest form.
#[derive(Debug, Serialize)]
pub struct SetupView {
    /// Where the manifest is posted (GitHub's new-App page with `state`).
    pub action: String,
    /// The manifest, as JSON text.
    pub manifest: String,
    /// Who will own the App: `your personal account` or `the organization X`.
    pub owner: String,
    pub org: Option<String>,
    pub org_error: Option<String>,
    /// The page's own token, carried by the organisation form.
    pub token: String,
    pub webhook_url: String,
    pub env_file: String,
}

/// The page after the App was created.
#[derive(Debug, Serialize)]
pub struct SetupDoneView {
    pub slug: String,
    pub install_url: String,
    pub env_file: String,
}

/// The page when the exchange or storing failed.
#[derive(Debug, Serialize)]
pub struct SetupFailedView {
    pub reason: String,
    pub app_url: Option<String>,
}

impl Pages {
    fn render<S: Serialize>(&self, name: &str, view: &S) -> String {
        match self.env.get_template(name).and_then(|t| t.render(view)) {
            Ok(html) => html,
            // Every field of every view is set: a failure is a bug in a built-in page.
            Err(e) => unreachable!("page {name} does not render: {e}"),
        }
    }

    pub fn setup(&self, view: &SetupView) -> String {
        self.render("setup.html.j2", view)
    }

    pub fn setup_done(&self, view: &SetupDoneView) -> String {
        self.render("setup_done.html.j2", view)
    }

    pub fn setup_failed(&self, view: &SetupFailedView) -> String {
        self.render("setup_failed.html.j2", view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let html = Pages::default().setup(&SetupView {
            action: "https://github.com/settings/apps/new?state=t".into(),
            manifest: r#"{"name":"<x>"}"#.into(),
            owner: "your personal account".into(),
            org: Some("<script>".into()),
            org_error: None,
            token: "t".into(),
            webhook_url: "https://h/webhooks/github".into(),
            env_file: ".env".into(),
        });
        assert!(html.contains("&quot;name&quot;"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("state=t"));
    }
}
