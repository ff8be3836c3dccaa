//! The job loop: claim a delivery under a lease, process it, record the outcome.
//!
//! Retries back off exponentially with jitter and honour the forge's `Retry-After`; after
//! `max_attempts` a job is dead-lettered (visible in metrics and `greenlight deliveries`).
//! While a job runs its lease is renewed, so a slow job is not taken over; a crashed worker's
//! lease simply expires and another worker claims the job again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::metrics::Metrics;
use crate::store::{Claimed, Store};

/// Works one claimed job. Implemented by the release engine; tests supply their own.
pub trait Processor: Send + Sync + 'static {
    fn process(&self, job: &Claimed) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (network, 5xx, rate limit). `after` is the forge's own
    /// `Retry-After` or rate-limit reset, when it gave one.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will never succeed (a payload we cannot read): dead-lettered at once.
    #[error("{0}")]
    Fatal(String),
    /// Not this job's fault: another job holds what it needs (the repository's lease), or the
    /// forge asked everyone to wait. Given back to the queue for this long without counting an
    /// attempt.
    #[error("busy; trying again in {}ms", .0.as_millis())]
    Busy(Duration),
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        Self::Retry {
            reason: format!("{e:#}"),
            after: None,
        }
    }
}

/// Longest wait between two retries of one job, however many attempts it has had.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(15 * 60);

/// How often an idle worker looks for due jobs (retries become due without a wake-up call).
pub const IDLE_POLL: Duration = Duration::from_millis(500);

/// How long a job that is still running at shutdown may go on before it is given back.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub workers: u16,
    pub max_attempts: u32,
    pub lease: Duration,
    pub retry_base: Duration,
}

impl From<&crate::config::WorkerArgs> for WorkerConfig {
    fn from(a: &crate::config::WorkerArgs) -> Self {
        Self {
            workers: a.workers,
            max_attempts: a.max_attempts,
            lease: Duration::from_secs(a.lease_secs),
            retry_base: Duration::from_millis(a.retry_base_ms),
        }
    }
}

/// Delay before attempt `attempts + 1`: `base · 2^(attempts-1)`, capped, with "equal jitter"
/// (uniform in the upper half) so that jobs failing together do not retry together; never
/// sooner than the forge asked for.
pub fn backoff(attempts: u32, base: Duration, forge_asked: Option<Duration>) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(MAX_RETRY_DELAY);
    let half = full / 2;
    let jitter = half.mul_f64(rand::random::<f64>());
    let delay = half + jitter;
    match forge_asked {
        Some(asked) => delay.max(asked),
        None => delay,
    }
}

/// Starts `config.workers` workers; they stop when `shutdown` is cancelled.
pub fn spawn<P: Processor>(
    store: Store,
    processor: Arc<P>,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for n in 0..config.workers {
        let worker = Worker {
            store: store.clone(),
            processor: processor.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            wake: wake.clone(),
            shutdown: shutdown.clone(),
        };
        // Error-level spans: enabled whenever errors are logged, so an operator running at
        // `RUST_LOG=warn` still sees which job (and delivery) a warning or an error is about.
        set.spawn(worker.run().instrument(tracing::error_span!("worker", n)));
    }
    set
}

struct Worker<P> {
    store: Store,
    processor: Arc<P>,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
}

