//! GitHub webhook payloads as GitHub documents them (only the fields that matter, plus enough
//! of the rest to look real), for the scenario tests.

use serde_json::{Value, json};

use super::fake_github::{BOT_ID, BOT_LOGIN, INSTALLATION, REPO, user_id};

fn repository() -> Value {
    json!({ "id": 1296269, "name": "widgets", "full_name": REPO, "private": true, "default_branch": "main",
            "owner": { "login": "acme", "type": "Organization" } })
}

fn user(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({ "login": login, "id": user_id(login), "type": kind })
}

/// `pull_request` with `action` (opened, synchronize, closed, ...).
pub fn pull_request(action: &str, number: u64, head: &str, author: &str) -> Value {
    pull_request_from(action, number, head, author, REPO, false)
}

pub fn pull_request_from(
    action: &str,
    number: u64,
    head: &str,
    author: &str,
    head_repo: &str,
    draft: bool,
) -> Value {
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "state": if action == "closed" { "closed" } else { "open" },
            "title": format!("Change #{number}"),
            "draft": draft,
            "updated_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "user": user(author),
            "head": { "ref": format!("feature-{number}"), "sha": head, "repo": { "full_name": head_repo } },
            "base": { "ref": "main", "sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b", "repo": { "full_name": REPO } },
        },
        "repository": repository(),
        "sender": user(author),
        "installation": { "id": INSTALLATION },
    })
}

/// `issue_comment` on pull request `pr`.
pub fn comment(action: &str, pr: u64, id: u64, author: &str, body: &str) -> Value {
    json!({
        "action": action,
        "issue": { "number": pr, "state": "open", "user": user("octocat"),
                   "pull_request": { "url": format!("https://api.github.com/repos/{REPO}/pulls/{pr}") } },
        "comment": { "id": id, "body": body, "user": user(author), "author_association": "MEMBER",
                     "created_at": chrono::Utc::now().to_rfc3339() },
        "repository": repository(),
        "sender": user(author),
        "installation": { "id": INSTALLATION },
    })
}

/// The App's bot user as GitHub names it in a payload.
pub fn bot() -> Value {
    json!({ "login": BOT_LOGIN, "id": BOT_ID, "type": "Bot" })
}

/// `workflow_run` for a run of `workflow` (file name) testing `sha`, as GitHub reports a run
/// Greenlight dispatched: `event` `workflow_dispatch` on the default branch, started by the
/// App's bot user. A test forging another run changes those fields.
pub fn workflow_run(
    action: &str,
    run_id: u64,
    workflow: &str,
    sha: &str,
    conclusion: Option<&str>,
) -> Value {
    let status = match action {
        "requested" => "queued",
        "in_progress" => "in_progress",
        _ => "completed",
    };
    json!({
        "action": action,
        "workflow_run": {
            "id": run_id,
            "name": workflow,
            "path": format!(".github/workflows/{workflow}"),
            "head_branch": "main",
            "head_sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b",
            "display_title": format!("Greenlight {sha}"),
            "event": "workflow_dispatch",
            "status": status,
            "conclusion": conclusion,
            "html_url": format!("https://github.com/{REPO}/actions/runs/{run_id}"),
            "created_at": chrono::Utc::now().to_rfc3339(),
            "actor": bot(),
            "triggering_actor": bot(),
        },
        "repository": repository(),
        "sender": bot(),
        "installation": { "id": INSTALLATION },
    })
}

/// `check_run` rerequested (the Re-run button).
pub fn check_rerun(name: &str, sha: &str) -> Value {
    json!({
        "action": "rerequested",
        "check_run": { "id": 1, "name": name, "head_sha": sha, "status": "completed", "conclusion": "failure" },
        "repository": repository(),
        "sender": user("octocat"),
        "installation": { "id": INSTALLATION },
    })
}

/// `check_suite` rerequested ("Re-run all checks") on the suite of the App `app_id` for
/// `sha`, as GitHub's [webhook docs](https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_suite)
/// describe it: the suite names its App and the pull requests of its head branch.
pub fn check_suite_rerun(sha: &str, app_id: u64, pr: u64) -> Value {
    json!({
        "action": "rerequested",
        "check_suite": {
            "id": 118_578_147,
            "head_branch": "feature",
            "head_sha": sha,
            "status": "completed",
            "conclusion": "failure",
            "before": null,
            "after": sha,
            "pull_requests": [{
                "id": 1934, "number": pr,
                "url": format!("https://api.github.com/repos/{REPO}/pulls/{pr}"),
                "head": { "ref": "feature", "sha": sha },
                "base": { "ref": "main", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e" },
            }],
            "app": { "id": app_id, "slug": "greenlight-test", "name": "Greenlight (test)" },
            "created_at": "2026-11-20T19:01:12Z",
            "updated_at": "2026-11-20T19:05:40Z",
            "latest_check_runs_count": 2,
            "head_commit": { "id": sha, "message": "Make the widget spin" },
        },
        "repository": repository(),
        "sender": user("octocat"),
        "installation": { "id": INSTALLATION },
    })
}

/// `push` of `after` to `branch` (`refs/heads/{branch}`).
pub fn push(branch: &str, before: &str, after: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": after,
        "created": false, "deleted": false, "forced": false,
        "commits": [{ "id": after, "message": "Change the release policy", "distinct": true,
                      "modified": [".github/greenlight.toml"] }],
        "head_commit": { "id": after, "message": "Change the release policy" },
        "repository": repository(),
        "pusher": { "name": "octocat", "email": "octocat@example.com" },
        "sender": user("octocat"),
        "installation": { "id": INSTALLATION },
    })
}

/// `deployment_protection_rule` requested: the job of run `run` waits at `env`'s gate for
/// `deployment` (as [`FakeGitHub::job_reaches_environment`] made it).
///
/// [`FakeGitHub::job_reaches_environment`]: super::fake_github::FakeGitHub::job_reaches_environment
pub fn deployment_protection_rule(run: u64, env: &str, trigger: &str, deployment: &Value) -> Value {
    json!({
        "action": "requested",
        "environment": env,
        "event": trigger,
        "deployment_callback_url": format!("https://api.github.com/repos/{REPO}/actions/runs/{run}/deployment_protection_rule"),
        "deployment": deployment,
        "pull_requests": [],
        "repository": repository(),
        "sender": deployment["creator"].clone(),
        "installation": { "id": INSTALLATION },
    })
}

/// `deployment` created.
pub fn deployment_created(deployment: &Value) -> Value {
    json!({
        "action": "created",
        "deployment": deployment,
        "repository": repository(),
        "sender": deployment["creator"].clone(),
        "installation": { "id": INSTALLATION },
    })
}

/// `deployment_status` created, with `state`.
pub fn deployment_status(deployment: &Value, state: &str) -> Value {
    json!({
        "action": "created",
        "deployment_status": { "id": 1, "state": state, "environment": deployment["environment"].clone(),
                               "creator": deployment["creator"].clone() },
        "deployment": deployment,
        "repository": repository(),
        "sender": deployment["creator"].clone(),
        "installation": { "id": INSTALLATION },
    })
}
