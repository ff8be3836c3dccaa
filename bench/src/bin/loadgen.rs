//! Load generator for webhook intake: signed ~10 KB `issue_comment` deliveries, each with its
//! own `X-GitHub-Delivery` id (a repeated id would only measure the duplicate shortcut), to a
//! loopback address only.
//!
//! Closed loop (default): `--connections` keep-alive connections each send the next request as
//! soon as the last answer arrived, for `--duration` seconds or `--requests` requests: the
//! maximum throughput. Open loop (`--rate R`): requests are due at fixed times `i / R`,
//! spread over the connections; latency is measured from the time a request was *due*, so a
//! stall shows up in the percentiles instead of quietly slowing the sender (no coordinated
//! omission).
//!
//! Prints one line of `key=value` pairs for `bench/run.sh`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Command line of the load generator.
#[derive(Parser, Clone)]
struct Args {
    /// Target address: loopback only.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Request path.
    #[arg(long, default_value = "/webhooks/github")]
    path: String,
    /// The webhook secret to sign with.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET")]
    secret: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 50)]
    connections: u64,
    /// Seconds to run (an upper bound in either mode).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Most requests to send.
    #[arg(long, default_value_t = 5_000_000)]
    requests: u64,
    /// Open loop at this many requests per second (default: closed loop, as fast as answered).
    #[arg(long)]
    rate: Option<f64>,
    /// Approximate body size in bytes.
    #[arg(long, default_value_t = 10 * 1024)]
    payload_bytes: usize,
    /// Prefix of the delivery ids; unique per run so runs never collide.
    #[arg(long)]
    id_prefix: Option<String>,
}

/// Latencies recorded up to a minute, to three significant digits.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What one connection saw.
struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
}

fn main() {
    let args = Args::parse();
    assert!(
        args.addr.ip().is_loopback(),
        "loadgen only sends to loopback addresses"
    );
    assert!(
        args.connections > 0 && args.duration > 0.0,
        "need connections and a duration"
    );
    // Two worker threads: the load generator shares the machine with the server under test.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let prefix = args.id_prefix.clone().unwrap_or_else(|| {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("bench-{}-{ns}", std::process::id())
    });
    let args = Arc::new(args);
    let prefix: Arc<str> = prefix.into();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for k in 0..args.connections {
        let (args, prefix, next) = (args.clone(), prefix.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            connection(k, &args, &prefix, &next, start, deadline).await
        }));
    }
    let mut total = Tally {
        hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("bounds"),
        ok: 0,
        errors: 0,
        statuses: Default::default(),
    };
    for t in tasks {
        let t = t.await.expect("connection task");
        total.hist.add(&t.hist).expect("same bounds");
        total.ok += t.ok;
        total.errors += t.errors;
        for (s, n) in t.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let statuses: Vec<String> = total
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    let h = &total.hist;
    println!(
        "requests={} ok={} errors={} secs={secs:.2} rps={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} statuses={}",
        h.len(),
        total.ok,
        total.errors,
        total.ok as f64 / secs,
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        statuses.join(","),
    );
}

/// One keep-alive connection: closed loop takes the next request number from the shared
/// counter; open loop sends requests `k, k + N, k + 2N, …` at their due times.
async fn connection(
    k: u64,
    args: &Args,
    prefix: &str,
    next: &AtomicU64,
    start: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally {
        hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("bounds"),
        ok: 0,
        errors: 0,
        statuses: Default::default(),
    };
    let secret = args.secret.as_bytes();
    let mut sender = None;
    let mut i = k;
    loop {
        let (n, due) = match args.rate {
            None => (next.fetch_add(1, Ordering::Relaxed), None),
            Some(rate) => {
                let n = i;
                i += args.connections;
                (n, Some(start + Duration::from_secs_f64(n as f64 / rate)))
            }
        };
        if n >= args.requests || due.unwrap_or_else(Instant::now) >= deadline {
            break;
        }
        // The body (and its signature) is built before the clock starts: the server's time,
        // not the generator's, is what is measured.
        let body = greenlight_bench::issue_comment(n + 1, args.payload_bytes);
        let signature = greenlight_bench::sign(secret, &body);
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
        }
        let began = due.unwrap_or_else(Instant::now);
        if sender.is_none() {
            sender = connect(args.addr).await;
        }
        let Some(s) = sender.as_mut() else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let req = Request::post(args.path.as_str())
            .header("host", args.addr.to_string())
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/bench")
            .header("x-github-event", "issue_comment")
            .header("x-github-delivery", format!("{prefix}-{n}"))
            .header("x-hub-signature-256", signature)
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let result = async {
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }
        .await;
        match result {
            Ok(status) => {
                let us = began.elapsed().as_micros() as u64;
                tally.hist.saturating_record(us.max(1));
                *tally.statuses.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    tally.ok += 1;
                } else {
                    tally.errors += 1;
                }
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}
