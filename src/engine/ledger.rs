//! The effect ledger: the one place that makes a forge write happen at most once.
//!
//! A forge write that must not happen twice (a reply, a check run, a deployment and each of its
//! statuses, a workflow dispatch, a commit status, a pipeline) is an [`Effect`]: a value that
//! knows its ledger key, how its intent and its outcome are written there, how to look for what
//! an earlier attempt may have made, and how to make it. [`once`] is the protocol, written once:
//!
//! 1. read the entry: recorded → done, nothing is asked of the forge;
//! 2. intent without a record (the answer was lost, the process died after asking) → look the
//!    effect up on the forge; found → record it, done; not found → the effect decides whether it
//!    may be made again now ([`Effect::again`]: a run may take a while to be listed);
//! 3. write the intent **durably**, before the forge write (the durability rule: an intent is
//!    on disk before the write it announces, see [`crate::store`]);
//! 4. make the effect, record its outcome.
//!
//! The key formats and encoded values are those earlier versions wrote, so an upgrade never
//! redoes an effect the previous version made; they live with the effects
//! (`engine/flow/effects.rs`).

use crate::clock::Clock;
use crate::engine::db;
use crate::store::Store;
use crate::worker::JobError;

/// How an effect's ledger entry reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<D> {
    /// Never tried.
    Fresh,
    /// Tried, outcome unknown: the intent as stored (what to look up since, what was meant).
    InDoubt(String),
    /// Made, with its recorded outcome.
    Done(D),
}

/// A forge write made at most once, through [`once`].
pub(crate) trait Effect {
    /// What making (or finding) the effect yields.
    type Done;

    /// The ledger key its intent is written under.
    fn intent_key(&self) -> String;

    /// The ledger key its outcome is recorded under: the intent's own key (the value says
    /// which it is), another key, or `None` when the caller keeps the outcome (with the
    /// release) and the intent alone says "look before making it again".
    fn record_key(&self) -> Option<String>;

    /// The entry, from the values stored under the intent and the record key (the same value
    /// twice when they are one key).
    fn read(&self, intent: Option<&str>, record: Option<&str>) -> Entry<Self::Done>;

    /// The intent to write before making the effect at `now`; `doubt` is the intent an earlier
    /// attempt left (looked up, not found). `None`: keep the one stored.
    fn intent(&self, now: i64, doubt: Option<&str>) -> Option<String>;

    /// The outcome as recorded; `None` records nothing. `at` is when the effect was asked for
    /// (before the forge write); `found`, whether it was looked up rather than made.
    fn encode(&self, done: &Self::Done, at: i64, found: bool) -> Option<String>;

    /// What an earlier attempt, whose intent is `doubt`, made; `None` when the forge has nothing.
    async fn look_up(&self, doubt: &str) -> Result<Option<Self::Done>, JobError>;

    /// In doubt and not found: whether it may be made again `now` (an error puts the job
    /// back).
    fn again(&self, _doubt: &str, _now: i64) -> Result<(), JobError> {
        Ok(())
    }

    /// Makes the effect.
    async fn create(&self) -> Result<Self::Done, JobError>;
}

/// Makes `effect` unless it was made: intent → look up → create → record (the module's docs).
/// `clock` is the release's time: when the intent was written, and whether a start in doubt
/// has settled.
pub(crate) async fn once<E: Effect>(
    store: &Store,
    clock: &dyn Clock,
    effect: &E,
) -> Result<E::Done, JobError> {
    let intent_key = effect.intent_key();
    let record_key = effect.record_key();
    let intent = store.effect(&intent_key).await.map_err(db)?;
    let record = match &record_key {
        Some(k) if *k == intent_key => intent.clone(),
        Some(k) => store.effect(k).await.map_err(db)?,
        None => None,
    };
    let doubt = match effect.read(intent.as_deref(), record.as_deref()) {
        Entry::Done(done) => return Ok(done),
        Entry::InDoubt(doubt) => {
            if let Some(found) = effect.look_up(&doubt).await? {
                record_outcome(store, effect, &intent_key, &found, clock.now_ms(), true).await?;
                return Ok(found);
            }
            effect.again(&doubt, clock.now_ms())?;
            Some(doubt)
        }
        Entry::Fresh => None,
    };
    let at = clock.now_ms();
    if let Some(value) = effect.intent(at, doubt.as_deref()) {
        store.intend(&intent_key, &value).await.map_err(db)?;
    }
    let done = effect.create().await?;
    record_outcome(store, effect, &intent_key, &done, at, false).await?;
    Ok(done)
}

