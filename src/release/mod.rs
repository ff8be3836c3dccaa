//! The release engine's vocabulary and decisions: pure code, no IO.

pub mod event;
pub mod types;

pub use event::{Comment, Event, PipelineRun, PullRequest, RepoRef, RunStatus};
pub use types::{CommitSha, Login, Permission, PrNumber, RepoName};
