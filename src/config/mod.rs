//! Configuration: process settings (flags and environment, read once in `main`) and, later,
//! the repository policy file.

pub mod settings;

pub use settings::{Cli, Command, DatabaseArgs, LogFormat, Secrets, ServeArgs, WorkerArgs};
