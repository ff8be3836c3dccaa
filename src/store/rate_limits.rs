//! Rate-limit pauses in the database, so every replica honours the one a forge announced to
//! any of them ([`crate::forge::rate_limits`]).

use super::Store;

impl Store {
    /// Until when (Unix ms) `subject` of `forge` must not call, if a pause was recorded.
    pub async fn rate_limited_until(
        &self,
        forge: &str,
        subject: &str,
    ) -> sqlx::Result<Option<i64>> {
        sqlx::query_scalar("SELECT until_ms FROM rate_limits WHERE forge = $1 AND subject = $2")
            .bind(forge)
            .bind(subject)
            .fetch_optional(&mut *self.conn().await?)
            .await
    }

    /// Records that `subject` of `forge` must not call before `until_ms`; an earlier end
    /// already recorded is pushed back, a later one kept. A relaxed write: a pause lost to a
    /// power failure is learned again from the forge's next answer.
    pub async fn record_rate_limit(
        &self,
        forge: &str,
        subject: &str,
        until_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO rate_limits (forge, subject, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (forge, subject) DO UPDATE SET until_ms = \
             CASE WHEN excluded.until_ms > rate_limits.until_ms THEN excluded.until_ms \
             ELSE rate_limits.until_ms END",
        )
        .bind(forge)
        .bind(subject)
        .bind(until_ms)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }
}
