//! Group commit of webhook intake on both backends: deliveries written together are each
//! stored once, answered after their batch committed, and still there after reopening.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::NoopProcessor;
use common::*;
use greenlight::store::{Inserted, IntakeWriter, NewDelivery, PendingDelivery};
use reqwest::StatusCode;

const BODY: &[u8] = br#"{"action":"created","comment":{"id":1}}"#;

fn new<'a>(id: &'a str) -> NewDelivery<'a> {
    NewDelivery {
        forge: "github",
        delivery_id: id,
        event: "issue_comment",
        payload: BODY,
        actionable: true,
    }
}

fn pending(id: &str) -> PendingDelivery {
    PendingDelivery {
        forge: "github",
        delivery_id: id.to_owned(),
        event: "issue_comment".to_owned(),
        payload: Bytes::from_static(BODY),
        actionable: true,
    }
}

#[tokio::test]
async fn a_delivery_repeated_inside_one_batch_is_stored_once() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let first = store
            .insert_deliveries(&[new("a"), new("b"), new("a")])
            .await
            .expect("batch");
        assert!(matches!(first[0], Inserted::New(_)), "{}", db.label);
        assert!(matches!(first[1], Inserted::New(_)), "{}", db.label);
        assert_eq!(first[2], Inserted::Duplicate, "{}", db.label);
        assert_ne!(first[0], first[1], "{}: distinct rows", db.label);

        // Across batches: the known one is a duplicate, the new one is stored.
        let second = store
            .insert_deliveries(&[new("b"), new("c")])
            .await
            .expect("batch");
        assert_eq!(second[0], Inserted::Duplicate, "{}", db.label);
        assert!(matches!(second[1], Inserted::New(_)), "{}", db.label);

        let mut ids: Vec<String> = store
            .list_deliveries(10, false)
            .await
            .expect("list")
            .into_iter()
            .map(|d| d.delivery_id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"], "{}", db.label);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn many_concurrent_deliveries_are_all_stored_once() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let writer = IntakeWriter::spawn(store.clone());
        // 300 distinct ids, each sent twice, all at once: every id is stored exactly once and
        // answered new exactly once.
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..600 {
            let writer = writer.clone();
            tasks.spawn(async move {
                let id = format!("d-{}", n % 300);
                (
                    id.clone(),
                    writer.insert(pending(&id)).await.expect("stored"),
                )
            });
        }
        let mut new_ids = std::collections::HashSet::new();
        let mut duplicates = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("task") {
                (id, Inserted::New(_)) => assert!(new_ids.insert(id), "{}: new twice", db.label),
                (_, Inserted::Duplicate) => duplicates += 1,
            }
        }
        assert_eq!(new_ids.len(), 300, "{}", db.label);
        assert_eq!(duplicates, 300, "{}", db.label);
        let stored = store.list_deliveries(1000, false).await.expect("list");
        assert_eq!(stored.len(), 300, "{}", db.label);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_acknowledged_delivery_survives_reopening_the_database() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let writer = IntakeWriter::spawn(store.clone());
        let stored = writer.insert(pending("kept")).await.expect("stored");
        let Inserted::New(id) = stored else {
            panic!("{}: not stored: {stored:?}", db.label)
        };
        drop(writer);
        store.close().await;

        let reopened = db.store().await;
        let job = reopened
            .claim(Duration::from_secs(30))
            .await
            .expect("claim")
            .expect("the delivery is there");
        assert_eq!(
            (job.id, job.delivery_id.as_str()),
            (id, "kept"),
            "{}",
            db.label
        );
        assert_eq!(job.payload, BODY, "{}: payload intact", db.label);
        reopened.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_failed_batch_answers_an_error_to_each_of_its_deliveries() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let writer = IntakeWriter::spawn(store.clone());
        store.close().await;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..20 {
            let writer = writer.clone();
            tasks.spawn(async move { writer.insert(pending(&format!("x-{n}"))).await });
        }
        while let Some(joined) = tasks.join_next().await {
            assert!(
                joined.expect("task").is_err(),
                "{}: must not claim success",
                db.label
            );
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_requests_with_one_delivery_id_get_one_202_and_the_rest_200() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let server = TestServer::start(
            store.clone(),
            intake(),
            fast_workers(1),
            Arc::new(NoopProcessor),
        )
        .await;
        let client = reqwest::Client::new();
        let url = server.url("/webhooks/github");
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..40 {
            let request = github_request(
                &client,
                &url,
                "issue_comment",
                &format!("r-{}", n % 4),
                BODY,
            );
            tasks.spawn(async move { request.send().await.expect("send").status() });
        }
        let (mut accepted, mut duplicate) = (0, 0);
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("task") {
                StatusCode::ACCEPTED => accepted += 1,
                StatusCode::OK => duplicate += 1,
                other => panic!("{}: unexpected {other}", db.label),
            }
        }
        assert_eq!((accepted, duplicate), (4, 36), "{}", db.label);
        assert_eq!(
            store.list_deliveries(100, false).await.expect("list").len(),
            4
        );
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_wal_is_checkpointed_off_the_intake_connection_and_nothing_is_lost() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let writer = IntakeWriter::spawn(store.clone());
        for i in 0..50 {
            writer
                .insert(pending(&format!("c-{i}")))
                .await
                .expect("stored");
        }
        let (log, copied) = store.checkpoint().await.expect("checkpoint");
        if db.label == "sqlite" {
            assert!(log > 0, "the deliveries were in the WAL");
            assert_eq!(
                copied, log,
                "no reader held it back: all of it is in the database"
            );
        } else {
            assert_eq!((log, copied), (0, 0), "nothing to do on PostgreSQL");
        }
        writer.insert(pending("after")).await.expect("stored");
        if db.label == "sqlite" {
            // The commit after a complete checkpoint wrote the WAL from its beginning again.
            let (log_after, _) = store.checkpoint().await.expect("checkpoint");
            assert!(log_after < log, "{log_after} pages, was {log}");
        }
        drop(writer);
        store.close().await;
        let reopened = db.store().await;
        let all = reopened.list_deliveries(100, false).await.expect("list");
        assert_eq!(all.len(), 51, "{}", db.label);
        reopened.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_large_payload_is_stored_compressed_and_claimed_as_it_came() {
    let body: Vec<u8> = serde_json::to_vec(&serde_json::json!({
        "action": "created",
        "repository": (0..60)
            .map(|i| (format!("url_{i}"), serde_json::Value::from(format!("https://api.github.com/repos/acme/widgets/{i}"))))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
    }))
    .expect("json");
    for db in TestDb::all().await {
        let store = db.store().await;
        let writer = IntakeWriter::spawn(store.clone());
        let mut big = pending("big");
        big.payload = Bytes::from(body.clone());
        writer.insert(big).await.expect("stored");

        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&db.url)
            .await
            .expect("raw connection");
        let (codec, stored): (String, i64) = sqlx::query_as(
            "SELECT payload_codec, CAST(length(payload) AS BIGINT) FROM deliveries WHERE delivery_id = 'big'",
        )
        .fetch_one(&raw)
        .await
        .expect("row");
        raw.close().await;
        assert_eq!(codec, "lz4", "{}", db.label);
        assert!(
            (stored as usize) * 2 < body.len(),
            "{}: {stored} bytes stored for {}",
            db.label,
            body.len()
        );

        let job = store
            .claim(Duration::from_secs(30))
            .await
            .expect("claim")
            .expect("queued");
        assert_eq!(job.payload, body, "{}: the payload as it came", db.label);
        drop(writer);
        store.close().await;
        db.cleanup().await;
    }
}
