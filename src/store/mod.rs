//! Where state lives: one sqlx pool over SQLite (embedded default) or PostgreSQL (replicas).
//!
//! SQL is shared between the two backends wherever the dialects agree (`$n` placeholders work
//! on both); the few statements that differ (claiming with `SKIP LOCKED`) branch on [`Backend`].

mod deliveries;
pub mod intake_batch;
pub mod payload;
mod releases;

use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions as _, Executor as _, Row as _};

pub use deliveries::{Claimed, Delivery, DeliveryState, Inserted, NewDelivery};
pub use intake_batch::{IntakeWriter, PendingDelivery};
pub use releases::{AuditEntry, PullRow, ReleaseRow};

/// The database behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The one handle to storage. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: a connection of its own for WAL checkpoints ([`Store::checkpoint`]), so
    /// copying the log into the database never holds up the connection intake commits on.
    checkpointer: Option<AnyPool>,
    /// SQLite: the `synchronous` level the pool's one connection is at now.
    sync: Arc<AtomicU8>,
    /// Writes so far: the checkpointer sleeps through quiet times.
    writes: Arc<AtomicU64>,
}

/// `synchronous = FULL`: a commit returns after its fsync (what a connection starts at).
const SYNC_FULL: u8 = 0;
/// `synchronous = NORMAL`: a commit survives a crash of the process, not a power failure.
const SYNC_NORMAL: u8 = 1;
/// Not known (a `PRAGMA` failed): set again before the next statement.
const SYNC_UNKNOWN: u8 = 2;

/// SQLite's own checkpoint, run by whichever commit finds the WAL this many pages long, is the
/// safety net only: [`Store::checkpoint`] runs long before it. (SQLite's default is 1,000
/// pages, about 400 deliveries of 10 KB: under load, a checkpoint inside every second commit
/// of intake.)
const SQLITE_WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Time between two checkpoints of [`Store::run_checkpoints`] while anything is written: short,
/// so each copies little (at 500 deliveries a second, about 100 pages) and often finds the WAL
/// fully copied, which lets the next commit write it from its start again. (Every 250 ms, the
/// WAL grew under load to the safety net's size and the tail latency of intake doubled.)
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// How long a connection waits for SQLite's write lock before giving up. Writers queue behind
/// each other for milliseconds; seconds of waiting means something is wrong.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// Connections in the pool on PostgreSQL (replicas share the server's connection budget).
const MAX_CONNECTIONS: u32 = 16;

/// Connections in the pool on SQLite: one. SQLite has one writer at a time, and writers that
/// find the lock taken sleep in SQLite's busy handler (1, 2, 5 … 100 ms between tries), which
/// under load starves the intake's group commit and puts hundreds of milliseconds into the
/// tail. One connection turns that into the pool's fair, asynchronous queue; reads are
/// microseconds on SQLite, so waiting behind a commit costs them little. (No code holds a
/// connection while asking for another, so one cannot deadlock.)
const SQLITE_MAX_CONNECTIONS: u32 = 1;

