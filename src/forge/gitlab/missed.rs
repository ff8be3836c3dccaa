//! GitLab pipelines as the Pipeline Hook GitLab would send now: for a pipeline whose hooks
//! Greenlight may have missed (the reconciler's poll, a pipeline learned after the fact).

use serde_json::{Value, json};

use crate::forge::vocab::Missed;

/// GitLab pipeline states that mean it has not started yet.
pub const NOT_STARTED: &[&str] = &[
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "scheduled",
];

/// GitLab pipeline states that are final.
pub const FINAL: &[&str] = &["success", "failed", "canceled", "skipped"];

/// The Pipeline Hook GitLab would send now for pipeline `run_id` (`pipeline` as the REST API
/// describes it) of project `project_id` at `path`.
pub fn missed_webhook(
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
