//! Shared by the benchmark tools: realistic signed `issue_comment` payloads and the GitHub
//! webhook signature (HMAC-SHA256 of the raw body, `sha256=<hex>`).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The `X-Hub-Signature-256` value for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// True when `header` is a valid `sha256=<hex>` signature of `body` (constant-time compare).
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8]) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[path = "../../benches/common/github_urls.rs"]
mod github_urls;
use github_urls::{REPO_URLS, USER_URLS};

fn user(login: &str, id: u64) -> serde_json::Value {
    let mut u = serde_json::json!({
        "login": login, "id": id, "node_id": format!("MDQ6VXNlcj{id:08}"),
        "gravatar_id": "", "type": "User", "user_view_type": "public", "site_admin": false,
    });
    for key in USER_URLS {
        u[*key] = format!("https://api.github.com/users/{login}/{key}").into();
    }
    u
}

/// A signed-webhook-ready `issue_comment.created` body of about `target` bytes, shaped like
/// GitHub's (full user and repository objects), with comment id `n` so every body differs.
pub fn issue_comment(n: u64, target: usize) -> Vec<u8> {
    let mut repo = serde_json::json!({
        "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "widgets",
        "full_name": "acme/widgets", "private": false, "owner": user("acme", 2),
        "description": "Widgets, sprockets and the machines that make them", "fork": false,
        "created_at": "2011-01-26T19:01:12Z", "updated_at": "2026-11-20T19:14:43Z",
        "pushed_at": "2026-11-20T19:06:43Z", "homepage": "https://acme.example",
        "size": 10840, "stargazers_count": 80, "watchers_count": 80, "language": "Rust",
        "has_issues": true, "has_projects": true, "has_downloads": true, "has_wiki": true,
        "has_pages": false, "has_discussions": false, "forks_count": 9, "mirror_url": null,
        "archived": false, "disabled": false, "open_issues_count": 3, "license": null,
        "allow_forking": true, "is_template": false, "web_commit_signoff_required": false,
        "topics": ["delivery", "widgets"], "visibility": "public", "forks": 9,
        "open_issues": 3, "watchers": 80, "default_branch": "main",
    });
    for key in REPO_URLS {
        repo[*key] = format!("https://api.github.com/repos/acme/widgets/{key}{{/number}}").into();
    }
    let mut body = serde_json::json!({
        "action": "created",
        "issue": {
            "url": "https://api.github.com/repos/acme/widgets/issues/7",
            "repository_url": "https://api.github.com/repos/acme/widgets",
            "html_url": "https://github.com/acme/widgets/pull/7",
            "id": 1_000_007, "node_id": "PR_kwDOAAABc84", "number": 7,
            "title": "Faster widget sprockets", "user": user("octocat", 1), "labels": [],
            "state": "open", "locked": false, "assignee": null, "assignees": [],
            "milestone": null, "comments": 4, "created_at": "2026-11-20T18:00:00Z",
            "updated_at": "2026-11-20T19:30:00Z", "closed_at": null,
            "author_association": "CONTRIBUTOR", "draft": false,
            "pull_request": {
                "url": "https://api.github.com/repos/acme/widgets/pulls/7",
                "html_url": "https://github.com/acme/widgets/pull/7",
                "diff_url": "https://github.com/acme/widgets/pull/7.diff",
                "patch_url": "https://github.com/acme/widgets/pull/7.patch",
                "merged_at": null
            },
            "body": "Sprockets are now cut in one pass.",
        },
        "comment": {
            "url": format!("https://api.github.com/repos/acme/widgets/issues/comments/{n}"),
            "html_url": format!("https://github.com/acme/widgets/pull/7#issuecomment-{n}"),
            "issue_url": "https://api.github.com/repos/acme/widgets/issues/7",
            "id": n, "node_id": format!("IC_kwDOAAABc8{n:010}"), "user": user("hubot", 3),
            "created_at": "2026-11-20T19:30:00Z", "updated_at": "2026-11-20T19:30:00Z",
            "author_association": "MEMBER", "body": "",
            "reactions": { "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
                           "confused": 0, "heart": 0, "rocket": 0, "eyes": 0 },
        },
        "repository": repo,
        "organization": user("acme", 2),
        "sender": user("hubot", 3),
        "installation": { "id": 4242, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" },
    });
    let base = serde_json::to_vec(&body).expect("serializes").len();
    let mut text = String::from("Reviewed, looks right.\r\n\r\n/approve-release\r\n\r\n");
    while base + text.len() < target {
        text.push_str("Notes from the review: the sprocket cutter now runs in one pass. ");
    }
    body["comment"]["body"] = text.into();
    serde_json::to_vec(&body).expect("serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_size_and_signature() {
        let body = issue_comment(1, 10 * 1024);
        assert!(
            (10 * 1024..11 * 1024).contains(&body.len()),
            "{}",
            body.len()
        );
        let sig = sign(b"k", &body);
        assert!(verify(b"k", Some(&sig), &body));
        assert!(!verify(b"other", Some(&sig), &body));
        assert_ne!(issue_comment(1, 100), issue_comment(2, 100));
    }
}
