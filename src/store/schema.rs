//! Opening a database that must already be Greenlight's, at this binary's schema, without
//! changing it: for the read-only commands (`audit`, `deliveries`), which must never create a
//! SQLite file (a typo in `DATABASE_URL` would show an empty table) nor migrate (a newer
//! binary run from a laptop would migrate production).

use std::collections::BTreeSet;

use super::{Backend, Store};

/// Why an existing database cannot be used as it is. The CLI exits with status 2 on these.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The SQLite file is not there.
    #[error("no database at {0}: check DATABASE_URL (read-only commands never create one)")]
    Missing(String),
    /// The database has no migration table: it was never migrated by Greenlight.
    #[error(
        "the database has no Greenlight schema: check DATABASE_URL, or run `greenlight migrate`"
    )]
    NoSchema,
    /// Migrations this binary knows are not applied: the database is older than the binary.
    #[error(
        "the database is older than this binary: migration(s) {0} not applied; run `greenlight migrate` (or `serve`) with this version first"
    )]
    Behind(String),
}

/// The migrations this binary knows, for `backend`.
fn known(backend: Backend) -> BTreeSet<i64> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    migrator.iter().map(|m| m.version).collect()
}

impl Store {
    /// Connects to an existing database without creating or migrating anything, and checks
    /// that every migration this binary knows is applied ([`OpenError`] otherwise).
    pub async fn open_existing(url: &str) -> anyhow::Result<Self> {
        let url = match url.strip_prefix("sqlite:") {
            Some(rest) => {
                let rest = rest.trim_start_matches("//");
                let path = rest.split('?').next().unwrap_or(rest);
                if path.is_empty() || !std::path::Path::new(path).is_file() {
                    return Err(OpenError::Missing(path.to_owned()).into());
                }
                // `mode=rw`: open, never create (the store adds `rwc` otherwise).
                if rest.contains("mode=") {
                    format!("sqlite://{rest}")
                } else if rest.contains('?') {
                    format!("sqlite://{rest}&mode=rw")
                } else {
                    format!("sqlite://{rest}?mode=rw")
                }
            }
            None => url.to_owned(),
        };
        let store = Self::connect(&url).await?;
        let applied: Result<Vec<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&mut *store.conn().await?)
                .await;
        let Ok(applied) = applied else {
            store.close().await;
            return Err(OpenError::NoSchema.into());
        };
        let applied: BTreeSet<i64> = applied.into_iter().collect();
        let missing: Vec<String> = known(store.backend)
            .difference(&applied)
            .map(|v| format!("{v:04}"))
            .collect();
        if !missing.is_empty() {
            store.close().await;
            return Err(OpenError::Behind(missing.join(", ")).into());
        }
        Ok(store)
    }
}
