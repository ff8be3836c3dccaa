//! The release's time in tests: the machine's clock plus an offset the test moves, so a story
//! jumps past a settle time, a soak or a window instead of waiting for it. The machinery
//! (leases, claims, retries) keeps the machine's clock and runs on undisturbed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use greenlight::clock::{Clock, wall_ms};

#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves the release's time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).expect("duration");
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the release's time to `at` (Unix ms) now; it runs on from there.
    pub fn set(&self, at: i64) {
        self.offset_ms.store(at - wall_ms(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        wall_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}
