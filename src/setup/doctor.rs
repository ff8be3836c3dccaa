//! `greenlight doctor`: checks a setup against the forges and the database, one ✓ or ✗ line
//! per check with the fix for each ✗. Exit 0 only when all pass; `--json` for machines.
//!
//! What it checks so far:
//! - local: the database reachable and migrated (as `serve` needs it), dead letters and
//!   their reasons;
//! - GitHub (when the App is configured): the App's permissions and events (`GET /app`)
//!   against the one required list ([`crate::forge::github::requirements`]), and how this
//!   server answered the App's recent webhook deliveries (`GET /app/hook/deliveries`);
//! - GitLab (when a token is configured): the token active, with the `api` scope; and for each
//!   `--gitlab-project`: the token's role, the pipeline-variables setting, the webhook (URL,
//!   triggers, SSL verification) and the policy on the default branch.
//!
//! Per-installation policies and workflows on GitHub, and clock skew, are not checked yet.

use serde_json::Value;

use super::gitlab;
use super::{Line, Report};
use crate::config::policy::{self, GITLAB_PATH};
use crate::forge::Forge;
use crate::forge::client::FileFetch;
use crate::forge::github::GitHub;
use crate::forge::github::hook_deliveries::HookDelivery;
use crate::forge::github::requirements::{Access, EVENTS, PERMISSIONS};
use crate::forge::gitlab::GitLab;
use crate::forge::gitlab::hooks::HookOwner;
use crate::store::Store;

/// How many of the App's most recent webhook deliveries are looked at.
const RECENT_DELIVERIES: usize = 50;

/// How many dead letters are named, with their reasons.
const DEAD_SHOWN: u32 = 5;

/// What to check with.
#[derive(Debug)]
pub struct Subjects<'a> {
    pub database_url: &'a str,
    pub github: Option<&'a GitHub>,
    pub gitlab: Option<&'a GitLab>,
    /// GitLab projects (`group/name`) to check one by one.
    pub gitlab_projects: &'a [String],
    /// `GREENLIGHT_PUBLIC_URL`: the webhook URL the projects' hooks must have.
    pub public_url: Option<&'a str>,
}

/// Runs every check that applies.
pub async fn run(subjects: Subjects<'_>) -> Report {
    let mut report = Report::default();
    local(&mut report, subjects.database_url).await;
    match subjects.github {
        Some(gh) => match gh.app().await {
            Ok(app) => {
                report.lines.extend(github_app(&app));
                let mut read = 0;
                let recent = gh
                    .hook_deliveries(|_| {
                        read += 1;
                        read <= RECENT_DELIVERIES
                    })
                    .await;
                report.lines.push(match recent {
                    Ok(list) => deliveries(&list),
                    Err(e) => Line::fail(
                        format!("GitHub: GET /app/hook/deliveries failed: {e}"),
                        "check the App's webhook settings (Advanced tab)",
                    ),
                });
            }
            Err(e) => report.lines.push(Line::fail(
                format!("GitHub: GET /app failed: {e}"),
                "check GITHUB_APP_ID, GITHUB_PRIVATE_KEY and GITHUB_API_URL",
            )),
        },
        None => report.remains.push(
            "GitHub App not configured: `greenlight serve` prints the setup page's address.".into(),
        ),
    }
    if let Some(gl) = subjects.gitlab {
        match gl.token_info().await {
            Ok(token) => {
                report.lines.push(on_gitlab(gitlab::token_line(&token)));
                for project in subjects.gitlab_projects {
                    let lines =
                        gitlab_project(gl, project, token.user_id, subjects.public_url).await;
                    report.lines.extend(lines.into_iter().map(on_gitlab));
                }
            }
            Err(e) => report.lines.push(Line::fail(
                format!("GitLab: GET /personal_access_tokens/self failed: {e}"),
                "check GITLAB_TOKEN and GITLAB_URL",
            )),
        }
    }
    report
}

fn on_gitlab(mut line: Line) -> Line {
    line.text = format!("GitLab: {}", line.text);
    line
}

