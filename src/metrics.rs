//! Prometheus metrics: one registry per service instance (no globals, so tests can run several).
//! Forge calls and rate-limit pauses are recorded through the metrics of the job that makes them
//! ([`scoped`]: a task-local, set by the worker around each job).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::DeliveryState;

mod exposition;
pub use exposition::{Format, route_template};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    forge: String,
    event: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ForgeLabel {
    forge: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    forge: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ForgeCallLabels {
    forge: String,
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    forge: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeployLabels {
    forge: String,
    environment: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// Every stage a release can be in, as stored (`greenlight_releases{stage}` shows each, 0 when
/// none is in it).
const STAGES: [&str; 10] = [
    "pipeline_pending",
    "pipeline_running",
    "pipeline_failed",
    "ready",
    "queued",
    "deploying",
    "deployed",
    "deploy_failed",
    "superseded",
    "closed",
];

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    jobs: Family<JobLabels, Counter>,
    queue_depth: Gauge,
    dead_letters: Gauge,
    oldest_queued: Gauge,
    requests: Family<RequestLabels, Histogram>,
    forge_calls: Family<ForgeCallLabels, Histogram>,
    rate_limit_pauses: Family<ForgeLabel, Counter>,
    releases: Family<StageLabels, Gauge>,
    deploys: Family<DeployLabels, Counter>,
    /// Deployments Greenlight did not start, per forge, as the audit log counts them.
    unapproved: Family<ForgeLabel, Counter>,
    /// Serialises the counters brought up to the database's counts at a scrape: two scrapes at
    /// once must not both add the same entries.
    scrape_sync: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
    ])
}

