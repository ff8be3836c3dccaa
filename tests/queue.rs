//! The durable queue on both backends: retries, dead letters, lease takeover, restarts and
//! concurrent workers.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use greenlight::store::{Claimed, DeliveryState, Inserted, NewDelivery, Store};
use greenlight::worker::{JobError, Processor, WorkerConfig};
use tokio_util::sync::CancellationToken;

/// Fails each delivery a scripted number of times, then succeeds; records every attempt.
#[derive(Default)]
struct Scripted {
    failures: HashMap<String, u32>,
    attempts: Mutex<HashMap<String, u32>>,
    in_flight: Mutex<HashSet<i64>>,
    overlaps: Mutex<u32>,
    work: Duration,
}

impl Scripted {
    fn attempts(&self, delivery: &str) -> u32 {
        self.attempts
            .lock()
            .expect("lock")
            .get(delivery)
            .copied()
            .unwrap_or(0)
    }
}

impl Processor for Scripted {
    async fn process(&self, job: &Claimed) -> Result<(), JobError> {
        if !self.in_flight.lock().expect("lock").insert(job.id) {
            *self.overlaps.lock().expect("lock") += 1;
        }
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        let n = {
            let mut attempts = self.attempts.lock().expect("lock");
            let n = attempts.entry(job.delivery_id.clone()).or_default();
            *n += 1;
            *n
        };
        self.in_flight.lock().expect("lock").remove(&job.id);
        match self.failures.get(&job.delivery_id) {
            Some(&fail) if n <= fail => Err(JobError::Retry {
                reason: format!("scripted failure {n}"),
                after: None,
            }),
            _ => Ok(()),
        }
    }
}

async fn enqueue(store: &Store, delivery: &str) -> i64 {
    let new = NewDelivery {
        forge: "github",
        delivery_id: delivery,
        event: "pull_request",
        payload: b"{}",
        actionable: true,
    };
    match store.insert_delivery(&new).await.expect("insert") {
        Inserted::New(id) => id,
        Inserted::Duplicate => panic!("duplicate {delivery}"),
    }
}

async fn wait_state(store: &Store, id: i64, state: DeliveryState) -> u32 {
    eventually(Duration::from_secs(10), || async {
        match store.delivery_state(id).await.expect("state") {
            Some((s, attempts)) if s == state => Some(attempts),
            _ => None,
        }
    })
    .await
}

#[tokio::test]
async fn a_job_that_fails_twice_then_succeeds() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let processor = Arc::new(Scripted {
            failures: HashMap::from([("flaky".into(), 2)]),
            ..Default::default()
        });
        let id = enqueue(&store, "flaky").await;
        let server =
            TestServer::start(store.clone(), intake(), fast_workers(2), processor.clone()).await;
        let attempts = wait_state(&store, id, DeliveryState::Done).await;
        assert_eq!(attempts, 3, "{}", db.label);
        assert_eq!(processor.attempts("flaky"), 3, "{}", db.label);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_job_is_dead_lettered_after_max_attempts_and_can_be_retried() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let processor = Arc::new(Scripted {
            failures: HashMap::from([("doomed".into(), 4)]),
            ..Default::default()
        });
        let id = enqueue(&store, "doomed").await;
        let server =
            TestServer::start(store.clone(), intake(), fast_workers(1), processor.clone()).await;
        let attempts = wait_state(&store, id, DeliveryState::Dead).await;
        assert_eq!(attempts, 3, "{}: max_attempts is 3", db.label);
        let dead = store.list_deliveries(10, true).await.expect("list");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("scripted failure 3"));
        // No further attempts once dead.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(processor.attempts("doomed"), 3, "{}", db.label);

        // An operator re-queues it; the fourth attempt fails, the fifth succeeds.
        assert!(store.requeue(id).await.expect("requeue"));
        wait_state(&store, id, DeliveryState::Done).await;
        assert_eq!(processor.attempts("doomed"), 5, "{}", db.label);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let id = enqueue(&store, "orphan").await;
        // A worker claims the job, then "crashes" (never reports back).
        let crashed = store
            .claim(Duration::from_millis(300))
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(crashed.id, id);
        assert!(
            store
                .claim(Duration::from_secs(30))
                .await
                .expect("claim")
                .is_none(),
            "leased job is not handed out twice"
        );

        let processor = Arc::new(Scripted::default());
        let server =
            TestServer::start(store.clone(), intake(), fast_workers(1), processor.clone()).await;
        let attempts = wait_state(&store, id, DeliveryState::Done).await;
        assert_eq!(attempts, 2, "{}: the crashed attempt counts", db.label);
        assert_eq!(processor.attempts("orphan"), 1);
        // The crashed worker wakes up and tries to record a failure: refused.
        assert!(
            !store
                .retry_later(&crashed, Duration::ZERO, "late")
                .await
                .expect("update"),
            "{}",
            db.label
        );
        assert_eq!(
            store
                .delivery_state(id)
                .await
                .expect("state")
                .expect("row")
                .0,
            DeliveryState::Done
        );
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_renewed_lease_keeps_its_job_and_a_lost_one_cannot_be_renewed() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let first = enqueue(&store, "long-running").await;
        let second = enqueue(&store, "next").await;
        let short = Duration::from_millis(300);
        let held = store.claim(short).await.expect("claim").expect("a job");
        assert_eq!(held.id, first, "{}: the oldest due job first", db.label);
        assert!(
            store
                .extend_lease(&held, Duration::from_secs(30))
                .await
                .expect("renew"),
            "{}",
            db.label
        );
        tokio::time::sleep(short * 2).await;
        // The first lease would have run out by now; the renewed one has not.
        let next = store.claim(short).await.expect("claim").expect("a job");
        assert_eq!(next.id, second, "{}: the renewed job is not due", db.label);
        assert!(
            store.claim(short).await.expect("claim").is_none(),
            "{}: nothing else is due",
            db.label
        );
        // The second worker stalls past its lease: a third takes the job over, and the
        // stalled one can no longer renew it.
        tokio::time::sleep(short * 2).await;
        let taken = store.claim(short).await.expect("claim").expect("a job");
        assert_eq!(taken.id, second, "{}", db.label);
        assert!(
            !store.extend_lease(&next, short).await.expect("renew"),
            "{}: a lost lease is not renewed",
            db.label
        );
        db.cleanup().await;
    }
}

