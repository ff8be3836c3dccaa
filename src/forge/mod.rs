//! The forges Greenlight speaks to. Each has its own client and payload parsing; both feed the
//! same release engine through [`client::Client`], the one seam between the flow and a forge.

pub mod checks;
pub mod client;
pub mod github;
pub mod gitlab;
pub mod rate_limits;
pub mod retry;
mod runs;
pub mod vocab;

/// Which forge: part of the release vocabulary, re-exported for the forge modules.
pub use crate::release::Forge;
pub use client::Client;

/// What Greenlight calls itself on every request to a forge: GitHub
/// [requires](https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent)
/// a `User-Agent` naming the application, and both forges' support can then tell our traffic
/// apart.
pub const USER_AGENT: &str = concat!("greenlight/", env!("CARGO_PKG_VERSION"));

/// A payload that cannot mean anything: the job fails for good (retrying cannot fix it).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed {event} payload: {source}")]
    Json {
        event: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}
