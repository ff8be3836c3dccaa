//! The reconciler: neither forge promises to deliver every webhook. A release waiting on a
//! run that has gone quiet for a while is checked against the API; if the run moved on, what
//! the forge says is fed through the inbox as a delivery of the webhook it missed (GitHub
//! `workflow_run`, GitLab `Pipeline Hook`), so it is worked exactly like a webhook (same
//! lease, same idempotent effects). The delivery id names the run and its state: replicas
//! reconciling at once store it once.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::forge::github::GitHub;
use crate::forge::gitlab::GitLab;
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

/// One pass over both forges; returns how many synthetic deliveries were queued.
pub async fn reconcile_once(engine: &Engine, quiet: Duration) -> anyhow::Result<usize> {
    let mut queued = 0;
    if let Some(gh) = &engine.github {
        queued += reconcile_github(engine, gh, quiet).await?;
    }
    if let Some(gl) = &engine.gitlab {
        queued += reconcile_gitlab(engine, gl, quiet).await?;
    }
    Ok(queued)
}

async fn reconcile_github(engine: &Engine, gh: &GitHub, quiet: Duration) -> anyhow::Result<usize> {
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

/// GitLab pipeline states that mean it has not started yet.
const GITLAB_NOT_STARTED: &[&str] = &[
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "scheduled",
];

/// GitLab pipeline states that are final.
const GITLAB_FINAL: &[&str] = &["success", "failed", "canceled", "skipped"];

async fn reconcile_gitlab(engine: &Engine, gl: &GitLab, quiet: Duration) -> anyhow::Result<usize> {
    let store = &engine.store;
    let cutoff = now_ms() - i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
    let mut queued = 0;
    for release in store.releases_waiting_on_runs("gitlab").await? {
        if release.updated_at > cutoff {
            continue;
        }
        let run_id = match release.stage {
            Stage::Deploying => release.deploy_run_id,
            _ => release.pipeline_run_id,
        };
        let Some(run_id) = run_id else { continue };
        let Some(pull) = store.pull("gitlab", &release.repo, release.pr).await? else {
            continue;
        };
        let pipeline = gl.pipeline(pull.forge_id, run_id).await?;
        let status = pipeline
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("created")
            .to_owned();
        let moved_on = match release.stage {
            Stage::PipelinePending => !GITLAB_NOT_STARTED.contains(&status.as_str()),
            _ => GITLAB_FINAL.contains(&status.as_str()),
        };
        if !moved_on {
            continue;
        }
        let project = gl.project(pull.forge_id).await?;
        let payload = json!({
            "object_kind": "pipeline",
            "object_attributes": {
                "id": run_id,
                "sha": pipeline.get("sha"),
                "ref": pipeline.get("ref"),
                "status": status,
                "created_at": pipeline.get("created_at"),
                "url": pipeline.get("web_url"),
            },
            "project": {
                "id": pull.forge_id,
                "path_with_namespace": project.get("path_with_namespace").and_then(Value::as_str).unwrap_or(&release.repo),
                "default_branch": project.get("default_branch"),
                "web_url": project.get("web_url").and_then(Value::as_str).unwrap_or_default(),
            },
        });
        let body = serde_json::to_vec(&payload)?;
        let delivery_id = format!("reconcile:{run_id}:{status}");
        let inserted = store
            .insert_delivery(&NewDelivery {
                forge: "gitlab",
                delivery_id: &delivery_id,
                event: "Pipeline Hook",
                payload: &body,
                actionable: true,
            })
            .await?;
        tracing::info!(pipeline = run_id, repo = %release.repo, %status, ?inserted, "reconciled a quiet pipeline");
        queued += 1;
    }
    Ok(queued)
}
