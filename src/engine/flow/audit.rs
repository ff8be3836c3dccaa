//! The audit log as the release flow writes it: one entry per decision that matters (an
//! approval, a refusal, a deploy's start and end), once per key however often a retried job
//! gets there.

use super::Ctx;
use crate::engine::db;
use crate::store::{AuditEntry, ReleaseRow};
use crate::worker::JobError;

impl Ctx<'_> {
    /// [`Ctx::audit`] once per release and action, however often a retried job gets here.
    pub(super) async fn audit_once(
        &self,
        release: &ReleaseRow,
        actor: &str,
        action: &str,
        outcome: &str,
        reason: &str,
    ) -> Result<(), JobError> {
        let key = format!("{}:audit:{}:{action}", self.forge(), release.id);
        self.audit_under(
            &key,
            &self.audit_entry(release, actor, action, outcome, reason),
        )
        .await
    }

    /// `entry` once per `key`: the key and the entry commit together.
    pub(super) async fn audit_under(&self, key: &str, entry: &AuditEntry) -> Result<(), JobError> {
        self.store()
            .audit_once(key, entry)
            .await
            .map(|_| ())
            .map_err(db)
    }

    pub(super) async fn audit(
        &self,
        release: &ReleaseRow,
        actor: &str,
        action: &str,
        outcome: &str,
        reason: &str,
    ) -> Result<(), JobError> {
        let entry = self.audit_entry(release, actor, action, outcome, reason);
        self.store().audit(&entry).await.map_err(db)
    }

    pub(super) fn audit_entry(
        &self,
        release: &ReleaseRow,
        actor: &str,
        action: &str,
        outcome: &str,
        reason: &str,
    ) -> AuditEntry {
        AuditEntry {
            at: self.now(),
            forge: self.forge().into(),
            repo: self.repo_str().into(),
            pr: release.pr,
            sha: release.sha.as_str().into(),
            actor: actor.into(),
            action: action.into(),
            outcome: outcome.into(),
            reason: reason.into(),
        }
    }
}