async fn record_outcome<E: Effect>(
    store: &Store,
    effect: &E,
    intent_key: &str,
    done: &E::Done,
    at: i64,
    found: bool,
) -> Result<(), JobError> {
    let (Some(key), Some(value)) = (effect.record_key(), effect.encode(done, at, found)) else {
        return Ok(());
    };
    if key == intent_key {
        // One key: the outcome replaces the intent.
        store.put_effect(&key, &value).await.map_err(db)
    } else {
        // A record of its own: the first one stays.
        store.record_effect(&key, &value).await.map_err(db)
    }
}

/// How long after a dispatch (or a pipeline creation) whose answer never came its run may
/// still be missing from the forge's list before Greenlight concludes it did not happen and
/// makes it again.
pub(crate) const SETTLE_MS: i64 = 10_000;

/// A run can take a moment to be listed: a start made at `at` whose run is not found is
/// only made again once [`SETTLE_MS`] have passed by `now`; until then the job is put back for
/// the rest of that time. One rule for both forges and both purposes.
pub(crate) fn settled(at: i64, now: i64, what: &str) -> Result<(), JobError> {
    let waited = now - at;
    if waited < SETTLE_MS {
        return Err(JobError::Retry {
            reason: format!("{what} is in doubt; its run may not be listed yet"),
            after: Some(std::time::Duration::from_millis(
                u64::try_from(SETTLE_MS - waited).unwrap_or(0),
            )),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A clock stopped at one instant.
    #[derive(Debug)]
    struct At(i64);
    impl Clock for At {
        fn now_ms(&self) -> i64 {
            self.0
        }
    }
    const AT: At = At(1_800_000_000_000);

    /// A reply-shaped effect over a forge that is a counter: `on_forge` is what the forge
    /// holds (an earlier attempt's comment), `creates`/`lookups` count the calls.
    struct Probe {
        on_forge: Option<u64>,
        lookups: AtomicU32,
        creates: AtomicU32,
        fail_create: bool,
    }

    impl Probe {
        fn new(on_forge: Option<u64>) -> Self {
            Self {
                on_forge,
                lookups: AtomicU32::new(0),
                creates: AtomicU32::new(0),
                fail_create: false,
            }
        }
        fn calls(&self) -> (u32, u32) {
            (
                self.lookups.load(Ordering::SeqCst),
                self.creates.load(Ordering::SeqCst),
            )
        }
    }

    impl Effect for Probe {
        type Done = u64;
        fn intent_key(&self) -> String {
            "probe:1:intent".into()
        }
        fn record_key(&self) -> Option<String> {
            Some("probe:1".into())
        }
        fn read(&self, intent: Option<&str>, record: Option<&str>) -> Entry<u64> {
            match (record.and_then(|v| v.parse().ok()), intent) {
                (Some(id), _) => Entry::Done(id),
                (None, Some(v)) => Entry::InDoubt(v.into()),
                (None, None) => Entry::Fresh,
            }
        }
        fn intent(&self, _now: i64, doubt: Option<&str>) -> Option<String> {
            doubt.is_none().then(String::new)
        }
        fn encode(&self, done: &u64, _at: i64, _found: bool) -> Option<String> {
            Some(done.to_string())
        }
        async fn look_up(&self, _doubt: &str) -> Result<Option<u64>, JobError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self.on_forge)
        }
        async fn create(&self) -> Result<u64, JobError> {
            self.creates.fetch_add(1, Ordering::SeqCst);
            if self.fail_create {
                return Err(JobError::Retry {
                    reason: "the answer was lost".into(),
                    after: None,
                });
            }
            Ok(42)
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("l.db").display());
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        (dir, store)
    }

    #[tokio::test]
    async fn a_fresh_effect_is_intended_made_and_recorded() {
        let (_dir, store) = store().await;
        let probe = Probe::new(None);
        assert_eq!(once(&store, &AT, &probe).await.expect("once"), 42);
        assert_eq!(probe.calls(), (0, 1), "no look-up for a fresh effect");
        assert_eq!(
            store.effect("probe:1:intent").await.expect("read"),
            Some(String::new())
        );
        assert_eq!(
            store.effect("probe:1").await.expect("read"),
            Some("42".into())
        );
    }

    #[tokio::test]
    async fn a_recorded_effect_does_nothing() {
        let (_dir, store) = store().await;
        store.record_effect("probe:1", "7").await.expect("record");
        let probe = Probe::new(None);
        assert_eq!(once(&store, &AT, &probe).await.expect("once"), 7);
        assert_eq!(probe.calls(), (0, 0));
    }

    #[tokio::test]
    async fn a_lost_answer_is_looked_up_and_not_made_twice() {
        let (_dir, store) = store().await;
        // The first attempt wrote its intent, made the comment, and lost the answer.
        let first = Probe {
            fail_create: true,
            ..Probe::new(None)
        };
        assert!(once(&store, &AT, &first).await.is_err());
        assert_eq!(first.calls(), (0, 1));
        assert_eq!(store.effect("probe:1").await.expect("read"), None);
        // The retry finds it on the forge: recorded, not made again.
        let retry = Probe::new(Some(9));
        assert_eq!(once(&store, &AT, &retry).await.expect("once"), 9);
        assert_eq!(retry.calls(), (1, 0));
        assert_eq!(
            store.effect("probe:1").await.expect("read"),
            Some("9".into())
        );
        // And once recorded, nothing more is asked.
        let third = Probe::new(Some(9));
        assert_eq!(once(&store, &AT, &third).await.expect("once"), 9);
        assert_eq!(third.calls(), (0, 0));
    }

    #[tokio::test]
    async fn an_intent_the_forge_never_saw_is_made_after_the_look_up() {
        let (_dir, store) = store().await;
        store.intend("probe:1:intent", "").await.expect("intend");
        let probe = Probe::new(None);
        assert_eq!(once(&store, &AT, &probe).await.expect("once"), 42);
        assert_eq!(probe.calls(), (1, 1));
        assert_eq!(
            store.effect("probe:1").await.expect("read"),
            Some("42".into())
        );
    }

    #[tokio::test]
    async fn an_unsettled_doubt_puts_the_job_back_without_making_it() {
        struct Unsettled(Probe);
        impl Effect for Unsettled {
            type Done = u64;
            fn intent_key(&self) -> String {
                self.0.intent_key()
            }
            fn record_key(&self) -> Option<String> {
                self.0.record_key()
            }
            fn read(&self, i: Option<&str>, r: Option<&str>) -> Entry<u64> {
                self.0.read(i, r)
            }
            fn intent(&self, now: i64, d: Option<&str>) -> Option<String> {
                self.0.intent(now, d)
            }
            fn encode(&self, d: &u64, at: i64, f: bool) -> Option<String> {
                self.0.encode(d, at, f)
            }
            async fn look_up(&self, d: &str) -> Result<Option<u64>, JobError> {
                self.0.look_up(d).await
            }
            fn again(&self, doubt: &str, now: i64) -> Result<(), JobError> {
                settled(doubt.parse().unwrap_or(0), now, "a probe")
            }
            async fn create(&self) -> Result<u64, JobError> {
                self.0.create().await
            }
        }
        let (_dir, store) = store().await;
        // Asked for one second before the clock's now: not settled, put back for the rest.
        let asked = AT.0 - 1_000;
        store
            .intend("probe:1:intent", &asked.to_string())
            .await
            .expect("intend");
        let probe = Unsettled(Probe::new(None));
        assert!(matches!(
            once(&store, &AT, &probe).await,
            Err(JobError::Retry { after: Some(d), .. }) if d.as_millis() == 9_000
        ));
        assert_eq!(probe.0.calls(), (1, 0));
        // The same doubt once the clock has passed the settle time: made, with no waiting.
        let later = At(asked + SETTLE_MS);
        assert_eq!(once(&store, &later, &probe).await.expect("once"), 42);
        assert_eq!(probe.0.calls(), (2, 1));
    }
}
