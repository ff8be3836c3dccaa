//! The release engine's vocabulary and decisions: pure code, no IO.

pub mod approval;
pub mod command;
pub mod event;
pub mod gates;
pub mod protection;
pub mod stage;
pub mod types;

pub use event::{
    Comment, Creator, DeploymentSeen, Event, GateRequest, PipelineRun, PullRequest, RepoRef,
    RunOrigin, RunStatus,
};
pub use stage::Stage;
pub use types::{CommitSha, Forge, Login, Permission, PrNumber, RepoName};
