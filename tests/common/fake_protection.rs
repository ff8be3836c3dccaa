//! GitHub's environments with a custom deployment protection rule, in the fake GitHub: a job
//! that names the environment gets a deployment of its own (made by whoever started the run)
//! and waits at the gate until the App reviews it, once.
//!
//! As documented for
//! [Review custom deployment protection rules for a workflow run](https://docs.github.com/en/rest/actions/workflow-runs#review-custom-deployment-protection-rules-for-a-workflow-run):
//! 204 when the review is taken; 422 ("No pending custom deployment requests in workflow run
//! …") when nothing of this App waits in that run and environment — a second review of the
//! same gate included.

use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use super::fake_github::{FakeGitHub, Model, REPO};

/// The default branch head a dispatched workflow runs on (the fake's `workflow_run`s say so).
pub const MAIN_HEAD: &str = "9049f1265b7d61be4a8904a9a27120d2064dab3b";

/// `POST /repos/{repo}/actions/runs/{run}/deployment_protection_rule`.
pub fn review(m: &mut Model, run: &str, body: &Value) -> ResponseTemplate {
    let run: u64 = run.parse().unwrap_or(0);
    let env = body["environment_name"].as_str().unwrap_or_default();
    let state = body["state"].as_str().unwrap_or_default();
    if !matches!(state, "approved" | "rejected") {
        return ResponseTemplate::new(422).set_body_json(json!({ "message": "Invalid request" }));
    }
    let Some(i) = m
        .pending_gates
        .iter()
        .position(|(r, e)| *r == run && e == env)
    else {
        return ResponseTemplate::new(422).set_body_json(json!({
            "message": format!("No pending custom deployment requests in workflow run `{run}` to approve or reject"),
        }));
    };
    m.pending_gates.remove(i);
    m.gate_reviews.push((run, body.clone()));
    ResponseTemplate::new(204)
}

impl FakeGitHub {
    /// The deploy job of run `run` reaches environment `env`: GitHub makes the job's
    /// deployment (of the default branch head, created by `creator`, who started the run) and
    /// holds the job at the gate. Returns the deployment, as webhooks carry it.
    pub fn job_reaches_environment(&self, run: u64, env: &str, creator: (&str, u64)) -> Value {
        self.with(|m| {
            m.next_id += 1;
            let id = m.next_id;
            let kind = if creator.0.ends_with("[bot]") { "Bot" } else { "User" };
            let d = json!({
                "id": id,
                "sha": MAIN_HEAD,
                "ref": "main",
                "task": "deploy",
                "environment": env,
                "creator": { "login": creator.0, "id": creator.1, "type": kind },
                "statuses_url": format!("https://api.github.com/repos/{REPO}/deployments/{id}/statuses"),
            });
            m.deployments.insert(id, d.clone());
            m.pending_gates.push((run, env.to_owned()));
            d
        })
    }

    /// Reviews GitHub took at gates: (run id, state).
    pub fn gate_reviews(&self) -> Vec<(u64, String)> {
        self.with(|m| {
            m.gate_reviews
                .iter()
                .map(|(run, b)| (*run, b["state"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
    }

    /// Review calls Greenlight made, whether GitHub took them or not.
    pub fn gate_review_calls(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/deployment_protection_rule"))
            .count()
    }
}
