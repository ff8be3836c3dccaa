//! Check runs: Greenlight's `greenlight/*` checks on a commit.

use http::Method;
use serde_json::{Value, json};

use super::client::{GitHub, encode, id_of};
use super::paging;
use crate::forge::retry::ForgeError;
use crate::forge::vocab::{CheckReport, CheckState};
use crate::release::{CommitSha, RepoName};

impl GitHub {
    /// [List check runs for a Git reference](https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference),
    /// by name: the id of ours with `external_id`, if one exists (finding a check run created
    /// by an attempt that crashed before saving its id).
    pub async fn find_check_run(
        &self,
        inst: u64,
        repo: &RepoName,
        sha: &CommitSha,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>, ForgeError> {
        let uri = paging::first_page(&format!(
            "/repos/{repo}/commits/{sha}/check-runs?check_name={}&filter=all",
            encode(name)
        ));
        let mut found = None;
        self.scan(inst, &uri, Some("check_runs"), |r| {
            found = (r.get("external_id").and_then(Value::as_str) == Some(external_id))
                .then(|| r.get("id").and_then(Value::as_u64))
                .flatten();
            found.is_some()
        })
        .await?;
        Ok(found)
    }

    /// [Create a check run](https://docs.github.com/en/rest/checks/runs#create-a-check-run)
    /// saying `report` on `sha`, tagged with `external_id` (how a retry finds it again).
    pub async fn create_check_run(
        &self,
        inst: u64,
        repo: &RepoName,
        sha: &CommitSha,
        external_id: &str,
        report: &CheckReport<'_>,
    ) -> Result<u64, ForgeError> {
        let mut body = check_run_body(report);
        body["name"] = json!(report.name);
        body["head_sha"] = json!(sha.as_str());
        body["external_id"] = json!(external_id);
        let a = self
            .call(
                inst,
                Method::POST,
                &format!("/repos/{repo}/check-runs"),
                Some(&body),
                &[],
            )
            .await?;
        id_of(&a)
    }

    /// [Update a check run](https://docs.github.com/en/rest/checks/runs#update-a-check-run)
    /// to say `report`.
    pub async fn update_check_run(
        &self,
        inst: u64,
        repo: &RepoName,
        id: u64,
        report: &CheckReport<'_>,
    ) -> Result<(), ForgeError> {
        self.call(
            inst,
            Method::PATCH,
            &format!("/repos/{repo}/check-runs/{id}"),
            Some(&check_run_body(report)),
            &[],
        )
        .await?;
        Ok(())
    }
}

/// A check run's status, conclusion, output and link, as GitHub takes them.
fn check_run_body(report: &CheckReport<'_>) -> Value {
    let (status, conclusion) = match report.state {
        CheckState::Queued => ("queued", None),
        CheckState::Waiting | CheckState::Running => ("in_progress", None),
        CheckState::Success => ("completed", Some("success")),
        CheckState::Failure => ("completed", Some("failure")),
        CheckState::Neutral => ("completed", Some("neutral")),
        CheckState::Cancelled => ("completed", Some("cancelled")),
    };
    let mut body = json!({
        "status": status,
        "output": { "title": report.title, "summary": report.summary },
    });
    if let Some(c) = conclusion {
        body["conclusion"] = json!(c);
    }
    if let Some(a) = report.annotation {
        body["output"]["annotations"] = json!([{
            "path": a.path,
            "start_line": a.line,
            "end_line": a.line,
            "annotation_level": "failure",
            "message": a.message,
        }]);
    }
    if let Some(url) = report.url {
        body["details_url"] = json!(url);
    }
    body
}
