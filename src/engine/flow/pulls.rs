//! Pull request opened, pushed to, closed; the pipeline dispatched for its head.

use super::Ctx;
use super::effects::Dispatched;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::forge::Client;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::{CheckReport, CheckShape, CheckState};
use crate::release::{CommitSha, PullRequest, Stage};
use crate::store::{NewCandidate, PullRow, ReleaseRow};
use crate::worker::JobError;

impl Ctx<'_> {
    pub(super) async fn on_pull_updated(&self, pr: PullRequest) -> Result<(), JobError> {
        let Some(policy) = self.valid_policy(&pr.head).await? else {
            return Ok(());
        };
        let store = self.store();
        let previous = store
            .pull(self.forge(), self.repo_str(), pr.number.0)
            .await
            .map_err(db)?;
        if previous.as_ref().is_some_and(|p| p.head_seq > self.seq) {
            tracing::info!("a newer update of this pull request was already handled; skipping");
            return Ok(());
        }
        let row = PullRow {
            forge: self.forge().into(),
            repo: self.repo_str().into(),
            pr: pr.number.0,
            forge_id: self.inst,
            head_sha: pr.head.as_str().into(),
            head_ref: pr.head_ref.clone(),
            // GitLab's hook names the actor, not always the author: keep what we knew.
            author: match (&previous, pr.author.0.is_empty()) {
                (Some(p), true) => p.author.clone(),
                _ => pr.author.0.clone(),
            },
            is_open: true,
            card_comment_id: previous.as_ref().and_then(|p| p.card_comment_id),
            head_seq: self.seq,
            pusher_id: head_pusher(&pr, previous.as_ref()),
        };
        store.upsert_pull(&row).await.map_err(db)?;

        let mut queue_changed = false;
        for mut old in store
            .releases_of_pull(self.forge(), self.repo_str(), pr.number.0)
            .await
            .map_err(db)?
        {
            if old.sha == pr.head {
                continue;
            }
            let why = format!("superseded by {}", pr.head.short());
            let audit = format!("new head {}", pr.head.short());
            let was = match old.stage.on_new_head() {
                Some(next) => {
                    old.detail = Some(why.clone());
                    Some(self.end_release(&mut old, next, &why, Some(&audit)).await?)
                }
                None => self.resume_ending(&old, &why, Some(&audit)).await?,
            };
            queue_changed |= was == Some(Stage::Queued);
        }
        if queue_changed {
            self.advance_queue(&policy).await?;
        }

        if pr.draft && !policy.pull_requests.drafts {
            tracing::info!("draft pull request: not built (pull_requests.drafts = false)");
            return self.refresh_card(pr.number.0, &policy, false).await;
        }
        if pr.from_fork && !policy.pull_requests.allow_forks {
            return self.skip_fork(&pr.head).await;
        }
        // A closed or superseded candidate of this commit (a reopen, a force-push back to it)
        // is not reused: a fresh generation starts, with no votes and a new pipeline.
        let new = NewCandidate {
            pusher_id: row.pusher_id,
            head_at: pr.updated_at,
        };
        let mut release = store
            .ensure_candidate(
                self.forge(),
                self.repo_str(),
                pr.number.0,
                &pr.head,
                policy.deploy.environment.as_str(),
                new,
            )
            .await
            .map_err(db)?;
        let unbuilt =
            release.stage == Stage::PipelinePending && release.pipeline_dispatched.is_none();
        if pr.from_fork && unbuilt {
            // A fork's code runs only after `/build` from someone with write (forks.rs).
            self.await_build(&mut release).await?;
        } else if unbuilt {
            self.start_pipeline(&mut release, &policy).await?;
        } else if self.client.check_shape() == CheckShape::Posted
            && release.stage == Stage::PipelinePending
            && release.pipeline_run_id.is_some()
        {
            // A retry after a crash between recording the pipeline and saying so: say it
            // (a posted check is said once; an edited one was made before the start).
            self.update_pipeline_check(&mut release, "queued").await?;
        }
        self.refresh_card(pr.number.0, &policy, false).await
    }

    /// A neutral check explains why a fork's commits are not built.
    async fn skip_fork(&self, sha: &CommitSha) -> Result<(), JobError> {
        let key = format!("{}:fork-check:{}:{sha}", self.forge(), self.repo);
        if self.store().effect(&key).await.map_err(db)?.is_some() {
            return Ok(());
        }
        let title = format!(
            "Not built: {} from a fork",
            self.client.forge().pull_request_noun()
        );
        let line = format!("{title} (allow_forks = false)");
        let report = CheckReport {
            name: "greenlight/pipeline",
            state: CheckState::Neutral,
            title: &title,
            summary: "This repository's policy has `allow_forks = false`: Greenlight does not run pipelines or releases for pull requests from forks.",
            line: &line,
            url: None,
            annotation: None,
        };
        let shown = self
            .show_check_once(sha, &format!("fork-{sha}"), &report)
            .await?;
        self.store()
            .record_effect(&key, &super::shown_record(shown))
            .await
            .map_err(db)
    }

    /// Creates the pipeline check (once) and dispatches the pipeline workflow **on the default
    /// branch** with the head SHA as an input: the pull request's own copy of the workflow
    /// never runs with our token.
    pub(super) async fn start_pipeline(
        &self,
        release: &mut ReleaseRow,
        policy: &Policy,
    ) -> Result<(), JobError> {
        if let Client::GitLab(_) = self.client {
            return self.gitlab_start_pipeline(release).await;
        }
        // The check first: people see at once that a pipeline is on its way.
        let text = self.check_text(release, "pipeline", "queued")?;
        self.show_pipeline_first(release, &text).await?;
        let workflow = policy.pipeline.workflow.as_str();
        let purpose = format!("pipeline-{}", release.pipeline_attempt);
        let sha = release.sha.clone();
        let pr = release.pr.to_string();
        let inputs = [("sha", sha.as_str()), ("pr", pr.as_str())];
        match self
            .dispatch_once(release.id, &purpose, workflow, &sha, &inputs)
            .await?
        {
            Dispatched::Run(run) => {
                release.pipeline_attempt += 1;
                release.pipeline_dispatched = Some(self.now());
                if let Some(run) = run {
                    release.pipeline_run_id = Some(run.id);
                    release.pipeline_url = Some(run.url);
                }
                self.store().save_release(release).await.map_err(db)?;
                tracing::info!(sha = %release.sha, workflow, "pipeline dispatched");
                Ok(())
            }
            Dispatched::Refused(e) => {
                // The workflow cannot be dispatched (no workflow_dispatch trigger, unknown
                // inputs, missing file): a setup problem retrying will not fix. Say so.
                super::transit(
                    release,
                    release.stage.on_pipeline_refused(),
                    "a refused pipeline",
                )?;
                release.detail = Some(match e {
                    ForgeError::Rejected { status, message } => {
                        format!("cannot dispatch {workflow} ({status}): {message}")
                    }
                    _ => format!("workflow {workflow} not found on {}", self.default_branch),
                });
                self.store().save_release(release).await.map_err(db)?;
                self.update_pipeline_check(release, "failure").await?;
                Ok(())
            }
        }
    }

    pub(super) async fn on_pull_closed(&self, pr: u64) -> Result<(), JobError> {
        let store = self.store();
        store
            .set_pull_open(self.forge(), self.repo_str(), pr, false, self.seq)
            .await
            .map_err(db)?;
        let mut queue_changed = false;
        for mut r in store
            .releases_of_pull(self.forge(), self.repo_str(), pr)
            .await
            .map_err(db)?
        {
            let why = "pull request closed";
            let was = match r.stage.on_close() {
                Some(next) => Some(self.end_release(&mut r, next, why, None).await?),
                None => self.resume_ending(&r, why, None).await?,
            };
            queue_changed |= was == Some(Stage::Queued);
        }
        let Some(policy) = self.policy().await?.valid() else {
            return Ok(());
        };
        if queue_changed {
            self.advance_queue(&policy).await?;
        }
        self.refresh_card(pr, &policy, false).await
    }

    /// Ends a candidate that will not ship (superseded, closed): the stage it had goes in the
    /// ledger *before* the new one is saved, its open checks or statuses are closed after, and
    /// the ledger entry is cleared; a retry after a crash in between finishes the job
    /// ([`Self::resume_ending`]). Returns the stage it had.
    async fn end_release(
        &self,
        r: &mut ReleaseRow,
        next: Stage,
        why: &str,
        audit: Option<&str>,
    ) -> Result<Stage, JobError> {
        let was = r.stage;
        let key = self.ending_key(r);
        self.store()
            .put_effect(&key, was.as_str())
            .await
            .map_err(db)?;
        r.stage = next;
        self.store().save_release(r).await.map_err(db)?;
        self.finish_ending(r, was, why, audit).await?;
        Ok(was)
    }

    /// A candidate an earlier attempt ended without closing its checks (the ledger still
    /// holds the stage it had): close them now. Returns that stage, if there was such work.
    /// `audit`: the reason of the `superseded` audit entry, for a superseded candidate.
    async fn resume_ending(
        &self,
        r: &ReleaseRow,
        why: &str,
        audit: Option<&str>,
    ) -> Result<Option<Stage>, JobError> {
        let key = self.ending_key(r);
        let was = self.store().effect(&key).await.map_err(db)?;
        let Some(was) = was.as_deref().and_then(Stage::parse) else {
            return Ok(None);
        };
        tracing::info!(
            release = r.id,
            "finishing the end of a candidate a crash interrupted"
        );
        self.finish_ending(r, was, why, audit).await?;
        Ok(Some(was))
    }

    async fn finish_ending(
        &self,
        r: &ReleaseRow,
        was: Stage,
        why: &str,
        audit: Option<&str>,
    ) -> Result<(), JobError> {
        self.close_checks_of(r, was, why).await?;
        if let Some(reason) = audit {
            self.audit(r, self.forge(), "superseded", "ok", reason)
                .await?;
        }
        self.store()
            .put_effect(&self.ending_key(r), "")
            .await
            .map_err(db)
    }

    fn ending_key(&self, r: &ReleaseRow) -> String {
        format!("{}:ending:{}", self.forge(), r.id)
    }

    /// The Re-run button on our pipeline check: only people with write access see it.
    pub(super) async fn on_rerun(
        &self,
        head: &CommitSha,
        check_name: &str,
    ) -> Result<(), JobError> {
        if check_name != "greenlight/pipeline" {
            return Ok(());
        }
        let Some(policy) = self.valid_policy(head).await? else {
            return Ok(());
        };
        let releases = self
            .store()
            .releases_by_sha(self.forge(), self.repo_str(), head)
            .await
            .map_err(db)?;
        for mut release in releases {
            if release.stage.on_retry().is_some() {
                self.retry_pipeline(&mut release, &policy).await?;
                self.refresh_card(release.pr, &policy, false).await?;
            }
        }
        Ok(())
    }

    /// Starts the pipeline of a failed candidate again, with a fresh check run.
    pub(super) async fn retry_pipeline(
        &self,
        release: &mut ReleaseRow,
        policy: &Policy,
    ) -> Result<(), JobError> {
        let Some(next) = release.stage.on_retry() else {
            return Ok(());
        };
        release.stage = next;
        release.pipeline_run_id = None;
        release.pipeline_url = None;
        release.pipeline_dispatched = None;
        release.pipeline_check_id = None;
        release.detail = None;
        self.store().save_release(release).await.map_err(db)?;
        self.start_pipeline(release, policy).await
    }
}

/// Who pushed the head `pr` has now: the sender of the event that brought it; for an event
/// that did not (a reopen, ready for review), whoever was known to have pushed that same head,
/// else the sender (when in doubt, one more person is barred from approving, not one less).
fn head_pusher(pr: &PullRequest, previous: Option<&PullRow>) -> Option<u64> {
    if pr.pushed {
        return Some(pr.sender_id);
    }
    previous
        .filter(|p| p.head_sha == pr.head.as_str())
        .and_then(|p| p.pusher_id)
        .or(Some(pr.sender_id))
}
