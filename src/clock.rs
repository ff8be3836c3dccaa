//! The release's time: when an approval was asked, a run dispatched, an effect intended, an
//! audit entry written; soon soak times, freeze windows and lock expiry. It comes from a
//! [`Clock`] passed to the engine ([`Engine::with_clock`](crate::engine::Engine::with_clock)),
//! so tests set the time instead of waiting for it.
//!
//! What is not the release's time stays on the process's own wall clock: leases and their
//! renewal, job claims and retry times, rate-limit pauses, signature timestamps. Those guard
//! the machinery across processes and replicas, which must agree with each other (and with
//! the database) rather than with a test.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where the release flow reads the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        wall_ms()
    }
}

/// The process's wall clock in Unix milliseconds (the machinery's time, see the module docs).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
