//! The one seam between the release flow and a forge: [`Client`] holds the forge's concrete
//! client and offers the operations the flow needs in forge-neutral words (the policy file,
//! the pull/merge request as it is now, permissions, the thread's comments and reactions).
//! What has no common shape (GitHub check runs and deployments, GitLab commit statuses and
//! pipelines) the flow asks of the concrete client through [`Client::GitHub`] or
//! [`Client::GitLab`].

use crate::config::policy::{GITHUB_PATH, GITLAB_PATH};
use crate::forge::github::GitHub;
use crate::forge::github::events::InstallationChange;
use crate::forge::gitlab::GitLab;
use crate::forge::retry::ForgeError;
use crate::forge::{Forge, PayloadError};
use crate::release::command;
use crate::release::{Comment, CommitSha, Event, Login, Permission, RepoName};

/// What the forge said about the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFetch {
    /// Unchanged since the ETag we sent.
    NotModified,
    NotFound,
    Found {
        text: String,
        etag: Option<String>,
    },
}

/// A pull/merge request as the API reports it now (a comment payload has no head SHA).
#[derive(Debug, Clone)]
pub struct PullState {
    pub open: bool,
    pub head: CommitSha,
    pub author: Login,
    /// The author's forge user id (self-approval compares ids, never logins).
    pub author_id: u64,
    /// The head branch lives in another repository/project (or a deleted one).
    pub from_fork: bool,
    /// When the forge last updated the pull request (Unix ms, the forge's clock): the latest
    /// the current head can have arrived, for a head Greenlight has not seen arrive itself.
    pub updated_at: Option<i64>,
}

/// What a reaction on a command comment says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// 👀: Greenlight works on it.
    Seen,
    /// 👎: refused (the reply says why).
    Refused,
}

/// A repository as the forge addresses it: GitHub by installation and `owner/name`, GitLab
/// by project id.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// GitHub: the App installation. GitLab: the project id.
    pub forge_id: u64,
    /// `owner/name` (GitHub; GitLab addresses projects by id and ignores it).
    pub repo: &'a RepoName,
}

