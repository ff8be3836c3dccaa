//! GitLab webhook payloads as GitLab documents them (the fields that matter, plus enough of
//! the rest to look real), for the scenario tests.

use serde_json::{Value, json};

use super::fake_gitlab::{MAIN_SHA, PATH, PROJECT, WEB};

fn project() -> Value {
    json!({ "id": PROJECT, "name": "widgets", "path_with_namespace": PATH, "namespace": "acme",
            "default_branch": "main", "web_url": WEB, "visibility_level": 0 })
}

/// A user as hooks show it; `id` is what the member APIs take.
pub fn user(id: u64, username: &str) -> Value {
    json!({ "id": id, "name": username, "username": username, "avatar_url": null })
}

/// `Merge Request Hook` for merge request `iid` at `sha`, by author `author_id`. `action` is
/// open, reopen, update (with `oldrev` when `new_commits`), close or merge.
pub fn merge_request(action: &str, iid: u64, sha: &str, author_id: u64, fork: bool) -> Value {
    let mut attrs = json!({
        "id": 1000 + iid, "iid": iid, "title": format!("Change !{iid}"),
        "source_branch": format!("feature-{iid}"), "target_branch": "main",
        "source_project_id": if fork { 99 } else { PROJECT }, "target_project_id": PROJECT,
        "author_id": author_id, "state": if matches!(action, "close") { "closed" } else if action == "merge" { "merged" } else { "opened" },
        "draft": false, "work_in_progress": false, "action": action,
        "last_commit": { "id": sha, "message": "change", "url": format!("{WEB}/-/commit/{sha}") },
        "updated_at": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        "url": format!("{WEB}/-/merge_requests/{iid}"),
    });
    if action == "update" {
        attrs["oldrev"] = json!("0123456789abcdef0123456789abcdef01234567");
    }
    json!({
        "object_kind": "merge_request", "event_type": "merge_request",
        "user": user(author_id, "author"),
        "project": project(),
        "object_attributes": attrs,
        "labels": [], "changes": {},
    })
}

/// `Note Hook`: note `id` on merge request `iid` by `author`.
pub fn note(iid: u64, id: u64, author: (u64, &str), body: &str) -> Value {
    json!({
        "object_kind": "note", "event_type": "note",
        "user": user(author.0, author.1),
        "project_id": PROJECT,
        "project": project(),
        "object_attributes": {
            "id": id, "note": body, "noteable_type": "MergeRequest", "author_id": author.0,
            "system": false, "action": "create", "project_id": PROJECT,
            "created_at": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            "url": format!("{WEB}/-/merge_requests/{iid}#note_{id}"),
        },
        "merge_request": { "iid": iid, "state": "opened", "source_branch": format!("feature-{iid}"),
                           "target_branch": "main", "source_project_id": PROJECT, "target_project_id": PROJECT },
    })
}

/// `Pipeline Hook` for pipeline `p` (as the fake created it) now in `status`.
pub fn pipeline(p: &Value, status: &str) -> Value {
    json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": p["id"], "iid": 1, "name": null, "ref": p["ref"], "tag": false, "sha": p["sha"],
            "before_sha": MAIN_SHA, "source": p["source"], "status": status,
            "detailed_status": status, "stages": ["test"],
            "created_at": p["created_at"], "finished_at": null, "duration": null,
            "variables": p["variables"], "url": p["web_url"],
        },
        "merge_request": null,
        // Who triggered it (the fake records the token's user for its API pipelines).
        "user": match p["user"]["id"].as_u64() {
            Some(id) => user(id, p["user"]["username"].as_str().unwrap_or_default()),
            None => user(42, "project_15_bot_0f1e2d3c"),
        },
        "project": project(),
        "builds": [],
    })
}

/// `Push Hook` of `after` to `branch`.
pub fn push(branch: &str, before: &str, after: &str) -> Value {
    json!({
        "object_kind": "push", "event_name": "push",
        "before": before, "after": after, "ref": format!("refs/heads/{branch}"),
        "checkout_sha": after, "user_id": 1, "user_username": "octocat",
        "project_id": PROJECT, "project": project(),
        "commits": [{ "id": after, "title": "Change the release policy",
                      "modified": [".gitlab/greenlight.toml"], "added": [], "removed": [] }],
        "total_commits_count": 1,
    })
}

/// `Deployment Hook` (GitLab's documented payload): deployment `id` of `sha` to `environment`
/// made by job `job` (`deployable_id`), by `who`, now in `status`. The hook names the job,
/// not its pipeline, and the commit only in `short_sha` and `commit_url`.
pub fn deployment(
    id: u64,
    job: u64,
    environment: &str,
    sha: &str,
    who: (u64, &str),
    status: &str,
) -> Value {
    json!({
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": "2026-11-20 19:05:00 +0000",
        "deployment_id": id,
        "deployable_id": job,
        "deployable_url": format!("{WEB}/-/jobs/{job}"),
        "environment": environment,
        "environment_tier": "production",
        "environment_slug": environment,
        "environment_external_url": "https://widgets.example.com",
        "project": project(),
        "short_sha": &sha[..8],
        "user": user(who.0, who.1),
        "user_url": format!("https://gitlab.example.com/{}", who.1),
        "commit_url": format!("{WEB}/-/commit/{sha}"),
        "commit_title": "Deploy",
    })
}
