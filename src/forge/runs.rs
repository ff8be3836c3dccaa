//! Runs (GitHub workflow runs, GitLab pipelines) as the webhook the forge would send about
//! them now: for the reconciler's poll of a quiet run, and for a run learned after the fact
//! (its webhooks may have come and gone while no release knew it).

use serde_json::Value;

use crate::forge::client::{Client, Target};
use crate::forge::retry::ForgeError;
use crate::forge::vocab::Missed;
use crate::forge::{github, gitlab};

impl Client<'_> {
    /// A quiet run that moved on at the forge, as the webhook it missed: started (when the
    /// release still waits for it to start, `waiting_start`) or finished; `None` otherwise.
    pub async fn quiet_run(
        self,
        t: Target<'_>,
        run_id: u64,
        waiting_start: bool,
    ) -> Result<Option<Missed>, ForgeError> {
        match self {
            Self::GitHub(gh) => {
                let run = gh.workflow_run(t.forge_id, t.repo, run_id).await?;
                let status = run
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("queued")
                    .to_owned();
                let moved_on = if waiting_start {
                    !github::actions::NOT_STARTED.contains(&status.as_str())
                } else {
                    status == "completed"
                };
                if !moved_on {
                    return Ok(None);
                }
                let default_branch = gh.default_branch(t.forge_id, t.repo).await?;
                Ok(Some(github::actions::missed_webhook(
                    run,
                    t.repo.as_str(),
                    &default_branch,
                    t.forge_id,
                )))
            }
            Self::GitLab(gl) => {
                let pipeline = gl.pipeline(t.forge_id, run_id).await?;
                let status = pipeline
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("created")
                    .to_owned();
                let moved_on = if waiting_start {
                    !gitlab::missed::NOT_STARTED.contains(&status.as_str())
                } else {
                    gitlab::missed::FINAL.contains(&status.as_str())
                };
                if !moved_on {
                    return Ok(None);
                }
                let project = gl.project(t.forge_id).await?;
                Ok(Some(gitlab::missed::missed_webhook(
                    &pipeline,
                    run_id,
                    t.forge_id,
                    project
                        .get("path_with_namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(t.repo.as_str()),
                    project.get("default_branch").and_then(Value::as_str),
                    project
                        .get("web_url")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )))
            }
        }
    }

    /// Run `run_id` as the webhook the forge would send now, unless it has not started yet
    /// (then its own webhooks are still to come). `listed` is the run as a list the forge
    /// answered already describes it (GitHub); otherwise the forge is asked.
    pub async fn run_now(
        self,
        t: Target<'_>,
        run_id: u64,
        listed: Option<Value>,
        default_branch: &str,
    ) -> Result<Option<Missed>, ForgeError> {
        let (missed, not_started) = match self {
            Self::GitHub(gh) => {
                let run = match listed {
                    Some(run) => run,
                    None => gh.workflow_run(t.forge_id, t.repo, run_id).await?,
                };
                (
                    github::actions::missed_webhook(
                        run,
                        t.repo.as_str(),
                        default_branch,
                        t.forge_id,
                    ),
                    github::actions::NOT_STARTED,
                )
            }
            Self::GitLab(gl) => {
                let pipeline = match listed {
                    Some(p) => p,
                    None => gl.pipeline(t.forge_id, run_id).await?,
                };
                (
                    gitlab::missed::missed_webhook(
                        &pipeline,
                        run_id,
                        t.forge_id,
                        t.repo.as_str(),
                        Some(default_branch),
                        "",
                    ),
                    gitlab::missed::NOT_STARTED,
                )
            }
        };
        Ok((!not_started.contains(&missed.status.as_str())).then_some(missed))
    }
}
