//! GitHub App installations as their webhooks report them.

use super::{Store, now_ms};

impl Store {
    /// Records an App installation (or its removal).
    pub async fn upsert_installation(
        &self,
        forge: &str,
        id: u64,
        account: &str,
        active: bool,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO installations (forge, id, account, active, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (forge, id) DO UPDATE SET account = $3, active = $4, updated_at = $5",
        )
        .bind(forge)
        .bind(id as i64)
        .bind(account)
        .bind(i64::from(active))
        .bind(now_ms())
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }
}
