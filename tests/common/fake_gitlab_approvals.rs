//! The fake GitLab's deployment approvals (Premium/Ultimate protected environments with
//! approval rules), as GitLab's API docs and `Deployments::ApprovalService` behave:
//! - a job deploying to the protected environment waits as `manual`, its deployment
//!   `blocked`, and its pipeline turns `manual`: GitLab sends a Pipeline Hook (every pipeline
//!   status change executes pipeline hooks) whose `builds` show the job `manual` with its
//!   environment; no Job Hook (the job's `created → manual` executes no job hooks) and no
//!   Deployment Hook (those come when a deployment starts, succeeds, fails or is canceled);
//! - `POST /deployments/:id/approval` (`status` approved|rejected, `comment`) answers 201 with
//!   the approval; a deployment no longer blocked is refused with 400 "This deployment is not
//!   waiting for approvals."; the user who triggered the pipeline may not approve unless the
//!   project allows it ("Allow pipeline triggerer to approve deployment"), and may reject;
//! - one approval rule needing one approval: approved, the deployment is `created` and the job
//!   stays `manual` until someone runs it (`POST /jobs/:id/play`); rejected, the job fails
//!   (`deployment_rejected`) and so does the deployment;
//! - a job waiting for approval, or not manual, cannot be played (400 "Unplayable Job").

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::fake_gitlab::{FakeGitLab, Model, paged};
use super::fake_http::query;

const NOT_WAITING: &str = "This deployment is not waiting for approvals.";
const OWN_DEPLOYMENT: &str = "You cannot approve your own deployment. This configuration can be adjusted in the protected environment settings.";

impl FakeGitLab {
    /// Job `job` of pipeline `pipeline` deploys to `environment` and waits for approval: a
    /// `blocked` deployment of the pipeline's commit, by `user` (who triggered the pipeline),
    /// the job `manual`, and so the pipeline `manual`. Returns the deployment's id and the
    /// Pipeline Hook GitLab sends for the pipeline's new status (the job sends no Job Hook:
    /// GitLab's `created → manual` transition executes no job hooks).
    pub fn block_deploy(
        &self,
        pipeline: u64,
        job: u64,
        user: (u64, &str),
        environment: &str,
    ) -> (u64, Value) {
        let (id, p) = self.with(|m| {
            let p = m.pipelines.get(&pipeline).cloned().expect("pipeline");
            m.jobs.insert(job, pipeline);
            m.next_id += 1;
            let id = m.next_id;
            let deployment = json!({
                "id": id, "iid": id, "ref": p["ref"], "sha": p["sha"], "status": "blocked",
                "created_at": chrono::Utc::now().to_rfc3339(),
                "user": { "id": user.0, "username": user.1, "name": user.1, "state": "active" },
                "environment": { "id": 9, "name": environment },
                "deployable": {
                    "id": job, "name": "deploy", "stage": "deploy", "status": "manual",
                    "ref": p["ref"], "failure_reason": null,
                    "pipeline": { "id": pipeline, "ref": p["ref"], "sha": p["sha"],
                                  "status": "manual" },
                },
                "approval_summary": { "rules": [{
                    "user_id": m.me.0, "group_id": null, "access_level": null,
                    "access_level_description": m.me.1, "required_approvals": 1,
                    "deployment_approvals": [],
                }]},
            });
            m.deployments.insert(id, deployment);
            (id, p)
        });
        let mut hook = self.pipeline_hook(&p, "manual");
        hook["user"] = json!({ "id": user.0, "name": user.1, "username": user.1 });
        hook["builds"] = json!([{
            "id": job, "stage": "deploy", "name": "deploy", "status": "manual",
            "created_at": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            "started_at": null, "finished_at": null, "when": "on_success", "manual": false,
            "allow_failure": false,
            "user": { "id": user.0, "name": user.1, "username": user.1 },
            "runner": null,
            "environment": { "name": environment, "action": "start",
                             "deployment_tier": "production" },
        }]);
        (id, hook)
    }

