//! The reconciler: neither forge promises to deliver every webhook. A release waiting on a
//! run that has gone quiet for a while is checked against the API; if the run moved on, what
//! the forge says is fed through the inbox as a delivery of the webhook it missed (GitHub
//! `workflow_run`, GitLab `Pipeline Hook`), so it is worked exactly like a webhook (same
//! lease, same idempotent effects). The delivery id names the run and its state: replicas
//! reconciling at once store it once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::forge::Client;
use crate::forge::client::Target;
use crate::forge::vocab::Missed;
use crate::release::{RepoName, Stage};
use crate::store::{Inserted, NewDelivery, Store, now_ms};

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
    let github = engine.github();
    for client in Client::all(github.as_ref(), engine.gitlab.as_ref()) {
        queued += reconcile(engine, client, quiet).await?;
    }
    if let Some(gl) = &engine.gitlab
        && gl.approves_deployments()
    {
        queued += super::approval_sweep::sweep(engine, gl, quiet).await?;
    }
    Ok(queued)
}

/// Stores `missed` in the inbox, to be worked like the webhook it stands for.
pub(crate) async fn feed(store: &Store, forge: &str, missed: &Missed) -> sqlx::Result<Inserted> {
    let body = serde_json::to_vec(&missed.payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    store
        .insert_delivery(&NewDelivery {
            forge,
            delivery_id: &missed.delivery_id,
            event: missed.event,
            payload: &body,
            actionable: true,
        })
        .await
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
        let repo = RepoName(release.repo.clone());
        let target = Target {
            forge_id: pull.forge_id,
            repo: &repo,
        };
        let waiting_start = release.stage == Stage::PipelinePending;
        let Some(missed) = client.quiet_run(target, run_id, waiting_start).await? else {
            continue;
        };
        let inserted = feed(store, forge, &missed).await?;
        tracing::info!(run = run_id, repo = %release.repo, status = %missed.status, ?inserted, "reconciled a quiet run");
        queued += 1;
    }
    Ok(queued)
}