/// One GitLab project: the token's role, the pipeline-variables setting, the webhook (URL,
/// triggers, SSL verification) and the policy on the default branch.
async fn gitlab_project(
    gl: &GitLab,
    path: &str,
    user_id: u64,
    public_url: Option<&str>,
) -> Vec<Line> {
    let owner = HookOwner::Project(path.to_owned());
    let what = format!("project {path}");
    let (id, settings) = match gl.owner(&owner).await {
        Ok(found) => found,
        Err(e) => {
            return vec![Line::fail(
                format!("the {what} cannot be read: {e}"),
                "check the path, and that the token's user is a member",
            )];
        }
    };
    let mut lines = Vec::new();
    match gl.access_level(&owner, id, user_id).await {
        Ok(level) => {
            let level = level.unwrap_or(0);
            lines.push(gitlab::role_line(&what, level));
            lines.push(gitlab::variables_line(&settings, level));
        }
        Err(e) => lines.push(Line::fail(
            format!("the token's role in the {what} cannot be read: {e}"),
            "check the token's scopes",
        )),
    }
    let expected = public_url.map(|u| format!("{}/webhooks/gitlab", u.trim_end_matches('/')));
    let fix_hook = format!("greenlight setup gitlab --project {path}");
    lines.push(match gl.hooks(&owner, id).await {
        Ok(hooks) => {
            let hook = hooks.iter().find(|h| match &expected {
                Some(url) => h.url == *url,
                None => h.url.ends_with("/webhooks/gitlab"),
            });
            match hook {
                None => Line::fail(
                    format!(
                        "the {what} has no webhook to {}",
                        expected.as_deref().unwrap_or(".../webhooks/gitlab")
                    ),
                    fix_hook,
                ),
                Some(h) if !h.missing_triggers().is_empty() => Line::fail(
                    format!(
                        "the webhook of the {what} lacks triggers: {}",
                        h.missing_triggers().join(", ")
                    ),
                    fix_hook,
                ),
                Some(h) if h.fields.get("enable_ssl_verification") == Some(&Value::Bool(false)) => {
                    Line::fail(
                        format!("the webhook of the {what} does not verify SSL"),
                        fix_hook,
                    )
                }
                Some(h) => Line::pass(format!(
                    "the webhook of the {what} ({}) has every trigger, SSL verification on",
                    h.url
                )),
            }
        }
        Err(e) => Line::fail(
            format!("the webhooks of the {what} cannot be listed: {e}"),
            "the token needs the Maintainer role",
        ),
    });
    let branch = settings["default_branch"].as_str().unwrap_or("main");
    lines.push(match gl.file(id, GITLAB_PATH, branch, None).await {
        Ok(FileFetch::Found { text, .. }) => match policy::parse_for(&text, Forge::GitLab) {
            Ok(_) => Line::pass(format!("{GITLAB_PATH} of the {what} on {branch} is valid")),
            Err(e) => Line::fail(
                format!(
                    "{GITLAB_PATH}:{}:{} of the {what}: {}",
                    e.line, e.column, e.message
                ),
                format!("fix it on {branch} (`greenlight check-config` checks a file)"),
            ),
        },
        Ok(FileFetch::NotFound | FileFetch::NotModified) => Line::fail(
            format!("the {what} has no {GITLAB_PATH} on {branch}"),
            format!("`greenlight init gitlab` in a checkout, then commit it to {branch}"),
        ),
        Err(e) => Line::fail(
            format!("{GITLAB_PATH} of the {what} cannot be read: {e}"),
            "check the token's scopes",
        ),
    });
    lines
}

async fn local(report: &mut Report, url: &str) {
    let store = match Store::open_existing(url).await {
        Ok(store) => store,
        Err(e) => {
            report.lines.push(Line::fail(
                format!("database: {e:#}"),
                "check DATABASE_URL; `greenlight migrate` creates and migrates it",
            ));
            return;
        }
    };
    report
        .lines
        .push(Line::pass("database reachable and migrated"));
    match store.list_deliveries(DEAD_SHOWN, true).await {
        Ok(dead) if dead.is_empty() => report.lines.push(Line::pass("no dead letters")),
        Ok(dead) => {
            let (_, total) = store.queue_gauges().await.unwrap_or((0, dead.len() as i64));
            let reasons: Vec<String> = dead
                .iter()
                .map(|d| {
                    format!(
                        "#{} {}: {}",
                        d.id,
                        d.event,
                        d.last_error.as_deref().unwrap_or("no reason recorded")
                    )
                })
                .collect();
            report.lines.push(Line::fail(
                format!("{total} dead letter(s): {}", reasons.join("; ")),
                "fix the cause, then `greenlight deliveries retry --all-dead`",
            ));
        }
        Err(e) => report.lines.push(Line::fail(
            format!("cannot list dead letters: {e}"),
            "check the database",
        )),
    }
    store.close().await;
}