/// The forge a job acts on.
#[derive(Debug, Clone, Copy)]
pub enum Client<'a> {
    GitHub(&'a GitHub),
    GitLab(&'a GitLab),
}

/// A delivery's payload, in our words.
#[derive(Debug)]
pub enum Parsed {
    Event(Event),
    /// GitHub: the App was installed, removed, suspended, or got repositories.
    Installation(InstallationChange),
    /// Nothing to do, and why (for the logs).
    Ignored(&'static str),
}

impl<'a> Client<'a> {
    /// The client for deliveries stored under `forge`, among the configured ones; why not,
    /// when there is none (the job fails for good with that reason).
    pub fn of(
        forge: &str,
        github: Option<&'a GitHub>,
        gitlab: Option<&'a GitLab>,
    ) -> Result<Self, String> {
        match forge {
            "github" => github.map(Self::GitHub).ok_or_else(|| {
                "GitHub App not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY".into()
            }),
            "gitlab" => gitlab.map(Self::GitLab).ok_or_else(|| {
                "GitLab not configured: set GITLAB_TOKEN (and GITLAB_URL for a self-managed instance)"
                    .into()
            }),
            other => Err(format!("unknown forge {other:?}")),
        }
    }

    /// Every configured forge's client.
    pub fn all(github: Option<&'a GitHub>, gitlab: Option<&'a GitLab>) -> Vec<Self> {
        github
            .map(Self::GitHub)
            .into_iter()
            .chain(gitlab.map(Self::GitLab))
            .collect()
    }
}

impl Client<'_> {
    /// A delivery's payload of webhook type `event` as our own event.
    pub fn parse(self, event: &str, payload: &[u8]) -> Result<Parsed, PayloadError> {
        use crate::forge::github::events::{self as github_events, Parsed as GitHubParsed};
        use crate::forge::gitlab::events::{self as gitlab_events, Parsed as GitLabParsed};
        Ok(match self {
            Self::GitHub(gh) => match github_events::parse(event, payload)? {
                GitHubParsed::Event(e) => Parsed::Event(e),
                GitHubParsed::SuiteRerequested { app_id, event } if app_id == gh.app_id() => {
                    Parsed::Event(event)
                }
                GitHubParsed::SuiteRerequested { .. } => {
                    Parsed::Ignored("check suite of another App")
                }
                GitHubParsed::Installation(change) => Parsed::Installation(change),
                GitHubParsed::Ignored(why) => Parsed::Ignored(why),
            },
            Self::GitLab(_) => match gitlab_events::parse(event, payload)? {
                GitLabParsed::Event(e) => Parsed::Event(e),
                GitLabParsed::Ignored(why) => Parsed::Ignored(why),
            },
        })
    }

    /// Which forge this is.
    pub fn forge(self) -> Forge {
        match self {
            Self::GitHub(_) => Forge::GitHub,
            Self::GitLab(_) => Forge::GitLab,
        }
    }

    /// Whether a comment by `user_id` is Greenlight's own where the comment's bot flag does not
    /// say so: GitHub flags the App's comments as a bot's; GitLab has no bot flag for every kind
    /// of token user, so the token's user is asked for.
    pub async fn is_own_author(self, user_id: u64) -> Result<bool, ForgeError> {
        match self {
            Self::GitHub(_) => Ok(false),
            Self::GitLab(gl) => Ok(user_id == gl.own_user_id().await?),
        }
    }

    /// Whether a candidate's pipeline runs the pull request's own branch (GitLab, whose branch
    /// may move on while it runs) rather than the default branch's workflow given the
    /// candidate's SHA (GitHub): then only a run of exactly the candidate's commit speaks for it.
    pub fn builds_the_branch(self) -> bool {
        match self {
            Self::GitHub(_) => false,
            Self::GitLab(_) => true,
        }
    }

    /// Whether Greenlight keeps a deployment record of its own on this forge, told each state
    /// of the deploy: GitHub's Deployments API. On GitLab the deploy pipeline's job makes the
    /// record itself (its `environment:`), so the pipeline is all Greenlight starts.
    pub fn keeps_deployments(self) -> bool {
        match self {
            Self::GitHub(_) => true,
            Self::GitLab(_) => false,
        }
    }

    /// What this forge calls the run a deploy is: GitHub a `workflow` (run), GitLab a
    /// `pipeline`.
    pub fn deploy_run_noun(self) -> &'static str {
        match self {
            Self::GitHub(_) => "workflow",
            Self::GitLab(_) => "pipeline",
        }
    }

    /// Who the audit log names as having finished a deploy: the forge's CI.
    pub fn ci_actor(self) -> &'static str {
        match self {
            Self::GitHub(_) => "github-actions",
            Self::GitLab(_) => "gitlab-ci",
        }
    }

    /// Where this forge's repositories keep their policy.
    pub fn policy_path(self) -> &'static str {
        match self {
            Self::GitHub(_) => GITHUB_PATH,
            Self::GitLab(_) => GITLAB_PATH,
        }
    }

    /// The policy file on `git_ref` (the default branch), conditional on `etag`.
    pub async fn policy_file(
        self,
        t: Target<'_>,
        git_ref: &str,
        etag: Option<&str>,
    ) -> Result<FileFetch, ForgeError> {
        match self {
            Self::GitHub(gh) => {
                gh.file(t.forge_id, t.repo, GITHUB_PATH, git_ref, etag)
                    .await
            }
            Self::GitLab(gl) => gl.file(t.forge_id, GITLAB_PATH, git_ref, etag).await,
        }
    }

    /// The pull/merge request as it is now.
    pub async fn pull(self, t: Target<'_>, pr: u64) -> Result<PullState, ForgeError> {
        match self {
            Self::GitHub(gh) => gh.pull(t.forge_id, t.repo, pr).await,
            Self::GitLab(gl) => {
                let mr = gl.merge_request(t.forge_id, pr).await?;
                Ok(PullState {
                    open: mr.open,
                    head: mr.head,
                    author: mr.author,
                    author_id: mr.author_id,
                    from_fork: mr.from_fork,
                    updated_at: mr.updated_at,
                })
            }
        }
    }

    /// The user's permission on the repository, from the forge's API (never the payload).
    pub async fn permission(
        self,
        t: Target<'_>,
        user: &Login,
        user_id: u64,
    ) -> Result<Permission, ForgeError> {
        match self {
            Self::GitHub(gh) => gh.permission(t.forge_id, t.repo, user).await,
            Self::GitLab(gl) => gl.permission(t.forge_id, user_id).await,
        }
    }

    /// Membership of a policy `teams` entry: GitHub `org/team-slug`, GitLab group path.
    pub async fn team_member(
        self,
        t: Target<'_>,
        team: &str,
        user: &Login,
        user_id: u64,
    ) -> Result<bool, ForgeError> {
        match self {
            Self::GitHub(gh) => gh.team_member(t.forge_id, team, user).await,
            Self::GitLab(gl) => gl.group_member(team, user_id).await,
        }
    }

    /// The numeric user id Greenlight acts as: the App's bot user (GitHub), the token's user
    /// (GitLab). What this user wrote or started is Greenlight's own; nothing else is.
    pub async fn own_user_id(self, t: Target<'_>) -> Result<u64, ForgeError> {
        match self {
            Self::GitHub(gh) => Ok(gh.bot(t.forge_id).await?.id),
            Self::GitLab(gl) => gl.own_user_id().await,
        }
    }

    /// The run (GitLab: pipeline) CI job `job` belongs to; `None` when the forge does not
    /// know the job. GitHub's deployment events name no job, so it is never asked there.
    pub async fn job_run(self, t: Target<'_>, job: u64) -> Result<Option<u64>, ForgeError> {
        match self {
            Self::GitHub(_) => Ok(None),
            Self::GitLab(gl) => gl.job_pipeline(t.forge_id, job).await,
        }
    }

    /// The first comment/note of the thread containing `marker` (GitLab: written by
    /// Greenlight's own user, every page read).
    pub async fn find_comment(
        self,
        t: Target<'_>,
        pr: u64,
        marker: &str,
    ) -> Result<Option<u64>, ForgeError> {
        match self {
            Self::GitHub(gh) => gh.find_comment(t.forge_id, t.repo, pr, marker).await,
            Self::GitLab(gl) => {
                let own = gl.own_user_id().await?;
                gl.find_note(t.forge_id, pr, marker, own).await
            }
        }
    }

    /// The comment as the forge's API has it, or `None` when nothing in it may act. GitHub:
    /// as delivered (its webhook is signed with the App's own secret, and the payload is
    /// GitHub's word). GitLab: a Note Hook is only as good as a secret a group hook shares,
    /// so a note that could command is read back, and author, body, `system` and time come
    /// from GitLab's answer; a note that is not on that merge request of that project, or a
    /// system note, acts on nothing. A note whose hook says bot or carries no command is
    /// never read back: nothing would act on it anyway.
    pub async fn confirm_comment(
        self,
        t: Target<'_>,
        comment: Comment,
    ) -> Result<Option<Comment>, ForgeError> {
        let gl = match self {
            Self::GitHub(_) => return Ok(Some(comment)),
            Self::GitLab(gl) => gl,
        };
        if comment.author_is_bot || command::parse(&comment.body).is_empty() {
            return Ok(None);
        }
        let Some(note) = gl.note(t.forge_id, comment.pr.0, comment.id).await? else {
            tracing::warn!(
                note = comment.id,
                mr = comment.pr.0,
                "a Note Hook names a note GitLab does not have on that merge request; ignored"
            );
            return Ok(None);
        };
        if note.system {
            return Ok(None);
        }
        if note.author_id != comment.author_id || note.body != comment.body {
            tracing::warn!(
                note = comment.id,
                hook_author = comment.author_id,
                api_author = note.author_id,
                "a Note Hook disagrees with GitLab's note; GitLab's note is what counts"
            );
        }
        Ok(Some(Comment {
            author: Login(note.author_username),
            author_id: note.author_id,
            author_is_bot: note.author_is_bot,
            body: note.body,
            created_at: note.created_at,
            ..comment
        }))
    }

    /// Posts a comment (GitHub issue comment, GitLab MR note); its id.
    pub async fn create_comment(
        self,
        t: Target<'_>,
        pr: u64,
        body: &str,
    ) -> Result<u64, ForgeError> {
        match self {
            Self::GitHub(gh) => gh.create_comment(t.forge_id, t.repo, pr, body).await,
            Self::GitLab(gl) => gl.create_note(t.forge_id, pr, body).await,
        }
    }

    /// Edits one of our comments in place.
    pub async fn update_comment(
        self,
        t: Target<'_>,
        pr: u64,
        id: u64,
        body: &str,
    ) -> Result<(), ForgeError> {
        match self {
            Self::GitHub(gh) => gh.update_comment(t.forge_id, t.repo, id, body).await,
            Self::GitLab(gl) => gl.update_note(t.forge_id, pr, id, body).await,
        }
    }

    /// Reacts to a command comment: GitHub reactions `eyes`/`-1`, GitLab award emoji
    /// `eyes`/`thumbsdown`. Idempotent on both.
    pub async fn react(
        self,
        t: Target<'_>,
        pr: u64,
        comment: u64,
        reaction: Reaction,
    ) -> Result<(), ForgeError> {
        match (self, reaction) {
            (Self::GitHub(gh), Reaction::Seen) => {
                gh.react(t.forge_id, t.repo, comment, "eyes").await
            }
            (Self::GitHub(gh), Reaction::Refused) => {
                gh.react(t.forge_id, t.repo, comment, "-1").await
            }
            (Self::GitLab(gl), Reaction::Seen) => {
                gl.award_note_emoji(t.forge_id, pr, comment, "eyes").await
            }
            (Self::GitLab(gl), Reaction::Refused) => {
                gl.award_note_emoji(t.forge_id, pr, comment, "thumbsdown")
                    .await
            }
        }
    }
}
