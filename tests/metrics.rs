//! `/metrics` as Prometheus reads it: the Prometheus text format 0.0.4 unless the scraper's
//! `Accept` asks for OpenMetrics, read back by a strict 0.0.4 parser (every sample typed, a
//! counter's `# TYPE` naming its `_total` samples, no `# EOF`); the metrics a release moves, on
//! both forges (counts, not times); `GREENLIGHT_METRICS_LISTEN` keeping `/metrics` off the
//! public port.

mod common;

use std::collections::BTreeMap;

use common::TestDb;
use common::world::{Perm, State, World};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// What Prometheus 2.x and 3.x send when they scrape.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPEN_METRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    /// The family's `# TYPE`.
    kind: String,
}

/// A strict reader of the Prometheus text format 0.0.4
/// (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>):
/// `# HELP` / `# TYPE` once per family and before its samples; a counter's and a gauge's
/// samples carry the family's name, a histogram's `_bucket` (with `le`), `_sum` and `_count`;
/// a sample outside a typed family, an OpenMetrics-only line (`# EOF`, `# UNIT`) or a malformed
/// line fails.
fn parse_004(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: Vec<String> = Vec::new();
    let mut sampled: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            match keyword {
                "HELP" => {
                    let name = rest.split(' ').next().unwrap_or("");
                    assert!(!helps.contains(&name.to_owned()), "{at}: HELP twice");
                    helps.push(name.to_owned());
                }
                "TYPE" => {
                    let (name, kind) = rest.split_once(' ').expect(&at);
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{at}: not a 0.0.4 type"
                    );
                    assert!(
                        !sampled.contains(&name.to_owned()),
                        "{at}: TYPE after samples"
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "{at}: TYPE twice"
                    );
                }
                other => panic!("{at}: `# {other}` is not Prometheus text 0.0.4"),
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{at}");
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}').expect(&at);
                (
                    &line[..open],
                    parse_labels(&line[open + 1..close], &at),
                    &line[close + 1..],
                )
            }
            None => {
                let (name, rest) = line.split_once(' ').expect(&at);
                (name, BTreeMap::new(), &line[name.len()..][..rest.len() + 1])
            }
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{at}: metric name"
        );
        let mut fields = rest.split_whitespace();
        let value = match fields.next().expect(&at) {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().unwrap_or_else(|_| panic!("{at}: value")),
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().expect(&at);
        }
        assert!(fields.next().is_none(), "{at}: trailing fields");
        let family = [name.to_owned()]
            .into_iter()
            .chain(
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|s| name.strip_suffix(s).map(str::to_owned)),
            )
            .find(|f| types.contains_key(f))
            .unwrap_or_else(|| panic!("{at}: sample of no typed family"));
        let kind = types[&family].clone();
        match kind.as_str() {
            "counter" | "gauge" | "untyped" => assert_eq!(name, family, "{at}"),
            "histogram" => {
                assert_ne!(name, family, "{at}: a histogram has no bare sample");
                if name.ends_with("_bucket") {
                    assert!(labels.contains_key("le"), "{at}: bucket without le");
                }
            }
            _ => {}
        }
        if kind == "counter" {
            assert!(value >= 0.0, "{at}: negative counter");
        }
        sampled.push(family);
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
            kind,
        });
    }
    out
}

fn parse_labels(text: &str, at: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() {
            assert!(chars.next().is_none(), "{at}: labels");
            return labels;
        }
        assert_eq!(chars.next(), Some('='), "{at}");
        assert_eq!(chars.next(), Some('"'), "{at}");
        let mut value = String::new();
        loop {
            match chars.next().expect(at) {
                '"' => break,
                '\\' => match chars.next().expect(at) {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("{at}: escape \\{c}"),
                },
                c => value.push(c),
            }
        }
        assert!(
            labels.insert(name.trim().to_owned(), value).is_none(),
            "{at}: label twice"
        );
        match chars.next() {
            None => return labels,
            Some(',') => {}
            Some(c) => panic!("{at}: {c:?} after a label"),
        }
    }
}

/// Scrapes `url` with `accept`: the content type and the body.
async fn scrape(url: &str, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_owned();
    (kind, response.text().await.expect("body"))
}

/// The sum of the samples named `name` whose labels include every one of `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
        .sum()
}

fn kind<'s>(samples: &'s [Sample], name: &str) -> &'s str {
    samples
        .iter()
        .find(|s| s.name == name)
        .map_or("absent", |s| s.kind.as_str())
}

