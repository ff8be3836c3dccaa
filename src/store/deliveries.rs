//! The inbox and job queue: deliveries are stored before they are acknowledged, then claimed
//! by workers under a lease, retried with backoff, and dead-lettered after too many attempts.
//!
//! Every write that finishes a job is fenced by the claim's `lease_token`: a worker whose lease
//! expired (and whose job another worker took over) cannot overwrite the newer outcome.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Backend, Store, now_ms, payload};

/// Lifecycle of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for a worker (first attempt or a retry).
    Queued,
    /// Claimed by a worker whose lease has not expired.
    Running,
    /// Processed.
    Done,
    /// An event type Greenlight does not act on; kept for the record, never worked.
    Ignored,
    /// Failed too often; waits for a person (`greenlight deliveries retry`).
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Ignored => "ignored",
            Self::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "ignored" => Self::Ignored,
            _ => Self::Dead,
        }
    }
}

/// A delivery as the intake hands it to storage.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub forge: &'a str,
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub payload: &'a [u8],
    /// False for event types nothing acts on: stored as `ignored`, never queued.
    pub actionable: bool,
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored under this row id.
    New(i64),
    /// The forge had delivered this id before; nothing was written.
    Duplicate,
}

/// A job a worker holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub forge: String,
    pub delivery_id: String,
    pub event: String,
    pub payload: Vec<u8>,
    /// Attempts including this one.
    pub attempts: u32,
    /// Fences this claim: only its holder can finish the job.
    pub lease_token: String,
}

