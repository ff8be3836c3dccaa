//! The answer to the environment's own gate (GitHub's custom deployment protection rule,
//! GitLab's deployment approvals):
//! approve only the deploy Greenlight started, for the release it is deploying, at that
//! commit, with the gates still passing now; reject everything else and say how to deploy.
//!
//! Pure: the engine gathers what it knows about the deployment and the release, and asks.

use super::gates::Hold;
use super::{CommitSha, Stage};

/// How the deployment asking was recognised as Greenlight's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ours {
    /// Its id is the release's deployment (the one Greenlight created).
    Deployment,
    /// It is the job of the deploy run Greenlight dispatched (GitHub Actions creates a
    /// deployment of its own for a job that names an environment).
    Run,
    /// Its job runs in the deploy pipeline Greenlight created (GitLab). The commit compared
    /// is the one the pipeline deploys, its `GREENLIGHT_SHA`: the pipeline itself runs on
    /// the default branch's head.
    Pipeline,
}

/// What the engine found about the deployment waiting at the gate, and its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateFacts<'a> {
    /// The environment the job deploys to.
    pub environment: &'a str,
    /// The commit of the deployment, when the forge says.
    pub sha: Option<&'a CommitSha>,
    /// The login that created the deployment, when the forge says (for the refusal).
    pub creator: Option<&'a str>,
    /// True when the deployment was created by Greenlight's own user (numeric id compared).
    pub created_by_greenlight: bool,
    /// The release whose deploy this is, and how it was recognised; `None`: none of ours.
    pub release: Option<ReleaseFacts<'a>>,
    /// The policy's gates evaluated now (`None`: no valid policy on the default branch).
    pub gates: Option<Result<(), Hold>>,
}

/// The release a deployment belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFacts<'a> {
    pub ours: Ours,
    pub stage: Stage,
    pub environment: &'a str,
    pub sha: &'a CommitSha,
}

/// Why a deployment is rejected at the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateRefusal {
    /// Neither Greenlight's deployment nor a job of a run Greenlight dispatched.
    NotStartedByGreenlight,
    /// Created by someone else than Greenlight's user (a re-run, a hand-made deployment).
    CreatedBySomeoneElse { creator: String },
    /// Greenlight's release deploys to another environment.
    OtherEnvironment { release: String },
    /// The release is not deploying (finished, failed, superseded).
    NotDeploying { stage: Stage },
    /// The deployment is of another commit than the release.
    OtherCommit { release: CommitSha },
    /// No valid policy on the default branch.
    NoPolicy,
    /// A gate holds now (a freeze pushed, a quorum raised since the approval).
    Held(Hold),
}

impl GateRefusal {
    /// A stable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotStartedByGreenlight => "not_started_by_greenlight",
            Self::CreatedBySomeoneElse { .. } => "created_by_someone_else",
            Self::OtherEnvironment { .. } => "other_environment",
            Self::NotDeploying { .. } => "not_deploying",
            Self::OtherCommit { .. } => "other_commit",
            Self::NoPolicy => "no_policy",
            Self::Held(hold) => hold.code(),
        }
    }

    /// One line for the gate's comment and the audit log.
    pub fn describe(&self) -> String {
        match self {
            Self::NotStartedByGreenlight => "Greenlight did not start this deployment".into(),
            Self::CreatedBySomeoneElse { creator } => {
                format!("this deployment was started by {creator}, not by Greenlight")
            }
            Self::OtherEnvironment { release } => {
                format!("Greenlight's release deploys to {release}, not to this environment")
            }
            Self::NotDeploying { stage } => {
                format!("the release is not deploying (it is {})", stage.as_str())
            }
            Self::OtherCommit { release } => {
                format!(
                    "the deployment is not of the approved commit {}",
                    release.short()
                )
            }
            Self::NoPolicy => "no valid Greenlight policy on the default branch".into(),
            Self::Held(hold) => hold.describe(),
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAnswer {
    Approve,
    Reject(GateRefusal),
}

impl GateAnswer {
    /// The review state the forge takes.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject(_) => "rejected",
        }
    }
}

/// The first rule that fails rejects; only a deploy of Greenlight's, of the deploying
/// release, at its commit, in its environment, under gates that pass now, is approved.
pub fn decide(f: &GateFacts<'_>) -> GateAnswer {
    use GateRefusal as R;
    let Some(release) = &f.release else {
        return GateAnswer::Reject(R::NotStartedByGreenlight);
    };
    if !f.created_by_greenlight {
        return GateAnswer::Reject(R::CreatedBySomeoneElse {
            creator: f.creator.unwrap_or("an unknown user").to_owned(),
        });
    }
    if release.environment != f.environment {
        return GateAnswer::Reject(R::OtherEnvironment {
            release: release.environment.to_owned(),
        });
    }
    if release.stage != Stage::Deploying {
        return GateAnswer::Reject(R::NotDeploying {
            stage: release.stage,
        });
    }
    match release.ours {
        // Greenlight's own deployment names the commit itself; Greenlight's deploy pipeline
        // names it in `GREENLIGHT_SHA` (and a hand-set one must match too).
        Ours::Deployment | Ours::Pipeline => {
            if f.sha != Some(release.sha) {
                return GateAnswer::Reject(R::OtherCommit {
                    release: release.sha.clone(),
                });
            }
        }
        // A job's deployment is of the default branch head the workflow runs on; the run
        // was dispatched by Greenlight with the release's commit as its input.
        Ours::Run => {}
    }
    match &f.gates {
        None => GateAnswer::Reject(R::NoPolicy),
        Some(Err(hold)) => GateAnswer::Reject(R::Held(hold.clone())),
        Some(Ok(())) => GateAnswer::Approve,
    }
}

/// The comment that goes with the answer: what was approved, or why not and how to deploy.
pub fn comment(answer: &GateAnswer, pr: Option<u64>, sha: Option<&CommitSha>) -> String {
    match answer {
        GateAnswer::Approve => {
            let what = match (pr, sha) {
                (Some(pr), Some(sha)) => format!(" #{pr} at {}", sha.short()),
                _ => String::new(),
            };
            format!("Greenlight: approved{what}, as approved in the pull request.")
        }
        GateAnswer::Reject(why) => format!(
            "Greenlight: rejected, {}. To deploy, comment /approve-release on the pull request \
             once its pipeline passed; Greenlight starts the deploy itself.",
            why.describe()
        ),
    }
}

#[cfg(test)]
mod tests;