/// Every request the fake forge received that went through Greenlight's forge client (the
/// App's installation tokens are fetched by octocrab itself).
fn client_calls<W: World>(w: &W) -> usize {
    w.raw_calls()
        .iter()
        .filter(|c| !c.path.ends_with("/access_tokens"))
        .count()
}

macro_rules! both_forges {
    ($($story:ident),* $(,)?) => {
        mod github {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$story::<crate::common::world_github::GitHubWorld>().await;
                }
            )*
        }
        mod gitlab {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$story::<crate::common::world_gitlab::GitLabWorld>().await;
                }
            )*
        }
    };
}

both_forges!(
    a_release_moves_the_metrics_prometheus_reads_with_their_types,
    a_rate_limit_is_counted_once,
);

async fn a_release_moves_the_metrics_prometheus_reads_with_their_types<W: World>() {
    for db in TestDb::all().await {
        let label = db.label;
        let w = W::start_on(db, Some(W::POLICY)).await;
        let forge = W::FORGE;
        w.grant("mona", Perm::Maintain);
        w.ready(7, A, "octocat").await;
        w.comment(7, 5001, "mona", "/approve-release aaaaaaa").await;
        w.deploy_finishes(State::Passed).await;
        assert!(w.dead().await.is_empty(), "{label}");

        // No Accept, and one that asks for text: 0.0.4, which the strict parser reads.
        for accept in [None, Some("text/plain;version=0.0.4")] {
            let (content_type, text) = scrape(&w.url("/metrics"), accept).await;
            assert_eq!(content_type, TEXT_004, "{label} {accept:?}");
            assert!(!text.contains("# EOF"), "{label}");
            parse_004(&text);
        }
        // Prometheus asks for OpenMetrics and gets it.
        let (content_type, open) = scrape(&w.url("/metrics"), Some(PROMETHEUS_ACCEPT)).await;
        assert_eq!(content_type, OPEN_METRICS, "{label}");
        assert!(open.ends_with("# EOF\n"), "{label}");
        assert!(open.contains("# TYPE greenlight_jobs counter\n"), "{label}");

        let (_, text) = scrape(&w.url("/metrics"), None).await;
        let m = parse_004(&text);
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(kind(&m, "greenlight_build_info"), "gauge");
        assert_eq!(
            sum(&m, "greenlight_build_info", &[("version", version)]),
            1.0
        );
        for (name, want) in [
            ("greenlight_jobs_total", "counter"),
            ("greenlight_webhook_deliveries_total", "counter"),
            ("greenlight_unapproved_deployments_total", "counter"),
            ("greenlight_deploys_total", "counter"),
            (
                "greenlight_forge_request_duration_seconds_count",
                "histogram",
            ),
            (
                "greenlight_http_request_duration_seconds_count",
                "histogram",
            ),
            ("greenlight_releases", "gauge"),
            ("greenlight_queue_depth", "gauge"),
            ("greenlight_oldest_queued_delivery_age_seconds", "gauge"),
        ] {
            assert_eq!(kind(&m, name), want, "{label}: {name}");
        }
        // The merged job counter: every attempt by forge and outcome; all of them done.
        let jobs = sum(&m, "greenlight_jobs_total", &[("forge", forge)]);
        assert!(jobs > 0.0, "{label}");
        assert_eq!(
            sum(
                &m,
                "greenlight_jobs_total",
                &[("forge", forge), ("outcome", "done")]
            ),
            jobs,
            "{label}"
        );
        // Every request the forge received is counted once, under a route template.
        assert_eq!(
            sum(
                &m,
                "greenlight_forge_request_duration_seconds_count",
                &[("forge", forge)]
            ),
            client_calls(&w) as f64,
            "{label}"
        );
        for s in m
            .iter()
            .filter(|s| s.name.starts_with("greenlight_forge_request"))
        {
            let op = &s.labels["operation"];
            assert!(
                !op.split('/')
                    .any(|seg| seg.bytes().all(|b| b.is_ascii_digit()) && !seg.is_empty())
                    && !op.contains("aaaaaaa"),
                "{label}: {op} carries an id"
            );
        }
        assert_eq!(
            sum(
                &m,
                "greenlight_releases",
                &[("forge", forge), ("stage", "deployed")]
            ),
            1.0,
            "{label}"
        );
        assert_eq!(
            sum(&m, "greenlight_releases", &[("forge", forge)]),
            1.0,
            "{label}"
        );
        assert_eq!(
            sum(
                &m,
                "greenlight_deploys_total",
                &[("forge", forge), ("outcome", "deployed")]
            ),
            1.0,
            "{label}"
        );
        assert_eq!(
            sum(&m, "greenlight_oldest_queued_delivery_age_seconds", &[]),
            0.0,
            "{label}: nothing queued"
        );
        // Scraping again counts nothing twice.
        let (_, again) = scrape(&w.url("/metrics"), None).await;
        let again = parse_004(&again);
        assert_eq!(
            sum(&again, "greenlight_deploys_total", &[("forge", forge)]),
            1.0,
            "{label}"
        );
        w.stop_unchecked().await;
    }
}

