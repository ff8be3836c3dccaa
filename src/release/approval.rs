//! Who may approve what: the pure checks behind `/approve-release`.
//!
//! The checks run in a fixed order and the first failure is the answer, so a refusal always
//! names the most basic problem. The engine gathers the facts; the forge is asked for a
//! permission only once the cheaper checks have passed ([`precheck`] then [`authorize`]).
//!
//! ## An approval binds to the head that existed when it was written
//! A comment approves a head only if it was written after that head arrived, both times on the
//! forge's clock (never ours: webhook lag, a rate-limit pause or `deliveries retry` must not
//! let a comment written for head A deploy a head B its author never saw):
//! - *written*: the comment's `created_at` (GitHub `comment.created_at`, GitLab
//!   `object_attributes.created_at`);
//! - *arrived*: the `updated_at` of the signed pull/merge request webhook that made the
//!   candidate: the push (GitHub `opened`/`synchronize`, GitLab `open`/`update` with
//!   `oldrev`), or the reopen or ready-for-review that started it afresh. A head Greenlight has
//!   no live candidate for yet (first seen through the API in the approve path, its webhook not
//!   handled) takes the API's `updated_at` of the pull request: the latest the head can have
//!   arrived, so never a comment from before it.
//! - Written before arrived: refused [`Refusal::StaleCommit`], naming the new head. The forges
//!   stamp hooks to the second, so the order inside one second is unknown: a comment stamped
//!   in the same second as the head counts (it cannot approve anything before that head's
//!   pipeline has passed, which takes longer). Candidates made before migration 0008 have no
//!   arrival time and are not checked.
//!
//! ## Self-approval
//! With `allow_self_approval = false`, neither the pull request's author nor the user who
//! pushed its current head (the sender of the webhook that brought it) may approve it; both
//! compare the forge's numeric user ids, never logins, so a rename changes nothing.

use super::stage::Stage;
use super::types::{CommitSha, Permission};

/// Why an approval was refused. Rendered for the thread; recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    PrClosed,
    /// The head commit's pipeline has not passed (or no release exists for it yet).
    PipelineNotGreen {
        stage: Option<Stage>,
    },
    /// The head commit is already queued, deploying or deployed.
    AlreadyReleased {
        stage: Stage,
    },
    /// The prefix names an older commit of this pull request (`prefix`), or the comment was
    /// written before the current head arrived (`prefix: None`).
    StaleCommit {
        prefix: Option<String>,
        head: CommitSha,
    },
    /// The prefix names no commit of this pull request.
    ShaMismatch {
        prefix: String,
        head: CommitSha,
    },
    NotAllowed {
        permission: Permission,
        required: Permission,
    },
    /// `allow_self_approval = false` and the commenter wrote the pull request or pushed its
    /// head.
    SelfApproval(SelfRole),
    Frozen {
        reason: String,
    },
    AlreadyApproved,
    ForkNotAllowed,
}

impl Refusal {
    /// A stable code for the audit log and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PrClosed => "pr_closed",
            Self::PipelineNotGreen { .. } => "pipeline_not_green",
            Self::AlreadyReleased { .. } => "already_released",
            Self::StaleCommit { .. } => "stale_commit",
            Self::ShaMismatch { .. } => "sha_mismatch",
            Self::NotAllowed { .. } => "not_allowed",
            Self::SelfApproval(_) => "self_approval",
            Self::Frozen { .. } => "frozen",
            Self::AlreadyApproved => "already_approved",
            Self::ForkNotAllowed => "fork_not_allowed",
        }
    }
}

/// Why an approval is a self-approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfRole {
    /// The commenter is the pull request's author.
    Author,
    /// The commenter pushed the pull request's current head.
    Pusher,
}

/// What is known before asking the forge about the commenter.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub pr_open: bool,
    pub from_fork: bool,
    pub allow_forks: bool,
    pub head: &'a CommitSha,
    /// The stage of the release candidate for `head`, if there is one.
    pub head_stage: Option<Stage>,
    pub prefix: Option<&'a str>,
    /// Earlier head commits of this pull request (for telling "stale" from "wrong").
    pub older_heads: &'a [CommitSha],
    pub frozen: Option<&'a str>,
    /// When `head` arrived, on the forge's clock (see the module docs); `None`: not known.
    pub head_at: Option<i64>,
    /// When the comment was written, on the forge's clock.
    pub written_at: i64,
    /// The head's candidate is queued but held by the current policy's quorum (raised since
    /// it was queued): it takes further votes.
    pub short_of_quorum: bool,
}

