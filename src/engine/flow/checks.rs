//! Greenlight's checks on a release's commit (`greenlight/pipeline`, `greenlight/release`,
//! `greenlight/config`), said in the release's words and shown through
//! [`Client::show`](crate::forge::Client::show) in the forge's [`CheckShape`]: an edited
//! check (GitHub check run) is made once and its id kept with the release; a posted one
//! (GitLab commit status) is a one-shot post per report. Both go through the ledger's
//! [`ShowCheck`].

use super::Ctx;
use super::comments::render_err;
use super::effects::ShowCheck;
use crate::config::policy::{Policy, PolicyError};
use crate::engine::db;
use crate::forge::vocab::{CheckReport, CheckShape, CheckState, Shown};
use crate::release::{CommitSha, Stage};
use crate::render::{CheckKind, CheckText, CheckView};
use crate::store::ReleaseRow;
use crate::worker::JobError;

/// One of a release's two checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Pipeline,
    Release,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Self::Pipeline => "greenlight/pipeline",
            Self::Release => "greenlight/release",
        }
    }

    /// The tag an edited check is found again by: one pipeline check per attempt.
    fn external_id(self, r: &ReleaseRow) -> String {
        match self {
            Self::Pipeline => format!("{}-pipeline-{}", r.id, r.pipeline_attempt),
            Self::Release => format!("{}-release", r.id),
        }
    }

    /// The edited check's id, kept with the release.
    fn id(self, r: &ReleaseRow) -> Option<u64> {
        match self {
            Self::Pipeline => r.pipeline_check_id,
            Self::Release => r.release_check_id,
        }
    }

    fn keep(self, r: &mut ReleaseRow, id: u64) {
        match self {
            Self::Pipeline => r.pipeline_check_id = Some(id),
            Self::Release => r.release_check_id = Some(id),
        }
    }

    /// Whether the check was still open (not final) when the candidate was in `stage`.
    fn open_in(self, stage: Stage) -> bool {
        match self {
            Self::Pipeline => matches!(stage, Stage::PipelinePending | Stage::PipelineRunning),
            Self::Release => matches!(stage, Stage::Ready | Stage::Queued | Stage::Deploying),
        }
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

/// What `greenlight/pipeline` says in `state`: the rendered text, linking the run.
fn pipeline_report<'a>(
    state: CheckState,
    text: &'a CheckText,
    url: Option<&'a str>,
) -> CheckReport<'a> {
    CheckReport {
        name: Slot::Pipeline.name(),
        state,
        title: &text.title,
        summary: &text.summary,
        line: &text.title,
        url,
        annotation: None,
    }
}