async fn a_rate_limit_is_counted_once<W: World>() {
    let w = W::start(Some(W::POLICY)).await;
    let forge = W::FORGE;
    w.rate_limit_next_policy_read();
    w.ready(7, A, "octocat").await;
    assert!(w.dead().await.is_empty());
    let (_, text) = scrape(&w.url("/metrics"), None).await;
    let m = parse_004(&text);
    assert_eq!(kind(&m, "greenlight_rate_limit_pauses_total"), "counter");
    assert_eq!(
        sum(
            &m,
            "greenlight_rate_limit_pauses_total",
            &[("forge", forge)]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "greenlight_forge_request_duration_seconds_count",
            &[("forge", forge), ("status", "rate_limited")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "greenlight_jobs_total",
            &[("forge", forge), ("outcome", "retry")]
        ),
        1.0
    );
    w.stop_unchecked().await;
}

/// A free loopback port (bound, then let go for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test]
async fn a_metrics_listener_serves_metrics_and_the_public_port_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (public, private) = (free_port(), free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("g.db").display()),
        )
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{public}"))
        .env("GREENLIGHT_METRICS_LISTEN", format!("127.0.0.1:{private}"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn greenlight");
    let base = format!("http://127.0.0.1:{public}");
    let metrics = format!("http://127.0.0.1:{private}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let outcome = async move {
        assert!(up, "greenlight serve never became ready");
        let (content_type, text) = scrape(&format!("{metrics}/metrics"), None).await;
        assert_eq!(content_type, TEXT_004);
        assert!(
            parse_004(&text)
                .iter()
                .any(|s| s.name == "greenlight_build_info")
        );
        let public_metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("get");
        assert_eq!(
            public_metrics.status(),
            404,
            "the public port keeps /metrics off"
        );
        let health = client
            .get(format!("{metrics}/healthz"))
            .send()
            .await
            .expect("get");
        assert_eq!(
            health.status(),
            404,
            "the metrics port serves /metrics only"
        );
    };
    let result = tokio::spawn(outcome).await;
    child.kill().expect("kill the child we started");
    child.wait().expect("wait");
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `greenlight_oldest_queued_delivery_age_seconds` grows while a delivery waits for a worker
/// (none runs here), and is 0 with none queued. The scrape reads the wall clock (no clock is
/// injected there), so the test asserts growth, never a duration.
#[tokio::test]
async fn the_oldest_queued_delivery_age_grows_while_it_waits() {
    use greenlight::store::NewDelivery;
    for db in TestDb::all().await {
        let label = db.label;
        let store = db.store().await;
        let server = common::TestServer::start(
            store.clone(),
            common::intake(),
            common::fast_workers(0),
            std::sync::Arc::new(common::NoopProcessor),
        )
        .await;
        let url = server.url("/metrics");
        let age = || async {
            let (_, text) = scrape(&url, None).await;
            sum(
                &parse_004(&text),
                "greenlight_oldest_queued_delivery_age_seconds",
                &[],
            )
        };
        assert_eq!(age().await, 0.0, "{label}: nothing queued");
        store
            .insert_delivery(&NewDelivery {
                forge: "github",
                delivery_id: "waiting",
                event: "pull_request",
                payload: b"{}",
                actionable: true,
            })
            .await
            .expect("insert");
        let first = age().await;
        let later = common::eventually(std::time::Duration::from_secs(10), || async {
            let now = age().await;
            (now > first).then_some(now)
        })
        .await;
        assert!(later > first, "{label}: {first} then {later}");
        let again = age().await;
        assert!(again >= later, "{label}: never shrinks while it waits");
        server.stop().await;
        store.close().await;
        db.cleanup().await;
    }
}