/// A row of the listing (`greenlight deliveries`).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub forge: String,
    pub delivery_id: String,
    pub event: String,
    pub received_at: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When the job may next be claimed: its retry time, or for a running job its lease's end.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Stores a delivery unless its `(forge, delivery_id)` is already known.
    pub async fn insert_delivery(&self, d: &NewDelivery<'_>) -> sqlx::Result<Inserted> {
        let mut outcomes = self.insert_deliveries(std::slice::from_ref(d)).await?;
        Ok(outcomes.pop().unwrap_or(Inserted::Duplicate))
    }

    /// Stores many deliveries in one statement (one transaction, one fsync), each unless its
    /// `(forge, delivery_id)` is already known or came earlier in `batch`. The outcomes are in
    /// the order of `batch`. Either all new rows are stored or, on error, none.
    pub async fn insert_deliveries(
        &self,
        batch: &[NewDelivery<'_>],
    ) -> sqlx::Result<Vec<Inserted>> {
        let encoded: Vec<_> = batch.iter().map(|d| payload::encode(d.payload)).collect();
        self.insert_encoded(batch, &encoded).await
    }

    /// [`Store::insert_deliveries`] with the payloads already encoded (`encoded[i]` is
    /// `batch[i]`'s): intake compresses in the request's own task, not in the batch writer.
    pub(crate) async fn insert_encoded(
        &self,
        batch: &[NewDelivery<'_>],
        encoded: &[payload::Encoded<'_>],
    ) -> sqlx::Result<Vec<Inserted>> {
        let mut outcomes = vec![Inserted::Duplicate; batch.len()];
        // The first of each id in the batch is written; later ones are duplicates of it.
        let mut first: HashMap<(&str, &str), usize> = HashMap::with_capacity(batch.len());
        let mut rows = Vec::with_capacity(batch.len());
        for (i, d) in batch.iter().enumerate() {
            if let Entry::Vacant(slot) = first.entry((d.forge, d.delivery_id)) {
                slot.insert(i);
                rows.push((d, &encoded[i]));
            }
        }
        if rows.is_empty() {
            return Ok(outcomes);
        }
        let now = now_ms();
        let mut sql = String::from(
            "INSERT INTO deliveries (forge, delivery_id, event, received_at, payload, payload_codec, state, next_attempt_at) VALUES ",
        );
        for n in 0..rows.len() {
            let p = n * 6;
            if n > 0 {
                sql.push_str(", ");
            }
            // received_at and next_attempt_at are the same instant: the last parameter.
            let last = rows.len() * 6 + 1;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${last}, ${}, ${}, ${}, ${last})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6
            ));
        }
        sql.push_str(
            " ON CONFLICT (forge, delivery_id) DO NOTHING RETURNING id, forge, delivery_id",
        );
        let mut query = sqlx::query(&sql);
        for (d, stored) in &rows {
            let state = if d.actionable {
                DeliveryState::Queued
            } else {
                DeliveryState::Ignored
            };
            query = query
                .bind(d.forge)
                .bind(d.delivery_id)
                .bind(d.event)
                .bind(stored.bytes.as_ref())
                .bind(stored.codec)
                .bind(state.as_str());
        }
        // Whatever ran on the connection before, an acknowledged delivery is fsynced.
        let mut conn = self.durable().await?;
        let stored = query.bind(now).fetch_all(&mut *conn).await?;
        for row in stored {
            let forge: String = row.try_get(1)?;
            let delivery_id: String = row.try_get(2)?;
            if let Some(&i) = first.get(&(forge.as_str(), delivery_id.as_str())) {
                outcomes[i] = Inserted::New(row.try_get(0)?);
            }
        }
        Ok(outcomes)
    }

    /// Claims the oldest due job (queued and due, or running with an expired lease) for `lease`.
    /// On PostgreSQL concurrent claimers skip each other's rows, so no job is handed out twice.
    /// (`bench/run.sh` times this statement through the `sqlite3` shell: keep its copy alike.)
    pub async fn claim(&self, lease: Duration) -> sqlx::Result<Option<Claimed>> {
        let now = now_ms();
        let token = new_token();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // A running job's `next_attempt_at` is its lease's end (see `extend_lease`): a due job,
        // queued or abandoned, is one range of the `deliveries_due` index, read in order and
        // stopped at the first row, however long the queue.
        let sql = format!(
            "UPDATE deliveries
                SET state = 'running', attempts = attempts + 1, lease_until = $1,
                    next_attempt_at = $1, lease_token = $2
              WHERE id = (SELECT id FROM deliveries
                           WHERE state IN ('queued', 'running') AND next_attempt_at <= $3
                           ORDER BY next_attempt_at, id
                           LIMIT 1 {lock})
             RETURNING id, forge, delivery_id, event, payload, attempts, lease_token, payload_codec"
        );
        let query = sqlx::query(&sql)
            .bind(now + lease.as_millis() as i64)
            .bind(&token)
            .bind(now);
        let rows = self.queue_write(query).await?;
        rows.first().map(claimed_from_row).transpose()
    }

    /// Extends a held lease (and with it the time the job is due again should its worker
    /// die). False when the lease was lost to another worker.
    pub async fn extend_lease(&self, job: &Claimed, lease: Duration) -> sqlx::Result<bool> {
        let query = sqlx::query(
            "UPDATE deliveries SET lease_until = $1, next_attempt_at = $1
              WHERE id = $2 AND lease_token = $3 AND state = 'running' RETURNING id",
        )
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(job.id)
        .bind(&job.lease_token);
        let done = self.queue_write(query).await?;
        Ok(done.len() == 1)
    }

    /// Marks a held job processed.
    pub async fn complete(&self, job: &Claimed) -> sqlx::Result<bool> {
        let query = sqlx::query(
            "UPDATE deliveries SET state = 'done', finished_at = $1, lease_until = NULL, lease_token = NULL, last_error = NULL
              WHERE id = $2 AND lease_token = $3 RETURNING id",
        )
        .bind(now_ms())
        .bind(job.id)
        .bind(&job.lease_token);
        let done = self.queue_write(query).await?;
        Ok(done.len() == 1)
    }

    /// Puts a held job back in the queue, due after `delay`.
    pub async fn retry_later(
        &self,
        job: &Claimed,
        delay: Duration,
        error: &str,
    ) -> sqlx::Result<bool> {
        let query = sqlx::query(
            "UPDATE deliveries SET state = 'queued', next_attempt_at = $1, lease_until = NULL, lease_token = NULL, last_error = $2
              WHERE id = $3 AND lease_token = $4 RETURNING id",
        )
        .bind(now_ms() + delay.as_millis() as i64)
        .bind(error)
        .bind(job.id)
        .bind(&job.lease_token);
        let done = self.queue_write(query).await?;
        Ok(done.len() == 1)
    }

    /// Gives a held job back without counting the attempt (graceful shutdown, or a resource
    /// another job holds), due after `delay`.
    pub async fn give_back(&self, job: &Claimed, delay: Duration) -> sqlx::Result<bool> {
        let query = sqlx::query(
            "UPDATE deliveries SET state = 'queued', attempts = attempts - 1, lease_until = NULL, lease_token = NULL,
                    next_attempt_at = $3
              WHERE id = $1 AND lease_token = $2 RETURNING id",
        )
        .bind(job.id)
        .bind(&job.lease_token)
        .bind(now_ms() + delay.as_millis() as i64);
        let done = self.queue_write(query).await?;
        Ok(done.len() == 1)
    }

    /// Moves a held job to the dead-letter state.
    pub async fn dead_letter(&self, job: &Claimed, error: &str) -> sqlx::Result<bool> {
        let query = sqlx::query(
            "UPDATE deliveries SET state = 'dead', finished_at = $1, lease_until = NULL, lease_token = NULL, last_error = $2
              WHERE id = $3 AND lease_token = $4 RETURNING id",
        )
        .bind(now_ms())
        .bind(error)
        .bind(job.id)
        .bind(&job.lease_token);
        let done = self.queue_write(query).await?;
        Ok(done.len() == 1)
    }

    /// Re-queues a dead (or finished) delivery by row id, with a fresh attempt budget.
    /// False when no such delivery exists or it is already queued or running.
    pub async fn requeue(&self, id: i64) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = $1, finished_at = NULL
              WHERE id = $2 AND state IN ('dead', 'done', 'ignored')",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *self.durable().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Re-queues every dead letter (those received at or after `since_ms`, when given), with
    /// fresh attempt budgets. Returns how many.
    pub async fn requeue_dead(&self, since_ms: Option<i64>) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = $1, finished_at = NULL
              WHERE state = 'dead' AND received_at >= $2",
        )
        .bind(now_ms())
        .bind(since_ms.unwrap_or(i64::MIN))
        .execute(&mut *self.durable().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// One delivery by row id, with its payload as it came.
    pub async fn delivery(&self, id: i64) -> anyhow::Result<Option<(Delivery, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT id, forge, delivery_id, event, received_at, state, attempts, next_attempt_at, last_error,
                    payload, payload_codec
               FROM deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let payload = super::payload::decode(&r.try_get::<String, _>(10)?, r.try_get(9)?)?;
        Ok(Some((delivery_from_row(&r)?, payload)))
    }

    /// The newest deliveries first; only dead letters when `dead_only`.
    pub async fn list_deliveries(
        &self,
        limit: u32,
        dead_only: bool,
    ) -> sqlx::Result<Vec<Delivery>> {
        let filter = if dead_only {
            "WHERE state = 'dead'"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, forge, delivery_id, event, received_at, state, attempts, next_attempt_at, last_error
               FROM deliveries {filter} ORDER BY id DESC LIMIT $1"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// The queue gauges: deliveries queued or running, and dead letters. Both are counted
    /// through the partial indexes on live and dead rows, so a long history costs nothing.
    pub async fn queue_gauges(&self) -> sqlx::Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'running')),
                    (SELECT COUNT(*) FROM deliveries WHERE state = 'dead')",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// When the oldest queued delivery (waiting for a worker or for its retry) was received,
    /// in ms since the epoch; `None` when none is queued. Read through the partial index on
    /// live rows.
    pub async fn oldest_queued_ms(&self) -> sqlx::Result<Option<i64>> {
        sqlx::query_scalar(
            "SELECT MIN(received_at) FROM deliveries
              WHERE state IN ('queued', 'running') AND state = 'queued'",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
    }

    /// Deletes up to `limit` processed deliveries (done or ignored) received before
    /// `before_ms`, oldest first; returns how many. Never touches queued, running or dead ones.
    /// One short statement per call, so the prune never holds the write lock for long.
    pub async fn prune_processed(&self, before_ms: i64, limit: u32) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (
                 SELECT id FROM deliveries
                  WHERE state IN ('done', 'ignored') AND received_at < $1
                  ORDER BY received_at LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::from(limit))
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// Counts per state (every state: a full count, for tests and tools, not for metrics).
    pub async fn count_by_state(&self) -> sqlx::Result<Vec<(DeliveryState, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    DeliveryState::parse(&r.try_get::<String, _>(0)?),
                    r.try_get(1)?,
                ))
            })
            .collect()
    }

    /// One delivery's state by row id.
    pub async fn delivery_state(&self, id: i64) -> sqlx::Result<Option<(DeliveryState, u32)>> {
        let row = sqlx::query("SELECT state, attempts FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| {
            Ok((
                DeliveryState::parse(&r.try_get::<String, _>(0)?),
                u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
            ))
        })
        .transpose()
    }
}

