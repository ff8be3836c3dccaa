//! The audit log: one row per decision that matters, written once per key where a retried job
//! could write it twice.

use sqlx::Row as _;

use super::Store;

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

impl Store {
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
