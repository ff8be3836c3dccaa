//! Release state: pull requests, release candidates, the audit log and the ledger of one-shot
//! forge effects (approvals are in `approvals.rs`, leases in `leases.rs`).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, now_ms};
use crate::release::{CommitSha, Stage};

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

/// A release candidate row.
#[derive(Debug, Clone)]
pub struct ReleaseRow {
    pub id: i64,
    pub forge: String,
    pub repo: String,
    pub pr: u64,
    pub sha: CommitSha,
    pub stage: Stage,
    pub environment: String,
    pub pipeline_attempt: i64,
    pub pipeline_dispatched: Option<i64>,
    pub pipeline_run_id: Option<u64>,
    pub pipeline_url: Option<String>,
    pub pipeline_check_id: Option<u64>,
    pub release_check_id: Option<u64>,
    pub queued_at: Option<i64>,
    pub deployment_id: Option<u64>,
    pub deploy_dispatched: Option<i64>,
    pub deploy_run_id: Option<u64>,
    pub deploy_url: Option<String>,
    pub detail: Option<String>,
    pub updated_at: i64,
    /// 1 for the first candidate of (pull request, commit); each fresh start of the same
    /// commit (a reopen, a force-push back to it) is the next one, with no votes of its own.
    pub generation: i64,
    /// Who pushed the head this candidate is for (forge user id); `None` before migration 0008.
    pub pusher_id: Option<u64>,
    /// When the head arrived, on the forge's clock (Unix ms): comments written before it never
    /// approve this candidate. `None` before migration 0008.
    pub head_at: Option<i64>,
}

impl ReleaseRow {
    /// A closed or superseded candidate never comes back: the same commit starts afresh.
    pub fn is_over(&self) -> bool {
        matches!(self.stage, Stage::Closed | Stage::Superseded)
    }
}

/// How a candidate starts: who pushed its head and when it arrived (the forge's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCandidate {
    pub pusher_id: Option<u64>,
    pub head_at: i64,
}

/// One line of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: i64,
    pub forge: String,
    pub repo: String,
    pub pr: u64,
    pub sha: String,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub reason: String,
}

pub(super) const RELEASE_COLUMNS: &str = "id, forge, repo, pr, sha, stage, environment, pipeline_attempt, pipeline_dispatched, \
     pipeline_run_id, pipeline_url, pipeline_check_id, release_check_id, queued_at, deployment_id, \
     deploy_dispatched, deploy_run_id, deploy_url, detail, updated_at, generation, pusher_id, head_at";

fn opt_u64(r: &AnyRow, i: usize) -> sqlx::Result<Option<u64>> {
    Ok(r.try_get::<Option<i64>, _>(i)?.map(|v| v as u64))
}

