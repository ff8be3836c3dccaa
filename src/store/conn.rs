//! The connections statements run on: a pool on PostgreSQL, one connection on SQLite.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions as _, Connection as _, Executor as _};
use tokio::sync::{Mutex, MutexGuard};

/// How long a statement waits for a connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections on PostgreSQL (replicas share the server's connection budget): most for reads
/// and relaxed writes, a few for durable ones (intake's one batch writer, the workers' intents).
const RELAXED_CONNECTIONS: u32 = 12;
const DURABLE_CONNECTIONS: u32 = 4;

/// How a SQLite connection is set up.
const SQLITE_SETUP: [&str; 5] = [
    // WAL: readers never block the writer.
    "PRAGMA journal_mode = WAL",
    // A delivery we acknowledged survives power loss, not only a crash (see the durability
    // rule in `store`; writes that need no fsync switch to NORMAL).
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    // How long a connection waits for SQLite's write lock (the checkpointer's) before giving
    // up: milliseconds are normal, seconds mean something is wrong.
    "PRAGMA busy_timeout = 10000",
    // SQLite's own checkpoint, run by whichever commit finds the WAL this many pages long, is
    // the safety net only: `Store::checkpoint` runs long before it. (SQLite's default is
    // 1,000 pages, about 400 deliveries of 10 KB: under load, a checkpoint inside every
    // second commit of intake.)
    "PRAGMA wal_autocheckpoint = 10000",
];

/// Where statements get a connection.
#[derive(Clone, Debug)]
pub(crate) enum Connections {
    /// PostgreSQL: pools, statements of different jobs run side by side. Two, by how a commit
    /// ends: `durable` waits for the WAL to be flushed (the server's default), `relaxed` does
    /// not (`synchronous_commit = off` on each of its connections). PostgreSQL has one WAL
    /// and flushes it in order, so a durable commit makes every earlier relaxed commit durable
    /// too: the same rule as SQLite's (see `store`).
    Pool { durable: AnyPool, relaxed: AnyPool },
    /// SQLite: one connection.
    One(One),
}

/// SQLite's one connection, behind a fair asynchronous lock.
///
/// One, because SQLite has one writer at a time, and writers that find the lock taken sleep
/// in SQLite's busy handler (1, 2, 5 … 100 ms between tries), which under load starves the
/// intake's group commit and puts hundreds of milliseconds into the tail. Statements queue
/// for the lock in order instead; reads are microseconds on SQLite, so waiting behind a commit
/// costs them little. (No code holds the connection while asking for it again, so it cannot
/// deadlock.)
///
/// A lock rather than a pool of one: on 2 cores a pool's acquire and release (a health ping,
/// a task spawned to give the connection back) cost about 90 µs per statement, the statement
/// itself about 50 µs; the lock costs next to nothing.
#[derive(Clone)]
pub(crate) struct One(Arc<Mutex<Option<AnyConnection>>>);

impl std::fmt::Debug for One {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("One(sqlite)")
    }
}

/// A connection in use: derefs to the connection, goes back when dropped.
pub(crate) enum Conn<'a> {
    Pooled(PoolConnection<Any>),
    /// The lock's guard, over a slot [`One::acquire`] found filled. (Not a mapped guard:
    /// its `Send` bound trips rustc's higher-ranked lifetime check in spawned futures.)
    One(MutexGuard<'a, Option<AnyConnection>>),
}

impl Deref for Conn<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::One(c) => c.as_ref().expect("checked when acquired, held since"),
        }
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::One(c) => c.as_mut().expect("checked when acquired, held since"),
        }
    }
}

impl Connections {
    /// The PostgreSQL pools.
    pub(crate) async fn pools(options: AnyConnectOptions) -> anyhow::Result<Self> {
        let durable = AnyPoolOptions::new()
            .max_connections(DURABLE_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .context("cannot connect to the PostgreSQL database")?;
        let relaxed = AnyPoolOptions::new()
            .max_connections(RELAXED_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET synchronous_commit = off").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("cannot connect to the PostgreSQL database")?;
        Ok(Self::Pool { durable, relaxed })
    }

    /// A connection for a read or a relaxed write (`durable` false), or for a durable write.
    /// SQLite has one connection for both; the caller sets its `synchronous` level.
    pub(crate) async fn acquire(&self, durable: bool) -> sqlx::Result<Conn<'_>> {
        match self {
            Self::Pool { durable: pool, .. } if durable => Ok(Conn::Pooled(pool.acquire().await?)),
            Self::Pool { relaxed, .. } => Ok(Conn::Pooled(relaxed.acquire().await?)),
            Self::One(one) => one.acquire().await,
        }
    }

    /// Closes the connections, waiting for those in use to be given back.
    pub(crate) async fn close(&self) {
        match self {
            Self::Pool { durable, relaxed } => {
                tokio::join!(durable.close(), relaxed.close());
            }
            Self::One(one) => one.close().await,
        }
    }
}

impl One {
    /// Opens the SQLite database at `options` (WAL, `synchronous = FULL`, foreign keys).
    pub(crate) async fn open(options: &AnyConnectOptions) -> anyhow::Result<Self> {
        let mut conn = options
            .connect()
            .await
            .context("cannot open the SQLite database")?;
        for pragma in SQLITE_SETUP {
            conn.execute(pragma)
                .await
                .with_context(|| format!("cannot set up the SQLite database ({pragma})"))?;
        }
        Ok(Self(Arc::new(Mutex::new(Some(conn)))))
    }

    pub(crate) async fn acquire(&self) -> sqlx::Result<Conn<'_>> {
        let guard = tokio::time::timeout(ACQUIRE_TIMEOUT, self.0.lock())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        if guard.is_none() {
            return Err(sqlx::Error::PoolClosed);
        }
        Ok(Conn::One(guard))
    }

    pub(crate) async fn close(&self) {
        let conn = self.0.lock().await.take();
        if let Some(conn) = conn
            && let Err(e) = conn.close().await
        {
            tracing::warn!(error = %e, "closing the SQLite database");
        }
    }
}