impl<P: Processor> Worker<P> {
    async fn run(self) {
        while !self.shutdown.is_cancelled() {
            match self.store.claim(self.config.lease).await {
                Ok(Some(job)) => {
                    let span = tracing::error_span!(
                        "job",
                        id = job.id,
                        forge = %job.forge,
                        event = %job.event,
                        delivery = %job.delivery_id,
                        attempt = job.attempts,
                    );
                    self.work(job).instrument(span).await;
                }
                Ok(None) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs; the database may be down");
                    tokio::select! {
                        () = tokio::time::sleep(IDLE_POLL * 4) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn work(&self, job: Claimed) {
        let outcome = {
            let process =
                crate::metrics::scoped(self.metrics.clone(), self.processor.process(&job));
            tokio::pin!(process);
            let renew_every = self.config.lease / 3;
            let grace = async {
                self.shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    result = &mut process => break Some(result),
                    () = &mut grace => break None,
                    () = tokio::time::sleep(renew_every) => {
                        match self.store.extend_lease(&job, self.config.lease).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!("lease lost: another worker owns this job now"),
                            Err(e) => tracing::warn!(error = %e, "cannot renew lease"),
                        }
                    }
                }
            }
        };
        let recorded = match outcome {
            None => {
                tracing::info!("shutting down: job given back to the queue");
                self.metrics.job_outcome(&job.forge, "released");
                self.store.give_back(&job, Duration::ZERO).await
            }
            Some(Ok(())) => {
                tracing::debug!("job done");
                self.metrics.job_outcome(&job.forge, "done");
                self.store.complete(&job).await
            }
            Some(Err(JobError::Busy(delay))) => {
                tracing::debug!(
                    delay_ms = delay.as_millis() as u64,
                    "resource busy; job given back"
                );
                self.metrics.job_outcome(&job.forge, "busy");
                self.store.give_back(&job, delay).await
            }
            Some(Err(JobError::Fatal(reason))) => {
                tracing::error!(error = %reason, "job failed permanently; dead-lettered");
                self.metrics.job_outcome(&job.forge, "dead");
                self.store.dead_letter(&job, &reason).await
            }
            Some(Err(JobError::Retry { reason, after })) => {
                if job.attempts >= self.config.max_attempts {
                    tracing::error!(error = %reason, attempts = job.attempts, "job failed too often; dead-lettered");
                    self.metrics.job_outcome(&job.forge, "dead");
                    self.store.dead_letter(&job, &reason).await
                } else {
                    let delay = backoff(job.attempts, self.config.retry_base, after);
                    tracing::warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                    self.metrics.job_outcome(&job.forge, "retry");
                    self.store.retry_later(&job, delay, &reason).await
                }
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("outcome not recorded: the lease had passed to another worker")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record job outcome; the lease will expire and the job run again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(2);
        for attempts in 1..40 {
            let d = backoff(attempts, base, None);
            let full = base
                .saturating_mul(1 << attempts.saturating_sub(1).min(30))
                .min(MAX_RETRY_DELAY);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempts}: {d:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }

    /// Collects what the log writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Unreadable;

    impl Processor for Unreadable {
        async fn process(&self, _job: &Claimed) -> Result<(), JobError> {
            Err(JobError::Fatal("cannot read the payload".into()))
        }
    }

    #[tokio::test]
    async fn a_job_error_names_its_delivery_when_only_warnings_are_logged() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // The test's runtime has one thread, so the workers' tasks log through this default.
        let _default = tracing::subscriber::set_default(subscriber);

        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let new = crate::store::NewDelivery {
            forge: "github",
            delivery_id: "d-4711",
            event: "pull_request",
            payload: b"{}",
            actionable: true,
        };
        store.insert_delivery(&new).await.expect("insert");
        let shutdown = CancellationToken::new();
        let config = WorkerConfig {
            workers: 1,
            max_attempts: 3,
            lease: Duration::from_secs(30),
            retry_base: Duration::from_millis(10),
        };
        let mut set = spawn(
            store.clone(),
            Arc::new(Unreadable),
            config,
            Arc::new(Metrics::new()),
            Arc::new(Notify::new()),
            shutdown.clone(),
        );
        let logged = || String::from_utf8_lossy(&log.0.lock().expect("lock")).into_owned();
        for _ in 0..500 {
            if logged().contains("dead-lettered") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        while set.join_next().await.is_some() {}
        let line = logged();
        assert!(line.contains("dead-lettered"), "{line}");
        assert!(line.contains("delivery=d-4711"), "{line}");
        assert!(line.contains("event=pull_request"), "{line}");
    }

    #[test]
    fn backoff_never_sooner_than_the_forge_asked() {
        let asked = Duration::from_secs(60);
        assert!(backoff(1, Duration::from_secs(2), Some(asked)) >= asked);
        assert!(
            backoff(12, Duration::from_secs(2), Some(Duration::from_secs(1)))
                >= Duration::from_secs(450)
        );
    }
}
