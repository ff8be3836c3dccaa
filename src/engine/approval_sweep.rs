//! The reconciler's safety net for GitLab's deployment approvals: a Pipeline Hook can be lost,
//! and a deploy pipeline whose creation answer was lost is only known once the deploy's retry
//! adopts it. While a release deploys (quiet for a while), the project's blocked deployments
//! are listed and, when any waits, fed through the inbox as a Job Hook of a waiting job, so
//! they are reviewed exactly like a webhook's (same lease, same ledger:
//! one already reviewed is not reviewed again).

use std::collections::BTreeSet;
use std::time::Duration;

use super::Engine;
use super::reconcile::feed;
use crate::forge::gitlab::GitLab;
use crate::forge::gitlab::approvals::waiting_job_hook;
use crate::release::Stage;
use crate::store::now_ms;

/// One pass: returns how many synthetic Job Hooks were queued.
pub(crate) async fn sweep(engine: &Engine, gl: &GitLab, quiet: Duration) -> anyhow::Result<usize> {
    let store = &engine.store;
    let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms() - quiet_ms;
    let mut projects = BTreeSet::new();
    for release in store.releases_waiting_on_runs("gitlab").await? {
        if release.stage != Stage::Deploying || release.updated_at > cutoff {
            continue;
        }
        if let Some(pull) = store.pull("gitlab", &release.repo, release.pr).await? {
            projects.insert(pull.forge_id);
        }
    }
    // A new delivery per quiet period while something stays blocked: a review deferred (a
    // deploy pipeline in doubt) is looked at again; one already given is skipped by the ledger.
    let period = now_ms() / quiet_ms.max(1);
    let mut queued = 0;
    for project in projects {
        let blocked = gl.blocked_deployments(project, None).await?;
        let Some(first) = blocked.first() else {
            continue;
        };
        let info = gl.project(project).await?;
        let ids: Vec<String> = blocked.iter().map(|d| d.id.to_string()).collect();
        let missed = waiting_job_hook(project, &info, &first.environment, &ids.join(","), period);
        let inserted = feed(store, "gitlab", &missed).await?;
        tracing::info!(project, deployments = %ids.join(","), ?inserted, "blocked deployments to review");
        queued += 1;
    }
    Ok(queued)
}
