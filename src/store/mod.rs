//! Where state lives: one sqlx pool over SQLite (embedded default) or PostgreSQL (replicas).
//!
//! SQL is shared between the two backends wherever the dialects agree (`$n` placeholders work
//! on both); the few statements that differ (claiming with `SKIP LOCKED`) branch on [`Backend`].

mod deliveries;
pub mod intake_batch;
mod releases;

use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions as _, Executor as _};

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
}

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
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => SQLITE_MAX_CONNECTIONS,
                Backend::Postgres => MAX_CONNECTIONS,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
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
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to the {backend:?} database"))?;
        Ok(Self { pool, backend })
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

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
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