fn forge_latency_histogram() -> Histogram {
    Histogram::new([0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("greenlight");
        let build_info = Family::<VersionLabel, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the version of the running binary",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by forge, event and outcome",
            deliveries.clone(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Job attempts by forge and outcome (done, retry, busy, dead, released)",
            jobs.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Deliveries queued or running",
            queue_depth.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register(
            "dead_letters",
            "Deliveries in the dead-letter state",
            dead_letters.clone(),
        );
        let oldest_queued = Gauge::default();
        registry.register(
            "oldest_queued_delivery_age_seconds",
            "Age of the oldest queued delivery (0 when none is queued)",
            oldest_queued.clone(),
        );
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            requests.clone(),
        );
        let forge_calls =
            Family::<ForgeCallLabels, Histogram>::new_with_constructor(forge_latency_histogram);
        registry.register(
            "forge_request_duration_seconds",
            "Forge API requests by forge, operation (method and route template) and status, with their latency",
            forge_calls.clone(),
        );
        let rate_limit_pauses = Family::<ForgeLabel, Counter>::default();
        registry.register(
            "rate_limit_pauses",
            "Rate limits the forge answered with, each pausing calls until it resets",
            rate_limit_pauses.clone(),
        );
        let releases = Family::<StageLabels, Gauge>::default();
        registry.register(
            "releases",
            "Releases (one per pull request head) by forge and stage, from the database",
            releases.clone(),
        );
        let deploys = Family::<DeployLabels, Counter>::default();
        registry.register(
            "deploys",
            "Finished deploys by forge, environment and outcome (deployed, deploy_failed), from the database",
            deploys.clone(),
        );
        let unapproved = Family::<ForgeLabel, Counter>::default();
        registry.register(
            "unapproved_deployments",
            "Deployments to a governed environment that Greenlight did not start (from the audit log)",
            unapproved.clone(),
        );
        Self {
            registry,
            deliveries,
            jobs,
            queue_depth,
            dead_letters,
            oldest_queued,
            requests,
            forge_calls,
            rate_limit_pauses,
            releases,
            deploys,
            unapproved,
            scrape_sync: std::sync::Mutex::default(),
        }
    }

    pub fn delivery(&self, forge: &str, event: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                forge: forge.to_owned(),
                event: event.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// One job attempt ended with `outcome`.
    pub fn job_outcome(&self, forge: &str, outcome: &str) {
        self.jobs
            .get_or_create(&JobLabels {
                forge: forge.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .observe(seconds);
    }

    /// One request to a forge: `operation` is its method and route template
    /// ([`route_template`]), `status` the HTTP status or `error` (no answer, or a 5xx).
    pub fn forge_call(&self, forge: &str, operation: String, status: String, took: Duration) {
        self.forge_calls
            .get_or_create(&ForgeCallLabels {
                forge: forge.to_owned(),
                operation,
                status,
            })
            .observe(took.as_secs_f64());
    }

    /// The forge answered with a rate limit.
    pub fn rate_limit_pause(&self, forge: &str) {
        self.rate_limit_pauses
            .get_or_create(&ForgeLabel {
                forge: forge.to_owned(),
            })
            .inc();
    }

    /// Sets the gauges that come from the database, just before a scrape.
    pub fn set_queue(&self, counts: &[(DeliveryState, i64)]) {
        let sum = |pick: &[DeliveryState]| {
            counts
                .iter()
                .filter(|(s, _)| pick.contains(s))
                .map(|(_, n)| n)
                .sum::<i64>()
        };
        self.queue_depth
            .set(sum(&[DeliveryState::Queued, DeliveryState::Running]));
        self.dead_letters.set(sum(&[DeliveryState::Dead]));
    }

    /// Sets the age of the oldest queued delivery, in seconds (none queued: 0).
    pub fn set_oldest_queued(&self, age: Option<Duration>) {
        self.oldest_queued
            .set(age.map_or(0, |a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX)));
    }

    /// Sets `greenlight_releases{forge,stage}` and brings `greenlight_deploys_total` up to
    /// the database's counts (`(forge, stage, environment, releases)`), just before a scrape.
    /// Every stage of both forges is shown, at 0 when empty. A finished deploy's stage never
    /// changes again, so the deploy counters only grow.
    pub fn set_releases(&self, counts: &[(String, String, String, i64)]) {
        let _one_at_a_time = self.scrape_sync.lock();
        for forge in [crate::forge::Forge::GitHub, crate::forge::Forge::GitLab] {
            let forge = forge.as_str();
            for stage in STAGES {
                let n = counts
                    .iter()
                    .filter(|(f, s, _, _)| f == forge && s == stage)
                    .map(|(_, _, _, n)| n)
                    .sum::<i64>();
                self.releases
                    .get_or_create(&StageLabels {
                        forge: forge.to_owned(),
                        stage: stage.to_owned(),
                    })
                    .set(n);
            }
        }
        for (forge, stage, environment, n) in counts {
            if stage == "deployed" || stage == "deploy_failed" {
                raise(
                    &self.deploys.get_or_create(&DeployLabels {
                        forge: forge.clone(),
                        environment: environment.clone(),
                        outcome: stage.clone(),
                    }),
                    *n,
                );
            }
        }
    }

    /// Brings `greenlight_unapproved_deployments_total` up to the audit log's counts
    /// (`(forge, entries)`), just before a scrape: every replica reports the shared log. Both
    /// forges are always shown, at 0 until something slipped past. The log is append-only, so
    /// the counter only grows.
    pub fn set_unapproved(&self, counts: &[(String, i64)]) {
        let _one_at_a_time = self.scrape_sync.lock();
        for forge in [crate::forge::Forge::GitHub, crate::forge::Forge::GitLab] {
            let seen = counts
                .iter()
                .filter(|(f, _)| f == forge.as_str())
                .map(|(_, n)| n)
                .sum::<i64>();
            raise(
                &self.unapproved.get_or_create(&ForgeLabel {
                    forge: forge.as_str().to_owned(),
                }),
                seen,
            );
        }
    }

    /// The exposition in `format`.
    pub fn render(&self, format: Format) -> String {
        exposition::render(&self.registry, format)
    }
}

/// Raises `counter` to `seen` (a counter never goes down).
fn raise(counter: &Counter, seen: i64) {
    let seen = u64::try_from(seen).unwrap_or(0);
    let shown = counter.get();
    if seen > shown {
        counter.inc_by(seen - shown);
    }
}

tokio::task_local! {
    static CURRENT: Arc<Metrics>;
}

/// Runs `work` with `metrics` as the metrics its forge calls are recorded in.
pub async fn scoped<F: Future>(metrics: Arc<Metrics>, work: F) -> F::Output {
    CURRENT.scope(metrics, work).await
}

/// Records into the metrics of the job this task runs ([`scoped`]); outside one, nothing.
pub fn record(f: impl FnOnce(&Metrics)) {
    let _ = CURRENT.try_with(|m| f(m));
}