impl Ctx<'_> {
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
    /// Shows `report` on `sha` at most once per `external_id` (an edited check) or per what
    /// it says (a posted one), even when an earlier attempt showed it and crashed (or lost the
    /// forge's answer) before recording it: the ledger looks before it shows again.
    pub(super) async fn show_check_once(
        &self,
        sha: &CommitSha,
        external_id: &str,
        report: &CheckReport<'_>,
    ) -> Result<Shown, JobError> {
        let check = ShowCheck {
            ctx: self,
            sha,
            external_id,
            report,
        };
        self.once(&check).await
    }

    /// Says `report` on one of the release's checks: edits it where the forge keeps an id
    /// of it, shows it (once) otherwise, and keeps a new id with the release.
    async fn show_release_check(
        &self,
        release: &mut ReleaseRow,
        slot: Slot,
        report: &CheckReport<'_>,
    ) -> Result<(), JobError> {
        if let Some(id) = slot.id(release) {
            return Ok(self.client.edit(self.target(), id, report).await?);
        }
        let shown = self
            .show_check_once(&release.sha, &slot.external_id(release), report)
            .await?;
        if let Some(id) = shown.id() {
            slot.keep(release, id);
            self.store().save_release(release).await.map_err(db)?;
        }
        Ok(())
    }

    /// Mirrors the pipeline's state on `greenlight/pipeline`, linking the run.
    pub(super) async fn update_pipeline_check(
        &self,
        release: &mut ReleaseRow,
        stage: &str,
    ) -> Result<(), JobError> {
        let text = self.check_text(release, "pipeline", stage)?;
        let url = release.pipeline_url.clone();
        let report = pipeline_report(pipeline_check_state(stage), &text, url.as_deref());
        self.show_release_check(release, Slot::Pipeline, &report)
            .await
    }

    /// The pipeline check of a candidate before its run exists (a fork's waiting for
    /// `/build`, a pipeline about to be started), shown once: the run, when it reports, says
    /// its own state on it.
    pub(super) async fn show_pipeline_first(
        &self,
        release: &mut ReleaseRow,
        text: &CheckText,
    ) -> Result<(), JobError> {
        if Slot::Pipeline.id(release).is_some() {
            return Ok(());
        }
        let report = pipeline_report(CheckState::Queued, text, None);
        self.show_release_check(release, Slot::Pipeline, &report)
            .await
    }

    /// Mirrors the release's state on `greenlight/release`, linking the deploy. A failed
    /// deploy says why in its one line (a deploy refused for its variables names the setting
    /// to change).
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
        let line = match (&release.detail, release.stage) {
            (Some(detail), Stage::DeployFailed) => format!("{}: {detail}", view_text.title),
            _ => view_text.title.clone(),
        };
        let url = release.deploy_url.clone();
        let report = CheckReport {
            name: Slot::Release.name(),
            state,
            title: &view_text.title,
            summary: &view_text.summary,
            line: &line,
            url: url.as_deref(),
            annotation: None,
        };
        self.show_release_check(release, Slot::Release, &report)
            .await
    }

    /// A candidate that will not ship any more (superseded, closed): its open checks say so.
    /// `was` is its stage before. An edited check is closed where it exists (the pipeline's
    /// only while it was still running); a posted one where it was open in `was`.
    pub(super) async fn close_checks_of(
        &self,
        release: &ReleaseRow,
        was: Stage,
        why: &str,
    ) -> Result<(), JobError> {
        let text = self.check_text(release, "release", "superseded")?;
        let summary = format!("{}\n\n({why})", text.summary);
        let line = format!("{} ({why})", text.title);
        for slot in [Slot::Pipeline, Slot::Release] {
            let open = match self.client.check_shape() {
                CheckShape::Edited => {
                    slot.id(release).is_some() && (slot == Slot::Release || slot.open_in(was))
                }
                CheckShape::Posted => slot.open_in(was),
            };
            if !open {
                continue;
            }
            let url = match slot {
                Slot::Pipeline => release.pipeline_url.clone(),
                Slot::Release => None,
            };
            let report = CheckReport {
                name: slot.name(),
                state: CheckState::Neutral,
                title: &text.title,
                summary: &summary,
                line: &line,
                url: url.as_deref(),
                annotation: None,
            };
            match slot.id(release) {
                Some(id) => self.client.edit(self.target(), id, &report).await?,
                None => {
                    self.show_check_once(&release.sha, &slot.external_id(release), &report)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_stages_map_to_check_states() {
        assert_eq!(pipeline_check_state("queued"), CheckState::Queued);
        assert_eq!(pipeline_check_state("in_progress"), CheckState::Running);
        assert_eq!(pipeline_check_state("success"), CheckState::Success);
        assert_eq!(pipeline_check_state("failure"), CheckState::Failure);
        assert_eq!(pipeline_check_state("cancelled"), CheckState::Cancelled);
    }

    #[test]
    fn only_a_finished_deploy_completes_the_release_check() {
        for (stage, state) in [
            (Stage::PipelinePending, CheckState::Queued),
            (Stage::Ready, CheckState::Waiting),
            (Stage::Queued, CheckState::Waiting),
            (Stage::Deploying, CheckState::Running),
            (Stage::Deployed, CheckState::Success),
            (Stage::DeployFailed, CheckState::Failure),
            (Stage::Superseded, CheckState::Neutral),
            (Stage::Closed, CheckState::Neutral),
        ] {
            assert_eq!(release_check_state(stage).1, state, "{stage:?}");
        }
    }
}
