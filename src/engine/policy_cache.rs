//! Repository policies, read from the default branch and cached by the contents API's ETag: a
//! conditional request answered 304 costs no rate limit, and a changed file is seen at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// Per-repository cache: (forge, repo, ref) → (ETag, state).
#[derive(Debug, Clone, Default)]
pub struct PolicyCache {
    inner: Arc<Mutex<HashMap<String, (String, PolicyState)>>>,
}

impl PolicyCache {
    pub fn get(&self, key: &str) -> Option<(String, PolicyState)> {
        self.inner.lock().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: String, etag: String, state: PolicyState) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(key, (etag, state));
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
