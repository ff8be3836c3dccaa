//! GitHub Actions: workflow dispatches and the runs they start, and the `workflow_run`
//! webhook a run's current state stands for (the reconciler's poll, a run learned late).

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::client::{DispatchedRun, GitHub, ListedRun, encode};
use super::paging;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::Missed;
use crate::release::{CommitSha, RepoName, RepoRef};

impl GitHub {
    /// [Create a workflow dispatch event](https://docs.github.com/en/rest/actions/workflows#create-a-workflow-dispatch-event),
    /// asking for the run's details. Servers that do not return them answer 204: then `None`,
    /// and the run is matched from `workflow_run` events instead.
    pub async fn dispatch_workflow(
        &self,
        inst: u64,
        repo: &RepoName,
        workflow: &str,
        git_ref: &str,
        inputs: &[(&str, &str)],
    ) -> Result<Option<DispatchedRun>, ForgeError> {
        let inputs: serde_json::Map<String, Value> = inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let body = json!({ "ref": git_ref, "inputs": inputs, "return_run_details": true });
        let uri = format!(
            "/repos/{repo}/actions/workflows/{}/dispatches",
            encode(workflow)
        );
        let a = self
            .call(inst, Method::POST, &uri, Some(&body), &[])
            .await?;
        if a.status == StatusCode::NO_CONTENT || a.body.trim().is_empty() {
            return Ok(None);
        }
        let v: Value = a.json()?;
        let id = v.get("workflow_run_id").and_then(Value::as_u64);
        let url = v.get("html_url").and_then(Value::as_str).map(str::to_owned);
        Ok(id.map(|id| DispatchedRun {
            id,
            url: url.unwrap_or_default(),
        }))
    }

    /// [List workflow runs for a workflow](https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow),
    /// created at or after `since_ms` (Unix milliseconds): the newest that is a dispatch by the
    /// App's bot user `bot_id` on the default branch ([`is_dispatch_by`](crate::release::RunOrigin::is_dispatch_by)) whose
    /// display title carries `sha` (our workflows' `run-name` does). Finds the run of a
    /// dispatch whose answer was lost, with the run as GitHub describes it now.
    pub async fn find_dispatched_run(
        &self,
        inst: u64,
        repo: &RepoRef,
        workflow: &str,
        sha: &CommitSha,
        since_ms: i64,
        bot_id: u64,
    ) -> Result<Option<ListedRun>, ForgeError> {
        let since = chrono::DateTime::from_timestamp_millis(since_ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ");
        let uri = paging::first_page(&format!(
            "/repos/{}/actions/workflows/{}/runs?event=workflow_dispatch&branch={}&created={}",
            repo.name,
            encode(workflow),
            encode(&repo.default_branch),
            encode(&format!(">={since}"))
        ));
        let runs = self.list_all(inst, &uri, Some("workflow_runs")).await?;
        // The query narrows the list; the rule is checked here on each run all the same.
        Ok(runs
            .into_iter()
            .filter_map(|json| {
                let run = super::events::listed_run(repo.clone(), &json).ok()?;
                let ours = run
                    .origin
                    .as_ref()
                    .is_some_and(|o| o.is_dispatch_by(&repo.default_branch, bot_id))
                    && run.title.contains(sha.as_str())
                    && run.created_at >= since_ms;
                ours.then_some(ListedRun { run, json })
            })
            .max_by_key(|r| r.run.created_at))
    }

    /// [Get a workflow run](https://docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run)
    /// (the reconciler's poll).
    pub async fn workflow_run(
        &self,
        inst: u64,
        repo: &RepoName,
        run_id: u64,
    ) -> Result<Value, ForgeError> {
        self.call(
            inst,
            Method::GET,
            &format!("/repos/{repo}/actions/runs/{run_id}"),
            None,
            &[],
        )
        .await?
        .json()
    }
}

/// GitHub run states that mean it has not started yet.
pub const NOT_STARTED: &[&str] = &["queued", "requested", "waiting", "pending"];

/// The `workflow_run` webhook GitHub would send now for `run` (as the REST API describes it)
/// of `repo` on installation `inst`.
pub fn missed_webhook(run: Value, repo: &str, default_branch: &str, inst: u64) -> Missed {
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
        s if NOT_STARTED.contains(&s) => "requested",
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
