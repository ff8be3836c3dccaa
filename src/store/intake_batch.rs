//! Group commit for webhook intake: concurrent deliveries are written by one task in one
//! statement (one transaction, one fsync), and each request is answered only after the batch
//! holding it committed.
//!
//! A batch is whatever arrived while the previous one was being written, up to
//! [`MAX_BATCH`]: under light load a delivery is written alone at once (no waiting for company),
//! under heavy load one fsync covers many. The durability contract is unchanged — a 2xx means
//! the delivery is on disk (`synchronous = FULL` on SQLite) — and so is idempotency: a delivery
//! id repeated inside one batch or across batches is stored once, the others answer duplicate.

use std::borrow::Cow;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::payload::{self, Encoded};
use super::{Inserted, NewDelivery, Store};

/// Most deliveries written in one statement. 256 rows bind 1,537 parameters (far under both
/// backends' limits) and about 0.7 MB of compressed 10 KB payloads.
pub const MAX_BATCH: usize = 256;

/// Deliveries waiting for the writer before senders wait too (back-pressure on intake).
const QUEUE: usize = 4 * MAX_BATCH;

/// A delivery handed to the writer, owning its data (the payload is the request's own buffer).
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub forge: &'static str,
    pub delivery_id: String,
    pub event: String,
    pub payload: Bytes,
    /// False for event types nothing acts on: stored as `ignored`, never queued.
    pub actionable: bool,
}

/// Why a delivery could not be stored: its batch failed (or the writer is gone). The caller
/// answers 503 so the forge redelivers.
#[derive(Debug, thiserror::Error)]
#[error("storing the delivery failed: {0}")]
pub struct BatchError(String);

type Reply = oneshot::Sender<Result<Inserted, BatchError>>;

/// A delivery on its way to the writer: its payload as it will be stored, and the codec.
type Queued = (PendingDelivery, Bytes, &'static str, Reply);

/// The handle request handlers use; cheap to clone. The writer task stops when the last
/// handle is dropped, after writing what it was given.
#[derive(Debug, Clone)]
pub struct IntakeWriter {
    tx: mpsc::Sender<Queued>,
}

impl IntakeWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, rx));
        Self { tx }
    }

    /// Stores `delivery` in the next batch and waits until that batch committed. The payload
    /// is compressed here, in the caller's task, so requests compress side by side and the
    /// one writer only writes.
    pub async fn insert(&self, delivery: PendingDelivery) -> Result<Inserted, BatchError> {
        let encoded = payload::encode(&delivery.payload);
        let codec = encoded.codec;
        let stored = match encoded.bytes {
            Cow::Owned(packed) => Bytes::from(packed),
            Cow::Borrowed(_) => delivery.payload.clone(),
        };
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((delivery, stored, codec, reply))
            .await
            .map_err(|_| BatchError("the intake writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| BatchError("the intake writer has stopped".into()))?
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<NewDelivery<'_>> = batch
            .iter()
            .map(|(d, _, _, _)| NewDelivery {
                forge: d.forge,
                delivery_id: &d.delivery_id,
                event: &d.event,
                payload: &d.payload,
                actionable: d.actionable,
            })
            .collect();
        let encoded: Vec<Encoded<'_>> = batch
            .iter()
            .map(|(_, stored, codec, _)| Encoded {
                bytes: Cow::Borrowed(stored.as_ref()),
                codec,
            })
            .collect();
        let result = store.insert_encoded(&rows, &encoded).await;
        drop((rows, encoded));
        match result {
            Ok(outcomes) => {
                for ((_, _, _, reply), outcome) in batch.drain(..).zip(outcomes) {
                    // The request may have gone (client hung up): the delivery is stored anyway.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, rows = batch.len(), "cannot store a batch of deliveries");
                let why = e.to_string();
                for (_, _, _, reply) in batch.drain(..) {
                    let _ = reply.send(Err(BatchError(why.clone())));
                }
            }
        }
    }
}
