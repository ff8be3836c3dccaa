//! Read-only listings for the operator's commands (`greenlight releases`, `installations`,
//! `redeliver`):
//! never used by the flow, which reads what it needs by key.

use sqlx::Row as _;

use super::Store;
use super::releases::{RELEASE_COLUMNS, release_from_row};
use crate::release::Stage;
use crate::store::ReleaseRow;

/// Which releases to list; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct ReleaseFilter<'a> {
    pub repo: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub stage: Option<Stage>,
    pub limit: u32,
}

/// A forge installation (GitHub App installation) as the installation webhooks told it.
#[derive(Debug, Clone)]
pub struct Installation {
    pub forge: String,
    pub id: u64,
    pub account: String,
    pub active: bool,
    pub updated_at: i64,
}

impl Store {
    /// The most recently changed releases first.
    pub async fn list_releases(&self, f: &ReleaseFilter<'_>) -> sqlx::Result<Vec<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases
              WHERE ($1 = '' OR repo = $1) AND ($2 = '' OR environment = $2) AND ($3 = '' OR stage = $3)
              ORDER BY updated_at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(f.repo.unwrap_or(""))
            .bind(f.environment.unwrap_or(""))
            .bind(f.stage.map_or("", Stage::as_str))
            .bind(i64::from(f.limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    pub async fn list_installations(&self) -> sqlx::Result<Vec<Installation>> {
        let rows = sqlx::query(
            "SELECT forge, id, account, active, updated_at FROM installations ORDER BY forge, id",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Installation {
                    forge: r.try_get(0)?,
                    id: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or_default(),
                    account: r.try_get(2)?,
                    active: r.try_get::<i64, _>(3)? != 0,
                    updated_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Whether a delivery with this forge delivery id (GitHub's `X-GitHub-Delivery`) was
    /// stored, whatever became of it (`greenlight redeliver` asks nothing again that came).
    pub async fn has_delivery(&self, forge: &str, delivery_id: &str) -> sqlx::Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE forge = $1 AND delivery_id = $2",
        )
        .bind(forge)
        .bind(delivery_id)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(n > 0)
    }
}
