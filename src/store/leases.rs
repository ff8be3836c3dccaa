//! Named leases: per-repository work serialisation and per-environment deploy locks. A lease
//! that is not renewed expires, so a crashed holder cannot keep it forever.

use sqlx::Row as _;

use super::{Store, now_ms};

impl Store {
    /// Takes (or renews, for the same holder) a named lease. False when someone else holds it
    /// and it has not expired.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> sqlx::Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, lease_until) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = $2, lease_until = $3
              WHERE leases.lease_until <= $4 OR leases.holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Who holds a lease now (expired leases count as free).
    pub async fn lease_holder(&self, name: &str) -> sqlx::Result<Option<String>> {
        let row = sqlx::query("SELECT holder FROM leases WHERE name = $1 AND lease_until > $2")
            .bind(name)
            .bind(now_ms())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&mut *self.relaxed().await?)
            .await?;
        Ok(())
    }
}
