//! Lookups for the environment's gate and the watch on deployments: the release a forge
//! deployment belongs to, and how many deployments slipped past Greenlight (for `/metrics`).

use sqlx::Row as _;

use super::Store;
use super::releases::{RELEASE_COLUMNS, release_from_row};
use crate::store::ReleaseRow;

impl Store {
    /// The release whose deployment (the one Greenlight created) is `deployment_id`.
    pub async fn release_by_deployment(
        &self,
        forge: &str,
        repo: &str,
        deployment_id: u64,
    ) -> sqlx::Result<Option<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND deployment_id = $3
              ORDER BY id DESC LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(forge)
            .bind(repo)
            .bind(i64::try_from(deployment_id).unwrap_or(i64::MAX))
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .map(|r| release_from_row(&r))
            .transpose()
    }

    /// Audit entries with `action`, per forge (forges without any are not listed).
    pub async fn audit_counts(&self, action: &str) -> sqlx::Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT forge, COUNT(*) FROM audit WHERE action = $1 GROUP BY forge")
                .bind(action)
                .fetch_all(&mut *self.conn().await?)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
