//! What people see: the release card, the check runs, refusals, the audit log.

use super::Ctx;
use super::comments::render_err;
use super::effects::CheckRun;
use crate::config::policy::{Policy, PolicyError};
use crate::engine::db;
use crate::engine::ledger::once;
use crate::forge::Client;
use crate::forge::vocab::{CheckReport, CheckState};
use crate::release::approval::{Refusal, SelfRole};
use crate::release::{Login, Stage};
use crate::render::{
    self, CARD_MARKER, CardView, CheckKind, CheckText, CheckView, RefusalReason, RefusalView,
};
use crate::store::{AuditEntry, ReleaseRow, now_ms};
use crate::worker::JobError;

/// The card's stage for a candidate's stage.
fn card_stage(stage: Stage) -> render::Stage {
    match stage {
        Stage::PipelinePending => render::Stage::PipelinePending,
        Stage::PipelineRunning => render::Stage::PipelineRunning,
        Stage::PipelineFailed => render::Stage::PipelineFailed,
        Stage::Ready => render::Stage::Ready,
        Stage::Queued => render::Stage::Queued,
        Stage::Deploying => render::Stage::Deploying,
        Stage::Deployed => render::Stage::Deployed,
        Stage::DeployFailed => render::Stage::DeployFailed,
        Stage::Superseded => render::Stage::Superseded,
        Stage::Closed => render::Stage::Closed,
    }
}

/// The release check's stage name and state for a candidate's stage.
pub(super) fn release_check_state(stage: Stage) -> (&'static str, CheckState) {
    match stage {
        Stage::Ready => ("awaiting_approval", CheckState::Waiting),
        Stage::Queued => ("approved", CheckState::Waiting),
        Stage::Deploying => ("deploying", CheckState::Running),
        Stage::Deployed => ("deployed", CheckState::Success),
        Stage::DeployFailed => ("deploy_failed", CheckState::Failure),
        Stage::Superseded | Stage::Closed => ("superseded", CheckState::Neutral),
        Stage::PipelinePending | Stage::PipelineRunning | Stage::PipelineFailed => {
            ("queued", CheckState::Queued)
        }
    }
}

/// The pipeline check's state for a stage of it (`queued`, `in_progress`, `success`,
/// `failure`, `cancelled`).
pub(super) fn pipeline_check_state(stage: &str) -> CheckState {
    match stage {
        "queued" => CheckState::Queued,
        "in_progress" => CheckState::Running,
        "success" => CheckState::Success,
        "failure" => CheckState::Failure,
        _ => CheckState::Cancelled,
    }
}