impl Store {
    /// Connects (creating the SQLite file if needed). Does not migrate; see [`Store::migrate`].
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| "DATABASE_URL is not a valid database URL")?
            .log_statements(tracing::log::LevelFilter::Trace);
        let sync = Arc::new(AtomicU8::new(SYNC_FULL));
        let connections = match backend {
            Backend::Sqlite => SQLITE_MAX_CONNECTIONS,
            Backend::Postgres => MAX_CONNECTIONS,
        };
        let pool = Self::pool(backend, options.clone(), connections, Some(sync.clone())).await?;
        let checkpointer = match backend {
            Backend::Sqlite => Some(Self::pool(backend, options, 1, None).await?),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            checkpointer,
            sync,
            writes: Arc::default(),
        })
    }

    /// A pool; `sync` (the main SQLite pool's) learns that a new connection starts at FULL.
    async fn pool(
        backend: Backend,
        options: AnyConnectOptions,
        connections: u32,
        sync: Option<Arc<AtomicU8>>,
    ) -> anyhow::Result<AnyPool> {
        AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let sync = sync.clone();
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. synchronous=FULL: a delivery we
                        // acknowledged survives power loss, not only a crash.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(
                            format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                        )
                        .await?;
                        conn.execute(
                            format!(
                                "PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}"
                            )
                            .as_str(),
                        )
                        .await?;
                        if let Some(sync) = sync {
                            sync.store(SYNC_FULL, Ordering::SeqCst);
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to the {backend:?} database"))
    }

    /// The connection for a write that must survive a power failure once it returns:
    /// `synchronous = FULL` on SQLite (an acknowledged delivery, the engine's records).
    pub(crate) async fn durable(&self) -> sqlx::Result<PoolConnection<Any>> {
        self.connection_at(SYNC_FULL).await
    }

    /// The connection for a write that may be undone by a power failure (never by a crash
    /// of the process): queue transitions and leases, whose loss repeats idempotent work.
    /// `synchronous = NORMAL` on SQLite: no fsync of its own.
    pub(crate) async fn relaxed(&self) -> sqlx::Result<PoolConnection<Any>> {
        self.connection_at(SYNC_NORMAL).await
    }

    /// The pool's connection at `level`, switched only when it is not there already (SQLite
    /// has one connection, so the level last set is the level it is at).
    async fn connection_at(&self, level: u8) -> sqlx::Result<PoolConnection<Any>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite && self.sync.load(Ordering::SeqCst) != level {
            self.sync.store(SYNC_UNKNOWN, Ordering::SeqCst);
            let pragma = if level == SYNC_FULL {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            conn.execute(pragma).await?;
            self.sync.store(level, Ordering::SeqCst);
        }
        Ok(conn)
    }

    /// SQLite: copies what the WAL holds into the database file, as far as readers allow,
    /// without taking the write lock (`wal_checkpoint(PASSIVE)`), on the checkpoint connection:
    /// intake and the workers go on committing meanwhile. The next commit after a complete
    /// checkpoint writes the WAL from its start again, so it stays small. Returns the pages
    /// in the WAL and how many of them are in the database now. PostgreSQL: nothing, `(0, 0)`.
    pub async fn checkpoint(&self) -> sqlx::Result<(i64, i64)> {
        let Some(pool) = &self.checkpointer else {
            return Ok((0, 0));
        };
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
        Ok((row.try_get(1)?, row.try_get(2)?))
    }

    /// Applies the migrations for this backend. Safe to run concurrently from several replicas.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying migrations")?;
        Ok(())
    }

    /// True when the database answers and every migration this binary knows is applied.
    pub async fn is_ready(&self) -> bool {
        let expected = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").iter().count(),
            Backend::Postgres => sqlx::migrate!("migrations/postgres").iter().count(),
        };
        let applied: Result<i64, _> =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await;
        matches!(applied, Ok(n) if n as usize >= expected)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checkpoints the WAL every [`CHECKPOINT_EVERY`] until `shutdown` (SQLite; returns at
    /// once on PostgreSQL).
    pub async fn run_checkpoints(self, shutdown: tokio_util::sync::CancellationToken) {
        if self.checkpointer.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let writes = self.writes.load(Ordering::Relaxed);
            if writes == seen {
                continue;
            }
            seen = writes;
            if let Err(e) = self.checkpoint().await {
                tracing::warn!(error = %e, "cannot checkpoint the WAL");
            }
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(pool) = &self.checkpointer {
            pool.close().await;
        }
    }
}

/// Accepts `sqlite://file`, `sqlite:file`, `postgres://…` and `postgresql://…`. SQLite files
/// are created when missing.
fn normalize_url(url: &str) -> anyhow::Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        if rest.is_empty() {
            anyhow::bail!("DATABASE_URL: sqlite URL has no file name (use sqlite://greenlight.db)");
        }
        let url = if rest.contains("mode=") {
            format!("sqlite://{rest}")
        } else if rest.contains('?') {
            format!("sqlite://{rest}&mode=rwc")
        } else {
            format!("sqlite://{rest}?mode=rwc")
        };
        return Ok((Backend::Sqlite, url));
    }
    anyhow::bail!(
        "DATABASE_URL must start with sqlite:// or postgres:// (got a URL of another kind)"
    )
}

/// Milliseconds since the Unix epoch: the time format of every column.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` for a stored millisecond timestamp.
pub fn format_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn level(conn: &mut PoolConnection<Any>) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .expect("pragma")
    }

    #[tokio::test]
    async fn durable_writes_wait_for_an_fsync_and_queue_writes_do_not() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url).await.expect("connect");
        // SQLite's numbering: 1 = NORMAL, 2 = FULL.
        assert_eq!(level(&mut store.durable().await.expect("conn")).await, 2);
        assert_eq!(level(&mut store.relaxed().await.expect("conn")).await, 1);
        assert_eq!(level(&mut store.relaxed().await.expect("conn")).await, 1);
        assert_eq!(level(&mut store.durable().await.expect("conn")).await, 2);
        // Someone set it behind the tracker's back and failed: the next request sets it again.
        store.sync.store(SYNC_UNKNOWN, Ordering::SeqCst);
        assert_eq!(level(&mut store.durable().await.expect("conn")).await, 2);
        // A new connection starts at FULL, whatever the old one was at.
        assert_eq!(level(&mut store.relaxed().await.expect("conn")).await, 1);
        store.pool.close().await;
        let store = Store::connect(&url).await.expect("reconnect");
        assert_eq!(level(&mut store.durable().await.expect("conn")).await, 2);
    }

    #[test]
    fn urls() {
        assert_eq!(
            normalize_url("sqlite://greenlight.db").expect("ok"),
            (Backend::Sqlite, "sqlite://greenlight.db?mode=rwc".into())
        );
        assert_eq!(
            normalize_url("sqlite:/data/g.db").expect("ok"),
            (Backend::Sqlite, "sqlite:///data/g.db?mode=rwc".into())
        );
        assert_eq!(
            normalize_url("postgres://u@h/db").expect("ok").0,
            Backend::Postgres
        );
        assert!(normalize_url("mysql://x").is_err());
        assert!(normalize_url("sqlite://").is_err());
    }
}
