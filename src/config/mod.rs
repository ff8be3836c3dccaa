//! Configuration: process settings (flags and environment, read once in `main`) and the
//! repository policy file (read from each repository's default branch).

pub mod commands;
pub mod env_file;
pub mod live;
pub mod policy;
pub mod schema;
pub mod secret_files;
pub mod settings;

pub use live::Live;
pub use settings::{
    AuditArgs, Cli, Command, DatabaseArgs, GitHubAppArgs, GitLabArgs, LogFormat, PrivateKey,
    Secrets, ServeArgs, Token, WorkerArgs,
};
