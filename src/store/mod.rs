//! Where state lives: SQLite (embedded default, one connection) or PostgreSQL (a pool, replicas).
//!
//! SQL is shared between the two backends wherever the dialects agree (`$n` placeholders work
//! on both); the few statements that differ (claiming with `SKIP LOCKED`) branch on [`Backend`].
//!
//! ## Durability
//! Every commit survives a crash of the process. Surviving a power failure costs an fsync
//! (SQLite: `synchronous = FULL`), and only these writes pay for one:
//! - an acknowledged delivery, on disk before the 202 ([`IntakeWriter`]), and a replay an
//!   operator was told about;
//! - an *intent*, recorded before a forge write that must not happen twice
//!   ([`Store::intend`], [`Store::save_release_intent`]).
//!
//! Everything else (queue moves, leases, releases, approvals, the audit log, outcomes) commits
//! without an fsync of its own ([`Store::relaxed`]). That loses nothing that matters: SQLite
//! appends every commit to one write-ahead log, so the fsync of the next intent makes every
//! commit before it durable too, and a power failure can only take away a *suffix* of the log.
//! What is left is a state the process could have crashed in right after its last intent,
//! which the engine recovers from: an intent without its outcome makes it ask the forge
//! before acting again. The writes lost with that suffix were followed only by that intent's
//! forge write and by forge writes that are safe to repeat (an edited check or comment), and
//! the job that made them, whose completion was lost too, runs again. PostgreSQL keeps the
//! same rule with `synchronous_commit = off` for everything else: its WAL is one log too,
//! flushed in order, so an intent's flush covers every commit before it, from any replica.

mod approvals;
mod audit;
mod conn;
mod deliveries;
mod deployments;
mod effects;
mod installations;
pub mod intake_batch;
mod leases;
mod listings;
pub mod payload;
mod pulls;
mod rate_limits;
mod releases;
mod schema;

use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions as _, Executor as _, Row as _};

use conn::{Conn, Connections, One};

pub use approvals::Vote;
pub use audit::AuditEntry;
pub use deliveries::{Claimed, Delivery, DeliveryState, Inserted, NewDelivery};
pub use intake_batch::{IntakeWriter, PendingDelivery};
pub use listings::{Installation, ReleaseFilter};
pub use pulls::PullRow;
pub use releases::{NewCandidate, ReleaseRow};
pub use schema::OpenError;

/// The database behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The one handle to storage. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    conns: Connections,
    backend: Backend,
    /// SQLite: a connection of its own for WAL checkpoints ([`Store::checkpoint`]), so
    /// copying the log into the database never holds up the connection intake commits on.
    checkpointer: Option<One>,
    /// SQLite: the `synchronous` level the one connection is at now.
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

/// Time between two checkpoints of [`Store::run_checkpoints`] while anything is written: short,
/// so each copies little (at 500 deliveries a second, about 100 pages) and often finds the WAL
/// fully copied, which lets the next commit write it from its start again. (Every 250 ms, the
/// WAL grew under load to the safety net's size and the tail latency of intake doubled.)
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

