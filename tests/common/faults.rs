//! A fault injector for the fake forges: a seeded share of calls is answered with a server
//! error, a slow answer, a rate limit, or a connection reset (before or after the forge acted),
//! and every call is recorded with its time and fate, so a test can check that nothing was
//! duplicated and that no call came before a `Retry-After` had passed.
//!
//! Forge-neutral: a fake's responder hands each request to [`Faults::answer`] with a closure
//! that carries the call out on its model; connection resets need the [`ResetProxy`] between
//! the client and the fake (wiremock cannot reset a connection).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use wiremock::ResponseTemplate;

/// How long after a limit answer a call may still arrive that was sent before the client
/// got the answer: loopback transit of a call already written, on a loaded machine.
pub const IN_FLIGHT: Duration = Duration::from_millis(20);

/// The response header that tells the [`ResetProxy`] to reset the connection instead of
/// relaying the answer.
pub const RESET_MARKER: &str = "x-fault-reset";

/// What can go wrong with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// 500, nothing done.
    ServerError,
    /// 502 from a proxy in front of the forge, nothing done.
    BadGateway,
    /// Carried out, but the answer comes after the client has given up.
    Slow,
    /// 403 "secondary rate limit" with `Retry-After`, nothing done.
    SecondaryRateLimit,
    /// 429 with `Retry-After`, nothing done.
    TooManyRequests,
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`, nothing done.
    RateLimitExhausted,
    /// The connection is reset before the forge saw the request.
    ResetBefore,
    /// The forge carried the call out, then the connection was reset: the answer is lost.
    ResetAfter,
}

impl FaultKind {
    /// Every kind, for a plan that uses them all.
    pub const ALL: [FaultKind; 8] = [
        Self::ServerError,
        Self::BadGateway,
        Self::Slow,
        Self::SecondaryRateLimit,
        Self::TooManyRequests,
        Self::RateLimitExhausted,
        Self::ResetBefore,
        Self::ResetAfter,
    ];

    /// True when the forge carried the call out although the client never hears so.
    pub fn carried_out(self) -> bool {
        matches!(self, Self::Slow | Self::ResetAfter)
    }

    fn is_rate_limit(self) -> bool {
        matches!(
            self,
            Self::SecondaryRateLimit | Self::TooManyRequests | Self::RateLimitExhausted
        )
    }
}

/// Which forge's rate-limit answers the injector sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitStyle {
    /// 403/429 with `retry-after`; `x-ratelimit-remaining`/`x-ratelimit-reset`.
    GitHub,
    /// 429 with `Retry-After`; `RateLimit-Remaining`/`RateLimit-Reset`.
    GitLab,
}

/// How often and how calls fail.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Whose rate-limit headers to send.
    pub style: LimitStyle,
    /// Seeds the choice of faulty calls: the same seed and the same calls give the same faults.
    pub seed: u64,
    /// Share of calls that fail, 0.0–1.0.
    pub share: f64,
    /// Kinds to draw from, uniformly (list one twice to draw it twice as often).
    pub kinds: Vec<FaultKind>,
    /// `Retry-After` (and the distance to `x-ratelimit-reset`) in seconds.
    pub retry_after_secs: u64,
    /// How late a [`FaultKind::Slow`] answer comes: longer than the client's timeout.
    pub slow: Duration,
}

impl FaultPlan {
    /// A plan with every kind, `share` of calls failing, seeded from `FAULT_SEED` when set (to
    /// replay a failure), else at random. Rate limits are drawn a third as often as the other
    /// kinds: each one holds every call of the installation back for `retry_after_secs`.
    pub fn from_env(share: f64, slow: Duration) -> Self {
        Self::from_env_for(LimitStyle::GitHub, share, slow)
    }

    /// [`FaultPlan::from_env`] with `style`'s rate-limit answers.
    pub fn from_env_for(style: LimitStyle, share: f64, slow: Duration) -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        Self {
            style,
            seed,
            share,
            kinds: FaultKind::ALL
                .iter()
                .flat_map(|k| std::iter::repeat_n(*k, if k.is_rate_limit() { 1 } else { 3 }))
                .collect(),
            retry_after_secs: 1,
            slow,
        }
    }
}

/// What became of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Answered,
    Fault(FaultKind),
}

/// One call as the fake saw it.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub at: Instant,
    pub wall: SystemTime,
    pub method: String,
    pub path: String,
    pub fate: Fate,
    /// For a rate limit: no call may come before this instant (`Retry-After`)…
    pub not_before: Option<Instant>,
    /// …or this wall-clock time (`x-ratelimit-reset`, whole seconds since the epoch).
    pub not_before_wall: Option<u64>,
}

/// The injector: shared by a fake's responder and the test.
pub struct Faults {
    plan: FaultPlan,
    rng: Mutex<StdRng>,
    log: Mutex<Vec<CallRecord>>,
    /// While false, every call is answered normally (setting up, or checking the end state).
    active: Mutex<bool>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").field("plan", &self.plan).finish()
    }
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        Arc::new(Self {
            rng: Mutex::new(StdRng::seed_from_u64(plan.seed)),
            plan,
            log: Mutex::default(),
            active: Mutex::new(true),
        })
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Turns injection on or off (calls are recorded either way).
    pub fn set_active(&self, on: bool) {
        *self.active.lock().expect("faults") = on;
    }

    /// Answers one call: usually by carrying it out (`carry_out` acts on the fake's model and
    /// returns the real answer), sometimes with a fault.
    pub fn answer(
        &self,
        method: &str,
        path: &str,
        carry_out: impl FnOnce() -> ResponseTemplate,
    ) -> ResponseTemplate {
        let fault = self.draw();
        let now = Instant::now();
        let wall = SystemTime::now();
        let wait = Duration::from_secs(self.plan.retry_after_secs);
        let mut record = CallRecord {
            at: now,
            wall,
            method: method.to_owned(),
            path: path.to_owned(),
            fate: fault.map_or(Fate::Answered, Fate::Fault),
            not_before: None,
            not_before_wall: None,
        };
        let response = match fault {
            None => carry_out(),
            Some(FaultKind::ServerError) => ResponseTemplate::new(500)
                .set_body_json(serde_json::json!({ "message": "Server Error" })),
            Some(FaultKind::BadGateway) => {
                ResponseTemplate::new(502).set_body_string("<html>502 Bad Gateway</html>")
            }
            Some(FaultKind::Slow) => carry_out().set_delay(self.plan.slow),
            Some(FaultKind::SecondaryRateLimit) if self.plan.style == LimitStyle::GitLab => {
                // GitLab's throttles (authenticated API, protected paths): 429 with both
                // `Retry-After` and the reset time.
                record.not_before = Some(now + wait);
                let reset =
                    wall.duration_since(UNIX_EPOCH).expect("clock").as_secs() + wait.as_secs();
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", wait.as_secs().to_string().as_str())
                    .insert_header("RateLimit-Remaining", "0")
                    .insert_header("RateLimit-Reset", reset.to_string().as_str())
                    .set_body_string("Retry later\n")
            }
            Some(FaultKind::RateLimitExhausted) if self.plan.style == LimitStyle::GitLab => {
                let reset =
                    wall.duration_since(UNIX_EPOCH).expect("clock").as_secs() + wait.as_secs();
                record.not_before_wall = Some(reset);
                ResponseTemplate::new(429)
                    .insert_header("RateLimit-Limit", "2000")
                    .insert_header("RateLimit-Remaining", "0")
                    .insert_header("RateLimit-Reset", reset.to_string().as_str())
                    .set_body_string("Retry later\n")
            }
            Some(FaultKind::SecondaryRateLimit) => {
                record.not_before = Some(now + wait);
                ResponseTemplate::new(403)
                    .insert_header("retry-after", wait.as_secs().to_string().as_str())
                    .set_body_json(serde_json::json!({
                        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                    }))
            }
            Some(FaultKind::TooManyRequests) => {
                record.not_before = Some(now + wait);
                ResponseTemplate::new(429)
                    .insert_header("retry-after", wait.as_secs().to_string().as_str())
                    .set_body_json(serde_json::json!({ "message": "Too Many Requests" }))
            }
            Some(FaultKind::RateLimitExhausted) => {
                let since_epoch = wall.duration_since(UNIX_EPOCH).expect("clock");
                // A whole second in the epoch, as GitHub sends it: the limit resets in
                // (wait - 1, wait] seconds.
                let reset = since_epoch.as_secs() + wait.as_secs();
                record.not_before_wall = Some(reset);
                ResponseTemplate::new(403)
                    .insert_header("x-ratelimit-limit", "5000")
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                    .set_body_json(serde_json::json!({ "message": "API rate limit exceeded" }))
            }
            Some(FaultKind::ResetBefore) => {
                ResponseTemplate::new(599).insert_header(RESET_MARKER, "1")
            }
            Some(FaultKind::ResetAfter) => carry_out().insert_header(RESET_MARKER, "1"),
        };
        self.log.lock().expect("faults").push(record);
        response
    }

    fn draw(&self) -> Option<FaultKind> {
        if !*self.active.lock().expect("faults") || self.plan.kinds.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().expect("faults");
        if rng.random::<f64>() >= self.plan.share {
            return None;
        }
        Some(self.plan.kinds[rng.random_range(0..self.plan.kinds.len())])
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.log.lock().expect("faults").clone()
    }

    /// Calls that came sooner than a rate limit before them allowed, as readable lines.
    ///
    /// With several workers, a call can be on its way while the limit is being answered: it
    /// was sent before the client could know. The fake sees only arrivals, so a call that
    /// arrives within [`IN_FLIGHT`] of the limit answer is taken as sent before it. A client
    /// that ignores limits still shows: its retries of the limited call, and every other call
    /// until the reset, come later than that. The hand-placed regression tests check the rule
    /// with one call in flight, where no allowance is needed.
    pub fn rate_limit_violations(&self) -> Vec<String> {
        let calls = self.calls();
        let mut out = Vec::new();
        for (i, limit) in calls.iter().enumerate() {
            let Fate::Fault(kind) = limit.fate else {
                continue;
            };
            if !kind.is_rate_limit() {
                continue;
            }
            let bucket = self.bucket(&limit.path);
            for later in &calls[i + 1..] {
                if later.at - limit.at < IN_FLIGHT || self.bucket(&later.path) != bucket {
                    continue;
                }
                let too_soon = limit.not_before.is_some_and(|t| later.at < t)
                    || limit.not_before_wall.is_some_and(|reset| {
                        later.wall.duration_since(UNIX_EPOCH).expect("clock")
                            < Duration::from_secs(reset)
                    });
                if too_soon {
                    out.push(format!(
                        "{} {} came {:?} after a {kind:?} answer to {} {}",
                        later.method,
                        later.path,
                        later.at - limit.at,
                        limit.method,
                        limit.path
                    ));
                }
            }
        }
        out
    }

    /// Which rate limit a call counts against. GitHub keeps one for the App's own JWT
    /// (`GET /app`) and one per installation token; the limit of the token endpoint is taken
    /// as the installation's, as Greenlight takes it (it can make no call for the
    /// installation without a token). GitLab: one per token.
    fn bucket(&self, path: &str) -> &'static str {
        if self.plan.style == LimitStyle::GitHub && path == "/app" {
            "app"
        } else {
            "token"
        }
    }

    /// Counts for the test's printout.
    pub fn report(&self) -> FaultReport {
        let calls = self.calls();
        let mut by_kind = BTreeMap::new();
        let mut quiet_after = BTreeMap::new();
        for (i, c) in calls.iter().enumerate() {
            let gap = calls.get(i + 1).map_or(Duration::ZERO, |n| n.at - c.at);
            let label = match c.fate {
                Fate::Fault(kind) => {
                    *by_kind.entry(kind).or_insert(0) += 1;
                    format!("{kind:?}")
                }
                Fate::Answered => "answered".to_owned(),
            };
            *quiet_after.entry(label).or_insert(Duration::ZERO) += gap;
        }
        FaultReport {
            seed: self.plan.seed,
            calls: calls.len(),
            answered: calls.iter().filter(|c| c.fate == Fate::Answered).count(),
            by_kind,
            quiet_after,
        }
    }
}

/// Calls and injected faults, by kind.
#[derive(Debug, Clone)]
pub struct FaultReport {
    pub seed: u64,
    pub calls: usize,
    pub answered: usize,
    pub by_kind: BTreeMap<FaultKind, usize>,
    /// Time until the next call, summed by what the call before it got: where the time went.
    pub quiet_after: BTreeMap<String, Duration>,
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults: usize = self.by_kind.values().sum();
        write!(
            f,
            "seed {}: {} calls, {} answered, {} faults (",
            self.seed, self.calls, self.answered, faults
        )?;
        let parts: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect();
        write!(f, "{})", parts.join(", "))?;
        let quiet: Vec<String> = self
            .quiet_after
            .iter()
            .map(|(k, d)| format!("{k} {:.1}s", d.as_secs_f64()))
            .collect();
        write!(f, "; quiet after: {}", quiet.join(", "))
    }
}

/// A TCP proxy on 127.0.0.1 in front of a fake forge that relays bytes both ways, except that
/// an answer carrying [`RESET_MARKER`] is never relayed: the client's connection is reset
/// (`SO_LINGER` 0, so the kernel sends RST) the moment that answer arrives.
pub struct ResetProxy {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ResetProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream));
            }
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ResetProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let marker = RESET_MARKER.as_bytes();
    let mut from_client = vec![0u8; 64 * 1024];
    let mut from_server = vec![0u8; 64 * 1024];
    // The tail of the previous answer chunk, so a marker split across two reads is still seen.
    let mut tail: Vec<u8> = Vec::new();
    let mut client_done = false;
    loop {
        tokio::select! {
            read = client.read(&mut from_client), if !client_done => match read {
                Ok(0) | Err(_) => {
                    client_done = true;
                    let _ = server.shutdown().await;
                }
                Ok(n) => {
                    if server.write_all(&from_client[..n]).await.is_err() {
                        break;
                    }
                }
            },
            read = server.read(&mut from_server) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&from_server[..n]);
                    if window
                        .windows(marker.len())
                        .any(|w| w.eq_ignore_ascii_case(marker))
                    {
                        let _ = client.set_zero_linger();
                        return;
                    }
                    if client.write_all(&from_server[..n]).await.is_err() {
                        break;
                    }
                    let keep = window.len().min(marker.len());
                    tail = window[window.len() - keep..].to_vec();
                }
            },
        }
    }
    let _ = client.shutdown().await;
}

/// A number from the environment (`FAULT_PRS`, `FAULT_SHARE`), else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until no job is queued or running; after `within`, fails with what is still going on
/// (and the seed, to replay it).
pub async fn settle_within(store: &greenlight::store::Store, seed: u64, within: Duration) {
    use greenlight::store::DeliveryState;
    let deadline = Instant::now() + within;
    loop {
        let rows = store.list_deliveries(10_000, false).await.expect("list");
        let busy: Vec<_> = rows
            .iter()
            .filter(|d| matches!(d.state, DeliveryState::Queued | DeliveryState::Running))
            .collect();
        if busy.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let lines: Vec<String> = busy
                .iter()
                .map(|d| {
                    format!(
                        "{} {} {:?} after {} attempts: {}",
                        d.event,
                        d.delivery_id,
                        d.state,
                        d.attempts,
                        d.last_error.clone().unwrap_or_default()
                    )
                })
                .collect();
            panic!(
                "seed {seed}: not settled in {within:?}:\n{}",
                lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
