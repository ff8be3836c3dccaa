//! The stages of one release candidate and the pure transitions between them.
//!
//! ```text
//! pipeline_pending → pipeline_running → ready ─(approvals)→ queued → deploying → deployed
//!        │                 │              │                                  └→ deploy_failed
//!        └─────────→ pipeline_failed      └→ superseded (new push) | closed (PR closed)
//! ```
//! Every match is exhaustive: a new stage does not compile until each transition says what it
//! does with it.

use super::event::RunStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Pipeline dispatched (or about to be); no run reported yet.
    PipelinePending,
    PipelineRunning,
    /// The pipeline failed or was cancelled; `/retry` starts it again.
    PipelineFailed,
    /// The pipeline passed for exactly this commit; approvals are being collected.
    Ready,
    /// Approved; waiting for the environment lock.
    Queued,
    Deploying,
    Deployed,
    DeployFailed,
    /// A newer commit was pushed: this candidate is void.
    Superseded,
    /// The pull request was closed before this candidate shipped.
    Closed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PipelinePending => "pipeline_pending",
            Self::PipelineRunning => "pipeline_running",
            Self::PipelineFailed => "pipeline_failed",
            Self::Ready => "ready",
            Self::Queued => "queued",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::DeployFailed => "deploy_failed",
            Self::Superseded => "superseded",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pipeline_pending" => Self::PipelinePending,
            "pipeline_running" => Self::PipelineRunning,
            "pipeline_failed" => Self::PipelineFailed,
            "ready" => Self::Ready,
            "queued" => Self::Queued,
            "deploying" => Self::Deploying,
            "deployed" => Self::Deployed,
            "deploy_failed" => Self::DeployFailed,
            "superseded" => Self::Superseded,
            "closed" => Self::Closed,
            _ => return None,
        })
    }

    /// A run report for the pipeline of this candidate. `None`: the report is stale or moot.
    pub fn on_pipeline(self, status: RunStatus) -> Option<Self> {
        match self {
            Self::PipelinePending | Self::PipelineRunning => Some(match status {
                RunStatus::Queued => Self::PipelinePending,
                RunStatus::InProgress => Self::PipelineRunning,
                RunStatus::Succeeded => Self::Ready,
                RunStatus::Failed | RunStatus::Cancelled => Self::PipelineFailed,
            }),
            Self::PipelineFailed
            | Self::Ready
            | Self::Queued
            | Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// A run report for the deploy of this candidate.
    pub fn on_deploy(self, status: RunStatus) -> Option<Self> {
        match self {
            Self::Deploying => match status {
                RunStatus::Queued | RunStatus::InProgress => None,
                RunStatus::Succeeded => Some(Self::Deployed),
                RunStatus::Failed | RunStatus::Cancelled => Some(Self::DeployFailed),
            },
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Queued
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// True when this stage is where the final pipeline report `status` leads. The same report
    /// again (a redelivery, or the job retried after a crash between saving the stage and
    /// making its effects) then re-asserts the stage's effects, idempotently, instead of being
    /// dropped as stale: a card is never lost to a crash.
    pub fn reached_by_pipeline(self, status: RunStatus) -> bool {
        match self {
            Self::Ready => status == RunStatus::Succeeded,
            Self::PipelineFailed => matches!(status, RunStatus::Failed | RunStatus::Cancelled),
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::Queued
            | Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => false,
        }
    }

    /// Like [`Stage::reached_by_pipeline`], for the deploy run: a repeated final report
    /// finishes what a crashed job left undone (deployment status, lock, queue, card).
    pub fn reached_by_deploy(self, status: RunStatus) -> bool {
        match self {
            Self::Deployed => status == RunStatus::Succeeded,
            Self::DeployFailed => matches!(status, RunStatus::Failed | RunStatus::Cancelled),
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Queued
            | Self::Deploying
            | Self::Superseded
            | Self::Closed => false,
        }
    }

    /// A newer commit was pushed to the pull request. A deploy already under way is not
    /// stopped (it deploys exactly the commit that was approved); everything earlier is void.
    pub fn on_new_head(self) -> Option<Self> {
        match self {
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Queued => Some(Self::Superseded),
            Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// The pull request was closed.
    pub fn on_close(self) -> Option<Self> {
        match self {
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Queued => Some(Self::Closed),
            Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// `/retry` (or the check's Re-run button): start the pipeline again.
    pub fn on_retry(self) -> Option<Self> {
        match self {
            Self::PipelineFailed => Some(Self::PipelinePending),
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::Ready
            | Self::Queued
            | Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// The pipeline could not even be started (the forge refused the dispatch or pipeline,
    /// or has no such workflow or branch): retrying will not help, `/retry` after a fix will.
    pub fn on_pipeline_refused(self) -> Option<Self> {
        match self {
            Self::PipelinePending => Some(Self::PipelineFailed),
            Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Queued
            | Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// `approvals` distinct approvals were counted, `required` are needed: a ready candidate
    /// that has them joins the deploy queue.
    pub fn on_approvals(self, approvals: usize, required: u8) -> Option<Self> {
        match self {
            Self::Ready => (approvals >= usize::from(required)).then_some(Self::Queued),
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Queued
            | Self::Deploying
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// The deploy starts: the release left the queue, or a start a crash interrupted is
    /// taken up again.
    pub fn on_deploy_start(self) -> Option<Self> {
        match self {
            Self::Queued | Self::Deploying => Some(Self::Deploying),
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }

    /// The deploy could not even start (the forge refused its dispatch or pipeline): it
    /// failed, and the environment is free.
    pub fn on_deploy_refused(self) -> Option<Self> {
        match self {
            Self::Queued | Self::Deploying => Some(Self::DeployFailed),
            Self::PipelinePending
            | Self::PipelineRunning
            | Self::PipelineFailed
            | Self::Ready
            | Self::Deployed
            | Self::DeployFailed
            | Self::Superseded
            | Self::Closed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::{Cancelled, Failed, InProgress, Succeeded};
    use Stage::*;

    const ALL: [Stage; 10] = [
        PipelinePending,
        PipelineRunning,
        PipelineFailed,
        Ready,
        Queued,
        Deploying,
        Deployed,
        DeployFailed,
        Superseded,
        Closed,
    ];

    #[test]
    fn a_repeated_final_report_reasserts_only_the_stage_it_led_to() {
        for status in [RunStatus::Queued, InProgress, Succeeded, Failed, Cancelled] {
            for s in ALL {
                let led_to = matches!(
                    (s.on_pipeline(status), PipelineRunning.on_pipeline(status)),
                    (None, Some(next)) if next == s && status.is_final()
                );
                assert_eq!(s.reached_by_pipeline(status), led_to, "{s:?} {status:?}");
                let led_to = matches!(
                    (s.on_deploy(status), Deploying.on_deploy(status)),
                    (None, Some(next)) if next == s
                );
                assert_eq!(s.reached_by_deploy(status), led_to, "{s:?} {status:?}");
            }
        }
        assert!(Ready.reached_by_pipeline(Succeeded));
        assert!(
            !Ready.reached_by_pipeline(Failed),
            "a failure after success is not a repeat"
        );
        assert!(
            !Queued.reached_by_pipeline(Succeeded),
            "the release has moved on"
        );
        assert!(DeployFailed.reached_by_deploy(Cancelled));
        assert!(!Deployed.reached_by_deploy(Failed));
    }

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stage::parse("nonsense"), None);
    }

    #[test]
    fn pipeline_reports_move_only_live_pipelines() {
        assert_eq!(
            PipelinePending.on_pipeline(InProgress),
            Some(PipelineRunning)
        );
        assert_eq!(PipelineRunning.on_pipeline(Succeeded), Some(Ready));
        assert_eq!(
            PipelinePending.on_pipeline(Succeeded),
            Some(Ready),
            "a missed in_progress is fine"
        );
        assert_eq!(PipelineRunning.on_pipeline(Failed), Some(PipelineFailed));
        assert_eq!(PipelineRunning.on_pipeline(Cancelled), Some(PipelineFailed));
        for s in [
            PipelineFailed,
            Ready,
            Queued,
            Deploying,
            Deployed,
            DeployFailed,
            Superseded,
            Closed,
        ] {
            assert_eq!(
                s.on_pipeline(Succeeded),
                None,
                "{s:?}: a late report changes nothing"
            );
        }
    }

    #[test]
    fn deploy_reports_move_only_deploying() {
        assert_eq!(Deploying.on_deploy(Succeeded), Some(Deployed));
        assert_eq!(Deploying.on_deploy(Failed), Some(DeployFailed));
        assert_eq!(Deploying.on_deploy(InProgress), None);
        for s in ALL.into_iter().filter(|s| *s != Deploying) {
            assert_eq!(s.on_deploy(Succeeded), None, "{s:?}");
        }
    }

    #[test]
    fn a_push_voids_everything_before_the_deploy() {
        for s in [
            PipelinePending,
            PipelineRunning,
            PipelineFailed,
            Ready,
            Queued,
        ] {
            assert_eq!(s.on_new_head(), Some(Superseded), "{s:?}");
            assert_eq!(s.on_close(), Some(Closed), "{s:?}");
        }
        for s in [Deploying, Deployed, DeployFailed, Superseded, Closed] {
            assert_eq!(s.on_new_head(), None, "{s:?}");
            assert_eq!(s.on_close(), None, "{s:?}");
        }
    }

    #[test]
    fn only_a_failed_pipeline_can_be_retried() {
        assert_eq!(PipelineFailed.on_retry(), Some(PipelinePending));
        for s in ALL.into_iter().filter(|s| *s != PipelineFailed) {
            assert_eq!(s.on_retry(), None, "{s:?}");
        }
    }

    #[test]
    fn only_a_pending_pipeline_can_be_refused() {
        assert_eq!(PipelinePending.on_pipeline_refused(), Some(PipelineFailed));
        for s in ALL.into_iter().filter(|s| *s != PipelinePending) {
            assert_eq!(s.on_pipeline_refused(), None, "{s:?}");
        }
    }

    #[test]
    fn a_ready_candidate_with_its_quorum_is_queued() {
        assert_eq!(Ready.on_approvals(2, 2), Some(Queued));
        assert_eq!(Ready.on_approvals(3, 2), Some(Queued));
        assert_eq!(Ready.on_approvals(1, 2), None, "short of the quorum");
        for s in ALL.into_iter().filter(|s| *s != Ready) {
            assert_eq!(s.on_approvals(5, 1), None, "{s:?}");
        }
    }

    #[test]
    fn only_a_queued_or_deploying_release_starts_or_fails_to_start_a_deploy() {
        for s in ALL {
            let live = matches!(s, Queued | Deploying);
            assert_eq!(s.on_deploy_start(), live.then_some(Deploying), "{s:?}");
            assert_eq!(s.on_deploy_refused(), live.then_some(DeployFailed), "{s:?}");
        }
    }
}
