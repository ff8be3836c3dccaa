//! The ledger of one-shot forge effects (`effects` table): intents written durably before the
//! forge write they announce, and outcomes (see the durability rule in [`super`]). The
//! protocol over it is the engine's [ledger](crate::engine::ledger).

use sqlx::Row as _;

use super::{Store, now_ms};

impl Store {
    /// The recorded result of a one-shot effect, if it was carried out.
    pub async fn effect(&self, key: &str) -> sqlx::Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM effects WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    /// Records that a one-shot effect was carried out.
    pub async fn record_effect(&self, key: &str, value: &str) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO effects (key, value, at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }

    /// Sets a keyed value (last write wins): an effect's outcome, a marker of work begun.
    pub async fn put_effect(&self, key: &str, value: &str) -> sqlx::Result<()> {
        upsert_effect(self.relaxed().await?, key, value).await
    }

    /// Records the intent of a forge write that must not happen twice, *before* it is made:
    /// durable (see the module's durability rule), so no power failure can leave the effect
    /// done and its intent, or anything recorded before it, forgotten. Last write wins.
    pub async fn intend(&self, key: &str, value: &str) -> sqlx::Result<()> {
        upsert_effect(self.durable().await?, key, value).await
    }
}

async fn upsert_effect(mut conn: super::Conn<'_>, key: &str, value: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO effects (key, value, at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = $2, at = $3",
    )
    .bind(key)
    .bind(value)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
