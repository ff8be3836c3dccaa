//! The release's one-shot forge writes as [`Effect`]s of the [ledger](crate::engine::ledger):
//! each owns its ledger key, how its intent and outcome are written there, how an earlier
//! attempt's write is found again, and how it is made. Every key format of the ledger's forge
//! writes is here, unchanged from earlier versions (their rows stay readable). Replies and checks
//! are in this file; what starts a run or a deploy, or says how it
//! went, in [`starts`].
//!
//! | effect | intent key (value) | record |
//! |---|---|---|
//! | [`Reply`] | `<forge>:reply:<repo>:<comment>:intent` (empty) | `<forge>:reply:<repo>:<comment>` = comment id |
//! | [`ShowCheck`], edited | `<forge>:check-intent:<repo>:<external id>` (empty) | the release keeps the id |
//! | [`Deployment`] | `<forge>:deployment-intent:<release>` (empty) | the release keeps the id |
//! | [`Dispatch`] | `github:dispatch:<repo>:<release>:<purpose>` = `intent:<ms>` | same key: `run:<id>`, `done:<ms>` (`done`: older versions) |
//! | [`DeploymentStatus`] | `github:deployment-status:<repo>:<deployment>:<state>` = `intent` | same key: `done` |
//! | [`ShowCheck`], posted | `<forge>:status:<repo>:<sha>:<name>` = `?<state>\|<line>\|<url>` | same key, without the `?` |
//! | [`PipelineStart`] | `gitlab:pipeline-start:<release>:<attempt>` = `<ms>` | the release keeps the pipeline |
//! | [`DeployPipeline`] | `gitlab:deploy-pipeline:<release>` = `<ms>` (older versions: the release's `deploy_dispatched`) | the release keeps the pipeline |

mod starts;

pub(super) use starts::{
    DeployPipeline, Deployment, DeploymentStatus, Dispatch, Dispatched, PipelineStart, Started,
};

use super::Ctx;
use crate::engine::ledger::{Effect, Entry};
use crate::forge::gitlab::statuses::StatusState;
use crate::forge::vocab::{CheckReport, CheckShape, Shown};
use crate::release::CommitSha;
use crate::worker::JobError;

/// Intent only, empty value: in doubt as soon as it is there.
fn in_doubt_if_intended<D>(intent: Option<&str>) -> Entry<D> {
    match intent {
        Some(v) => Entry::InDoubt(v.to_owned()),
        None => Entry::Fresh,
    }
}

/// A comment's one reply, found again by its hidden marker among Greenlight's own comments.
pub(super) struct Reply<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub pr: u64,
    pub comment: u64,
    pub answers: &'c [String],
}

impl Reply<'_, '_> {
    fn key(&self) -> String {
        format!(
            "{}:reply:{}:{}",
            self.ctx.forge(),
            self.ctx.repo,
            self.comment
        )
    }
    fn marker(&self) -> String {
        format!("<!-- greenlight:reply:{} -->", self.comment)
    }
}

impl Effect for Reply<'_, '_> {
    type Done = u64;
    fn intent_key(&self) -> String {
        format!("{}:intent", self.key())
    }
    fn record_key(&self) -> Option<String> {
        Some(self.key())
    }
    fn read(&self, intent: Option<&str>, record: Option<&str>) -> Entry<u64> {
        match record {
            Some(id) => Entry::Done(id.parse().unwrap_or_default()),
            None => in_doubt_if_intended(intent),
        }
    }
    fn intent(&self, _now: i64, doubt: Option<&str>) -> Option<String> {
        doubt.is_none().then(String::new)
    }
    fn encode(&self, id: &u64, _at: i64, _found: bool) -> Option<String> {
        Some(id.to_string())
    }
    async fn look_up(&self, _doubt: &str) -> Result<Option<u64>, JobError> {
        let ctx = self.ctx;
        Ok(ctx
            .client
            .find_comment(ctx.target(), self.pr, &self.marker())
            .await?)
    }
    async fn create(&self) -> Result<u64, JobError> {
        let ctx = self.ctx;
        let body = format!("{}\n\n{}", self.answers.join("\n\n"), self.marker());
        Ok(ctx
            .client
            .create_comment(ctx.target(), self.pr, &body)
            .await?)
    }
}

/// A check shown on a commit ([`Client::show`](crate::forge::Client::show)), once, in the
/// forge's [`CheckShape`]:
/// - **edited** (GitHub check runs): made once per `external_id`, found again by it; the
///   release keeps the id and later reports edit it (no ledger: an edit may be repeated);
/// - **posted** (GitLab commit statuses): said once per (commit, name, what it says). A
///   repeated report (redelivery, a job retried after a crash) re-asserts its checks, and
///   GitLab keeps every post of a finished status in the history. A post whose answer was
///   lost is looked for.
pub(super) struct ShowCheck<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub sha: &'c CommitSha,
    pub external_id: &'c str,
    pub report: &'c CheckReport<'c>,
}

impl ShowCheck<'_, '_> {
    fn shape(&self) -> CheckShape {
        self.ctx.client.check_shape()
    }
    /// What a posted check says: its ledger value.
    fn said(&self) -> String {
        let r = self.report;
        format!(
            "{}|{}|{}",
            StatusState::of(r.state).as_str(),
            r.line,
            r.url.unwrap_or_default()
        )
    }
}

impl Effect for ShowCheck<'_, '_> {
    type Done = Shown;
    fn intent_key(&self) -> String {
        let ctx = self.ctx;
        match self.shape() {
            CheckShape::Edited => format!(
                "{}:check-intent:{}:{}",
                ctx.forge(),
                ctx.repo,
                self.external_id
            ),
            CheckShape::Posted => format!(
                "{}:status:{}:{}:{}",
                ctx.forge(),
                ctx.repo,
                self.sha,
                self.report.name
            ),
        }
    }
    fn record_key(&self) -> Option<String> {
        match self.shape() {
            CheckShape::Edited => None,
            CheckShape::Posted => Some(self.intent_key()),
        }
    }
    fn read(&self, intent: Option<&str>, _record: Option<&str>) -> Entry<Shown> {
        if self.shape() == CheckShape::Edited {
            return in_doubt_if_intended(intent);
        }
        let said = self.said();
        match intent {
            Some(v) if v == said => Entry::Done(Shown::Posted),
            // Posted but unconfirmed (the answer was lost, the process died).
            Some(v) if v.strip_prefix('?') == Some(said.as_str()) => Entry::InDoubt(v.to_owned()),
            // Nothing said yet, or something else: this is new.
            _ => Entry::Fresh,
        }
    }
    fn intent(&self, _now: i64, doubt: Option<&str>) -> Option<String> {
        match self.shape() {
            CheckShape::Edited => doubt.is_none().then(String::new),
            CheckShape::Posted => Some(format!("?{}", self.said())),
        }
    }
    fn encode(&self, _done: &Shown, _at: i64, _found: bool) -> Option<String> {
        match self.shape() {
            CheckShape::Edited => None,
            CheckShape::Posted => Some(self.said()),
        }
    }
    async fn look_up(&self, _doubt: &str) -> Result<Option<Shown>, JobError> {
        let ctx = self.ctx;
        Ok(ctx
            .client
            .find_shown(ctx.target(), self.sha, self.external_id, self.report)
            .await?)
    }
    async fn create(&self) -> Result<Shown, JobError> {
        let ctx = self.ctx;
        Ok(ctx
            .client
            .show(ctx.target(), self.sha, self.external_id, self.report)
            .await?)
    }
}
