//! Repository policies, read from the default branch and cached.
//!
//! A cached policy is used without asking the forge while no push to the default branch has
//! been seen since it was read, and for at most [`TRUSTED_FOR`]: pushes are what change the
//! file, and every replica sees them through the database (the push job bumps the branch's
//! generation). Until a push has been seen for a repository (the App or webhook may not be
//! subscribed to push events), and after [`TRUSTED_FOR`], the file is asked for again,
//! conditionally on its ETag: a 304 costs no rate limit, and a changed file is seen at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::policy::{self, Policy, PolicyError};
use crate::forge::Forge;

/// What a repository's policy file says.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyState {
    /// No file on the default branch: Greenlight stays quiet there (except for `/help`).
    Missing,
    /// The file does not parse: a failing `greenlight/config` check says why.
    Invalid(PolicyError),
    Valid(Box<Policy>),
}

impl PolicyState {
    /// The state of a policy file's text on `forge`.
    pub fn from_text(text: &str, forge: Forge) -> Self {
        match policy::parse_for(text, forge) {
            Ok(p) => Self::Valid(Box::new(p)),
            Err(e) => Self::Invalid(e),
        }
    }
}

/// The longest a cached policy is used without asking the forge, even with no push seen: the
/// bound on a lost push delivery's harm (a freeze or a tightened rule seen that much later).
pub const TRUSTED_FOR: Duration = Duration::from_secs(300);

/// A policy as last read from the forge.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The file's ETag, for a conditional request; `None` when the forge gave none (or there
    /// is no file).
    pub etag: Option<String>,
    pub state: PolicyState,
    /// The default branch's generation (the last push seen) when the file was asked for.
    pub generation: Option<String>,
    pub read_at: Instant,
}

impl Cached {
    /// Whether this can be used without asking the forge, the branch being at `generation`
    /// now: read after the last push seen, and recently.
    pub fn current(&self, generation: Option<&str>, now: Instant) -> bool {
        generation.is_some()
            && self.generation.as_deref() == generation
            && now.saturating_duration_since(self.read_at) < TRUSTED_FOR
    }
}

/// Per-repository cache: (forge, repo, ref) → what was last read.
#[derive(Debug, Clone, Default)]
pub struct PolicyCache {
    inner: Arc<Mutex<HashMap<String, Cached>>>,
}

impl PolicyCache {
    pub fn get(&self, key: &str) -> Option<Cached> {
        self.inner.lock().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: String, cached: Cached) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(key, cached);
        }
    }
}

impl PolicyState {
    /// The policy when the file exists and is valid.
    pub fn valid(self) -> Option<Policy> {
        match self {
            Self::Valid(p) => Some(*p),
            Self::Missing | Self::Invalid(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_at(generation: Option<&str>, read_at: Instant) -> Cached {
        Cached {
            etag: Some("\"abc\"".into()),
            state: PolicyState::Missing,
            generation: generation.map(str::to_owned),
            read_at,
        }
    }

    #[test]
    fn a_policy_is_trusted_only_since_the_last_push_seen_and_not_for_long() {
        let t = Instant::now();
        let c = read_at(Some("7:abc"), t);
        assert!(c.current(Some("7:abc"), t + Duration::from_secs(1)));
        assert!(!c.current(Some("9:def"), t), "a push since: ask again");
        assert!(!c.current(None, t), "no push known: ask");
        assert!(!c.current(Some("7:abc"), t + TRUSTED_FOR), "too old: ask");
        let before_any_push = read_at(None, t);
        assert!(
            !before_any_push.current(None, t),
            "never trusted without a push seen"
        );
        assert!(!before_any_push.current(Some("7:abc"), t));
    }
}
