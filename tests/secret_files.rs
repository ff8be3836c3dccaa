//! `*_FILE` settings, as Docker and Kubernetes mount secrets: the file's text is the
//! setting (its trailing newline dropped), the file and the variable cannot both be given,
//! and a bad file is named without its content.

mod common;

use std::process::{Command, Output, Stdio};

use common::{GITHUB_SECRET, github_request, wait_ready};
use greenlight::server::signature::github_signature;

fn greenlight(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_greenlight"));
    cmd.args(args).env_clear();
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run greenlight")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Kills the process when the test ends, passed or not.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_webhook_secret_and_the_database_url_come_from_files() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("github-webhook-secret");
    // As `kubectl create secret --from-file` and most editors leave it: a newline at the end.
    std::fs::write(&secret, format!("{GITHUB_SECRET}\n")).expect("write");
    let db = dir.path().join("database-url");
    let db_file = dir.path().join("g.db");
    std::fs::write(&db, format!("sqlite://{}\n", db_file.display())).expect("write");
    let port = free_port();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_greenlight"))
            .arg("serve")
            .env_clear()
            .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
            .env("GITHUB_WEBHOOK_SECRET_FILE", &secret)
            .env("DATABASE_URL_FILE", &db)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve"),
    );
    wait_ready(port).await;
    assert!(
        db_file.exists(),
        "the database named in the file was created"
    );

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/github");
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let signed = github_request(&http, &url, "ping", "d-1", body)
        .send()
        .await
        .expect("send");
    assert!(signed.status().is_success(), "{}", signed.status());
    // Signed with the file's text including its newline: not the secret.
    let with_newline = http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "d-2")
        .header(
            "x-hub-signature-256",
            github_signature(&format!("{GITHUB_SECRET}\n"), body),
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(with_newline.status(), 401);
}

#[test]
fn a_setting_and_its_file_cannot_both_be_given() {
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "glpat-from-the-file\n").expect("write");
    let out = greenlight(
        &["serve"],
        &[
            ("GITLAB_TOKEN", "glpat-from-the-variable"),
            ("GITLAB_TOKEN_FILE", token.to_str().expect("path")),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot be used with"), "{}", text(&out));
    assert!(!text(&out).contains("glpat-"), "{}", text(&out));
}

#[test]
fn a_bad_secret_file_is_named_and_its_content_never_shown() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("nowhere");
    let out = greenlight(
        &["serve"],
        &[("GITLAB_TOKEN_FILE", missing.to_str().expect("path"))],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("cannot read the file {}", missing.display())),
        "{}",
        text(&out)
    );

    // Not a key: the content may be the key in another form, and must not reach a log.
    let key = dir.path().join("key");
    std::fs::write(&key, "MIIEowIBAAKCAQEA-not-pem-but-secret\n").expect("write");
    let out = greenlight(
        &["serve"],
        &[
            ("GITHUB_APP_ID", "1"),
            ("GITHUB_PRIVATE_KEY_FILE", key.to_str().expect("path")),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(key.to_str().expect("path")),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("MIIEow"), "{}", text(&out));

    // The App id still needs a key, from either place.
    let out = greenlight(&["serve"], &[("GITHUB_APP_ID", "1")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
