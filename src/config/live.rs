//! A setting that may be filled in while the server runs.
//!
//! Most settings are read once in `main`. The GitHub App's credentials are the exception: the
//! setup page ([`crate::server::setup`]) creates the App and hands its key and webhook secret
//! to the running server, so the webhook verifier and the engine read them through a [`Live`]
//! each time instead of holding a copy. A reader gets a clone of the value as it is at that
//! moment (the values are cheap to clone: `Arc`s inside), so no lock is held across an
//! `.await` and a swap never tears a reader's value.

use std::sync::{Arc, RwLock};

/// A shared, swappable `Option<T>`: every clone sees every [`Live::set`].
pub struct Live<T>(Arc<RwLock<Option<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Live<T> {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(None)))
    }
}

impl<T: Clone> Live<T> {
    /// Starts with `value` (unset when `None`).
    pub fn new(value: Option<T>) -> Self {
        Self(Arc::new(RwLock::new(value)))
    }

    /// The value as it is now.
    pub fn get(&self) -> Option<T> {
        // A writer that panicked mid-assignment cannot leave a torn `Option`: take it as is.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether a value is set now.
    pub fn is_some(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Replaces the value for every holder.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }
}

impl<T: Clone> From<Option<T>> for Live<T> {
    fn from(value: Option<T>) -> Self {
        Self::new(value)
    }
}

/// Says whether a value is set, never the value (it is usually a secret).
impl<T: Clone> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_some() {
            "Live(set)"
        } else {
            "Live(unset)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Live;

    #[test]
    fn every_clone_sees_a_set() {
        let a: Live<String> = Live::new(None);
        let b = a.clone();
        assert!(!b.is_some());
        a.set("x".into());
        assert_eq!(b.get().as_deref(), Some("x"));
        assert_eq!(format!("{b:?}"), "Live(set)");
    }
}
