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
use crate::forge::Client;
use crate::forge::github::GitHub;
use crate::forge::gitlab::GitLab;
use crate::release::{RepoName, Stage};
use crate::store::{Inserted, NewDelivery, PullRow, ReleaseRow, now_ms};

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
        queued += reconcile(engine, Client::GitHub(gh), quiet).await?;
    }
    if let Some(gl) = &engine.gitlab {
        queued += reconcile(engine, Client::GitLab(gl), quiet).await?;
        if gl.approves_deployments() {
            queued += super::approval_sweep::sweep(engine, gl, quiet).await?;
        }
    }
    Ok(queued)
}

/// The webhook a quiet run missed, as the forge describes the run now.
pub(crate) struct Missed {
    pub event: &'static str,
    /// Names the run and its state: replicas reconciling at once store it once.
    pub delivery_id: String,
    /// The forge's word for the run's state (`completed`, `in_progress`, `success`, ...).
    pub status: String,
    pub payload: Value,
}

impl Missed {
    /// Stores it in the inbox, to be worked like the webhook it stands for.
    pub(crate) async fn feed(
        &self,
        store: &crate::store::Store,
        forge: &str,
    ) -> sqlx::Result<Inserted> {
        let body =
            serde_json::to_vec(&self.payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        store
            .insert_delivery(&NewDelivery {
                forge,
                delivery_id: &self.delivery_id,
                event: self.event,
                payload: &body,
                actionable: true,
            })
            .await
    }
}

/// One forge's releases waiting on a run quiet for `quiet`: each run that moved on at the
/// forge is fed through the inbox as the webhook it missed.
async fn reconcile(engine: &Engine, client: Client<'_>, quiet: Duration) -> anyhow::Result<usize> {
    let forge = client.forge().as_str();
    let store = &engine.store;
    let cutoff = now_ms() - i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
    let mut queued = 0;
    for release in store.releases_waiting_on_runs(forge).await? {
        if release.updated_at > cutoff {
            continue;
        }
        let run_id = match release.stage {
            Stage::Deploying => release.deploy_run_id,
            _ => release.pipeline_run_id,
        };
        let Some(run_id) = run_id else { continue };
        let Some(pull) = store.pull(forge, &release.repo, release.pr).await? else {
            continue;
        };
        let missed = match client {
            Client::GitHub(gh) => github_missed(gh, &release, &pull, run_id).await?,
            Client::GitLab(gl) => gitlab_missed(gl, &release, &pull, run_id).await?,
        };
        let Some(missed) = missed else { continue };
        let inserted = missed.feed(store, forge).await?;
        tracing::info!(run = run_id, repo = %release.repo, status = %missed.status, ?inserted, "reconciled a quiet run");
        queued += 1;
    }
    Ok(queued)
}

/// A GitHub workflow run that moved on, as the `workflow_run` webhook it missed.
async fn github_missed(
    gh: &GitHub,
    release: &ReleaseRow,
    pull: &PullRow,
    run_id: u64,
) -> anyhow::Result<Option<Missed>> {
    let repo = RepoName(release.repo.clone());
    let run = gh.workflow_run(pull.forge_id, &repo, run_id).await?;
    let status = run
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("queued")
        .to_owned();
    let moved_on = match release.stage {
        Stage::PipelinePending => !GITHUB_NOT_STARTED.contains(&status.as_str()),
        _ => status == "completed",
    };
    if !moved_on {
        return Ok(None);
    }
    let default_branch = gh.default_branch(pull.forge_id, &repo).await?;
    Ok(Some(github_webhook(
        run,
        &release.repo,
        &default_branch,
        pull.forge_id,
    )))
}

/// GitHub run states that mean it has not started yet.
pub(crate) const GITHUB_NOT_STARTED: &[&str] = &["queued", "requested", "waiting", "pending"];

/// The `workflow_run` webhook GitHub would send now for `run` (as the REST API describes it)
/// of `repo` on installation `inst`.
pub(crate) fn github_webhook(run: Value, repo: &str, default_branch: &str, inst: u64) -> Missed {
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
    let run_id = run.get("id").and_then(Value::as_u64).unwrap_or_default();
    let action = match status.as_str() {
        "completed" => "completed",
        s if GITHUB_NOT_STARTED.contains(&s) => "requested",
        _ => "in_progress",
    };
    let payload = json!({
        "action": action,
        "workflow_run": run,
        "repository": { "full_name": repo, "default_branch": default_branch },
        "installation": { "id": inst },
    });
    Missed {
        event: "workflow_run",
        delivery_id: format!("reconcile:{run_id}:{status}:{conclusion}"),
        status,
        payload,
    }
}

/// GitLab pipeline states that mean it has not started yet.
pub(crate) const GITLAB_NOT_STARTED: &[&str] = &[
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "scheduled",
];

/// GitLab pipeline states that are final.
const GITLAB_FINAL: &[&str] = &["success", "failed", "canceled", "skipped"];

/// A GitLab pipeline that moved on, as the Pipeline Hook it missed.
async fn gitlab_missed(
    gl: &GitLab,
    release: &ReleaseRow,
    pull: &PullRow,
    run_id: u64,
) -> anyhow::Result<Option<Missed>> {
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
        return Ok(None);
    }
    let project = gl.project(pull.forge_id).await?;
    Ok(Some(gitlab_webhook(
        &pipeline,
        run_id,
        pull.forge_id,
        project
            .get("path_with_namespace")
            .and_then(Value::as_str)
            .unwrap_or(&release.repo),
        project.get("default_branch").and_then(Value::as_str),
        project
            .get("web_url")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )))
}

/// The Pipeline Hook GitLab would send now for pipeline `run_id` (`pipeline` as the REST API
/// describes it) of project `project_id` at `path`.
pub(crate) fn gitlab_webhook(
    pipeline: &Value,
    run_id: u64,
    project_id: u64,
    path: &str,
    default_branch: Option<&str>,
    web_url: &str,
) -> Missed {
    let status = pipeline
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("created")
        .to_owned();
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
            "id": project_id,
            "path_with_namespace": path,
            "default_branch": default_branch,
            "web_url": web_url,
        },
    });
    Missed {
        event: "Pipeline Hook",
        delivery_id: format!("reconcile:{run_id}:{status}"),
        status,
        payload,
    }
}