    /// The deployment as GitLab keeps it.
    pub fn deployment(&self, id: u64) -> Value {
        self.with(|m| m.deployments.get(&id).cloned())
            .expect("deployment")
    }

    /// The approvals and rejections posted, in order: (deployment id, status, comment).
    pub fn reviews(&self) -> Vec<(u64, String, String)> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/approval"))
            .map(|c| {
                let id = c.path.split('/').nth(2).and_then(|n| n.parse().ok());
                (
                    id.unwrap_or(0),
                    c.body["status"].as_str().unwrap_or_default().to_owned(),
                    c.body["comment"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Jobs Greenlight asked to run.
    pub fn played(&self) -> Vec<u64> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/play"))
            .filter_map(|c| c.path.split('/').nth(2).and_then(|n| n.parse().ok()))
            .collect()
    }
}

fn bad_request(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "message": message }))
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({ "message": "404 Not found" }))
}

/// The deployment approvals API; `None` for a path that is not part of it.
pub(super) fn answer(
    m: &mut Model,
    method: &str,
    parts: &[&str],
    req: &Request,
    body: &Value,
) -> Option<ResponseTemplate> {
    let answer = match (method, parts) {
        ("GET", ["deployments"]) => {
            let q = query(req);
            let list = m
                .deployments
                .values()
                .filter(|d| q.get("status").is_none_or(|s| d["status"] == s.as_str()))
                .filter(|d| {
                    q.get("environment")
                        .is_none_or(|e| d["environment"]["name"] == e.as_str())
                })
                .cloned()
                .collect();
            paged(req, list)
        }
        ("GET", ["deployments", id]) => {
            match id.parse().ok().and_then(|id: u64| m.deployments.get(&id)) {
                Some(d) => ResponseTemplate::new(200).set_body_json(d.clone()),
                None => not_found(),
            }
        }
        ("POST", ["deployments", id, "approval"]) => {
            let me = m.me.clone();
            let allow_triggerer = m.allow_triggerer_approval;
            let Some(d) = id
                .parse()
                .ok()
                .and_then(|id: u64| m.deployments.get_mut(&id))
            else {
                return Some(not_found());
            };
            let status = body["status"].as_str().unwrap_or_default();
            if !matches!(status, "approved" | "rejected") {
                return Some(
                    ResponseTemplate::new(400)
                        .set_body_json(json!({ "error": "status does not have a valid value" })),
                );
            }
            if d["status"] != "blocked" {
                return Some(bad_request(NOT_WAITING));
            }
            if status == "approved" && d["user"]["id"] == me.0 && !allow_triggerer {
                return Some(bad_request(OWN_DEPLOYMENT));
            }
            let approval = json!({
                "user": { "id": me.0, "username": me.1, "name": me.1, "state": "active" },
                "status": status, "created_at": chrono::Utc::now().to_rfc3339(),
                "comment": body["comment"],
            });
            let given = d["approval_summary"]["rules"][0]["deployment_approvals"]
                .as_array_mut()
                .expect("rule approvals");
            given.retain(|a| a["user"]["id"] != me.0);
            given.push(approval.clone());
            if status == "approved" {
                d["status"] = json!("created");
            } else {
                d["status"] = json!("failed");
                d["deployable"]["status"] = json!("failed");
                d["deployable"]["failure_reason"] = json!("deployment_rejected");
            }
            ResponseTemplate::new(201).set_body_json(approval)
        }
        ("POST", ["jobs", job, "play"]) => {
            let job: u64 = job.parse().unwrap_or(0);
            let Some(d) = m
                .deployments
                .values_mut()
                .find(|d| d["deployable"]["id"] == job)
            else {
                return Some(not_found());
            };
            if d["status"] == "blocked" || d["deployable"]["status"] != "manual" {
                return Some(bad_request("400 Unplayable Job"));
            }
            d["deployable"]["status"] = json!("pending");
            ResponseTemplate::new(200).set_body_json(d["deployable"].clone())
        }
        _ => return None,
    };
    Some(answer)
}
