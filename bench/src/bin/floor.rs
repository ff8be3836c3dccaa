//! The ingest floor: the least a webhook receiver can do. Verifies the GitHub signature of the
//! raw body and answers 202, storing nothing. Greenlight's ingest throughput is reported as a
//! ratio of this, measured side by side in one run on one machine.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use clap::Parser;

/// Command line of the floor.
#[derive(Parser)]
struct Args {
    /// Address to bind: loopback only.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: std::net::SocketAddr,
    /// The webhook secret the load generator signs with.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET")]
    secret: String,
}

/// The same body limit as Greenlight, so both read bodies under one rule.
const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

async fn webhook(State(secret): State<Arc<[u8]>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if greenlight_bench::verify(&secret, sig, &body) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::UNAUTHORIZED
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    assert!(
        args.listen.ip().is_loopback(),
        "the floor listens on loopback only"
    );
    let secret: Arc<[u8]> = args.secret.into_bytes().into();
    let app = Router::new()
        .route("/webhooks/github", post(webhook))
        .route("/readyz", get(|| async { "ready\n" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(secret);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await
}
