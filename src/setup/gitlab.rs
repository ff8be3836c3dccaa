//! `greenlight setup gitlab --project group/name` (or `--group`): creates the webhook, or
//! updates the one already pointing at this Greenlight (never a second one), with a secret
//! token stored in the env file like the GitHub App's secrets; checks the token's scopes,
//! its role, and the project's "minimum role to use pipeline variables"; and says what a
//! person still has to do.

use std::path::Path;

use secrecy::{ExposeSecret as _, SecretString};

use super::{Line, Report};
use crate::config::env_file::{self, Entry};
use crate::forge::gitlab::GitLab;
use crate::forge::gitlab::hooks::{
    HOOK_TRIGGERS, HookOwner, MAINTAINER, REQUIRED_SCOPE, TokenInfo, pipeline_variables_allowed,
    role_name,
};

/// What the command is given.
#[derive(Debug)]
pub struct Plan<'a> {
    pub owner: HookOwner,
    /// `GREENLIGHT_PUBLIC_URL`: the hook's URL is built on it.
    pub public_url: &'a str,
    /// The secret token to keep using (`GITLAB_WEBHOOK_SECRET`, the first of a list); a new
    /// one is generated and stored when `None`.
    pub secret: Option<SecretString>,
    pub env_file: &'a Path,
}

/// The token: active, with the `api` scope (and when it expires).
pub fn token_line(token: &TokenInfo) -> Line {
    let has_api = token.scopes.iter().any(|s| s == REQUIRED_SCOPE);
    if has_api && token.active {
        Line::pass(format!(
            "token {:?} is active with the {REQUIRED_SCOPE} scope{}",
            token.name,
            token
                .expires_at
                .as_deref()
                .map(|t| format!(", expires {t}"))
                .unwrap_or_default()
        ))
    } else {
        Line::fail(
            format!(
                "token {:?} has scopes [{}]{}",
                token.name,
                token.scopes.join(", "),
                if token.active {
                    ""
                } else {
                    " and is not active"
                }
            ),
            format!("create a token with the {REQUIRED_SCOPE} scope and set it as GITLAB_TOKEN"),
        )
    }
}

/// The token's role in `what` (`project group/name`): Maintainer or above.
pub fn role_line(what: &str, level: u64) -> Line {
    if level >= MAINTAINER {
        Line::pass(format!(
            "the token's role in the {what} is {}",
            role_name(level)
        ))
    } else {
        Line::fail(
            format!(
                "the token's role in the {what} is {} (webhooks and protected-branch pipelines need Maintainer)",
                role_name(level)
            ),
            format!("give the token's user the Maintainer role in the {what}"),
        )
    }
}

/// Whether the token's role may pass pipeline variables in the project `settings`.
pub fn variables_line(settings: &serde_json::Value, level: u64) -> Line {
    match pipeline_variables_allowed(settings, level) {
        Ok(()) => Line::pass(
            "the token's role may pass pipeline variables (deploys carry GREENLIGHT_ENVIRONMENT, GREENLIGHT_SHA, GREENLIGHT_MR)",
        ),
        Err(role) => Line::fail(
            format!("the minimum role to use pipeline variables is {role}, above the token's"),
            format!(
                "Settings → CI/CD → Variables → Minimum role to use pipeline variables: {} (or lower)",
                role_name(level.max(30))
            ),
        ),
    }
}

/// Runs the setup; an error is something that stopped it (GitLab unreachable, the project
/// not found), a ✗ in the report something a person must fix.
pub async fn run(gl: &GitLab, plan: Plan<'_>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let what = match &plan.owner {
        HookOwner::Project(p) => format!("project {p}"),
        HookOwner::Group(g) => format!("group {g}"),
    };
    let token = gl
        .token_info()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the token's details (GITLAB_TOKEN): {e}"))?;
    report.lines.push(token_line(&token));
    let (id, settings) = gl
        .owner(&plan.owner)
        .await
        .map_err(|e| anyhow::anyhow!("cannot find the {what}: {e}"))?;
    let level = gl
        .access_level(&plan.owner, id, token.user_id)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the token's role in the {what}: {e}"))?
        .unwrap_or(0);
    report.lines.push(role_line(&what, level));
    if let HookOwner::Project(_) = &plan.owner {
        report.lines.push(variables_line(&settings, level));
    }
    let url = format!("{}/webhooks/gitlab", plan.public_url.trim_end_matches('/'));
    let existing = gl
        .hooks(&plan.owner, id)
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the {what}'s webhooks: {e}"))?
        .into_iter()
        .find(|h| h.url == url)
        .map(|h| h.id);
    let (secret, generated) = match plan.secret {
        Some(s) => (s, false),
        None => (
            SecretString::from(hex::encode(rand::random::<[u8; 32]>())),
            true,
        ),
    };
    let hook = gl
        .put_hook(&plan.owner, id, existing, &url, secret.expose_secret())
        .await
        .map_err(|e| anyhow::anyhow!("cannot write the {what}'s webhook: {e}"))?;
    let triggers: Vec<&str> = HOOK_TRIGGERS.iter().map(|(_, label)| *label).collect();
    report.lines.push(Line::pass(format!(
        "{} webhook {hook} of the {what}: {url}; triggers: {}; SSL verification on",
        if existing.is_some() {
            "updated"
        } else {
            "created"
        },
        triggers.join(", ")
    )));
    if generated {
        env_file::write(
            plan.env_file,
            &[Entry {
                key: "GITLAB_WEBHOOK_SECRET",
                value: secret.expose_secret(),
            }],
        )?;
        report.lines.push(Line::pass(format!(
            "stored the webhook's new secret token as GITLAB_WEBHOOK_SECRET in {} (mode 0600)",
            plan.env_file.display()
        )));
        report.remains.push(format!(
            "Restart `greenlight serve` from the directory of {} so it reads the new GITLAB_WEBHOOK_SECRET (or set it where serve runs).",
            plan.env_file.display()
        ));
    }
    report
        .remains
        .push("Run `greenlight serve` with GITLAB_TOKEN (and GITLAB_URL) set.".into());
    report.remains.push(
        "Commit .gitlab/greenlight.toml and the .gitlab-ci.yml snippet to the default branch (`greenlight init gitlab` writes them)."
            .into(),
    );
    Ok(report)
}