impl Store {
    /// Connects (creating the SQLite file if needed). Does not migrate; see [`Store::migrate`].
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| "DATABASE_URL is not a valid database URL")?
            .log_statements(tracing::log::LevelFilter::Trace);
        let (conns, checkpointer) = match backend {
            Backend::Sqlite => (
                Connections::One(One::open(&options).await?),
                Some(One::open(&options).await?),
            ),
            Backend::Postgres => (Connections::pools(options).await?, None),
        };
        Ok(Self {
            conns,
            backend,
            checkpointer,
            // A new SQLite connection starts at FULL.
            sync: Arc::new(AtomicU8::new(SYNC_FULL)),
            writes: Arc::default(),
        })
    }

    /// A connection for reads.
    pub(crate) async fn conn(&self) -> sqlx::Result<Conn<'_>> {
        self.conns.acquire(false).await
    }

    /// The connection for a write that must survive a power failure once it returns (an
    /// acknowledged delivery, an intent): `synchronous = FULL` on SQLite, a connection at the
    /// server's `synchronous_commit = on` on PostgreSQL.
    pub(crate) async fn durable(&self) -> sqlx::Result<Conn<'_>> {
        self.connection_at(SYNC_FULL).await
    }

    /// The connection for a write that may be undone by a power failure (never by a crash
    /// of the process) until the next durable one: see the module's durability rule.
    /// `synchronous = NORMAL` on SQLite, `synchronous_commit = off` on PostgreSQL: no flush of
    /// its own.
    pub(crate) async fn relaxed(&self) -> sqlx::Result<Conn<'_>> {
        self.connection_at(SYNC_NORMAL).await
    }

    /// The connection at `level`, switched only when it is not there already (SQLite
    /// has one connection, so the level last set is the level it is at).
    async fn connection_at(&self, level: u8) -> sqlx::Result<Conn<'_>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut conn = self.conns.acquire(level == SYNC_FULL).await?;
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
        let Some(one) = &self.checkpointer else {
            return Ok((0, 0));
        };
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *one.acquire().await?)
            .await?;
        Ok((row.try_get(1)?, row.try_get(2)?))
    }

    /// Applies the migrations for this backend. Safe to run concurrently from several replicas.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        let mut conn = self.conn().await?;
        // `run_direct`, not `run`: `run`, generic over `Acquire<'a>`, makes the caller's
        // future fail `tokio::spawn`'s `Send` check when given a connection
        // (rust-lang/rust#110338).
        migrator
            .run_direct(&mut *conn)
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
                .fetch_one(&mut *match self.conn().await {
                    Ok(conn) => conn,
                    Err(_) => return false,
                })
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

    /// Closes the connections, waiting for those in use to be given back.
    pub async fn close(&self) {
        self.conns.close().await;
        if let Some(one) = &self.checkpointer {
            one.close().await;
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
/// The process's wall clock: the store's own timestamps (leases, claims, retry times) are the
/// machinery's time, not the release's ([`crate::clock`]).
pub fn now_ms() -> i64 {
    crate::clock::wall_ms()
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

    async fn level(conn: &mut Conn<'_>) -> i64 {
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
        store.close().await;
        let store = Store::connect(&url).await.expect("reconnect");
        assert_eq!(level(&mut store.durable().await.expect("conn")).await, 2);
    }

    async fn show(mut conn: Conn<'_>) -> String {
        sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut *conn)
            .await
            .expect("show")
    }

    /// PostgreSQL (with `TEST_DATABASE_URL`): durable writes wait for the WAL flush, relaxed
    /// ones and reads do not, whichever pool connection they get.
    #[tokio::test]
    async fn on_postgres_only_durable_writes_wait_for_the_flush() {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        let store = Store::connect(&url).await.expect("connect");
        // Several at once, so that more than one connection of each pool answers.
        let (a, b) = tokio::join!(store.durable(), store.durable());
        let (a, b) = (a.expect("conn"), b.expect("conn"));
        assert_eq!(show(a).await, "on");
        assert_eq!(show(b).await, "on");
        let (a, b, c) = tokio::join!(store.relaxed(), store.relaxed(), store.conn());
        let (a, b, c) = (a.expect("conn"), b.expect("conn"), c.expect("conn"));
        assert_eq!(show(a).await, "off");
        assert_eq!(show(b).await, "off");
        assert_eq!(show(c).await, "off");
        store.close().await;
    }

    #[tokio::test]
    async fn only_an_intent_pays_for_an_fsync_among_the_engine_records() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let at = |store: &Store| store.sync.load(Ordering::SeqCst);
        let sha = crate::release::CommitSha::parse(&"a".repeat(40)).expect("sha");
        let new = NewCandidate {
            pusher_id: Some(7),
            head_at: 0,
        };
        let mut r = store
            .ensure_candidate("github", "o/r", 1, &sha, "production", new)
            .await
            .expect("release");
        assert_eq!(at(&store), SYNC_NORMAL);
        store.intend("k:intent", "").await.expect("intend");
        assert_eq!(at(&store), SYNC_FULL);
        store.put_effect("k", "done").await.expect("outcome");
        assert_eq!(at(&store), SYNC_NORMAL);
        r.deploy_dispatched = Some(now_ms());
        store.save_release_intent(&r).await.expect("intent row");
        assert_eq!(at(&store), SYNC_FULL);
        store.save_release(&r).await.expect("row");
        assert_eq!(at(&store), SYNC_NORMAL);
        store.intend("k2:intent", "").await.expect("intend");
        store.add_approval(r.id, 7, "mona", 7).await.expect("vote");
        assert_eq!(at(&store), SYNC_NORMAL);
        store.intend("k3:intent", "").await.expect("intend");
        let entry = AuditEntry {
            at: now_ms(),
            forge: "github".into(),
            repo: "o/r".into(),
            pr: 1,
            sha: sha.to_string(),
            actor: "mona".into(),
            action: "approve".into(),
            outcome: "accepted".into(),
            reason: String::new(),
        };
        store.audit_once("a", &entry).await.expect("audit");
        assert_eq!(at(&store), SYNC_NORMAL);
        assert_eq!(
            store.effect("k:intent").await.expect("read").as_deref(),
            Some("")
        );
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