/// The App's recent webhook deliveries: ✗ when any of them was not answered 2xx, with the
/// answers counted and what each usually means.
pub fn deliveries(list: &[HookDelivery]) -> Line {
    let failed: Vec<&HookDelivery> = list.iter().filter(|d| !d.succeeded()).collect();
    if list.is_empty() {
        return Line::pass("GitHub: no webhook deliveries yet");
    }
    if failed.is_empty() {
        return Line::pass(format!(
            "GitHub: the last {} webhook deliveries were answered 2xx",
            list.len()
        ));
    }
    let mut by_status: std::collections::BTreeMap<u16, (usize, Vec<&str>)> = Default::default();
    for d in &failed {
        let entry = by_status.entry(d.status_code).or_default();
        entry.0 += 1;
        if !entry.1.contains(&d.event.as_str()) {
            entry.1.push(&d.event);
        }
    }
    let counted: Vec<String> = by_status
        .iter()
        .map(|(code, (n, events))| {
            let code = if *code == 0 {
                "no answer".to_owned()
            } else {
                code.to_string()
            };
            format!("{code} × {n} ({})", events.join(", "))
        })
        .collect();
    let mut fixes = Vec::new();
    if by_status.contains_key(&401) {
        fixes.push("401: GITHUB_WEBHOOK_SECRET differs from the App's webhook secret");
    }
    if by_status.keys().any(|c| *c == 0 || *c >= 500) {
        fixes.push("5xx or no answer: Greenlight was down, unreachable or its database was");
    }
    if by_status
        .keys()
        .any(|c| (400..500).contains(c) && *c != 401)
    {
        fixes.push("other 4xx: the webhook's content type must be JSON (see Endpoints)");
    }
    fixes.push("then redeliver them from the App's Advanced tab");
    Line::fail(
        format!(
            "GitHub: {} of the last {} webhook deliveries failed: {}",
            failed.len(),
            list.len(),
            counted.join(", ")
        ),
        fixes.join("; "),
    )
}

/// The App's permissions and events (`GET /app`'s `permissions`, `events`) against the
/// required list: one line for the permissions, one for the events, naming what is missing.
pub fn github_app(app: &Value) -> Vec<Line> {
    let granted = |key: &str| app["permissions"][key].as_str().and_then(Access::parse);
    let short: Vec<String> = PERMISSIONS
        .iter()
        .filter(|p| granted(p.key).is_none_or(|g| g < p.access))
        .map(|p| format!("{} ({})", p.label, p.access.label()))
        .collect();
    let events: Vec<&str> = app["events"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = EVENTS
        .iter()
        .filter(|e| !events.contains(&e.key))
        .map(|e| e.label)
        .collect();
    let slug = app["slug"].as_str().unwrap_or("the App");
    let settings = app["html_url"].as_str().map_or_else(
        || "the App's settings".to_owned(),
        |u| format!("{u} → App settings"),
    );
    vec![
        if short.is_empty() {
            Line::pass(format!(
                "GitHub App {slug}: every permission Greenlight needs"
            ))
        } else {
            Line::fail(
                format!("GitHub App {slug} lacks permissions: {}", short.join(", ")),
                format!(
                    "{settings} → Permissions & events: grant them, then accept the new permissions on each installation"
                ),
            )
        },
        if missing.is_empty() {
            Line::pass(format!(
                "GitHub App {slug}: subscribed to every event Greenlight needs"
            ))
        } else {
            Line::fail(
                format!(
                    "GitHub App {slug} is not subscribed to: {}",
                    missing.join(", ")
                ),
                format!("{settings} → Permissions & events → Subscribe to events: tick them"),
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn healthy() -> Value {
        let permissions: serde_json::Map<String, Value> = PERMISSIONS
            .iter()
            .map(|p| (p.key.to_owned(), json!(p.access.as_str())))
            .collect();
        json!({ "slug": "gl", "permissions": permissions,
                "events": EVENTS.iter().map(|e| e.key).collect::<Vec<_>>() })
    }

    #[test]
    fn a_healthy_app_passes() {
        assert!(github_app(&healthy()).iter().all(|l| l.ok));
    }

    #[test]
    fn read_where_write_is_needed_is_named() {
        let mut app = healthy();
        app["permissions"]["actions"] = json!("read");
        let lines = github_app(&app);
        assert_eq!(
            lines[0].text,
            "GitHub App gl lacks permissions: Actions (Read and write)"
        );
        assert!(lines[1].ok);
    }

    #[test]
    fn failed_deliveries_are_counted_with_their_fix() {
        let d = |status_code, event: &str| HookDelivery {
            id: 1,
            guid: "g".into(),
            delivered_at: "2026-12-07T21:00:00Z".into(),
            redelivery: false,
            status_code,
            status: String::new(),
            event: event.into(),
            action: None,
        };
        assert!(deliveries(&[d(202, "push"), d(200, "push")]).ok);
        assert!(deliveries(&[]).ok);
        let line = deliveries(&[
            d(401, "push"),
            d(401, "pull_request"),
            d(0, "push"),
            d(202, "push"),
        ]);
        assert_eq!(
            line.text,
            "GitHub: 3 of the last 4 webhook deliveries failed: no answer × 1 (push), 401 × 2 (push, pull_request)"
        );
        let fix = line.fix.expect("fix");
        assert!(fix.contains("GITHUB_WEBHOOK_SECRET differs"), "{fix}");
        assert!(fix.contains("down, unreachable"), "{fix}");
    }

    #[test]
    fn a_missing_event_is_named() {
        let mut app = healthy();
        app["events"] = json!(["pull_request"]);
        let lines = github_app(&app);
        assert!(lines[0].ok);
        assert!(!lines[1].ok);
        assert!(lines[1].text.contains("Issue comment"), "{}", lines[1].text);
    }
}
