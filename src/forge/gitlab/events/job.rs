//! GitLab's [Job Hook](https://docs.gitlab.com/user/project/integrations/webhook_events/#job-events),
//! "triggered when the status of a job changes". A job that deploys to a protected
//! environment with approval rules waits as `manual` (its deployment is `blocked`). GitLab's
//! source executes no job hooks on that `created → manual` transition (nor a Deployment Hook:
//! those come when a deployment starts, succeeds, fails or is canceled); what does come is
//! the Pipeline Hook of the pipeline turning `manual` (see `PipelineRun::waiting_on`). A Job
//! Hook of a `manual` job with an environment, should a GitLab send one, and the reconciler's
//! own (it feeds one for blocked deployments), ask for the same review. Every other job
//! status is ignored.

use serde::Deserialize;

use super::{Parsed, Project};
use crate::forge::PayloadError;
use crate::release::Event;

#[derive(Deserialize)]
struct JobPayload {
    build_status: String,
    project: Project,
    #[serde(default)]
    environment: Option<JobEnvironment>,
}

#[derive(Deserialize)]
struct JobEnvironment {
    name: String,
}

/// Parses a Job Hook: a `manual` job with an environment becomes
/// [`Event::DeploymentsBlocked`].
pub(super) fn parse(payload: &[u8]) -> Result<Parsed, PayloadError> {
    let p: JobPayload = serde_json::from_slice(payload).map_err(|e| PayloadError::Json {
        event: "Job Hook".into(),
        source: e,
    })?;
    if p.build_status != "manual" {
        return Ok(Parsed::Ignored("a job status other than waiting (manual)"));
    }
    let Some(env) = p.environment else {
        return Ok(Parsed::Ignored("a manual job that deploys nowhere"));
    };
    Ok(Parsed::Event(Event::DeploymentsBlocked {
        repo: p.project.repo(),
        environment: env.name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(status: &str, environment: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object_kind": "build", "build_id": 900, "build_status": status,
            "pipeline_id": 700, "environment": environment,
            "project": { "id": 15, "path_with_namespace": "acme/widgets",
                         "default_branch": "main", "web_url": "https://gitlab.example.com/acme/widgets" },
        }))
        .expect("encode")
    }

    #[test]
    fn a_waiting_deploy_job_asks_for_a_review() {
        let parsed = parse(&hook(
            "manual",
            json!({ "name": "production", "action": "start" }),
        ));
        let Ok(Parsed::Event(Event::DeploymentsBlocked { repo, environment })) = parsed else {
            panic!("{parsed:?}");
        };
        assert_eq!((repo.forge_id, environment.as_str()), (15, "production"));
    }

    #[test]
    fn other_jobs_are_ignored() {
        let running = parse(&hook("running", json!({ "name": "production" })));
        assert!(matches!(running, Ok(Parsed::Ignored(_))), "{running:?}");
        let nowhere = parse(&hook("manual", json!(null)));
        assert!(matches!(nowhere, Ok(Parsed::Ignored(_))), "{nowhere:?}");
    }
}
