//! Greenlight's checks on a commit, in the release's words: [`Client::show`] makes one,
//! [`Client::find_shown`] finds what an earlier attempt made, [`Client::edit`] changes one
//! the forge lets us edit. GitHub shows a check run, GitLab a commit status; which of the two
//! shapes a forge has is its [`CheckShape`], the one thing the flow needs to know.

use super::client::{Client, Target};
use super::gitlab::statuses::StatusState;
use super::retry::ForgeError;
use super::vocab::{CheckReport, CheckShape, Shown};
use crate::release::CommitSha;

impl Client<'_> {
    /// How this forge keeps checks.
    pub fn check_shape(self) -> CheckShape {
        match self {
            Self::GitHub(_) => CheckShape::Edited,
            Self::GitLab(_) => CheckShape::Posted,
        }
    }

    /// Shows `report` on `sha`. `external_id` tags an edited check so that a retry finds it
    /// again; a posted one is found by what it says.
    pub async fn show(
        self,
        t: Target<'_>,
        sha: &CommitSha,
        external_id: &str,
        report: &CheckReport<'_>,
    ) -> Result<Shown, ForgeError> {
        match self {
            Self::GitHub(gh) => gh
                .create_check_run(t.forge_id, t.repo, sha, external_id, report)
                .await
                .map(Shown::Edited),
            Self::GitLab(gl) => {
                let (name, state, line, url) = status_of(report);
                gl.set_status(t.forge_id, sha, name, state, line, url)
                    .await?;
                Ok(Shown::Posted)
            }
        }
    }

    /// What an earlier [`Self::show`] of the same check made, if the forge has it: the
    /// check run tagged `external_id`, or the latest status saying exactly `report`.
    pub async fn find_shown(
        self,
        t: Target<'_>,
        sha: &CommitSha,
        external_id: &str,
        report: &CheckReport<'_>,
    ) -> Result<Option<Shown>, ForgeError> {
        match self {
            Self::GitHub(gh) => Ok(gh
                .find_check_run(t.forge_id, t.repo, sha, report.name, external_id)
                .await?
                .map(Shown::Edited)),
            Self::GitLab(gl) => {
                let (name, state, line, url) = status_of(report);
                Ok(gl
                    .has_status(t.forge_id, sha, name, state, line, url)
                    .await?
                    .then_some(Shown::Posted))
            }
        }
    }

    /// Edits a shown check to say `report`. A posted check has no id to edit by: it is a
    /// bug in the flow to ask (the flow shows a new report instead).
    pub async fn edit(
        self,
        t: Target<'_>,
        id: u64,
        report: &CheckReport<'_>,
    ) -> Result<(), ForgeError> {
        match self {
            Self::GitHub(gh) => gh.update_check_run(t.forge_id, t.repo, id, report).await,
            Self::GitLab(_) => Err(ForgeError::Rejected {
                status: 0,
                message: "internal error: GitLab commit statuses are posted, not edited".into(),
            }),
        }
    }
}

/// A check as a GitLab commit status says it: name, state, one line, link.
fn status_of<'a>(report: &CheckReport<'a>) -> (&'a str, StatusState, &'a str, Option<&'a str>) {
    (
        report.name,
        StatusState::of(report.state),
        report.line,
        report.url,
    )
}
