//! Release candidates: one row per (repository, pull request, head commit, generation) with its
//! stage and the forge's references of its runs, checks and deployment (pull requests are in
//! `pulls.rs`, approvals in `approvals.rs`, the audit log in `audit.rs`, the effect ledger in
//! `effects.rs`, leases in `leases.rs`).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, now_ms};
use crate::release::{CommitSha, Stage};

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

pub(super) const RELEASE_COLUMNS: &str = "id, forge, repo, pr, sha, stage, environment, pipeline_attempt, pipeline_dispatched, \
     pipeline_run_id, pipeline_url, pipeline_check_id, release_check_id, queued_at, deployment_id, \
     deploy_dispatched, deploy_run_id, deploy_url, detail, updated_at, generation, pusher_id, head_at";

/// A nullable id column.
pub(super) fn opt_u64(r: &AnyRow, i: usize) -> sqlx::Result<Option<u64>> {
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
