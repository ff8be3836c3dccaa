//! Prometheus metrics: one registry per service instance (no globals, so tests can run several).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::DeliveryState;

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
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    job_attempts: Family<ForgeLabel, Counter>,
    jobs: Family<OutcomeLabel, Counter>,
    queue_depth: Gauge,
    dead_letters: Gauge,
    requests: Family<RequestLabels, Histogram>,
    /// Deployments Greenlight did not start, per forge, as the audit log counts them.
    unapproved: Family<ForgeLabel, Counter>,
    /// Serialises [`Metrics::set_unapproved`]: two scrapes at once must not both add the
    /// same entries.
    unapproved_sync: std::sync::Mutex<()>,
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

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("greenlight");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by forge, event and outcome",
            deliveries.clone(),
        );
        let job_attempts = Family::<ForgeLabel, Counter>::default();
        registry.register("job_attempts", "Job attempts started", job_attempts.clone());
        let jobs = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "jobs",
            "Job attempts by outcome (done, retry, dead, released)",
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
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            requests.clone(),
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
            job_attempts,
            jobs,
            queue_depth,
            dead_letters,
            requests,
            unapproved,
            unapproved_sync: std::sync::Mutex::default(),
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

    pub fn job_attempt(&self, forge: &str) {
        self.job_attempts
            .get_or_create(&ForgeLabel {
                forge: forge.to_owned(),
            })
            .inc();
    }

    pub fn job_outcome(&self, outcome: &str) {
        self.jobs
            .get_or_create(&OutcomeLabel {
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

    /// Brings `greenlight_unapproved_deployments_total` up to the audit log's counts
    /// (`(forge, entries)`), just before a scrape: every replica reports the shared log. Both
    /// forges are always shown, at 0 until something slipped past. The log is append-only, so
    /// the counter only grows.
    pub fn set_unapproved(&self, counts: &[(String, i64)]) {
        let _one_at_a_time = self.unapproved_sync.lock();
        for forge in [crate::forge::Forge::GitHub, crate::forge::Forge::GitLab] {
            let seen = counts
                .iter()
                .filter(|(f, _)| f == forge.as_str())
                .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
                .sum::<u64>();
            let counter = self.unapproved.get_or_create(&ForgeLabel {
                forge: forge.as_str().to_owned(),
            });
            let shown = counter.get();
            if seen > shown {
                counter.inc_by(seen - shown);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