impl Store {
    /// Runs a queue transition (claim, lease renewal, finishing a job) without waiting for an
    /// fsync ([`Store::relaxed`]): it survives a crash of the process, and a power failure can
    /// only undo it, which repeats work but loses nothing — an undone claim is claimed again,
    /// an undone finish runs the job again, and every forge effect is idempotent. Intake never
    /// takes this path: a delivery is acknowledged only after a full sync (see
    /// [`Store::insert_deliveries`]).
    async fn queue_write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::Result<Vec<AnyRow>> {
        query.fetch_all(&mut *self.relaxed().await?).await
    }
}

fn claimed_from_row(r: &AnyRow) -> sqlx::Result<Claimed> {
    Ok(Claimed {
        id: r.try_get(0)?,
        forge: r.try_get(1)?,
        delivery_id: r.try_get(2)?,
        event: r.try_get(3)?,
        payload: payload::decode(r.try_get(7)?, r.try_get(4)?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        attempts: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
        lease_token: r.try_get(6)?,
    })
}

fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// A listing row from its first nine columns (`id` … `last_error`).
fn delivery_from_row(r: &AnyRow) -> sqlx::Result<Delivery> {
    Ok(Delivery {
        id: r.try_get(0)?,
        forge: r.try_get(1)?,
        delivery_id: r.try_get(2)?,
        event: r.try_get(3)?,
        received_at: r.try_get(4)?,
        state: DeliveryState::parse(&r.try_get::<String, _>(5)?),
        attempts: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(0),
        next_attempt_at: r.try_get(7)?,
        last_error: r.try_get(8)?,
    })
}
