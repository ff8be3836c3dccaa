//! Who may approve what: the pure checks behind `/approve-release`.
//!
//! The checks run in a fixed order and the first failure is the answer, so a refusal always
//! names the most basic problem. The engine gathers the facts; the forge is asked for a
//! permission only once the cheaper checks have passed ([`precheck`] then [`authorize`]).

use super::stage::Stage;
use super::types::{CommitSha, Login, Permission};

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
    /// The prefix names an older commit of this pull request.
    StaleCommit {
        prefix: String,
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
    SelfApproval,
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
            Self::SelfApproval => "self_approval",
            Self::Frozen { .. } => "frozen",
            Self::AlreadyApproved => "already_approved",
            Self::ForkNotAllowed => "fork_not_allowed",
        }
    }
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
}

/// Checks that need no permission lookup: PR open, fork policy, pipeline green for the head,
/// prefix names the head, environment not frozen.
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
            Refusal::StaleCommit { prefix, head }
        } else {
            Refusal::ShaMismatch { prefix, head }
        });
    }
    match f.head_stage {
        Some(Stage::Ready) => {}
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
pub struct Approver<'a> {
    pub login: &'a Login,
    pub pr_author: &'a Login,
    pub permission: Permission,
    pub min_permission: Permission,
    /// Named in the policy's `users`.
    pub listed: bool,
    /// Member of one of the policy's `teams`.
    pub in_team: bool,
    pub allow_self_approval: bool,
    pub already_approved: bool,
}

/// Permission (or listing), then self-approval, then duplicates.
pub fn authorize(a: &Approver<'_>) -> Result<(), Refusal> {
    if a.permission < a.min_permission && !a.listed && !a.in_team {
        return Err(Refusal::NotAllowed {
            permission: a.permission,
            required: a.min_permission,
        });
    }
    if !a.allow_self_approval && a.pr_author.same_as(a.login.as_str()) {
        return Err(Refusal::SelfApproval);
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

    fn approver<'a>(login: &'a Login, author: &'a Login, permission: Permission) -> Approver<'a> {
        Approver {
            login,
            pr_author: author,
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
        let (me, them) = (Login("me".into()), Login("them".into()));
        for p in [
            Permission::None,
            Permission::Read,
            Permission::Triage,
            Permission::Write,
        ] {
            assert_eq!(
                authorize(&approver(&me, &them, p)),
                Err(Refusal::NotAllowed {
                    permission: p,
                    required: Permission::Maintain
                })
            );
        }
        for p in [Permission::Maintain, Permission::Admin] {
            assert_eq!(authorize(&approver(&me, &them, p)), Ok(()));
        }
    }

    #[test]
    fn listed_users_and_teams_bypass_the_permission_level() {
        let (me, them) = (Login("me".into()), Login("them".into()));
        let a = Approver {
            listed: true,
            ..approver(&me, &them, Permission::Read)
        };
        assert_eq!(authorize(&a), Ok(()));
        let a = Approver {
            in_team: true,
            ..approver(&me, &them, Permission::None)
        };
        assert_eq!(authorize(&a), Ok(()));
    }

    #[test]
    fn self_approval_when_disallowed() {
        let me = Login("Me".into());
        let author = Login("me".into());
        let a = Approver {
            allow_self_approval: false,
            ..approver(&me, &author, Permission::Admin)
        };
        assert_eq!(
            authorize(&a),
            Err(Refusal::SelfApproval),
            "logins compare case-insensitively"
        );
        let a = Approver {
            allow_self_approval: true,
            ..approver(&me, &author, Permission::Admin)
        };
        assert_eq!(authorize(&a), Ok(()));
    }

    #[test]
    fn second_approval_by_the_same_person() {
        let (me, them) = (Login("me".into()), Login("them".into()));
        let a = Approver {
            already_approved: true,
            ..approver(&me, &them, Permission::Admin)
        };
        assert_eq!(authorize(&a), Err(Refusal::AlreadyApproved));
    }
}