impl Ctx<'_> {
    /// Renders the card for the pull request's current head and edits it in place; creates it
    /// (once: found again by its marker after a crash) only when `create` is set.
    pub(super) async fn refresh_card(
        &self,
        pr: u64,
        policy: &Policy,
        create: bool,
    ) -> Result<(), JobError> {
        let store = self.store();
        let Some(pull) = store
            .pull(self.forge(), self.repo_str(), pr)
            .await
            .map_err(db)?
        else {
            return Ok(());
        };
        let Some(head) = crate::release::CommitSha::parse(&pull.head_sha) else {
            return Ok(());
        };
        let Some(release) = store
            .release_for(self.forge(), self.repo_str(), pr, &head)
            .await
            .map_err(db)?
        else {
            return Ok(());
        };
        if pull.card_comment_id.is_none() && !create {
            return Ok(());
        }
        let approvals = store.approvals(release.id).await.map_err(db)?;
        let queue_position = if release.stage == Stage::Queued {
            let queued = store
                .releases_in_stage(self.forge(), self.repo_str(), Stage::Queued)
                .await
                .map_err(db)?;
            queued
                .iter()
                .position(|r| r.id == release.id)
                .map(|i| i as u32 + 1)
        } else {
            None
        };
        let view = CardView {
            forge: self.forge().into(),
            repo: self.repo_str().into(),
            pr,
            sha: release.sha.as_str().into(),
            short_sha: release.sha.short().into(),
            stage: card_stage(release.stage),
            pipeline_url: release.pipeline_url.clone(),
            environment: release.environment.clone(),
            approvals,
            required: u32::from(policy.approvals.required),
            approvers: policy.describe_approvers_on(self.client.forge()),
            command: format!("/approve-release {}", release.sha.short()),
            queue_position,
            deploy_url: release.deploy_url.clone(),
            superseded_by: None,
            detail: release.detail.clone(),
        };
        let text = self.engine.renderer.card(&view).map_err(render_err)?;
        let digest_key = format!("{}:card-digest:{}:{pr}", self.forge(), self.repo);
        let digest = format!("{:x}", sha2_digest(&text));
        if pull.card_comment_id.is_some()
            && store.effect(&digest_key).await.map_err(db)?.as_deref() == Some(&digest)
        {
            return Ok(());
        }
        match pull.card_comment_id {
            Some(id) => {
                self.client
                    .update_comment(self.target(), pr, id, &text)
                    .await?
            }
            None => {
                let id = match self
                    .client
                    .find_comment(self.target(), pr, CARD_MARKER)
                    .await?
                {
                    Some(id) => {
                        self.client
                            .update_comment(self.target(), pr, id, &text)
                            .await?;
                        id
                    }
                    None => self.client.create_comment(self.target(), pr, &text).await?,
                };
                store
                    .set_card_comment(self.forge(), self.repo_str(), pr, id)
                    .await
                    .map_err(db)?;
            }
        }
        store.put_effect(&digest_key, &digest).await.map_err(db)
    }

    pub(super) fn check_text(
        &self,
        release: &ReleaseRow,
        check: &str,
        stage: &str,
    ) -> Result<CheckText, JobError> {
        let view = CheckView {
            check: if check == "pipeline" {
                CheckKind::Pipeline
            } else {
                CheckKind::Release
            },
            stage: stage.into(),
            sha_short: release.sha.short().into(),
            run_url: if check == "pipeline" {
                release.pipeline_url.clone()
            } else {
                release.deploy_url.clone()
            },
            environment: Some(release.environment.clone()),
            approvals: Vec::new(),
            required: 0,
            message: release.detail.clone(),
            line: None,
            path: None,
        };
        self.engine.renderer.check(&view).map_err(render_err)
    }

    pub(super) fn config_check_text(&self, error: &PolicyError) -> Result<CheckText, JobError> {
        let view = CheckView {
            check: CheckKind::Config,
            stage: "config_error".into(),
            sha_short: String::new(),
            run_url: None,
            environment: None,
            approvals: Vec::new(),
            required: 0,
            message: Some(error.message.clone()),
            line: Some(error.line),
            path: Some(self.client.policy_path().into()),
        };
        self.engine.renderer.check(&view).map_err(render_err)
    }

    /// Mirrors the pipeline's state on the `greenlight/pipeline` check run.
    pub(super) async fn update_pipeline_check(
        &self,
        release: &mut ReleaseRow,
        stage: &str,
    ) -> Result<(), JobError> {
        let text = self.check_text(release, "pipeline", stage)?;
        if let Client::GitLab(_) = self.client {
            return self.gitlab_pipeline_status(release, stage, &text).await;
        }
        let url = release.pipeline_url.clone();
        let report = CheckReport {
            name: "greenlight/pipeline",
            state: pipeline_check_state(stage),
            title: &text.title,
            summary: &text.summary,
            url: url.as_deref(),
            annotation: None,
        };
        self.upsert_check(release, &report).await
    }

    /// Mirrors the release's state on the `greenlight/release` check run.
    pub(super) async fn update_release_check(
        &self,
        release: &mut ReleaseRow,
        policy: &Policy,
    ) -> Result<(), JobError> {
        let (stage, state) = release_check_state(release.stage);
        let mut view_text = self.check_text(release, "release", stage)?;
        if matches!(release.stage, Stage::Ready | Stage::Queued) {
            let approvals = self.store().approvals(release.id).await.map_err(db)?;
            let view = CheckView {
                check: CheckKind::Release,
                stage: stage.into(),
                sha_short: release.sha.short().into(),
                run_url: release.deploy_url.clone(),
                environment: Some(release.environment.clone()),
                approvals,
                required: u32::from(policy.approvals.required),
                // A queued release's detail is the gate that holds it, if one does.
                message: (release.stage == Stage::Queued)
                    .then(|| release.detail.clone())
                    .flatten(),
                line: None,
                path: None,
            };
            view_text = self.engine.renderer.check(&view).map_err(render_err)?;
        }
        if let Client::GitLab(_) = self.client {
            return self.gitlab_release_status(release, &view_text).await;
        }
        let url = release.deploy_url.clone();
        let report = CheckReport {
            name: "greenlight/release",
            state,
            title: &view_text.title,
            summary: &view_text.summary,
            url: url.as_deref(),
            annotation: None,
        };
        self.upsert_check(release, &report).await
    }

    /// Updates our check run of that name, or creates it (and stores its id) the first time.
    async fn upsert_check(
        &self,
        release: &mut ReleaseRow,
        report: &CheckReport<'_>,
    ) -> Result<(), JobError> {
        let name = report.name;
        let existing = if name == "greenlight/pipeline" {
            release.pipeline_check_id
        } else {
            release.release_check_id
        };
        if let Some(id) = existing {
            return Ok(self
                .gh()?
                .update_check_run(self.inst, &self.repo, id, report)
                .await?);
        }
        let external_id = if name == "greenlight/pipeline" {
            format!("{}-pipeline-{}", release.id, release.pipeline_attempt)
        } else {
            format!("{}-release", release.id)
        };
        let id = self
            .create_check_once(&release.sha, &external_id, report)
            .await?;
        if name == "greenlight/pipeline" {
            release.pipeline_check_id = Some(id);
        } else {
            release.release_check_id = Some(id);
        }
        self.store().save_release(release).await.map_err(db)
    }

    /// Creates a check run at most once per `external_id`, even when an earlier attempt created
    /// it and crashed (or lost GitHub's answer) before saving its id: the intent is recorded
    /// first, and a retry that finds an intent looks the check run up before creating one.
    pub(super) async fn create_check_once(
        &self,
        sha: &crate::release::CommitSha,
        external_id: &str,
        report: &CheckReport<'_>,
    ) -> Result<u64, JobError> {
        let check = CheckRun {
            ctx: self,
            sha,
            external_id: external_id.to_owned(),
            report,
        };
        once(self.store(), &check).await
    }

    /// A candidate that will not ship any more (superseded, closed): its open checks say so.
    /// `was` is its stage before: the pipeline check is closed only if it was still running.
    pub(super) async fn close_checks_of(
        &self,
        release: &ReleaseRow,
        was: Stage,
        why: &str,
    ) -> Result<(), JobError> {
        let text = self.check_text(release, "release", "superseded")?;
        if let Client::GitLab(_) = self.client {
            return self.gitlab_close_statuses(release, was, &text, why).await;
        }
        let summary = format!("{}\n\n({why})", text.summary);
        let report = CheckReport {
            name: "greenlight/release",
            state: CheckState::Neutral,
            title: &text.title,
            summary: &summary,
            url: None,
            annotation: None,
        };
        if let Some(id) = release.pipeline_check_id
            && matches!(was, Stage::PipelinePending | Stage::PipelineRunning)
        {
            self.gh()?
                .update_check_run(self.inst, &self.repo, id, &report)
                .await?;
        }
        if let Some(id) = release.release_check_id {
            self.gh()?
                .update_check_run(self.inst, &self.repo, id, &report)
                .await?;
        }
        Ok(())
    }

    pub(super) fn refusal_text(
        &self,
        actor: &Login,
        head: &crate::release::CommitSha,
        refusal: &Refusal,
        policy: &Policy,
    ) -> Result<String, JobError> {
        let mut view = RefusalView {
            forge: self.forge().into(),
            actor: actor.as_str().into(),
            reason: RefusalReason::NotAllowed,
            head_short: Some(head.short().into()),
            prefix: None,
            permission: None,
            required_permission: None,
            pipeline_stage: None,
            freeze_reason: None,
            environment: Some(policy.deploy.environment.as_str().into()),
            self_role: None,
        };
        view.reason = match refusal {
            Refusal::PrClosed => RefusalReason::PrClosed,
            Refusal::PipelineNotGreen { stage } => {
                view.pipeline_stage = Some(
                    stage
                        .map_or("not started", |s| s.as_str())
                        .replace('_', " "),
                );
                RefusalReason::PipelineNotGreen
            }
            Refusal::AlreadyReleased { stage } => {
                view.pipeline_stage = Some(stage.as_str().into());
                RefusalReason::AlreadyReleased
            }
            Refusal::StaleCommit { prefix, head } => {
                view.prefix = prefix.clone();
                view.head_short = Some(head.short().into());
                RefusalReason::StaleCommit
            }
            Refusal::ShaMismatch { prefix, head } => {
                view.prefix = Some(prefix.clone());
                view.head_short = Some(head.short().into());
                RefusalReason::ShaMismatch
            }
            Refusal::NotAllowed {
                permission,
                required,
            } => {
                view.permission = Some(permission.as_str().into());
                view.required_permission = Some(required.as_str().into());
                RefusalReason::NotAllowed
            }
            Refusal::SelfApproval(role) => {
                view.self_role = Some(
                    match role {
                        SelfRole::Author => "author",
                        SelfRole::Pusher => "pusher",
                    }
                    .into(),
                );
                RefusalReason::SelfApproval
            }
            Refusal::Frozen { reason } => {
                view.freeze_reason = Some(reason.clone());
                RefusalReason::Frozen
            }
            Refusal::AlreadyApproved => RefusalReason::AlreadyApproved,
            Refusal::ForkNotAllowed => RefusalReason::ForkNotAllowed,
        };
        self.engine.renderer.refusal(&view).map_err(render_err)
    }

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
            at: now_ms(),
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

fn sha2_digest(text: &str) -> u128 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    u128::from_be_bytes(d[..16].try_into().unwrap_or([0; 16]))
}