/// Checks that need no permission lookup: PR open, fork policy, prefix names the head, the
/// comment is not older than the head, pipeline green for the head, environment not frozen.
pub fn precheck(f: &Facts<'_>) -> Result<(), Refusal> {
    if !f.pr_open {
        return Err(Refusal::PrClosed);
    }
    if f.from_fork && !f.allow_forks {
        return Err(Refusal::ForkNotAllowed);
    }
    if let Some(prefix) = f.prefix
        && !f.head.matches_prefix(prefix)
    {
        let stale = f.older_heads.iter().any(|c| c.matches_prefix(prefix));
        let prefix = prefix.to_owned();
        let head = f.head.clone();
        return Err(if stale {
            Refusal::StaleCommit {
                prefix: Some(prefix),
                head,
            }
        } else {
            Refusal::ShaMismatch { prefix, head }
        });
    }
    if f.head_at.is_some_and(|arrived| f.written_at < arrived) {
        return Err(Refusal::StaleCommit {
            prefix: None,
            head: f.head.clone(),
        });
    }
    match f.head_stage {
        Some(Stage::Ready) => {}
        Some(Stage::Queued) if f.short_of_quorum => {}
        Some(stage @ (Stage::Queued | Stage::Deploying | Stage::Deployed)) => {
            return Err(Refusal::AlreadyReleased { stage });
        }
        Some(
            Stage::PipelinePending
            | Stage::PipelineRunning
            | Stage::PipelineFailed
            | Stage::DeployFailed
            | Stage::Superseded
            | Stage::Closed,
        )
        | None => {
            return Err(Refusal::PipelineNotGreen {
                stage: f.head_stage,
            });
        }
    }
    if let Some(reason) = f.frozen {
        return Err(Refusal::Frozen {
            reason: reason.to_owned(),
        });
    }
    Ok(())
}

/// What the forge says about the commenter, and the policy's rules for them.
#[derive(Debug, Clone)]
pub struct Approver {
    /// The commenter's forge user id.
    pub user_id: u64,
    /// The pull request author's forge user id (from the forge's API).
    pub author_id: u64,
    /// Who pushed the current head, when known.
    pub pusher_id: Option<u64>,
    pub permission: Permission,
    pub min_permission: Permission,
    /// Named in the policy's `users`.
    pub listed: bool,
    /// Member of one of the policy's `teams`.
    pub in_team: bool,
    pub allow_self_approval: bool,
    /// This user (by id) has a vote on the candidate already.
    pub already_approved: bool,
}

