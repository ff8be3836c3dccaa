//! Graceful shutdown of the real binary: on SIGTERM (and SIGINT) the server stops accepting,
//! lets the request in flight finish — its delivery is stored and answered — and exits 0.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{GITHUB_SECRET, eventually};
use greenlight::server::signature::github_signature;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Serve {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn serve() -> Serve {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("serve")
        .env_clear()
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("g.db").display()),
        )
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start greenlight");
    Serve { child, port, dir }
}

async fn ready(port: u16) {
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), || async {
        let r = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for the process to end; panics if it has not within 30 s.
fn exit_code(child: &mut Child) -> Option<i32> {
    for _ in 0..3000 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("greenlight did not exit within 30 s of the signal");
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let mut s = serve();
    ready(s.port).await;

    // A delivery whose body is still arriving when the signal comes.
    let body = br#"{"action":"opened","number":1,"padding":"...................."}"#;
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         x-github-event: pull_request\r\nx-github-delivery: in-flight-1\r\n\
         x-hub-signature-256: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        github_signature(GITHUB_SECRET, body),
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .expect("connect");
    conn.write_all(head.as_bytes()).await.expect("head");
    conn.write_all(&body[..10]).await.expect("first bytes");
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&s.child, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(&body[10..]).await.expect("the rest");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.expect("answer");
    assert!(
        answer.starts_with("HTTP/1.1 202"),
        "the request in flight was answered: {answer}"
    );

    assert_eq!(exit_code(&mut s.child), Some(0), "a clean exit");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut s.child.stderr.take().expect("stderr"), &mut log)
        .expect("log");
    assert!(
        log.contains("GITHUB_APP_ID"),
        "one line says what to set to act on GitHub: {log}"
    );

    // The delivery is on disk: a new process sees it.
    let out = Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("deliveries")
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", s.dir.path().join("g.db").display()),
        )
        .output()
        .expect("deliveries");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("in-flight-1"), "{listing}");
}

#[tokio::test]
async fn sigint_exits_0_too() {
    let mut s = serve();
    ready(s.port).await;
    signal(&s.child, "INT");
    assert_eq!(exit_code(&mut s.child), Some(0));
    // New connections are refused once it has stopped.
    let refused = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", s.port))
        .send()
        .await;
    assert!(refused.is_err(), "stopped listening");
}
