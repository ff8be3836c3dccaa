//! Pull requests from forks under `allow_forks = true`. Greenlight runs the pipeline with the
//! default branch's privileges, so a fork's code runs only after someone with at least
//! `write` permission has read it and asked for it in the thread with `/build [sha]`, once
//! per head commit: a new push is a new candidate, and waits for a new `/build`. Until then
//! the pipeline check (GitHub) or status (GitLab) says what to type.

use super::Ctx;
use super::comments::Answer;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::forge::client::Reaction;
use crate::release::approval::Refusal;
use crate::release::{Comment, Permission, Stage};
use crate::store::ReleaseRow;
use crate::worker::JobError;

/// The pipeline check's stage while a fork's commit waits for `/build`.
const AWAITING_BUILD: &str = "awaiting_build";

impl Ctx<'_> {
    /// A fork's new head commit: not built; the pipeline check says who may start it and how.
    /// Said once per candidate, however often the update is delivered.
    pub(super) async fn await_build(&self, release: &mut ReleaseRow) -> Result<(), JobError> {
        let text = self.check_text(release, "pipeline", AWAITING_BUILD)?;
        // The external id is the pipeline's own: the build reuses this check.
        self.show_pipeline_first(release, &text).await
    }

    /// `/build [sha-prefix]`: someone with `write` starts the pipeline of a fork's head.
    pub(super) async fn build_command(
        &self,
        comment: &Comment,
        prefix: Option<&str>,
        policy: &Policy,
    ) -> Result<Answer, JobError> {
        let who = &comment.author;
        let pull = self.client.pull(self.target(), comment.pr.0).await?;
        let short = pull.head.short().to_owned();
        if !pull.open {
            let text = self.refusal_text(who, &pull.head, &Refusal::PrClosed, policy)?;
            return Ok(Some(text));
        }
        if !pull.from_fork {
            return Ok(Some(format!(
                "@{who} `/build` is for forks only: this pipeline starts on its own."
            )));
        }
        if !policy.pull_requests.allow_forks {
            let text = self.refusal_text(who, &pull.head, &Refusal::ForkNotAllowed, policy)?;
            return Ok(Some(text));
        }
        if let Some(p) = prefix
            && !pull.head.as_str().starts_with(p)
        {
            // `p` is hex digits only (the parser saw to it): safe to show.
            self.acknowledge(comment, Reaction::Refused).await?;
            return Ok(Some(format!(
                "@{who} ✋ **Not built.** `{p}` is not the head of this pull request (the head is `{short}`): review the head, then comment `/build {short}`."
            )));
        }
        let permission = self
            .client
            .permission(self.target(), who, comment.author_id)
            .await?;
        if permission < Permission::Write {
            tracing::info!(actor = %who, %permission, "fork build refused");
            self.acknowledge(comment, Reaction::Refused).await?;
            return Ok(Some(format!(
                "@{who} ✋ **Not built.** Building a fork's code needs `write` permission on this repository; yours is `{permission}`."
            )));
        }
        let Some(mut release) = self
            .store()
            .release_for(self.forge(), self.repo_str(), comment.pr.0, &pull.head)
            .await
            .map_err(db)?
        else {
            return Ok(Some(format!(
                "@{who} there is nothing to build for `{short}` yet."
            )));
        };
        // The request is on disk before the pipeline starts: a retry of this job carries on
        // where it stopped instead of answering that the commit is already built.
        let key = format!("{}:build:{}:{}", self.forge(), self.repo, release.id);
        let asked = self.store().effect(&key).await.map_err(db)?;
        let ours = asked.as_deref() == Some(comment.id.to_string().as_str());
        let waiting =
            release.stage == Stage::PipelinePending && release.pipeline_dispatched.is_none();
        if !waiting && !ours {
            return Ok(Some(format!(
                "@{who} `{short}` is already built (its pipeline is {}).",
                release.stage.as_str().replace('_', " ")
            )));
        }
        if asked.is_none() {
            self.store()
                .put_effect(&key, &comment.id.to_string())
                .await
                .map_err(db)?;
        }
        let entry = self.audit_entry(
            &release,
            who.as_str(),
            "build",
            "accepted",
            &format!("permission {permission}"),
        );
        self.audit_under(&format!("{key}:audit"), &entry).await?;
        if waiting {
            self.start_pipeline(&mut release, policy).await?;
        }
        if release.stage == Stage::PipelinePending {
            // The waiting check becomes the pipeline's (where the start said so itself, the
            // same report is not said again).
            self.update_pipeline_check(&mut release, "queued").await?;
        }
        self.refresh_card(release.pr, policy, false).await?;
        Ok(None)
    }
}