/// Blocks every job until the test lets go; used to stop a server mid-job.
struct Blocking {
    started: tokio::sync::Notify,
    release: CancellationToken,
}

impl Processor for Blocking {
    async fn process(&self, _job: &Claimed) -> Result<(), JobError> {
        self.started.notify_one();
        self.release.cancelled().await;
        Ok(())
    }
}

#[tokio::test]
async fn queued_jobs_survive_a_restart() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let blocking = Arc::new(Blocking {
            started: tokio::sync::Notify::new(),
            release: CancellationToken::new(),
        });
        let first =
            TestServer::start(store.clone(), intake(), fast_workers(1), blocking.clone()).await;
        let client = reqwest::Client::new();
        for n in 0..3 {
            let res = github_request(
                &client,
                &first.url("/webhooks/github"),
                "pull_request",
                &format!("r-{n}"),
                b"{}",
            )
            .send()
            .await
            .expect("send");
            assert_eq!(res.status(), 202);
        }
        blocking.started.notified().await;
        // Stop while one job is running and two are queued. The running one is given back after
        // the shutdown grace period... which we do not wait for: the blocking job is let go.
        first.shutdown.cancel();
        blocking.release.cancel();
        first.stop().await;

        let store = db.store().await;
        let processor = Arc::new(Scripted::default());
        let second =
            TestServer::start(store.clone(), intake(), fast_workers(2), processor.clone()).await;
        for n in 0..3 {
            let delivery = format!("r-{n}");
            eventually(Duration::from_secs(10), || async {
                let rows = store.list_deliveries(10, false).await.expect("list");
                rows.iter()
                    .any(|r| r.delivery_id == delivery && r.state == DeliveryState::Done)
                    .then_some(())
            })
            .await;
        }
        // The job that was running when the first server stopped finished there; the two
        // queued ones ran on the second server.
        let ran_after_restart: u32 = (0..3).map(|n| processor.attempts(&format!("r-{n}"))).sum();
        assert_eq!(ran_after_restart, 2, "{}", db.label);
        second.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn two_worker_pools_on_one_database_never_run_the_same_job() {
    for db in TestDb::all().await {
        let store = db.store().await;
        const JOBS: usize = 120;
        for n in 0..JOBS {
            enqueue(&store, &format!("c-{n}")).await;
        }
        // Two "replicas": separate pools, separate worker sets, one shared processor record.
        let processor = Arc::new(Scripted {
            work: Duration::from_millis(2),
            ..Default::default()
        });
        let config = WorkerConfig {
            workers: 4,
            ..fast_workers(4)
        };
        let a = TestServer::start(
            db.store().await,
            intake(),
            config.clone(),
            processor.clone(),
        )
        .await;
        let b = TestServer::start(db.store().await, intake(), config, processor.clone()).await;
        eventually(Duration::from_secs(30), || async {
            let done = store
                .count_by_state()
                .await
                .expect("count")
                .into_iter()
                .find(|(s, _)| *s == DeliveryState::Done)
                .map_or(0, |(_, n)| n);
            (done as usize == JOBS).then_some(())
        })
        .await;
        for n in 0..JOBS {
            assert_eq!(
                processor.attempts(&format!("c-{n}")),
                1,
                "{}: job c-{n}",
                db.label
            );
        }
        assert_eq!(*processor.overlaps.lock().expect("lock"), 0, "{}", db.label);
        a.stop().await;
        b.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn retention_prunes_only_old_processed_deliveries() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let insert = |id: &'static str, actionable: bool| {
            let store = store.clone();
            async move {
                store
                    .insert_delivery(&NewDelivery {
                        forge: "github",
                        delivery_id: id,
                        event: "issue_comment",
                        payload: b"{}",
                        actionable,
                    })
                    .await
                    .expect("insert")
            }
        };
        let lease = Duration::from_secs(30);
        // One delivery in each state: done, dead, running, queued, ignored.
        for id in ["done", "dead", "running", "queued"] {
            insert(id, true).await;
        }
        insert("ignored", false).await;
        let done = store.claim(lease).await.expect("claim").expect("job");
        assert!(store.complete(&done).await.expect("complete"));
        let dead = store.claim(lease).await.expect("claim").expect("job");
        assert!(store.dead_letter(&dead, "broken").await.expect("dead"));
        store.claim(lease).await.expect("claim").expect("job");

        // Nothing is older than the epoch: nothing goes.
        assert_eq!(
            greenlight::retention::prune_before(&store, 0)
                .await
                .expect("prune"),
            0,
            "{}",
            db.label
        );
        // Everything is older than a minute from now: only the processed ones go.
        let later = greenlight::store::now_ms() + 60_000;
        assert_eq!(
            greenlight::retention::prune_before(&store, later)
                .await
                .expect("prune"),
            2,
            "{}",
            db.label
        );
        let mut left: Vec<(String, DeliveryState)> = store
            .list_deliveries(10, false)
            .await
            .expect("list")
            .into_iter()
            .map(|d| (d.delivery_id, d.state))
            .collect();
        left.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            left,
            [
                ("dead".to_owned(), DeliveryState::Dead),
                ("queued".to_owned(), DeliveryState::Queued),
                ("running".to_owned(), DeliveryState::Running),
            ],
            "{}",
            db.label
        );
        assert_eq!(
            store.queue_gauges().await.expect("gauges"),
            (2, 1),
            "{}",
            db.label
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn retention_prunes_in_batches_until_none_is_left() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let batch: Vec<String> = (0..2_500).map(|n| format!("old-{n}")).collect();
        for chunk in batch.chunks(250) {
            let rows: Vec<NewDelivery<'_>> = chunk
                .iter()
                .map(|id| NewDelivery {
                    forge: "github",
                    delivery_id: id,
                    event: "ping",
                    payload: b"{}",
                    actionable: false,
                })
                .collect();
            store.insert_deliveries(&rows).await.expect("insert");
        }
        let later = greenlight::store::now_ms() + 60_000;
        assert_eq!(
            greenlight::retention::prune_before(&store, later)
                .await
                .expect("prune"),
            2_500,
            "{}",
            db.label
        );
        assert!(
            store
                .list_deliveries(10, false)
                .await
                .expect("list")
                .is_empty()
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_audit_entry_under_a_key_is_written_once_with_its_key() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let entry = greenlight::store::AuditEntry {
            at: 1_700_000_000_000,
            forge: "github".into(),
            repo: "acme/widgets".into(),
            pr: 7,
            sha: "a".repeat(40),
            actor: "mona".into(),
            action: "approve".into(),
            outcome: "accepted".into(),
            reason: "permission maintain".into(),
        };
        assert!(
            store.audit_once("k1", &entry).await.expect("audit"),
            "{}",
            db.label
        );
        assert!(
            !store.audit_once("k1", &entry).await.expect("audit"),
            "{}: a retry",
            db.label
        );
        assert!(
            store.audit_once("k2", &entry).await.expect("audit"),
            "{}",
            db.label
        );
        let log = store.audit_log(None, 10).await.expect("log");
        assert_eq!(log.len(), 2, "{}: one entry per key", db.label);
        // A key in the effect ledger (written so before migration 0006) counts as written.
        store.put_effect("k3", "").await.expect("legacy key");
        assert!(
            !store.audit_once("k3", &entry).await.expect("audit"),
            "{}: a key of the ledger",
            db.label
        );
        assert_eq!(store.audit_log(None, 10).await.expect("log").len(), 2);
        store.close().await;
        db.cleanup().await;
    }
}
