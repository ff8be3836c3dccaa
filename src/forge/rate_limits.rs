//! Rate-limit pauses, held for every job of an installation (GitHub) or token (GitLab) and,
//! with a store, for every replica.
//!
//! The seam: the forge clients own the pause (every call already goes through their one
//! `call` helper, which checks it before a request and records it after a rate-limited
//! answer), and this struct, handed to them by `main` with the store, is all they know of the
//! database. No trait, no engine involvement: the engine never learns that a pause exists
//! beyond the `Paused` error it already handles.
//!
//! Reading cheaply: a pause this process learned is known at once (kept locally). A pause
//! another replica learned is read from the database at most once per
//! [`SHARED_READ_EVERY`] per subject, and only while no pause is known locally: a forge call
//! costs tens to hundreds of milliseconds and a primary-key read well under one, so the
//! read is cheap, and re-reading at most every second bounds it to one a second per
//! installation however many calls a job makes. A replica's first call for a subject always
//! reads it, so a replica that learns of a limit from the database makes no call at all until
//! it ends; one that had read just before the limit was recorded may make calls for up to
//! that second (the price of not reading on every call). Ends are wall-clock Unix
//! milliseconds, shared across machines, so replicas' clocks should agree (NTP).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use super::Forge;
use crate::store::{Store, now_ms};

/// How often a subject's shared pause is read again from the database while none is known.
pub const SHARED_READ_EVERY: Duration = Duration::from_secs(1);

/// The pauses of one forge client.
#[derive(Clone)]
pub struct RateLimits {
    forge: Forge,
    store: Option<Store>,
    known: Arc<Mutex<HashMap<String, Known>>>,
}

/// What this process knows of one subject's pause.
#[derive(Clone, Copy)]
struct Known {
    /// The end of the pause (Unix ms); 0 when none.
    until_ms: i64,
    /// When the database was last read for it (never, for a pause learned here only).
    read_at: Option<Instant>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("forge", &self.forge)
            .field("shared", &self.store.is_some())
            .finish()
    }
}

impl RateLimits {
    /// Pauses held in this process only (tests, and a client without a store).
    pub fn local(forge: Forge) -> Self {
        Self {
            forge,
            store: None,
            known: Arc::default(),
        }
    }

    /// Pauses shared through `store` with every process on the same database.
    pub fn shared(forge: Forge, store: Store) -> Self {
        Self {
            store: Some(store),
            ..Self::local(forge)
        }
    }

    /// The subject of a token: a hash of it, never the token itself.
    pub fn token_subject(token: &str) -> String {
        hex::encode(&sha2::Sha256::digest(token.as_bytes())[..16])
    }

    /// How long `subject` must still wait, if it must.
    pub async fn wait_for(&self, subject: &str) -> Option<Duration> {
        let now = now_ms();
        let known = self.known(subject);
        if let Some(k) = known
            && k.until_ms > now
        {
            return Some(remaining(k.until_ms, now));
        }
        let store = self.store.as_ref()?;
        if known
            .and_then(|k| k.read_at)
            .is_some_and(|at| at.elapsed() < SHARED_READ_EVERY)
        {
            return None;
        }
        let until_ms = match store.rate_limited_until(self.forge.as_str(), subject).await {
            Ok(until) => until.unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, forge = self.forge.as_str(), "cannot read shared rate limits; going by this process's");
                0
            }
        };
        self.remember(subject, until_ms, Some(Instant::now()));
        // A call of this process may have learned a limit while the database was read: the
        // later of the two ends holds.
        let until_ms = self.known(subject).map_or(until_ms, |k| k.until_ms);
        let now = now_ms();
        (until_ms > now).then(|| remaining(until_ms, now))
    }

    /// Records that `subject` may not call before `wait` has passed: here at once, and in the
    /// database for the other replicas.
    pub async fn limit(&self, subject: &str, wait: Duration) {
        crate::metrics::record(|m| m.rate_limit_pause(self.forge.as_str()));
        let until_ms = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        let read_at = self.known(subject).and_then(|k| k.read_at);
        self.remember(subject, until_ms, read_at);
        if let Some(store) = &self.store
            && let Err(e) = store
                .record_rate_limit(self.forge.as_str(), subject, until_ms)
                .await
        {
            tracing::warn!(error = %e, forge = self.forge.as_str(), "cannot share a rate limit; other replicas learn it from the forge");
        }
    }

    fn known(&self, subject: &str) -> Option<Known> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(subject)
            .copied()
    }

    /// Keeps the later of the known end and `until_ms`.
    fn remember(&self, subject: &str, until_ms: i64, read_at: Option<Instant>) {
        let mut map = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(subject.to_owned()).or_insert(Known {
            until_ms: 0,
            read_at: None,
        });
        entry.until_ms = entry.until_ms.max(until_ms);
        entry.read_at = read_at.or(entry.read_at);
    }
}

fn remaining(until_ms: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(until_ms - now).unwrap_or(0).max(1))
}
