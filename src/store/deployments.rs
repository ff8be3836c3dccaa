//! Lookups for the environment's gate and the watch on deployments: the release a forge
//! deployment belongs to, how many deployments slipped past Greenlight, and releases per stage (for `/metrics`).

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

    /// Releases per forge, stage and environment (`greenlight_releases` and
    /// `greenlight_deploys_total`): one grouped count over the releases table, which holds a
    /// row per pull-request head (thousands, where deliveries are millions).
    pub async fn release_counts(&self) -> sqlx::Result<Vec<(String, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT forge, stage, environment, COUNT(*) FROM releases
              GROUP BY forge, stage, environment",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }
}
