//! The deploy gates that must still hold when a release leaves the queue, and again when the
//! forge's own environment gate asks (GitHub's deployment protection rule, GitLab's deployment
//! approvals): a freeze pushed, or a quorum raised, after the votes were counted stops it.
//!
//! Pure: the engine gathers the policy as it is *now* and the votes, and asks.

/// Why a release that was approved may not deploy (yet). It waits while a gate holds it; its
/// card says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The policy now freezes deploys.
    Frozen { reason: String },
    /// The policy now needs more approvals than the release has.
    Quorum { have: usize, need: usize },
}

impl Hold {
    /// A stable code for the audit log, the protection-rule answer and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Frozen { .. } => "frozen",
            Self::Quorum { .. } => "quorum",
        }
    }

    /// One line for a card or a forge gate's comment.
    pub fn describe(&self) -> String {
        match self {
            Self::Frozen { reason } => format!("deploys are frozen: {reason}"),
            Self::Quorum { have, need } => {
                format!("{have} of {need} required approvals")
            }
        }
    }
}

/// The gates under the current policy: `frozen` (the freeze reason, when frozen), `approvals`
/// (distinct approvers counted for the release) and `required` (the quorum now). The first
/// gate that holds is the answer.
pub fn deploy_gate(frozen: Option<&str>, approvals: usize, required: u8) -> Result<(), Hold> {
    if let Some(reason) = frozen {
        return Err(Hold::Frozen {
            reason: reason.to_owned(),
        });
    }
    let need = usize::from(required);
    if approvals < need {
        return Err(Hold::Quorum {
            have: approvals,
            need,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_quorate_passes() {
        assert_eq!(deploy_gate(None, 2, 2), Ok(()));
        assert_eq!(deploy_gate(None, 3, 2), Ok(()));
    }

    #[test]
    fn a_freeze_holds_before_the_quorum() {
        assert_eq!(
            deploy_gate(Some("incident"), 0, 2),
            Err(Hold::Frozen {
                reason: "incident".into()
            })
        );
    }

    #[test]
    fn a_raised_quorum_holds() {
        let hold = deploy_gate(None, 1, 2).unwrap_err();
        assert_eq!(hold, Hold::Quorum { have: 1, need: 2 });
        assert_eq!(hold.code(), "quorum");
        assert_eq!(hold.describe(), "1 of 2 required approvals");
    }
}
