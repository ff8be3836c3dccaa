//! What people read in the thread: the release card and the refusals.

use super::Ctx;
use super::comments::render_err;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::release::approval::{Refusal, SelfRole};
use crate::release::{Login, Stage};
use crate::render::{self, CARD_MARKER, CardView, RefusalReason, RefusalView};
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
}

fn sha2_digest(text: &str) -> u128 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    u128::from_be_bytes(d[..16].try_into().unwrap_or([0; 16]))
}