/// Permission (or listing), then self-approval (author, then pusher), then duplicates.
pub fn authorize(a: &Approver) -> Result<(), Refusal> {
    if a.permission < a.min_permission && !a.listed && !a.in_team {
        return Err(Refusal::NotAllowed {
            permission: a.permission,
            required: a.min_permission,
        });
    }
    if !a.allow_self_approval {
        if a.author_id == a.user_id {
            return Err(Refusal::SelfApproval(SelfRole::Author));
        }
        if a.pusher_id == Some(a.user_id) {
            return Err(Refusal::SelfApproval(SelfRole::Pusher));
        }
    }
    if a.already_approved {
        return Err(Refusal::AlreadyApproved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> CommitSha {
        CommitSha::parse(&c.to_string().repeat(40)).expect("sha")
    }

    fn facts<'a>(head: &'a CommitSha, older: &'a [CommitSha]) -> Facts<'a> {
        Facts {
            pr_open: true,
            from_fork: false,
            allow_forks: false,
            head,
            head_stage: Some(Stage::Ready),
            prefix: None,
            older_heads: older,
            frozen: None,
            head_at: Some(1_000),
            written_at: 2_000,
            short_of_quorum: false,
        }
    }

    #[test]
    fn ready_head_passes() {
        let head = sha('a');
        assert_eq!(precheck(&facts(&head, &[])), Ok(()));
    }

    #[test]
    fn closed_pr_is_the_first_answer() {
        let head = sha('a');
        let f = Facts {
            pr_open: false,
            head_stage: None,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Err(Refusal::PrClosed));
    }

    #[test]
    fn fork_refused_unless_allowed() {
        let head = sha('a');
        let f = Facts {
            from_fork: true,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Err(Refusal::ForkNotAllowed));
        let f = Facts {
            from_fork: true,
            allow_forks: true,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Ok(()));
    }

    #[test]
    fn pipeline_must_be_green() {
        let head = sha('a');
        for stage in [
            Stage::PipelinePending,
            Stage::PipelineRunning,
            Stage::PipelineFailed,
        ] {
            let f = Facts {
                head_stage: Some(stage),
                ..facts(&head, &[])
            };
            assert_eq!(
                precheck(&f),
                Err(Refusal::PipelineNotGreen { stage: Some(stage) })
            );
        }
        let f = Facts {
            head_stage: None,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Err(Refusal::PipelineNotGreen { stage: None }));
    }

    #[test]
    fn already_released() {
        let head = sha('a');
        for stage in [Stage::Queued, Stage::Deploying, Stage::Deployed] {
            let f = Facts {
                head_stage: Some(stage),
                ..facts(&head, &[])
            };
            assert_eq!(precheck(&f), Err(Refusal::AlreadyReleased { stage }));
        }
    }

    #[test]
    fn prefix_of_head_passes_other_prefixes_do_not() {
        let head = sha('a');
        let older = [sha('b')];
        let f = Facts {
            prefix: Some("aaaaaaa"),
            ..facts(&head, &older)
        };
        assert_eq!(precheck(&f), Ok(()));
        let f = Facts {
            prefix: Some("bbbbbbb"),
            ..facts(&head, &older)
        };
        assert!(matches!(precheck(&f), Err(Refusal::StaleCommit { .. })));
        let f = Facts {
            prefix: Some("ccccccc"),
            ..facts(&head, &older)
        };
        assert!(matches!(precheck(&f), Err(Refusal::ShaMismatch { .. })));
    }

    #[test]
    fn stale_prefix_is_reported_even_when_the_new_head_is_not_green_yet() {
        let head = sha('a');
        let older = [sha('b')];
        let f = Facts {
            prefix: Some("bbbbbbb"),
            head_stage: Some(Stage::PipelineRunning),
            ..facts(&head, &older)
        };
        assert!(matches!(precheck(&f), Err(Refusal::StaleCommit { .. })));
    }

    #[test]
    fn frozen_environment() {
        let head = sha('a');
        let f = Facts {
            frozen: Some("release freeze"),
            ..facts(&head, &[])
        };
        assert_eq!(
            precheck(&f),
            Err(Refusal::Frozen {
                reason: "release freeze".into()
            })
        );
    }

    const ME: u64 = 10;
    const THEM: u64 = 20;

    fn approver(user_id: u64, author_id: u64, permission: Permission) -> Approver {
        Approver {
            user_id,
            author_id,
            pusher_id: None,
            permission,
            min_permission: Permission::Maintain,
            listed: false,
            in_team: false,
            allow_self_approval: true,
            already_approved: false,
        }
    }

    #[test]
    fn permission_levels() {
        for p in [
            Permission::None,
            Permission::Read,
            Permission::Triage,
            Permission::Write,
        ] {
            assert_eq!(
                authorize(&approver(ME, THEM, p)),
                Err(Refusal::NotAllowed {
                    permission: p,
                    required: Permission::Maintain
                })
            );
        }
        for p in [Permission::Maintain, Permission::Admin] {
            assert_eq!(authorize(&approver(ME, THEM, p)), Ok(()));
        }
    }

    #[test]
    fn listed_users_and_teams_bypass_the_permission_level() {
        let a = Approver {
            listed: true,
            ..approver(ME, THEM, Permission::Read)
        };
        assert_eq!(authorize(&a), Ok(()));
        let a = Approver {
            in_team: true,
            ..approver(ME, THEM, Permission::None)
        };
        assert_eq!(authorize(&a), Ok(()));
    }

    #[test]
    fn self_approval_when_disallowed() {
        let a = Approver {
            allow_self_approval: false,
            ..approver(ME, ME, Permission::Admin)
        };
        assert_eq!(authorize(&a), Err(Refusal::SelfApproval(SelfRole::Author)));
        let a = Approver {
            allow_self_approval: true,
            ..approver(ME, ME, Permission::Admin)
        };
        assert_eq!(authorize(&a), Ok(()));
    }

    #[test]
    fn the_pusher_of_the_head_is_a_self_approver_too() {
        let a = Approver {
            allow_self_approval: false,
            pusher_id: Some(ME),
            ..approver(ME, THEM, Permission::Admin)
        };
        assert_eq!(authorize(&a), Err(Refusal::SelfApproval(SelfRole::Pusher)));
        let a = Approver {
            allow_self_approval: false,
            pusher_id: Some(THEM),
            ..approver(ME, THEM, Permission::Admin)
        };
        assert_eq!(authorize(&a), Ok(()), "someone else pushed");
        let a = Approver {
            allow_self_approval: true,
            pusher_id: Some(ME),
            ..approver(ME, THEM, Permission::Admin)
        };
        assert_eq!(authorize(&a), Ok(()));
    }

    #[test]
    fn a_comment_written_before_the_head_arrived_is_stale() {
        let head = sha('a');
        let f = Facts {
            head_at: Some(5_000),
            written_at: 4_999,
            ..facts(&head, &[])
        };
        assert_eq!(
            precheck(&f),
            Err(Refusal::StaleCommit {
                prefix: None,
                head: head.clone()
            })
        );
        let f = Facts {
            head_at: Some(5_000),
            written_at: 5_000,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Ok(()), "the same second counts");
        let f = Facts {
            head_at: None,
            written_at: 0,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Ok(()), "a candidate from before 0008");
    }

    #[test]
    fn a_queued_head_takes_votes_only_while_short_of_its_quorum() {
        let head = sha('a');
        let f = Facts {
            head_stage: Some(Stage::Queued),
            short_of_quorum: true,
            ..facts(&head, &[])
        };
        assert_eq!(precheck(&f), Ok(()));
        let f = Facts {
            head_stage: Some(Stage::Queued),
            ..facts(&head, &[])
        };
        assert_eq!(
            precheck(&f),
            Err(Refusal::AlreadyReleased {
                stage: Stage::Queued
            })
        );
    }

    #[test]
    fn second_approval_by_the_same_person() {
        let a = Approver {
            already_approved: true,
            ..approver(ME, THEM, Permission::Admin)
        };
        assert_eq!(authorize(&a), Err(Refusal::AlreadyApproved));
    }
}
