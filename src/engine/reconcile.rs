//! The reconciler: GitHub does not promise to deliver every webhook. A release waiting on a
//! run that has gone quiet for a while is checked against the API; if the run moved on, what
//! GitHub says is fed through the inbox as a `workflow_run` delivery, so it is worked exactly
//! like a webhook (same lease, same idempotent effects). The delivery id names the run and its
//! state: replicas reconciling at once store it once.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::release::{RepoName, Stage};
use crate::store::{NewDelivery, now_ms};

/// Runs [`reconcile_once`] every `every` until shutdown, for releases quiet for `quiet`.
pub async fn run(engine: Engine, every: Duration, quiet: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match reconcile_once(&engine, quiet).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deliveries = n,
                "reconciler found runs whose webhooks never came"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed; next pass in {every:?}"),
        }
    }
}

/// One pass; returns how many synthetic deliveries were queued.
pub async fn reconcile_once(engine: &Engine, quiet: Duration) -> anyhow::Result<usize> {
    let Some(gh) = &engine.github else {
        return Ok(0);
    };
    let store = &engine.store;
    let cutoff = now_ms() - i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
    let mut queued = 0;
    for release in store.releases_waiting_on_runs("github").await? {
        if release.updated_at > cutoff {
            continue;
        }
        let run_id = match release.stage {
            Stage::Deploying => release.deploy_run_id,
            _ => release.pipeline_run_id,
        };
        let Some(run_id) = run_id else { continue };
        let Some(pull) = store.pull("github", &release.repo, release.pr).await? else {
            continue;
        };
        let repo = RepoName(release.repo.clone());
        let run = gh.workflow_run(pull.forge_id, &repo, run_id).await?;
        let status = run
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("queued")
            .to_owned();
        let conclusion = run
            .get("conclusion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let moved_on = match release.stage {
            Stage::PipelinePending => {
                status != "queued" && status != "requested" && status != "waiting"
            }
            _ => status == "completed",
        };
        if !moved_on {
            continue;
        }
        let default_branch = gh.default_branch(pull.forge_id, &repo).await?;
        let action = if status == "completed" {
            "completed"
        } else {
            "in_progress"
        };
        let payload = json!({
            "action": action,
            "workflow_run": run,
            "repository": { "full_name": release.repo, "default_branch": default_branch },
            "installation": { "id": pull.forge_id },
        });
        let body = serde_json::to_vec(&payload)?;
        let delivery_id = format!("reconcile:{run_id}:{status}:{conclusion}");
        let inserted = store
            .insert_delivery(&NewDelivery {
                forge: "github",
                delivery_id: &delivery_id,
                event: "workflow_run",
                payload: &body,
                actionable: true,
            })
            .await?;
        tracing::info!(run = run_id, repo = %release.repo, %status, ?inserted, "reconciled a quiet run");
        queued += 1;
    }
    Ok(queued)
}
