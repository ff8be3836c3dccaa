//! Micro benchmarks (criterion) of the per-delivery CPU work: signature verification of a
//! real-size body, payload → Event parsing of the documented payloads and of a real-size one,
//! command parsing, and template rendering.
//!
//! `cargo bench --bench micro`; under `cargo test --benches` each runs once as a smoke test.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use greenlight::forge::github::events;
use greenlight::release::command;
use greenlight::render::{CardView, Renderer, Stage};
use greenlight::server::signature::{github_signature, verify_github};
use secrecy::SecretString;
use serde_json::Value;

#[path = "common/github_urls.rs"]
mod github_urls;
use github_urls::{REPO_URLS, USER_URLS};

const SECRET: &str = "bench-secret";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The documented `issue_comment` fixture grown to the size GitHub really sends (~10 KB): the
/// URL fields of every user and of the repository, which the parser must skip.
fn real_size_comment() -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("issue_comment.created")).expect("json");
    fn grow(v: &mut Value, depth: usize) {
        if let Value::Object(map) = v {
            let keys: &[&str] = if map.contains_key("login") {
                USER_URLS
            } else if map.contains_key("full_name") {
                REPO_URLS
            } else {
                &[]
            };
            for &key in keys {
                map.entry(key).or_insert_with(|| {
                    format!("https://api.github.com/repos/acme/widgets/{key}{{/number}}").into()
                });
            }
            for child in map.values_mut() {
                if depth < 4 {
                    grow(child, depth + 1);
                }
            }
        }
    }
    grow(&mut v, 0);
    v["comment"]["body"] = format!(
        "Reviewed, looks right.\r\n\r\n/approve-release 6dcb09b\r\n\r\n{}",
        "Notes from the review: the sprocket cutter now runs in one pass. ".repeat(60)
    )
    .into();
    serde_json::to_vec(&v).expect("json")
}

fn signature(c: &mut Criterion) {
    let body = real_size_comment();
    let header = github_signature(SECRET, &body);
    let secrets = [SecretString::from(SECRET.to_owned())];
    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("verify_github_10kb", |b| {
        b.iter(|| {
            verify_github(
                black_box(&secrets),
                Some(black_box(&header)),
                black_box(&body),
            )
        })
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_event");
    let real = real_size_comment();
    g.throughput(Throughput::Bytes(real.len() as u64));
    g.bench_function("issue_comment_10kb", |b| {
        b.iter(|| events::parse("issue_comment", black_box(&real)).expect("parses"))
    });
    for (event, file) in [
        ("issue_comment", "issue_comment.created"),
        ("pull_request", "pull_request.opened"),
        ("workflow_run", "workflow_run.completed"),
        ("check_run", "check_run.rerequested"),
    ] {
        let body = fixture(file);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(file, |b| {
            b.iter(|| events::parse(event, black_box(&body)).expect("parses"))
        });
    }
    g.finish();
}

fn commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("command");
    let short = "LGTM\n\n/approve-release 6dcb09b";
    let long = format!(
        "{}\n```\n/approve-release in a code block\n```\n> /retry quoted\n/approve-release 6dcb09b\n",
        "A long review comment with no command in it at all. ".repeat(80)
    );
    g.bench_function("parse_short", |b| {
        b.iter(|| command::parse(black_box(short)))
    });
    g.bench_function("parse_4kb_review", |b| {
        b.iter(|| command::parse(black_box(&long)))
    });
    g.finish();
}

fn rendering(c: &mut Criterion) {
    let renderer = Renderer::built_in();
    let sha = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b";
    let view = CardView {
        forge: "github".into(),
        repo: "acme/widgets".into(),
        pr: 7,
        sha: sha.into(),
        short_sha: sha[..7].into(),
        stage: Stage::Ready,
        pipeline_url: Some("https://github.com/acme/widgets/actions/runs/9001".into()),
        environment: "production".into(),
        approvals: Vec::new(),
        required: 1,
        approvers: "people with `maintain` permission or higher".into(),
        command: format!("/approve-release {}", &sha[..7]),
        queue_position: None,
        deploy_url: None,
        superseded_by: None,
        detail: None,
    };
    c.bench_function("render/card_ready", |b| {
        b.iter_batched(
            || view.clone(),
            |v| renderer.card(&v).expect("renders"),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, signature, parsing, commands, rendering);
criterion_main!(benches);
