//! GitHub: the App's API client (`client.rs`, with its endpoints by area: `checks.rs`,
//! `actions.rs`, `deployments.rs`), which webhook events Greenlight acts on, what the App
//! needs (`requirements.rs`) and how the setup page creates it (`manifest.rs`).

pub mod actions;
mod checks;
pub mod client;
mod deployments;
pub mod events;
pub mod hook_deliveries;
mod http;
pub mod manifest;
mod paging;
pub mod requirements;

pub use client::GitHub;

/// Event types (`X-GitHub-Event`) that can move a release. Everything else is stored as
/// ignored and answered 202.
pub const ACTED_ON: &[&str] = &[
    "pull_request",
    "issue_comment",
    "workflow_run",
    "check_run",
    "check_suite",
    "push",
    "deployment_protection_rule",
    "deployment",
    "deployment_status",
    "installation",
    "installation_repositories",
];

/// True when deliveries of this event type are queued for processing.
pub fn acts_on(event: &str) -> bool {
    ACTED_ON.contains(&event)
}