pub(super) fn release_from_row(r: &AnyRow) -> sqlx::Result<ReleaseRow> {
    let sha: String = r.try_get(4)?;
    let stage: String = r.try_get(5)?;
    Ok(ReleaseRow {
        id: r.try_get(0)?,
        forge: r.try_get(1)?,
        repo: r.try_get(2)?,
        pr: r.try_get::<i64, _>(3)? as u64,
        sha: CommitSha::parse(&sha)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad sha {sha}").into()))?,
        stage: Stage::parse(&stage)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad stage {stage}").into()))?,
        environment: r.try_get(6)?,
        pipeline_attempt: r.try_get(7)?,
        pipeline_dispatched: r.try_get(8)?,
        pipeline_run_id: opt_u64(r, 9)?,
        pipeline_url: r.try_get(10)?,
        pipeline_check_id: opt_u64(r, 11)?,
        release_check_id: opt_u64(r, 12)?,
        queued_at: r.try_get(13)?,
        deployment_id: opt_u64(r, 14)?,
        deploy_dispatched: r.try_get(15)?,
        deploy_run_id: opt_u64(r, 16)?,
        deploy_url: r.try_get(17)?,
        detail: r.try_get(18)?,
        updated_at: r.try_get(19)?,
        generation: r.try_get(20)?,
        pusher_id: opt_u64(r, 21)?,
        head_at: r.try_get(22)?,
    })
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

    /// The live candidate for (repo, pr, sha): the latest generation, unless it is over
    /// (closed, superseded), in which case a fresh generation starts, with `new`'s pusher and
    /// head time, no votes and no pipeline. A retried job finds the generation it started
    /// (live) and carries on with it.
    pub async fn ensure_candidate(
        &self,
        forge: &str,
        repo: &str,
        pr: u64,
        sha: &CommitSha,
        environment: &str,
        new: NewCandidate,
    ) -> sqlx::Result<ReleaseRow> {
        if let Some(r) = self.release_for(forge, repo, pr, sha).await?
            && !r.is_over()
        {
            return Ok(r);
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO releases (forge, repo, pr, sha, stage, environment, created_at, updated_at, generation,
                pusher_id, head_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $7, COALESCE(MAX(generation), 0) + 1, $8, $9
               FROM releases WHERE forge = $1 AND repo = $2 AND pr = $3 AND sha = $4
             ON CONFLICT (forge, repo, pr, sha, generation) DO NOTHING",
        )
        .bind(forge)
        .bind(repo)
        .bind(pr as i64)
        .bind(sha.as_str())
        .bind(Stage::PipelinePending.as_str())
        .bind(environment)
        .bind(now)
        .bind(new.pusher_id.map(|v| v as i64))
        .bind(new.head_at)
        .execute(&mut *self.relaxed().await?)
        .await?;
        self.release_for(forge, repo, pr, sha)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound)
    }

    /// The latest generation of the candidate for (repo, pr, sha).
    pub async fn release_for(
        &self,
        forge: &str,
        repo: &str,
        pr: u64,
        sha: &CommitSha,
    ) -> sqlx::Result<Option<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND pr = $3 AND sha = $4
              ORDER BY generation DESC LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(forge)
            .bind(repo)
            .bind(pr as i64)
            .bind(sha.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .map(|r| release_from_row(&r))
            .transpose()
    }

    pub async fn release(&self, id: i64) -> sqlx::Result<Option<ReleaseRow>> {
        let sql = format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .map(|r| release_from_row(&r))
            .transpose()
    }

    /// Candidates for one commit (normally one; several pull requests may share a head).
    pub async fn releases_by_sha(
        &self,
        forge: &str,
        repo: &str,
        sha: &CommitSha,
    ) -> sqlx::Result<Vec<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND sha = $3 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(forge)
            .bind(repo)
            .bind(sha.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Every candidate of one pull request, oldest first.
    pub async fn releases_of_pull(
        &self,
        forge: &str,
        repo: &str,
        pr: u64,
    ) -> sqlx::Result<Vec<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND pr = $3 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(forge)
            .bind(repo)
            .bind(pr as i64)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// The candidate whose pipeline or deploy run is `run_id`.
    pub async fn release_by_run(
        &self,
        forge: &str,
        repo: &str,
        run_id: u64,
    ) -> sqlx::Result<Option<ReleaseRow>> {
        let sql = format!(
            // Two indexed lookups: `pipeline_run_id = $3 OR deploy_run_id = $3` scanned every
            // release of the repository.
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND pipeline_run_id = $3
             UNION ALL
             SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND deploy_run_id = $3
             ORDER BY id DESC LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(forge)
            .bind(repo)
            .bind(run_id as i64)
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .map(|r| release_from_row(&r))
            .transpose()
    }

    /// Candidates of a repository in the given stages, oldest first.
    pub async fn releases_in_stage(
        &self,
        forge: &str,
        repo: &str,
        stage: Stage,
    ) -> sqlx::Result<Vec<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND repo = $2 AND stage = $3 ORDER BY queued_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(forge)
            .bind(repo)
            .bind(stage.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Candidates (any repository) waiting on a run: for the reconciler.
    pub async fn releases_waiting_on_runs(&self, forge: &str) -> sqlx::Result<Vec<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE forge = $1 AND stage IN ('pipeline_pending', 'pipeline_running', 'deploying')
              ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(forge)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Writes back every mutable field of a candidate.
    pub async fn save_release(&self, r: &ReleaseRow) -> sqlx::Result<()> {
        save_release_on(self.relaxed().await?, r).await
    }

    /// [`Store::save_release`] for a row that records an intent before the forge call it
    /// announces (the time a deploy pipeline was asked for): durable, as [`Store::intend`].
    pub async fn save_release_intent(&self, r: &ReleaseRow) -> sqlx::Result<()> {
        save_release_on(self.durable().await?, r).await
    }

    /// Appends to the audit log.
    pub async fn audit(&self, e: &AuditEntry) -> sqlx::Result<()> {
        insert_audit(e).execute(&mut *self.relaxed().await?).await?;
        Ok(())
    }

    /// Writes `e` unless an entry was written under `key` before (the key is stored with the
    /// entry): one statement, so a retry after a crash never writes the entry twice nor loses
    /// it. True when it was written now. (Keys written before migration 0006 are in the effect
    /// ledger; they count too.)
    pub async fn audit_once(&self, key: &str, e: &AuditEntry) -> sqlx::Result<bool> {
        let query = sqlx::query(
            "INSERT INTO audit (at, forge, repo, pr, sha, actor, action, outcome, reason, once_key)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
              WHERE NOT EXISTS (SELECT 1 FROM effects WHERE key = $10)
             ON CONFLICT (once_key) DO NOTHING",
        );
        let done = bind_entry(query, e)
            .bind(key)
            .execute(&mut *self.relaxed().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The audit log, newest last, optionally for one repository.
    pub async fn audit_log(&self, repo: Option<&str>, limit: u32) -> sqlx::Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, forge, repo, pr, sha, actor, action, outcome, reason FROM
               (SELECT * FROM audit WHERE ($1 = '' OR repo = $1) ORDER BY id DESC LIMIT $2) recent
             ORDER BY id",
        )
        .bind(repo.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get(0)?,
                    forge: r.try_get(1)?,
                    repo: r.try_get(2)?,
                    pr: r.try_get::<i64, _>(3)? as u64,
                    sha: r.try_get(4)?,
                    actor: r.try_get(5)?,
                    action: r.try_get(6)?,
                    outcome: r.try_get(7)?,
                    reason: r.try_get(8)?,
                })
            })
            .collect()
    }

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

async fn save_release_on(mut conn: super::Conn<'_>, r: &ReleaseRow) -> sqlx::Result<()> {
    let as_i64 = |v: Option<u64>| v.map(|v| v as i64);
    sqlx::query(
        "UPDATE releases SET stage = $1, pipeline_attempt = $2, pipeline_dispatched = $3, pipeline_run_id = $4,
            pipeline_url = $5, pipeline_check_id = $6, release_check_id = $7, queued_at = $8, deployment_id = $9,
            deploy_dispatched = $10, deploy_run_id = $11, deploy_url = $12, detail = $13, updated_at = $14
          WHERE id = $15",
    )
    .bind(r.stage.as_str())
    .bind(r.pipeline_attempt)
    .bind(r.pipeline_dispatched)
    .bind(as_i64(r.pipeline_run_id))
    .bind(&r.pipeline_url)
    .bind(as_i64(r.pipeline_check_id))
    .bind(as_i64(r.release_check_id))
    .bind(r.queued_at)
    .bind(as_i64(r.deployment_id))
    .bind(r.deploy_dispatched)
    .bind(as_i64(r.deploy_run_id))
    .bind(&r.deploy_url)
    .bind(&r.detail)
    .bind(now_ms())
    .bind(r.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The statement that appends `e` to the audit log.
fn insert_audit(e: &AuditEntry) -> Query<'_> {
    bind_entry(
        sqlx::query(
            "INSERT INTO audit (at, forge, repo, pr, sha, actor, action, outcome, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ),
        e,
    )
}

/// `query` with `e`'s fields bound to `$1` … `$9`, in the audit table's column order.
fn bind_entry<'q>(query: Query<'q>, e: &'q AuditEntry) -> Query<'q> {
    query
        .bind(e.at)
        .bind(&e.forge)
        .bind(&e.repo)
        .bind(e.pr as i64)
        .bind(&e.sha)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.outcome)
        .bind(&e.reason)
}
