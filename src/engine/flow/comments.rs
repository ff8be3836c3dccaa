//! Commands in pull request comments: `/approve-release`, `/retry`, `/status`, `/build`,
//! `/help`. A comment's commands are bounded ([`command::batch`]); each gives its answer as a
//! value, and the comment gets at most one reply that gathers them.

use super::Ctx;
use super::effects::Reply;
use crate::config::policy::Policy;
use crate::engine::db;
use crate::forge::client::Reaction;
use crate::release::approval::{self, Approver, Facts, Refusal};
use crate::release::command::{self, Command, ParseError};
use crate::release::{Comment, Permission, Stage};
use crate::render::{HelpView, UnknownCommandView};
use crate::worker::JobError;

/// What one command has to say in the comment's reply, if anything.
pub(super) type Answer = Option<String>;

impl Ctx<'_> {
    /// A comment's commands, bounded ([`command::batch`]): each says what it has to say, and
    /// the comment gets one reply gathering it all ([`Self::reply_once`]).
    pub(super) async fn on_comment(&self, comment: Comment) -> Result<(), JobError> {
        // Believed only as the forge's API tells it (GitLab: the note read back).
        let Some(comment) = self.client.confirm_comment(self.target(), comment).await? else {
            return Ok(());
        };
        if comment.author_is_bot {
            return Ok(());
        }
        let batch = command::batch(&comment.body);
        if batch.is_empty() {
            return Ok(());
        }
        // GitLab has no bot flag for every kind of token user: never obey our own notes.
        if self.client.is_own_author(comment.author_id).await? {
            return Ok(());
        }
        // Unknown commands are answered only in a short comment, and never quoted.
        let answer_unknown =
            batch.unknown > 0 && comment.body.len() <= command::UNKNOWN_ANSWER_MAX_BYTES;
        let asks_help = batch.commands.contains(&Ok(Command::Help));
        let policy = self.policy().await?;
        let Some(policy) = policy.valid() else {
            // Without a (valid) policy Greenlight stays quiet, except to explain itself.
            if asks_help {
                self.acknowledge(&comment, Reaction::Seen).await?;
                let text = self.help_text(false)?;
                self.reply_once(&comment, &[text]).await?;
            }
            return Ok(());
        };
        if batch.commands.is_empty() && !answer_unknown {
            return Ok(());
        }
        self.acknowledge(&comment, Reaction::Seen).await?;
        let mut answers = Vec::new();
        let mut usage_error = false;
        for (n, cmd) in batch.commands.into_iter().enumerate() {
            let answer = match cmd {
                Ok(Command::Help) => Some(self.help_text(true)?),
                Ok(Command::Status) => {
                    self.refresh_card(comment.pr.0, &policy, true).await?;
                    None
                }
                Ok(Command::Retry) => self.retry_command(&comment, &policy).await?,
                Ok(Command::ApproveRelease { sha_prefix }) => {
                    self.approve(&comment, n, sha_prefix.as_deref(), &policy)
                        .await?
                }
                Ok(Command::Build { sha_prefix }) => {
                    self.build_command(&comment, sha_prefix.as_deref(), &policy)
                        .await?
                }
                // Counted by the batch, never acted on.
                Err(ParseError::UnknownCommand(_)) => None,
                Err(e @ ParseError::InvalidArgument { .. }) => {
                    usage_error = true;
                    Some(format!("@{} {e}", comment.author))
                }
            };
            answers.extend(answer);
        }
        if batch.ignored > 0 {
            answers.push(format!(
                "Only the first {} commands of a comment act: {} more were ignored.",
                command::MAX_COMMANDS,
                batch.ignored
            ));
        }
        if answer_unknown {
            let view = UnknownCommandView {
                forge: self.forge().into(),
                commands: command::help_markdown(),
            };
            let text = self
                .engine
                .renderer
                .unknown_command(&view)
                .map_err(render_err)?;
            answers.push(text);
        } else if usage_error && !asks_help {
            answers.push(command::help_markdown());
        }
        self.reply_once(&comment, &answers).await
    }

    fn help_text(&self, enabled: bool) -> Result<String, JobError> {
        let view = HelpView {
            forge: self.forge().into(),
            commands: command::help_markdown(),
            enabled,
            policy_path: self.client.policy_path().into(),
        };
        self.engine.renderer.help(&view).map_err(render_err)
    }

    /// `/approve-release [sha-prefix]`: the checks of [`approval`], in order, then the vote.
    async fn approve(
        &self,
        comment: &Comment,
        n: usize,
        prefix: Option<&str>,
        policy: &Policy,
    ) -> Result<Answer, JobError> {
        let store = self.store();
        // The comment payload carries no head SHA: ask for the pull request as it is now.
        let pull = self.client.pull(self.target(), comment.pr.0).await?;
        let releases = store
            .releases_of_pull(self.forge(), self.repo_str(), comment.pr.0)
            .await
            .map_err(db)?;
        // The latest generation: an older one of the same commit (closed, superseded) is over.
        let head_release = releases.iter().rev().find(|r| r.sha == pull.head).cloned();
        let older: Vec<_> = releases
            .iter()
            .filter(|r| r.sha != pull.head)
            .map(|r| r.sha.clone())
            .collect();
        let frozen = policy
            .deploy
            .frozen
            .then_some(policy.deploy.freeze_reason.as_str());
        let votes = match &head_release {
            Some(r) => store.votes(r.id).await.map_err(db)?,
            None => Vec::new(),
        };
        // When the head arrived (forge clock): its live candidate knows; a head without one
        // was not seen arriving, and the API's last update of the pull request is the latest
        // it can have (approval.rs, "An approval binds to the head").
        let head_at = match head_release.as_ref().filter(|r| !r.is_over()) {
            Some(r) => r.head_at,
            None => pull.updated_at,
        };
        let facts = Facts {
            pr_open: pull.open,
            from_fork: pull.from_fork,
            allow_forks: policy.pull_requests.allow_forks,
            head: &pull.head,
            head_stage: head_release.as_ref().map(|r| r.stage),
            prefix,
            older_heads: &older,
            frozen,
            head_at,
            written_at: comment.created_at,
            short_of_quorum: votes.len() < usize::from(policy.approvals.required),
        };
        if let Some(r) = &head_release
            && store
                .approved_by_comment(r.id, comment.id)
                .await
                .map_err(db)?
        {
            // This very approval was recorded by an earlier attempt of this job, which stopped
            // before it finished (a crash, a forge outage): carry on where it stopped instead
            // of refusing the vote as a repeat.
            let mut release = r.clone();
            return self
                .count_approvals(&mut release, comment, policy, votes.len())
                .await;
        }
        if let Err(refusal) = approval::precheck(&facts) {
            return self.refuse(comment, n, &pull.head, refusal, policy).await;
        }
        let Some(mut release) = head_release else {
            return self
                .refuse(
                    comment,
                    n,
                    &pull.head,
                    Refusal::PipelineNotGreen { stage: None },
                    policy,
                )
                .await;
        };
        let permission = self
            .client
            .permission(self.target(), &comment.author, comment.author_id)
            .await?;
        let min_permission = policy.approvals.min_permission;
        let listed = policy
            .approvals
            .users
            .iter()
            .any(|u| comment.author.same_as(u.as_str()));
        let mut in_team = false;
        if permission < min_permission && !listed {
            for team in &policy.approvals.teams {
                if self
                    .client
                    .team_member(
                        self.target(),
                        team.as_str(),
                        &comment.author,
                        comment.author_id,
                    )
                    .await?
                {
                    in_team = true;
                    break;
                }
            }
        }
        let user_id = i64::try_from(comment.author_id).unwrap_or(i64::MAX);
        let approver = Approver {
            user_id: comment.author_id,
            author_id: pull.author_id,
            pusher_id: release.pusher_id,
            permission,
            min_permission,
            listed,
            in_team,
            allow_self_approval: policy.approvals.allow_self_approval,
            // By id; a vote from before migration 0008 has no id and is known by its login.
            already_approved: votes.iter().any(|v| {
                v.user_id == user_id || (v.user_id < 0 && comment.author.same_as(&v.login))
            }),
        };
        if let Err(refusal) = approval::authorize(&approver) {
            return self.refuse(comment, n, &pull.head, refusal, policy).await;
        }
        // Audited before the vote is stored (once): a retry after a crash in between counts
        // the vote without losing its entry.
        let audit_key = format!(
            "{}:approve-audit:{}:{}",
            self.forge(),
            release.id,
            comment.id
        );
        let entry = self.audit_entry(
            &release,
            comment.author.as_str(),
            "approve",
            "accepted",
            &format!("permission {permission}"),
        );
        self.audit_under(&audit_key, &entry).await?;
        let counted = store
            .add_approval(
                release.id,
                comment.author_id,
                comment.author.as_str(),
                comment.id,
            )
            .await
            .map_err(db)?;
        let count = votes.len() + usize::from(counted);
        self.count_approvals(&mut release, comment, policy, count)
            .await
    }

    /// After a vote is recorded (`count` votes now): with enough of them the candidate joins
    /// the deploy queue (once), and the queue moves on. Safe to repeat.
    async fn count_approvals(
        &self,
        release: &mut crate::store::ReleaseRow,
        comment: &Comment,
        policy: &Policy,
        count: usize,
    ) -> Result<Answer, JobError> {
        let store = self.store();
        if let Some(queued) = release.stage.on_approvals(count, policy.approvals.required) {
            // Audited (once) before the stage is saved, as an approval.
            let audit_key = format!(
                "{}:queue-audit:{}:{}",
                self.forge(),
                release.id,
                release.pipeline_attempt
            );
            let entry = self.audit_entry(
                release,
                comment.author.as_str(),
                "queue",
                "ok",
                &format!("{count} approval(s)"),
            );
            self.audit_under(&audit_key, &entry).await?;
            release.stage = queued;
            release.queued_at = Some(self.now());
            store.save_release(release).await.map_err(db)?;
        }
        if matches!(release.stage, Stage::Queued | Stage::Deploying) {
            self.advance_queue(policy).await?;
            // A deploy that started has said so on the check already: one update, not two.
            if let Some(now) = store.release(release.id).await.map_err(db)? {
                *release = now;
            }
            if release.stage == Stage::Queued {
                self.update_release_check(release, policy).await?;
            }
        } else {
            self.update_release_check(release, policy).await?;
        }
        self.refresh_card(release.pr, policy, true).await?;
        Ok(None)
    }

    /// Reacts 👎 and records the refusal; its reason is the answer. Nothing deploys.
    async fn refuse(
        &self,
        comment: &Comment,
        n: usize,
        head: &crate::release::CommitSha,
        refusal: Refusal,
        policy: &Policy,
    ) -> Result<Answer, JobError> {
        tracing::info!(actor = %comment.author, reason = refusal.code(), "approval refused");
        let text = self.refusal_text(&comment.author, head, &refusal, policy)?;
        self.acknowledge(comment, Reaction::Refused).await?;
        // Once per command, however often a retried job gets here.
        let key = format!(
            "{}:refusal-audit:{}:{}:{n}",
            self.forge(),
            self.repo,
            comment.id
        );
        let entry = crate::store::AuditEntry {
            at: self.now(),
            forge: self.forge().into(),
            repo: self.repo_str().into(),
            pr: comment.pr.0,
            sha: head.as_str().into(),
            actor: comment.author.as_str().into(),
            action: "approve".into(),
            outcome: "refused".into(),
            reason: refusal.code().into(),
        };
        self.audit_under(&key, &entry).await?;
        Ok(Some(text))
    }

    /// `/retry`: the PR author or anyone with write access may start a failed pipeline again.
    async fn retry_command(&self, comment: &Comment, policy: &Policy) -> Result<Answer, JobError> {
        let pull = self.client.pull(self.target(), comment.pr.0).await?;
        if !pull.open {
            let text =
                self.refusal_text(&comment.author, &pull.head, &Refusal::PrClosed, policy)?;
            return Ok(Some(text));
        }
        if !pull.author.same_as(comment.author.as_str()) {
            let permission = self
                .client
                .permission(self.target(), &comment.author, comment.author_id)
                .await?;
            if permission < Permission::Write {
                let refusal = Refusal::NotAllowed {
                    permission,
                    required: Permission::Write,
                };
                let text = self.refusal_text(&comment.author, &pull.head, &refusal, policy)?;
                return Ok(Some(text));
            }
        }
        let release = self
            .store()
            .release_for(self.forge(), self.repo_str(), comment.pr.0, &pull.head)
            .await
            .map_err(db)?;
        match release {
            Some(mut r) if r.stage.on_retry().is_some() => {
                self.retry_pipeline(&mut r, policy).await?;
                self.audit(&r, comment.author.as_str(), "retry", "ok", "")
                    .await?;
                self.refresh_card(r.pr, policy, true).await?;
                Ok(None)
            }
            Some(r) => Ok(Some(format!(
                "@{} there is nothing to retry: the pipeline for `{}` is {}.",
                comment.author,
                r.sha.short(),
                r.stage.as_str().replace('_', " ")
            ))),
            None => Ok(Some(format!(
                "@{} there is no pipeline for `{}` yet.",
                comment.author,
                pull.head.short()
            ))),
        }
    }

    /// Posts the comment's one reply, gathering the `answers` of its commands (nothing when
    /// there are none), at most once across retries: the intent is on disk before the post,
    /// and a retry that finds it looks for the reply by its hidden marker (among Greenlight's
    /// own comments) before posting.
    pub(super) async fn reply_once(
        &self,
        comment: &Comment,
        answers: &[String],
    ) -> Result<(), JobError> {
        if answers.is_empty() {
            return Ok(());
        }
        let reply = Reply {
            ctx: self,
            pr: comment.pr.0,
            comment: comment.id,
            answers,
        };
        self.once(&reply).await.map(|_| ())
    }

    /// Reacts to a command comment (both forges accept a reaction that already exists).
    pub(super) async fn acknowledge(
        &self,
        comment: &Comment,
        reaction: Reaction,
    ) -> Result<(), JobError> {
        self.client
            .react(self.target(), comment.pr.0, comment.id, reaction)
            .await?;
        Ok(())
    }
}

pub(super) fn render_err(e: crate::render::RenderError) -> JobError {
    JobError::Fatal(format!("template: {e}"))
}
