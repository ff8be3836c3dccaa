//! What the GitHub App needs: its permissions and webhook events, in one list.
//!
//! The setup page's manifest asks GitHub for exactly these, the README's table is rendered
//! from them (a test compares the two), and `doctor` checks a running App against them. A
//! permission Greenlight starts to use is added here once, and all three follow.

/// How much access a permission grants, as GitHub's API and manifests spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    /// The manifest's and `GET /app`'s word: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// As GitHub's settings page shows it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Read => "Read-only",
            Self::Write => "Read and write",
        }
    }

    /// `read`, `write` (or `admin`, which covers both) as GitHub answers them; `None` for
    /// anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" | "admin" => Some(Self::Write),
            _ => None,
        }
    }
}

/// One permission the App asks for.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    /// The API's name (`default_permissions` key in a manifest, `permissions` in `GET /app`).
    pub key: &'static str,
    /// As GitHub's settings page names it.
    pub label: &'static str,
    pub access: Access,
    /// What Greenlight does with it.
    pub why: &'static str,
}

/// One webhook event the App subscribes to.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The `X-GitHub-Event` name (`default_events` in a manifest, `events` in `GET /app`).
    pub key: &'static str,
    /// As GitHub's settings page names it.
    pub label: &'static str,
    pub why: &'static str,
}

/// The permissions, in the order of GitHub's settings page.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        key: "actions",
        label: "Actions",
        access: Access::Write,
        why: "dispatch the pipeline and deploy workflows",
    },
    Permission {
        key: "checks",
        label: "Checks",
        access: Access::Write,
        why: "`greenlight/pipeline`, `greenlight/release`, `greenlight/config`",
    },
    Permission {
        key: "contents",
        label: "Contents",
        access: Access::Read,
        why: "read `.github/greenlight.toml` from the default branch",
    },
    Permission {
        key: "deployments",
        label: "Deployments",
        access: Access::Write,
        why: "create the deployment and its statuses; answer the environment's deployment protection rule",
    },
    Permission {
        key: "issues",
        label: "Issues",
        access: Access::Write,
        why: "the release card, replies and reactions (PR comments are issue comments)",
    },
    Permission {
        key: "pull_requests",
        label: "Pull requests",
        access: Access::Write,
        why: "read the pull request's head and author",
    },
    Permission {
        key: "metadata",
        label: "Metadata",
        access: Access::Read,
        why: "required by GitHub",
    },
    Permission {
        key: "members",
        label: "Members (organization)",
        access: Access::Read,
        why: "the policy's `teams` (asked for always: a manifest cannot know the policies to come)",
    },
];

/// The webhook events (installation events are always sent, unasked).
pub const EVENTS: &[Event] = &[
    Event {
        key: "pull_request",
        label: "Pull request",
        why: "a new head starts the pipeline; closing supersedes",
    },
    Event {
        key: "issue_comment",
        label: "Issue comment",
        why: "the commands (`/approve-release`, …)",
    },
    Event {
        key: "workflow_run",
        label: "Workflow run",
        why: "pipeline and deploy progress",
    },
    Event {
        key: "check_run",
        label: "Check run",
        why: "a re-run asked on Greenlight's checks",
    },
    Event {
        key: "check_suite",
        label: "Check suite",
        why: "\"Re-run all checks\" on Greenlight's checks",
    },
    Event {
        key: "push",
        label: "Push",
        why: "pushes to the default branch refresh the cached policy",
    },
    Event {
        key: "deployment_protection_rule",
        label: "Deployment protection rule",
        why: "Greenlight is the environment's gate",
    },
    Event {
        key: "deployment",
        label: "Deployment",
        why: "a deployment Greenlight did not start is reported",
    },
    Event {
        key: "deployment_status",
        label: "Deployment status",
        why: "a deployment Greenlight did not start is reported",
    },
];

/// The README's tables of [`PERMISSIONS`] and [`EVENTS`], as they must appear there.
pub fn readme_tables() -> String {
    let mut out = String::from("| Permission | Access | Why |\n|---|---|---|\n");
    for p in PERMISSIONS {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            p.label,
            p.access.label(),
            p.why
        ));
    }
    out.push_str("\n| Event | Why |\n|---|---|\n");
    for e in EVENTS {
        out.push_str(&format!("| {} (`{}`) | {} |\n", e.label, e.key, e.why));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_asked_for_is_acted_on() {
        for e in EVENTS {
            assert!(super::super::acts_on(e.key), "{} is not acted on", e.key);
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<_> = PERMISSIONS.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), PERMISSIONS.len());
        let mut events: Vec<_> = EVENTS.iter().map(|e| e.key).collect();
        events.sort_unstable();
        events.dedup();
        assert_eq!(events.len(), EVENTS.len());
    }

    #[test]
    fn the_readme_tables_are_the_list() {
        let readme = include_str!("../../../README.md");
        let tables = readme_tables();
        assert!(
            readme.contains(&tables),
            "README's permission and event tables differ from the list; they should read:\n{tables}"
        );
    }

    #[test]
    fn access_words() {
        assert_eq!(Access::parse("admin"), Some(Access::Write));
        assert_eq!(Access::parse("none"), None);
        assert!(Access::Write > Access::Read);
    }
}
