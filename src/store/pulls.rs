//! Pull and merge requests as Greenlight last saw them: the head, who pushed it, whether it is
//! open, and the card comment of its thread.

use sqlx::Row as _;

use super::releases::opt_u64;
use super::{Store, now_ms};

/// The pull request row: its current head and our card comment.
#[derive(Debug, Clone)]
pub struct PullRow {
    pub forge: String,
    pub repo: String,
    pub pr: u64,
    pub forge_id: u64,
    pub head_sha: String,
    pub head_ref: String,
    pub author: String,
    pub is_open: bool,
    pub card_comment_id: Option<u64>,
    /// Row id of the delivery that set `head_sha`: an older delivery handled late must not
    /// move the head back.
    pub head_seq: i64,
    /// Who pushed `head_sha` (forge user id), when known: the sender of the event that
    /// brought it, kept while the head does not change.
    pub pusher_id: Option<u64>,
}

impl Store {
    /// Records the pull request's current head; returns the previous row, if any.
    pub async fn upsert_pull(&self, p: &PullRow) -> sqlx::Result<Option<PullRow>> {
        let previous = self.pull(&p.forge, &p.repo, p.pr).await?;
        sqlx::query(
            "INSERT INTO pulls (forge, repo, pr, forge_id, head_sha, head_ref, author, is_open, updated_at, head_seq, pusher_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (forge, repo, pr) DO UPDATE SET forge_id = $4, head_sha = $5, head_ref = $6, author = $7,
                is_open = $8, updated_at = $9, head_seq = $10, pusher_id = $11",
        )
        .bind(&p.forge)
        .bind(&p.repo)
        .bind(p.pr as i64)
        .bind(p.forge_id as i64)
        .bind(&p.head_sha)
        .bind(&p.head_ref)
        .bind(&p.author)
        .bind(i64::from(p.is_open))
        .bind(now_ms())
        .bind(p.head_seq)
        .bind(p.pusher_id.map(|v| v as i64))
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(previous)
    }

    pub async fn pull(&self, forge: &str, repo: &str, pr: u64) -> sqlx::Result<Option<PullRow>> {
        let row = sqlx::query(
            "SELECT forge, repo, pr, forge_id, head_sha, head_ref, author, is_open, card_comment_id, head_seq,
                    pusher_id
               FROM pulls WHERE forge = $1 AND repo = $2 AND pr = $3",
        )
        .bind(forge)
        .bind(repo)
        .bind(pr as i64)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| {
            Ok(PullRow {
                forge: r.try_get(0)?,
                repo: r.try_get(1)?,
                pr: r.try_get::<i64, _>(2)? as u64,
                forge_id: r.try_get::<i64, _>(3)? as u64,
                head_sha: r.try_get(4)?,
                head_ref: r.try_get(5)?,
                author: r.try_get(6)?,
                is_open: r.try_get::<i64, _>(7)? != 0,
                card_comment_id: opt_u64(&r, 8)?,
                head_seq: r.try_get(9)?,
                pusher_id: opt_u64(&r, 10)?,
            })
        })
        .transpose()
    }

    /// Marks the pull request open or closed, by the delivery `seq`: an update delivered
    /// before the close and handled after it no longer moves the head (nor starts a fresh
    /// candidate of a closed pull request).
    pub async fn set_pull_open(
        &self,
        forge: &str,
        repo: &str,
        pr: u64,
        open: bool,
        seq: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE pulls SET is_open = $1, updated_at = $2,
                head_seq = CASE WHEN head_seq < $6 THEN $6 ELSE head_seq END
              WHERE forge = $3 AND repo = $4 AND pr = $5",
        )
        .bind(i64::from(open))
        .bind(now_ms())
        .bind(forge)
        .bind(repo)
        .bind(pr as i64)
        .bind(seq)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }

    pub async fn set_card_comment(
        &self,
        forge: &str,
        repo: &str,
        pr: u64,
        id: u64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE pulls SET card_comment_id = $1 WHERE forge = $2 AND repo = $3 AND pr = $4",
        )
        .bind(id as i64)
        .bind(forge)
        .bind(repo)
        .bind(pr as i64)
        .execute(&mut *self.relaxed().await?)
        .await?;
        Ok(())
    }
}
