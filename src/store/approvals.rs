//! Votes on release candidates, keyed by the forge's numeric user id: a renamed account is
//! still one voter, and the login each vote was cast under stays for display (cards, audit).

use sqlx::Row as _;

use super::{Store, now_ms};

/// One recorded approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The forge's user id (negative: a vote recorded before migration 0008, whose id was
    /// never known).
    pub user_id: i64,
    /// The login the vote was cast under, for display.
    pub login: String,
}

impl Store {
    /// Records an approval by `user_id` (cast as `login`); false when this user had already
    /// approved this candidate, under any login.
    pub async fn add_approval(
        &self,
        release_id: i64,
        user_id: u64,
        login: &str,
        comment_id: u64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO approvals (release_id, user_id, login, comment_id, approved_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (release_id, user_id) DO NOTHING",
        )
        .bind(release_id)
        .bind(i64::try_from(user_id).unwrap_or(i64::MAX))
        .bind(login)
        .bind(i64::try_from(comment_id).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Votes on a candidate, in the order they were cast.
    pub async fn votes(&self, release_id: i64) -> sqlx::Result<Vec<Vote>> {
        let rows = sqlx::query(
            "SELECT user_id, login FROM approvals WHERE release_id = $1 ORDER BY approved_at, user_id",
        )
        .bind(release_id)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Vote {
                    user_id: r.try_get(0)?,
                    login: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// Approvers of a candidate (the logins they voted as), in the order they approved.
    pub async fn approvals(&self, release_id: i64) -> sqlx::Result<Vec<String>> {
        Ok(self
            .votes(release_id)
            .await?
            .into_iter()
            .map(|v| v.login)
            .collect())
    }

    /// True when this comment's approval of the candidate is recorded: a retried job sees
    /// that its own vote already counts and carries on instead of refusing it as a repeat.
    pub async fn approved_by_comment(
        &self,
        release_id: i64,
        comment_id: u64,
    ) -> sqlx::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM approvals WHERE release_id = $1 AND comment_id = $2")
            .bind(release_id)
            .bind(i64::try_from(comment_id).unwrap_or(i64::MAX))
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.is_some())
    }
}
