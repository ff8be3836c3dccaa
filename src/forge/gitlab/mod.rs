//! GitLab: the REST client, webhook payload parsing, and which events Greenlight acts on.

pub mod approvals;
pub mod client;
pub mod events;
pub mod hooks;
pub mod members;
pub mod missed;
pub mod notes;
pub mod pipelines;
pub mod statuses;

pub use client::GitLab;

/// Event types (`X-Gitlab-Event`) that can move a release. Everything else is stored as
/// ignored and answered 202.
pub const ACTED_ON: &[&str] = &[
    "Deployment Hook",
    "Job Hook",
    "Merge Request Hook",
    "Note Hook",
    "Pipeline Hook",
    "Push Hook",
];

/// True when deliveries of this event type are queued for processing.
pub fn acts_on(event: &str) -> bool {
    ACTED_ON.contains(&event)
}
